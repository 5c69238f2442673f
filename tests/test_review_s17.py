# ruff: noqa: E501  (a FHIR resource or an EHR text reads best on one line)
"""Clinical-safety review s17: patients built from the guideline (revision 2, docs/clinical-rules.md) and EHR data shapes.

Each test names the guideline section it relies on. A test that fails exposes a disagreement
between the service and the guideline (no xfail: the lead decides). Every patient runs in both
data modes of tests/test_independent_patients.py (the EHR's prefetch, and no prefetch with a
``responses``-mocked FHIR server), and every answer is checked against section 10 there.
"""

from __future__ import annotations

import re

import pytest

from .test_independent_patients import (
    MODES, run, topics, IV, LOINC, ORAL, PID, RXNORM, UCUM, at, condition, day,
    deleted, dose_mg, draft, egfr, encounter, expect_oral_mgo, expect_severe_adult_iv,
    lab_codes, med_suggestions, mg, mgo, mgo_order, mgso4, none_of, obs, patient, procedure, recipient, recommended, rx, rxcode, serum_mg_lab, statement, text, the,
)


# ---------------------------------------------------------------------------------------------
# Section 3: every threshold in every unit (1 day old result, adult kidney recipient, eGFR 58)

SEVERITY_GRID = [
    # value, unit, indicator of the mg-severity card (None: no severity card), mEq/L for the record
    (0.99, "mEq/L", "critical"), (1.00, "mEq/L", "warning"), (1.40, "mEq/L", "warning"),
    (1.41, "mEq/L", "info"), (1.49, "mEq/L", "info"), (1.50, "mEq/L", None),
    (0.49, "mmol/L", "critical"), (0.50, "mmol/L", "warning"), (0.70, "mmol/L", "warning"),
    (0.71, "mmol/L", "info"), (0.74, "mmol/L", "info"), (0.75, "mmol/L", None),
    (1.21, "mg/dL", "critical"),  # 0.9957 mEq/L
    (1.22, "mg/dL", "warning"),  # 1.0039
    (1.70, "mg/dL", "warning"),  # 1.3989
    (1.71, "mg/dL", "info"),  # 1.4071
    (1.82, "mg/dL", "info"),  # 1.4976
    (1.83, "mg/dL", None),  # 1.5059
    (12.1, "mg/L", "critical"),  # 0.9957
    (12.2, "mg/L", "warning"),  # 1.0039
    (17.0, "mg/L", "warning"),  # 1.3989
    (17.1, "mg/L", "info"),  # 1.4071
    (18.3, "mg/L", None),  # 1.5059
]


def _mg_any(value, unit, days=1, **kw):
    if unit == "mg/L":
        return obs([(LOINC, "19123-9", "Magnesium [Mass/volume] in Serum or Plasma")], value, "mg/L", "mg/L",
                   days=days, text="Magnesium", **kw)
    return mg(value, unit, days=days, **kw)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value, unit, indicator", SEVERITY_GRID, ids=[f"{v}-{u}" for v, u, _ in SEVERITY_GRID])
def test_severity_boundaries_in_every_unit(value, unit, indicator, mode, discovery, monkeypatch):
    """§3 table: severe Mg < 1.0; mild-moderate 1.0 ≤ Mg ≤ 1.4; below target 1.4 < Mg < 1.5;
    at target no card. §2 units: mmol/L × 2, mg/dL × 0.82288, mg/L × 0.082288. Doses: severe
    "2 g IV over 1 hour"; mild-moderate "magnesium oxide 400 mg ... twice daily"."""
    cards = run(recipient(_mg_any(value, unit)), mode, discovery, monkeypatch)
    if indicator is None:
        none_of(cards, "mg-severity", "mg-persistent")
        return
    c = the(cards, "mg-severity", indicator)
    assert f"{value:g}" in c["summary"] and day(1) in c["summary"], c["summary"]
    if indicator == "critical":
        expect_severe_adult_iv(c)
        assert not mgo(c), "severe: oral MgO offered as the treatment"
    elif indicator == "warning":
        expect_oral_mgo(c, per_day_expected=2)
        assert not mgso4(c), "mild-moderate without symptoms: IV offered"
    else:
        assert not med_suggestions(c), "below target: a supplement was suggested"


HIGH_GRID = [(2.5, "mEq/L", False), (2.51, "mEq/L", True), (1.25, "mmol/L", False), (1.26, "mmol/L", True),
             (3.0, "mg/dL", False),  # 2.4686 mEq/L: "about 3.0 mg/dL" but not above 2.5
             (3.04, "mg/dL", True)]  # 2.5016


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value, unit, high", HIGH_GRID, ids=[f"{v}-{u}" for v, u, _ in HIGH_GRID])
def test_high_on_supplement_boundary_in_every_unit(value, unit, high, mode, discovery, monkeypatch):
    """§3: "the latest usable Mg is above high_above = 2.5 mEq/L (about 3.0 mg/dL) while a
    magnesium supplement is active: hold or reduce the supplement ... Suggest stopping the
    supplement (delete of that order, isRecommended: false) and a recheck."""
    order = mgo_order(days=60, id="mr-mgo-high")
    cards = run(recipient(order, mg(value, unit, days=1)), mode, discovery, monkeypatch)
    if not high:
        none_of(cards, "mg-high")
        return
    c = the(cards, "mg-high", "warning")
    assert ("MedicationRequest/mr-mgo-high", False) in deleted(c), deleted(c)
    assert serum_mg_lab(c)
    assert f"{value:g}" in c["summary"] and day(1) in c["summary"], c["summary"]


# ---------------------------------------------------------------------------------------------
# Section 3 + 9: a supplement recorded by its RxNorm code only

MGO_CODE_ONLY = {"coding": [{"system": RXNORM, "code": "198741"}]}


@pytest.mark.parametrize("mode", MODES)
def test_code_only_magnesium_oxide_is_a_supplement_for_high_mg(mode, discovery, monkeypatch):
    """§3: "High magnesium on a supplement (mg-high, warning): the latest usable Mg is above
    high_above = 2.5 mEq/L ... while a magnesium supplement is active". §9: "Match codes by
    system and code; fall back to display/text where a record has no usable coding" and
    "magnesium oxide 400 MG Oral Tablet: RxNorm 198741". A MedicationRequest carrying only
    RxNorm 198741 (no text, no display) is an active magnesium supplement."""
    order = rx(MGO_CODE_ONLY, route=ORAL, days=60, id="mr-mgo-code")
    cards = run(recipient(order, mg(3.4, "mg/dL", days=1)), mode, discovery, monkeypatch)
    c = the(cards, "mg-high", "warning")
    assert ("MedicationRequest/mr-mgo-code", False) in deleted(c)


@pytest.mark.parametrize("mode", MODES)
def test_code_only_magnesium_oxide_counts_for_persistence(mode, discovery, monkeypatch):
    """§7: "Persistent hypomagnesemia: at least 2 results ≤ 1.4 mEq/L spanning ≥ 14 days ...
    all taken after an active magnesium supplement was started. ... it replaces the severity
    card ... never 'start' a regimen the patient is already on". §9: codes are matched first
    (magnesium oxide 400 MG Oral Tablet: RxNorm 198741)."""
    order = rx(MGO_CODE_ONLY, route=ORAL, days=60, id="mr-mgo-code")
    cards = run(recipient(order, mg(1.2, "mEq/L", days=30), mg(1.25, "mEq/L", days=2)), mode, discovery,
                monkeypatch)
    the(cards, "mg-persistent", "warning")
    none_of(cards, "mg-severity")


# ---------------------------------------------------------------------------------------------
# Section 7: persistence at its boundary, across units, with a home-medication supplement

MGO_STATEMENT = {"text": "magnesium oxide (MAG-OX) 400 mg tablet"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("span, persistent", [(14.0, True), (13.9, False)])
def test_persistence_span_boundary_mixed_units(span, persistent, mode, discovery, monkeypatch):
    """§7: "at least 2 results ≤ 1.4 mEq/L spanning ≥ 14 days (persistent_min_results = 2,
    persistent_min_span_days = 14), all taken after an active magnesium supplement was started."
    First result 1.6 mg/dL (1.317 mEq/L), second 0.68 mmol/L (1.36 mEq/L)."""
    res = recipient(statement(MGO_STATEMENT, start_days=60), mg(1.6, "mg/dL", days=span + 1),
                    mg(0.68, "mmol/L", days=1))
    cards = run(res, mode, discovery, monkeypatch)
    if persistent:
        c = the(cards, "mg-persistent", "warning")
        none_of(cards, "mg-severity")
        assert c["summary"].lower().startswith("persistent low magnesium despite supplement")
        assert not mgo(c), "persistent: a second MgO regimen suggested instead of 'increase'"
    else:
        c = the(cards, "mg-severity", "warning")
        none_of(cards, "mg-persistent")


@pytest.mark.parametrize("mode", MODES)
def test_persistent_low_before_supplement_start_not_counted(mode, discovery, monkeypatch):
    """§7: the low results must be "all taken after an active magnesium supplement was started":
    a low 30 days ago, supplement started 20 days ago, one low since: not persistent."""
    res = recipient(mgo_order(days=20), mg(1.2, "mEq/L", days=30), mg(1.25, "mEq/L", days=2))
    cards = run(res, mode, discovery, monkeypatch)
    the(cards, "mg-severity", "warning")
    none_of(cards, "mg-persistent")


@pytest.mark.parametrize("mode", MODES)
def test_persistent_with_corrected_result(mode, discovery, monkeypatch):
    """§2 + §7: a corrected result supersedes the final one at the same time, so a low final
    corrected to 1.8 mEq/L is not a low result for persistence."""
    t = at(20, hour=8)
    final = mg(1.1, "mEq/L", when={"effectiveDateTime": t, "issued": at(20, hour=10)}, id="mg-final-20")
    corrected = mg(1.8, "mEq/L", when={"effectiveDateTime": t, "issued": at(19, hour=10)}, status="corrected",
                   id="mg-corr-20")
    res = recipient(mgo_order(days=60), final, corrected, mg(1.25, "mEq/L", days=2))
    cards = run(res, mode, discovery, monkeypatch)
    the(cards, "mg-severity", "warning")
    none_of(cards, "mg-persistent")


# ---------------------------------------------------------------------------------------------
# Section 7: contributing factors, eGFR reported as text


@pytest.mark.parametrize("mode", MODES)
def test_egfr_rise_to_greater_than_60_is_a_contributing_factor(mode, discovery, monkeypatch):
    """§7: "rising kidney function: eGFR up by ≥ 20% (default egfr_rise_fraction = 0.20) within
    90 days: better graft function can increase magnesium excretion." Epic reports a normal
    eGFR as ">60": 45 -> ">60" in 57 days is a rise of more than 33 %."""
    low_egfr = obs([(LOINC, "98979-8", "eGFR CKD-EPI 2021")], 45, "mL/min/1.73m2", "mL/min/{1.73_m2}",
                   days=60, text="eGFR")
    high_egfr = obs([(LOINC, "98979-8", "eGFR CKD-EPI 2021")], 60, "mL/min/1.73m2", "mL/min/{1.73_m2}",
                    days=3, text="eGFR", comparator=">")
    res = recipient(mg(1.2, "mEq/L", days=1), low_egfr, high_egfr, renal=False)
    cards = run(res, mode, discovery, monkeypatch)
    c = the(cards, "mg-contributing", "warning")
    assert "egfr" in text(c) or "kidney function" in text(c), text(c)


@pytest.mark.parametrize("mode", MODES)
def test_egfr_value_string_less_than_15_halves_iv(mode, discovery, monkeypatch):
    """§3: "Renal impairment (eGFR < 30 ...): IV magnesium sulfate halved (1 g)". Cerner/Epic
    send eGFR as valueString "<15"."""
    e = obs([(LOINC, "62238-1", "eGFR CKD-EPI")], None, None, days=3, text="eGFR", valueString="<15")
    cards = run(recipient(mg(0.45, "mmol/L", days=1), e, renal=False), mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "critical")
    expect_severe_adult_iv(c, grams=1.0)
    assert "caution" in mgso4(c)[0]["dosageInstruction"][0]["text"].lower()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value, per", [(30, 2), (29.9, 1)])
def test_egfr_caution_boundary(value, per, mode, discovery, monkeypatch):
    """§3: "Renal impairment (eGFR < 30 mL/min/1.73m²) ... oral magnesium oxide 400 mg once
    daily ... in the text and the structured dose alike"; eGFR 30 is not below 30."""
    cards = run(recipient(mg(1.2, "mEq/L", days=1), egfr(value), renal=False), mode, discovery, monkeypatch)
    r = expect_oral_mgo(the(cards, "mg-severity", "warning"), per_day_expected=per)
    sig = r["dosageInstruction"][0]["text"].lower()
    assert ("once daily" in sig) == (per == 1), sig


# ---------------------------------------------------------------------------------------------
# Section 3: symptoms and doses


@pytest.mark.parametrize("mode", MODES)
def test_minor_symptom_with_egfr_text_below_15(mode, discovery, monkeypatch):
    """§3: minor symptoms: "start at three times daily", "IV magnesium is offered as a second
    suggestion that is not recommended by default"; renal impairment: "IV magnesium sulfate
    halved (1 g); oral magnesium oxide 400 mg once daily"."""
    e = obs([(LOINC, "62238-1", "eGFR CKD-EPI")], None, None, days=3, text="eGFR", valueString="<15")
    cramp = condition("55300003", "Cramp", onset_days=3, recorded_days=3)
    cards = run(recipient(mg(0.65, "mmol/L", days=1), e, cramp, renal=False), mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "warning")
    expect_oral_mgo(c, per_day_expected=1)
    iv = mgso4(c)
    assert iv and abs(dose_mg(iv[0]) - 1000) < 1e-6 and not recommended(c, iv[0])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("onset, critical", [(13.9, True), (14.1, False)])
def test_symptom_window_boundary(onset, critical, mode, discovery, monkeypatch):
    """§3: "symptomatic, major: Mg ≤ 1.4 and a major symptom ... in the last 14 days: critical";
    §5: onset decides. 0.70 mmol/L = 1.40 mEq/L (mild-moderate without the symptom)."""
    seizure = condition("91175000", "Seizure", onset_days=onset, recorded_days=1)
    cards = run(recipient(mg(0.70, "mmol/L", days=1), seizure), mode, discovery, monkeypatch)
    if critical:
        c = the(cards, "mg-severity", "critical")
        expect_severe_adult_iv(c)
        assert recommended(c, mgso4(c)[0])
    else:
        c = the(cards, "mg-severity", "warning")
        expect_oral_mgo(c, per_day_expected=2)


@pytest.mark.parametrize("mode", MODES)
def test_qt_prolongation_with_mild_mg_is_critical_iv(mode, discovery, monkeypatch):
    """§3: "symptomatic, major: Mg ≤ 1.4 and a major symptom (seizure, tetany, cardiac
    arrhythmia, QT prolongation) ... critical"; "Severe or major symptoms: intravenous
    magnesium sulfate, e.g. 2 g IV over 1 hour"."""
    qt = condition("111975006", "Prolonged QT interval", onset_days=2, recorded_days=2)
    cards = run(recipient(mg(1.6, "mg/dL", days=1), qt), mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "critical")
    expect_severe_adult_iv(c)


# ---------------------------------------------------------------------------------------------
# Section 4: monitoring intervals at their boundaries


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("age_days, due", [(41.9, False), (42.1, True)])
def test_routine_interval_boundary(age_days, due, mode, discovery, monkeypatch):
    """§4: "routine, on tacrolimus: 42 days"; "Due -> a warning card 'Serum magnesium due'
    naming the last result and its date ... with a ServiceRequest suggestion for serum Mg"."""
    cards = run(recipient(mg(0.9, "mmol/L", days=age_days)), mode, discovery, monkeypatch)
    if due:
        c = the(cards, "mg-monitoring", "warning")
        assert serum_mg_lab(c)
        assert "0.9" in c["summary"] and day(age_days) in c["summary"], c["summary"]
    else:
        none_of(cards, "mg-monitoring")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("age_days, due", [(2.9, False), (3.1, True)])
def test_inpatient_interval_boundary(age_days, due, mode, discovery, monkeypatch):
    """§4: "hospitalized (an in-progress Encounter whose class is inpatient ... IMP ...): 3 days"."""
    cards = run(recipient(mg(2.0, "mg/dL", days=age_days), encounter("IMP")), mode, discovery, monkeypatch,
                encounter=True)
    if due:
        the(cards, "mg-monitoring", "warning")
    else:
        none_of(cards, "mg-monitoring")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("transplant_days, due", [(29, True), (31, False)])
def test_early_phase_after_transplant(transplant_days, due, mode, discovery, monkeypatch):
    """§4: "first month after transplant or after tacrolimus was started: 7 days
    (early_interval_days, early_phase_days = 30)"; a result 8 days old."""
    res = [patient(), rx(rxcode("198377", "tacrolimus 1 MG Oral Capsule"), route=ORAL, days=800),
           procedure("70536003", "Kidney transplant", transplant_days), egfr(58), mg(0.9, "mmol/L", days=8)]
    cards = run(res, mode, discovery, monkeypatch)
    if due:
        the(cards, "mg-monitoring", "warning")
    else:
        none_of(cards, "mg-monitoring")


# ---------------------------------------------------------------------------------------------
# Section 6: order hooks


@pytest.mark.parametrize("mode", MODES)
def test_famotidine_with_egfr_greater_than_60(mode, discovery, monkeypatch):
    """§6: "For an oral PPI, offer famotidine (RxNorm 310273 ...) in place of it". §10: detail
    gives "the evidence used ... what was not available". An eGFR reported as ">60" (Epic)
    is a known, normal renal function: the famotidine order must not say "no eGFR on record"
    (nor be reduced as if renal function were unknown)."""
    e = obs([(LOINC, "98979-8", "eGFR CKD-EPI 2021")], 60, "mL/min/1.73m2", "mL/min/{1.73_m2}", days=3,
            comparator=">", text="eGFR")
    res = recipient(mg(1.8, "mEq/L", days=10), e, renal=False)
    d = draft({"text": "omeprazole 20 mg capsule"}, id="draft-ome-60", sig="20 mg by mouth daily")
    cards = run(res, mode, discovery, monkeypatch, hook="order-select", drafts=[d])
    c = the(cards, "mg-order-wasting", "info")
    famo = [r for r in med_suggestions(c) if any(cd.get("code") == "310273"
                                                 for cd in r["medicationCodeableConcept"].get("coding", []))]
    assert famo, "no famotidine offered"
    sig = famo[0]["dosageInstruction"][0]["text"].lower()
    assert "no egfr" not in sig, sig


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name, indicator, ingredient", [
    ("clarithromycin 500 mg tablet", "warning", "clarithromycin"),
    ("Sporanox 100 mg capsule", "warning", "itraconazole"),
    ("erythromycin 250 mg tablet", "warning", "erythromycin"),
    ("cobicistat (TYBOST) 150 mg tablet", "critical", "cobicistat"),
    ("Genvoya tablet", "critical", "cobicistat"),
])
def test_interaction_strengths(name, indicator, ingredient, mode, discovery, monkeypatch):
    """§6: "ritonavir- or cobicistat-containing products: critical ... tacrolimus trough on day
    2–3"; "other strong CYP3A inhibitors (ketoconazole, itraconazole, voriconazole, posaconazole,
    clarithromycin): warning: a tacrolimus dose reduction is usually needed at start ... trough
    within 2–3 days"; "other inhibitors and the inducers: warning: trough and Mg within about a
    week". Each with a ServiceRequest suggestion for a tacrolimus trough."""
    d = draft({"text": name}, id="draft-int")
    cards = run(recipient(mg(1.8, "mEq/L", days=10)), mode, discovery, monkeypatch, hook="order-select",
                drafts=[d])
    c = the(cards, "mg-order-interaction", indicator)
    assert ingredient in text(c), text(c)
    assert lab_codes(c) & {"11253-2", "74096-9", "74097-7", "77348-1"}
    strong = ingredient in ("clarithromycin", "itraconazole")
    if strong:
        assert "reduc" in c["summary"].lower() and "2–3 days" in c["summary"], c["summary"]
    if indicator == "critical":
        assert "day 2–3" in c["summary"], c["summary"]


@pytest.mark.parametrize("mode", MODES)
def test_tacrolimus_draft_for_home_med_patient_is_not_a_start(mode, discovery, monkeypatch):
    """§6: "Starting tacrolimus (a systemic tacrolimus draft and no active tacrolimus) ... A
    tacrolimus renewal for a patient already on it gets no 'starting' card"; §1: a
    MedicationStatement with status active counts (home medications)."""
    res = [patient(), statement({"text": "Prograf 1 mg capsule"}, start_days=400), egfr(58),
           mg(1.8, "mEq/L", days=10)]
    d = draft(rxcode("198377", "tacrolimus 1 MG Oral Capsule", "tacrolimus (PROGRAF) 1 mg capsule"), id="draft-tac")
    cards = run(res, mode, discovery, monkeypatch, hook="order-select", drafts=[d])
    none_of(cards, "mg-order-tacrolimus")


@pytest.mark.parametrize("mode", MODES)
def test_order_sign_oral_ppi_with_severe_mg(mode, discovery, monkeypatch):
    """§6: with a relevant draft, "the cards below, and the severity/monitoring cards of sections
    3–4"; "Adding a drug that worsens magnesium loss ... warning when Mg is low (≤ 1.4)"; §10:
    "Order cards by severity (critical, warning, info)" and summary "the finding, its number and
    date, then **the action**" (fails today with the wasting summary cut: "...use the lowest dose…")."""
    d = draft({"text": "pantoprazole 40 mg EC tablet"}, id="draft-panto-s")
    cards = run(recipient(mg(0.45, "mmol/L", days=1)), mode, discovery, monkeypatch, hook="order-sign", drafts=[d])
    assert topics(cards)[0] == "mg-severity", topics(cards)
    expect_severe_adult_iv(the(cards, "mg-severity", "critical"))
    the(cards, "mg-order-wasting", "warning")


# ---------------------------------------------------------------------------------------------
# Section 3: dialysis recorded the way problem lists and procedures really are


@pytest.mark.parametrize("mode", MODES)
def test_peritoneal_dialysis_procedure_snomed_coded(mode, discovery, monkeypatch):
    """§3: "Dialysis or end-stage kidney disease (an active ESRD Condition, or a dialysis
    Procedure in the last 30 days; codes in section 9): no one-click supplementation orders."
    §9 lists 302497006 (hemodialysis) "names 'dialysis', ... as fallback". A peritoneal dialysis
    Procedure (SNOMED 71192002 "Peritoneal dialysis") 3 days ago is a dialysis Procedure."""
    pd = procedure("71192002", "Peritoneal dialysis", 3)
    cards = run(recipient(mg(1.2, "mEq/L", days=1), pd), mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "warning")
    assert not med_suggestions(c), [r["medicationCodeableConcept"]["text"] for r in med_suggestions(c)]
    assert "nephrology" in text(c)


@pytest.mark.parametrize("mode", MODES)
def test_esrd_condition_icd10_only(mode, discovery, monkeypatch):
    """§3 dialysis/ESRD; §9 names "ESRD", "end-stage renal/kidney disease" as fallback for a
    Condition without a SNOMED coding (ICD-10-CM N18.6 only)."""
    cond = condition(None, "End stage renal disease", onset_days=900, recorded_days=900)
    cond["code"]["coding"] = [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "N18.6",
                               "display": "End stage renal disease"}]
    cards = run(recipient(mg(0.8, "mEq/L", days=1), cond), mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "critical")
    assert not med_suggestions(c)
    assert serum_mg_lab(c)


# ---------------------------------------------------------------------------------------------
# Batch 2: persistence with staleness and symptoms, summaries, administrations by reference


@pytest.mark.parametrize("mode", MODES)
def test_wasting_order_summary_keeps_its_action_with_mmol_result(mode, discovery, monkeypatch):
    """§10: "summary ≤ 140 characters: the finding, its number and date, then **the action**";
    "When a list must be cut, cut at a separator ... never mid-word". An oral PPI drafted
    (order-select) for a patient whose lab reports mmol/L: the action must not be cut off."""
    d = draft({"text": "pantoprazole 40 mg EC tablet"}, id="draft-panto-m")
    cards = run(recipient(mg(0.62, "mmol/L", days=1)), mode, discovery, monkeypatch, hook="order-select",
                drafts=[d])
    the(cards, "mg-order-wasting", "warning")  # check_section_10 (in run) rejects a cut action


@pytest.mark.parametrize("mode", MODES)
def test_persistent_low_on_a_stale_result_asks_for_a_repeat_first(mode, discovery, monkeypatch):
    """§3: "A severity card on a result older than the current monitoring interval (section 4)
    says so, asks for a repeat level first, and words its treatment advice as conditional on the
    repeat". §7: persistence "replaces the severity card ... It carries the acute advice of the
    severity class". Inpatient (3-day interval), on MgO, lows 25 and 5 days ago."""
    res = recipient(mgo_order(days=60), mg(1.2, "mEq/L", days=25), mg(1.1, "mEq/L", days=5), encounter("IMP"))
    cards = run(res, mode, discovery, monkeypatch, encounter=True)
    c = the(cards, "mg-persistent")
    assert serum_mg_lab(c)
    t = text(c)
    assert "repeat" in c["summary"].lower() or "days old" in t or "days ago" in t, c["summary"] + "\n" + t
    none_of(cards, "mg-monitoring")


@pytest.mark.parametrize("mode", MODES)
def test_persistent_with_seizure_is_critical_with_iv(mode, discovery, monkeypatch):
    """§7: persistent "indicator from the severity class: critical if severe or major symptoms
    ... It carries the acute advice of the severity class (IV if severe; never 'start' a regimen
    the patient is already on: 'increase', naming the current one)". §3: major symptoms ->
    "intravenous magnesium sulfate, e.g. 2 g IV over 1 hour"."""
    seizure = condition("91175000", "Seizure", onset_days=2, recorded_days=2)
    res = recipient(mgo_order(days=60), mg(1.3, "mEq/L", days=20), mg(1.3, "mEq/L", days=1), seizure)
    cards = run(res, mode, discovery, monkeypatch)
    c = the(cards, "mg-persistent", "critical")
    none_of(cards, "mg-severity")
    expect_severe_adult_iv(c)
    assert not mgo(c)
    assert "increase" in text(c)


@pytest.mark.parametrize("mode", MODES)
def test_symptom_card_summary_has_number_and_date(mode, discovery, monkeypatch):
    """§5: "Normal serum Mg with such a symptom: an info card ...; never a severity card";
    §10: summary "the finding, its number and date, then the action"."""
    tremor = condition("26079004", "Tremor", onset_days=3, recorded_days=3)
    cards = run(recipient(mg(0.85, "mmol/L", days=2), tremor), mode, discovery, monkeypatch)
    c = the(cards, "mg-symptoms", "info")
    none_of(cards, "mg-severity")
    assert "0.85" in c["summary"] and day(2) in c["summary"], c["summary"]


@pytest.mark.parametrize("mode", MODES)
def test_contributing_card_summary_has_number_and_date(mode, discovery, monkeypatch):
    """§7 contributing card; §10: every summary carries "the finding, its number and date"."""
    ppi = rx({"text": "omeprazole 20 mg capsule"}, route=ORAL, days=300, id="mr-ome-c")
    cards = run(recipient(mg(1.5, "mg/dL", days=2), ppi), mode, discovery, monkeypatch)
    c = the(cards, "mg-contributing", "warning")
    assert ("MedicationRequest/mr-ome-c", False) in deleted(c)
    assert re.search(r"\d{4}-\d{2}-\d{2}", c["summary"]), c["summary"]


MED_MGSO4 = {"resourceType": "Medication", "id": "med-mgso4",
             "code": {"text": "magnesium sulfate 2 g/50 mL IVPB"}}


def _include_mgso4(prefetch: dict) -> None:
    for _key, bundle in prefetch.items():
        if isinstance(bundle, dict) and any((e.get("resource") or {}).get("resourceType") == "MedicationAdministration"
                                            for e in bundle.get("entry", [])):
            bundle["entry"].append({"fullUrl": "Medication/med-mgso4", "resource": MED_MGSO4,
                                    "search": {"mode": "include"}})


@pytest.mark.parametrize("mode", MODES)
def test_administration_by_medication_reference_means_no_new_dose(mode, discovery, monkeypatch):
    """§3: "a magnesium MedicationAdministration (status completed or in-progress) after the
    result's time ... means replacement is under way: no new dose is suggested". §1: drugs are
    recognised "through medicationReference to ... a Medication in the prefetch/fetched data"."""
    admin = {"resourceType": "MedicationAdministration", "id": "ma-ref", "status": "completed",
             "medicationReference": {"reference": "Medication/med-mgso4"},
             "subject": {"reference": f"Patient/{PID}"}, "effectiveDateTime": at(0.2),
             "dosage": {"route": IV, "dose": {"value": 2, "unit": "g", "system": UCUM, "code": "g"}}}
    res = recipient(mg(0.8, "mEq/L", days=0.5), admin, MED_MGSO4)
    cards = run(res, mode, discovery, monkeypatch, prefetch_extra=_include_mgso4)
    c = the(cards, "mg-severity", "critical")
    assert not mgso4(c) and not mgo(c), [s["label"] for s in c.get("suggestions", [])]
    assert serum_mg_lab(c)


@pytest.mark.parametrize("mode", MODES)
def test_several_results_one_day_latest_time_wins(mode, discovery, monkeypatch):
    """§3 "Severity (the latest usable serum result)": two results on one day, 07:00 severe
    (0.45 mmol/L) and 15:00 mild (1.5 mg/dL = 1.23 mEq/L): the 15:00 one decides (warning, oral)."""
    a = mg(0.45, "mmol/L", when={"effectiveDateTime": at(1, hour=7), "issued": at(1, hour=8)})
    b = mg(1.5, "mg/dL", when={"effectiveDateTime": at(1, hour=15), "issued": at(1, hour=16)})
    cards = run(recipient(a, b), mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "warning")
    expect_oral_mgo(c, per_day_expected=2)
    assert "1.5 mg/dL" in c["summary"]


@pytest.mark.parametrize("mode", MODES)
def test_corrected_result_with_offset_time_supersedes(mode, discovery, monkeypatch):
    """§2: "at the same effective time, a corrected or amended result supersedes a final one
    (even with another id)". The same instant written with another offset is the same time."""
    final = mg(1.1, "mg/dL", when={"effectiveDateTime": "2026-11-24T08:00:00-05:00", "issued": "2026-11-24T14:00:00Z"})
    corr = mg(2.0, "mg/dL", status="corrected",
              when={"effectiveDateTime": "2026-11-24T13:00:00Z", "issued": "2026-11-24T12:00:00Z"})
    cards = run(recipient(final, corr), mode, discovery, monkeypatch)
    none_of(cards, "mg-severity", "mg-monitoring")


@pytest.mark.parametrize("mode", MODES)
def test_child_severe_with_weight_in_mmol(mode, discovery, monkeypatch):
    """§3 Children: "no fixed-dose medication suggestions ... IV magnesium sulfate 25–50 mg/kg
    (max 2 g) per dose ... with a body weight (LOINC 29463-7) from the last 30 days it shows the
    computed mg range. Lab orders are still suggested." 9-year-old, 28 kg: 700–1400 mg."""
    from .test_independent_patients import weight
    res = [patient("2017-06-01", "female"), rx(rxcode("198377", "tacrolimus 1 MG Oral Capsule"), route=ORAL),
           egfr(90), mg(0.45, "mmol/L", days=1), weight(28, days=3),
           obs([(LOINC, "11253-2", "Tacrolimus [Mass/volume] in Blood")], 6, "ng/mL", "ng/mL", days=3)]
    cards = run(res, mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "critical")
    assert not med_suggestions(c)
    t = text(c).replace(",", "")
    assert "700" in t and "1400" in t, t
    assert serum_mg_lab(c)


# ---------------------------------------------------------------------------------------------
# Batch 3: summaries of long findings (mmol/L with its mEq/L equivalent), minor symptoms on a supplement

LONG_SUMMARY_PATIENTS = {
    "high-mmol-egfr-18": lambda: recipient(mgo_order(days=60), mg(1.40, "mmol/L", days=1), egfr(18), renal=False),
    "stale-with-preliminary-mmol-renal": lambda: recipient(
        mg(0.62, "mmol/L", days=50), mg(0.55, "mmol/L", days=0.2, status="preliminary"), egfr(22), renal=False),
    "persistent-mmol-child": lambda: [
        patient("2014-02-01", "male"), rx(rxcode("198377", "tacrolimus 1 MG Oral Capsule"), route=ORAL),
        mgo_order(days=60), mg(0.62, "mmol/L", days=25), mg(0.48, "mmol/L", days=1)],
    "given-since-mmol-inpatient": lambda: recipient(
        mg(0.48, "mmol/L", days=0.5), encounter("IMP"),
        {"resourceType": "MedicationAdministration", "id": "ma-long", "status": "completed",
         "medicationCodeableConcept": {"text": "magnesium sulfate 2 g/50 mL IVPB"},
         "subject": {"reference": f"Patient/{PID}"}, "effectiveDateTime": at(0.2)}),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(LONG_SUMMARY_PATIENTS))
def test_long_findings_keep_number_date_and_action(name, mode, discovery, monkeypatch):
    """§10: "summary ≤ 140 characters: the finding, its number and date, then the action"."""
    cards = run(LONG_SUMMARY_PATIENTS[name](), mode, discovery, monkeypatch,
                encounter=name.endswith("inpatient"))
    assert cards
    for c in cards:
        if c["source"]["topic"]["code"] in ("mg-severity", "mg-persistent", "mg-high"):
            assert re.search(r"\d{4}-\d{2}-\d{2}", c["summary"]) and "mmol/L" in c["summary"], c["summary"]


@pytest.mark.parametrize("mode", MODES)
def test_order_select_start_tacrolimus_low_mmol_summary(mode, discovery, monkeypatch):
    """§6 starting tacrolimus: "warning when Mg is low"; §10 summary limits."""
    d = draft(rxcode("198377", "tacrolimus 1 MG Oral Capsule", "tacrolimus (PROGRAF) 1 mg capsule"), id="draft-tac-low")
    cards = run([patient(), egfr(80), mg(0.62, "mmol/L", days=3)], mode, discovery, monkeypatch,
                hook="order-select", drafts=[d])
    the(cards, "mg-order-tacrolimus", "warning")
    the(cards, "mg-severity", "warning")


@pytest.mark.parametrize("mode", MODES)
def test_minor_symptom_on_a_supplement_still_offers_iv(mode, discovery, monkeypatch):
    """§3: "Mild-moderate, or minor symptoms: oral magnesium ... With minor symptoms, IV
    magnesium is offered as a second suggestion that is not recommended by default". Patient on
    MgO 400 mg twice daily (one low result since: not persistent), cramp 3 days ago."""
    cramp = condition("55300003", "Cramp", onset_days=3, recorded_days=3)
    res = recipient(mgo_order(days=30), mg(1.2, "mEq/L", days=1), cramp)
    cards = run(res, mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "warning")
    iv = mgso4(c)
    assert iv and abs(dose_mg(iv[0]) - 2000) < 1e-6 and not recommended(c, iv[0]), \
        [s["label"] for s in c.get("suggestions", [])]


@pytest.mark.parametrize("mode", MODES)
def test_dialysis_patient_with_magnesium_draft_gets_the_dialysis_advice(mode, discovery, monkeypatch):
    """§3: "Dialysis or end-stage kidney disease ...: no one-click supplementation orders. The
    card says that magnesium on dialysis depends on the dialysate and intake, and to discuss
    replacement with nephrology". A clinician signs magnesium oxide 400 mg twice daily for a
    hemodialysis patient (hemodialysis 2 days ago) with Mg 1.2 mEq/L."""
    hd = procedure("302497006", "Hemodialysis", 2)
    d = draft(rxcode("198741", "magnesium oxide 400 MG Oral Tablet", "magnesium oxide 400 mg tablet"),
              id="draft-mgo-hd", sig="400 mg by mouth twice daily")
    cards = run(recipient(mg(1.2, "mEq/L", days=1), hd), mode, discovery, monkeypatch, hook="order-sign", drafts=[d])
    c = the(cards, "mg-severity", "warning")
    t = text(c)
    assert "nephrology" in t and "dialysate" in t, t


@pytest.mark.parametrize("mode", MODES)
def test_severe_with_unknown_renal_function_says_so(mode, discovery, monkeypatch):
    """§3: renal function "neither: the card says renal function is unknown and suggests a serum
    creatinine with the recheck; the doses stay as above (not 'full dose, no caution' silently)"."""
    cards = run(recipient(mg(0.45, "mmol/L", days=1), renal=False), mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "critical")
    expect_severe_adult_iv(c)
    assert "unknown" in text(c)
    assert lab_codes(c) & {"2160-0", "14682-9"}
