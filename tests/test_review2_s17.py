# ruff: noqa: E501  (a FHIR resource or an EHR text reads best on one line)
"""Second clinical-safety review s17: reading results as EHRs send them (§2), symptoms (§5),
FEMg and contributing factors (§7/§8), monitoring and card details (§4/§10), order hooks (§6).

Patients are built from the guideline (revision 2, docs/clinical-rules.md) and from Epic/Cerner
FHIR R4 shapes, never from the service's code. A failing test is a disagreement between the
service and the guideline (no xfail: the lead decides). Patients run in both data modes of
tests/test_independent_patients.py (the EHR's prefetch, and no prefetch with a
``responses``-mocked FHIR server) unless the shape can only arrive through an EHR's own prefetch
(text-only results); every answer is checked against section 10 there.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from .test_independent_patients import (
    MODES, run, topics, summaries,
    EPIC_LOCAL, FHIR_BASE, LOINC, NOW, ORAL, PID, RXNORM, SNOMED, TOPICAL, at, condition, day,
    deleted, draft, encounter, expect_oral_mgo, expect_severe_adult_iv, mg,
    mgo_order, none_of, obs, recipient, rx, rxcode, serum_mg_lab, statement, text, the,
)

OPHTHALMIC = {"coding": [{"system": SNOMED, "code": "54485002", "display": "Ophthalmic route"}], "text": "Both Eyes"}


def add_to(key: str, *resources: dict):
    """An EHR's own prefetch that sends more than the template's code filter (text-only results)."""
    def extra(prefetch: dict) -> None:
        for r in resources:
            prefetch[key]["entry"].append({"resource": r})
    return extra


def femg_text(cards) -> str:
    return " ".join(text(c) for c in cards if "femg" in text(c))


T8 = {"effectiveDateTime": at(1, hour=8), "issued": at(1, hour=10)}
T9 = {"effectiveDateTime": at(1, hour=9), "issued": at(1, hour=11)}


def s_cr(value, unit="mg/dL", when=None):
    code, ucum = {"mg/dL": ("2160-0", "mg/dL"), "umol/L": ("14682-9", "umol/L")}[unit]
    return obs([(LOINC, code, "Creatinine [Mass/volume] in Serum or Plasma")], value, unit, ucum, when=when or T8, text="Creatinine")


def u_cr(value, unit="mg/dL", code="2161-8", when=None):
    return obs([(LOINC, code, "Creatinine [Mass/volume] in Urine")], value, unit, unit, when=when or T9, text="Creatinine, urine")


def u_mg(value, unit="mg/dL", code=None, when=None):
    code = code or ("19124-7" if unit == "mg/dL" else "2598-1")
    return obs([(LOINC, code, "Magnesium in Urine")], value, unit, unit, when=when or T9, text="Magnesium, urine")


# =============================================================================================
# DISAGREEMENTS (each fails against the service as reviewed)
# =============================================================================================

@pytest.mark.parametrize("fluid", ["Magnesium, peritoneal fluid", "Magnesium, body fluid", "Magnesium, dialysate"])
def test_text_only_fluid_magnesium_is_not_serum(fluid, discovery, monkeypatch):
    """§2: "Serum/plasma magnesium Observations (LOINC codes in section 9)" and "Display/text
    matching is only for Observations with no LOINC coding at all". A body-fluid magnesium (drain,
    peritoneal, dialysate: common after transplant) sent text-only by an EHR's own prefetch is not
    a serum result: it must not drive a severity card. Serum Mg 1.8 mEq/L five days ago is at
    target; the fluid 0.4 mmol/L must not turn that into "Severe low magnesium"."""
    fluid_mg = obs([(EPIC_LOCAL, "1606", "MAGNESIUM, FLUID")], 0.4, "mmol/L", "mmol/L", days=1, text=fluid)
    cards = run(recipient(mg(1.8, "mEq/L", days=5)), "prefetch", discovery, monkeypatch,
                prefetch_extra=add_to("magnesium", fluid_mg))
    none_of(cards, "mg-severity", "mg-contributing", "mg-persistent")


def test_text_only_drain_fluid_creatinine_is_not_serum_creatinine(discovery, monkeypatch):
    """§3: "without one [eGFR], estimate it from the latest serum creatinine within 90 days
    (CKD-EPI 2021 ...)"; §2/§9: creatinine serum/plasma LOINC 2160-0, 14682-9, text only as a
    fallback. A drain-fluid creatinine (the classic urine-leak check after kidney transplant,
    25 mg/dL) is not a serum creatinine: it must not make eGFR "1" and halve the IV dose of a
    severe hypomagnesemia. Serum creatinine 1.0 mg/dL 3 days ago (woman, 58): eGFR about 65, so
    "2 g IV over 1 hour" stands."""
    drain = obs([(EPIC_LOCAL, "1700", "CREATININE, FLUID")], 25.0, "mg/dL", "mg/dL", days=1,
                text="Creatinine, drain fluid")
    res = recipient(mg(0.8, "mEq/L", days=1), s_cr(1.0, when={"effectiveDateTime": at(3)}), renal=False)
    cards = run(res, "prefetch", discovery, monkeypatch, prefetch_extra=add_to("labs", drain))
    c = the(cards, "mg-severity", "critical")
    expect_severe_adult_iv(c, grams=2.0)


@pytest.mark.parametrize("mode", MODES)
def test_ucum_code_and_unit_text_disagree_shown_unit_is_the_one_used(mode, discovery, monkeypatch):
    """§2: "Units (UCUM code first, unit text second ...)" and "Show values in the unit the lab
    used, with the mEq/L equivalent where it differs." A result coded LOINC 2601-3 (moles), UCUM
    code mmol/L but unit text "mg/dL" (a mapping slip in an interface) is read as 0.45 mmol/L =
    0.90 mEq/L. The card must not print "0.45 mg/dL (0.90 mEq/L)": 0.45 mg/dL would be 0.37 mEq/L,
    so the clinician reads a number and unit that contradict the conversion shown."""
    r = obs([(LOINC, "2601-3", "Magnesium [Moles/volume] in Serum or Plasma")], 0.45, "mg/dL", "mmol/L",
            days=1, text="Magnesium")
    cards = run(recipient(r), mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "critical")
    assert "0.45 mg/dl" not in text(c), c["summary"]
    assert "0.45 mmol/l" in c["summary"].lower(), c["summary"]


@pytest.mark.parametrize("mode", MODES)
def test_femg_with_urine_creatinine_in_mmol_per_l(mode, discovery, monkeypatch):
    """§7: "when a serum Mg, serum creatinine, urine Mg and urine creatinine exist within 24 hours
    of each other, compute FEMg (%) = (U_Mg × S_Cr) / (0.7 × S_Mg × U_Cr) × 100 (same units for
    each pair ...)". SI laboratories report urine creatinine in mmol/L: 5.304 mmol/L = 60 mg/dL.
    S_Mg 1.0 mEq/L, S_Cr 1.2 mg/dL, U_Mg 3.0 mg/dL: FEMg = 7.1 % (renal wasting). The service
    converts µmol/L urine creatinine but drops the FEMg when the same value comes in mmol/L."""
    res = recipient(mg(1.0, "mEq/L", when=T8), s_cr(1.2), u_cr(5.304, "mmol/L"), u_mg(3.0))
    cards = run(res, mode, discovery, monkeypatch)
    assert "7.1" in femg_text(cards), summaries(cards)


@pytest.mark.parametrize("mode", MODES)
def test_symptom_onset_age_decides_not_recorded_date(mode, discovery, monkeypatch):
    """§5: "Active Conditions ... whose onset is in the last 14 days; recordedDate decides only
    when the Condition has no onset". A seizure disorder with onsetAge 30 years (patient born
    1968: onset about 1998), re-recorded 2 days ago, is not a new symptom: Mg 1.3 mEq/L stays
    mild-moderate (warning, oral magnesium), not "symptomatic, major" (critical, IV)."""
    seizure = condition("91175000", "Seizure", onset_days=None, recorded_days=2)
    seizure["onsetAge"] = {"value": 30, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}
    cards = run(recipient(mg(1.3, "mEq/L", days=1), seizure), mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "warning")
    expect_oral_mgo(c, per_day_expected=2)


@pytest.mark.parametrize("mode", MODES)
def test_text_only_convulsions_is_a_seizure(mode, discovery, monkeypatch):
    """§5: "Major: seizure, tetany, cardiac arrhythmia ... text matches are acceptable as a
    fallback for code-less Conditions"; §3: "Mg ≤ 1.4 and a major symptom ... in the last 14 days
    | critical". "Convulsions" is the common clinical (and SNOMED synonym) name of seizure
    (91175000): a code-less "Convulsions" 3 days ago with Mg 1.3 mEq/L is symptomatic, major."""
    cards = run(recipient(mg(1.3, "mEq/L", days=1), condition(None, "Convulsions", onset_days=3, recorded_days=3)),
                mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "critical")
    expect_severe_adult_iv(c)


MED_TAC_ABS = {"resourceType": "Medication", "id": "med-tac-abs",
               "code": {"coding": [{"system": RXNORM, "code": "198377", "display": "tacrolimus 1 MG Oral Capsule"}],
                        "text": "tacrolimus 1 mg capsule"}}


def test_absolute_medication_reference_is_read_from_the_fhir_server(discovery, monkeypatch):
    """§1: tacrolimus is recognised "through medicationReference to a contained Medication (#id)
    or a Medication in the prefetch/fetched data." A FHIR reference may be absolute; here it names
    the hook's own fhirServer ("<fhirServer>/Medication/med-tac-abs"). Without prefetch the service
    must read that Medication, find tacrolimus and answer the severe Mg 0.8 mEq/L (critical)."""
    order = {"resourceType": "MedicationRequest", "id": "mr-tac-abs", "status": "active", "intent": "order",
             "medicationReference": {"reference": f"{FHIR_BASE}/Medication/med-tac-abs"},
             "subject": {"reference": f"Patient/{PID}"}, "authoredOn": at(700),
             "dosageInstruction": [{"text": "3 mg by mouth every 12 hours", "route": ORAL}]}
    res = [r for r in recipient(mg(0.8, "mEq/L", days=1)) if r["resourceType"] != "MedicationRequest"]
    cards = run(res + [order, MED_TAC_ABS], "fallback", discovery, monkeypatch)
    c = the(cards, "mg-severity", "critical")
    expect_severe_adult_iv(c)


# =============================================================================================
# AGREEMENTS (scenario groups that pass)
# =============================================================================================

# ---- §2 statuses -----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", ["registered", "unknown", "entered-in-error", "cancelled"])
def test_unusable_status_never_drives_severity(status, mode, discovery, monkeypatch):
    """§2: "Ignore entered-in-error, cancelled, registered, unknown." A severe 0.8 mEq/L with such a
    status, newer than an at-target 1.8 mEq/L, makes no severity card."""
    cards = run(recipient(mg(0.8, "mEq/L", days=1, status=status), mg(1.8, "mEq/L", days=3)), mode, discovery, monkeypatch)
    none_of(cards, "mg-severity", "mg-persistent", "mg-contributing")


@pytest.mark.parametrize("mode", MODES)
def test_preliminary_low_is_shown_not_classified(mode, discovery, monkeypatch):
    """§2: "preliminary may be shown but is not used for classification"."""
    cards = run(recipient(mg(1.1, "mEq/L", days=1, status="preliminary"), mg(1.8, "mEq/L", days=3)), mode, discovery, monkeypatch)
    none_of(cards, "mg-severity")
    assert any("preliminary" in text(c) for c in cards), summaries(cards)


# ---- §2 unit text variants -------------------------------------------------------------------

UNIT_VARIANTS = [
    # value, unit text (no UCUM code), LOINC, expected indicator
    (1.2, "mg/dl", "19123-9", "critical"),  # 0.987 mEq/L
    (0.45, "MMOL/L", "2601-3", "critical"),  # 0.90
    (0.9, "mEq/l", "19123-9", "critical"),
    (0.65, " mmol/l ", "2601-3", "warning"),  # 1.30
    (1.45, "MEQ/L", "19123-9", "info"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value, unit, loinc, indicator", UNIT_VARIANTS, ids=[u.strip() for _, u, _, _ in UNIT_VARIANTS])
def test_unit_text_variants(value, unit, loinc, indicator, mode, discovery, monkeypatch):
    """§2: "Units (UCUM code first, unit text second, case-insensitive)": mmol/L × 2, mg/dL × 0.82288."""
    r = obs([(LOINC, loinc, "Magnesium in Serum or Plasma")], value, unit, None, days=1, text="Magnesium")
    cards = run(recipient(r), mode, discovery, monkeypatch)
    the(cards, "mg-severity", indicator)


@pytest.mark.parametrize("mode", MODES)
def test_ucum_code_wins_over_unit_text_for_severity(mode, discovery, monkeypatch):
    """§2: "UCUM code first": UCUM mg/dL with unit text "mmol/L", value 1.2 → 0.99 mEq/L, severe."""
    r = obs([(LOINC, "19123-9", "Magnesium [Mass/volume] in Serum or Plasma")], 1.2, "mmol/L", "mg/dL", days=1, text="Magnesium")
    the(run(recipient(r), mode, discovery, monkeypatch), "mg-severity", "critical")


# ---- §2 corrections, future dates, times -----------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_two_corrections_and_a_final_at_one_time(mode, discovery, monkeypatch):
    """§2: corrected supersedes final; "between results of equal standing, the later issued wins":
    final 0.8, corrected 1.2 (issued earlier), corrected 1.8 (issued later) → 1.8, at target."""
    t = at(2)
    res = recipient(mg(0.8, "mEq/L", when={"effectiveDateTime": t, "issued": at(1.9)}),
                    mg(1.2, "mEq/L", status="corrected", when={"effectiveDateTime": t, "issued": at(1.5)}),
                    mg(1.8, "mEq/L", status="corrected", when={"effectiveDateTime": t, "issued": at(1.2)}))
    none_of(run(res, mode, discovery, monkeypatch), "mg-severity")


@pytest.mark.parametrize("mode", MODES)
def test_corrected_supersedes_final_issued_later(mode, discovery, monkeypatch):
    """§2: "a corrected or amended result supersedes a final one" whatever their issued times."""
    t = at(2)
    res = recipient(mg(1.8, "mEq/L", status="corrected", when={"effectiveDateTime": t, "issued": at(1.9)}),
                    mg(0.8, "mEq/L", when={"effectiveDateTime": t, "issued": at(1.0)}))
    none_of(run(res, mode, discovery, monkeypatch), "mg-severity")


@pytest.mark.parametrize("mode", MODES)
def test_amended_and_corrected_equal_standing_later_issued(mode, discovery, monkeypatch):
    """§2: amended and corrected are of equal standing: the later issued (amended 0.9) wins."""
    t = at(2)
    res = recipient(mg(1.8, "mEq/L", status="corrected", when={"effectiveDateTime": t, "issued": at(1.5)}),
                    mg(0.9, "mEq/L", status="amended", when={"effectiveDateTime": t, "issued": at(1.2)}))
    the(run(res, mode, discovery, monkeypatch), "mg-severity", "critical")


@pytest.mark.parametrize("mode", MODES)
def test_future_dated_result_not_used_for_persistence(mode, discovery, monkeypatch):
    """§2: future-dated results are "never used for severity, monitoring or trends, and named on
    the card that is shown". On MgO for 40 days: 1.2 mEq/L 20 days ago and 1.1 dated +5 days:
    only one usable low → no persistence card; the severity card names the future result."""
    res = recipient(mgo_order(days=40), mg(1.2, "mEq/L", days=20),
                    mg(1.1, "mEq/L", when={"effectiveDateTime": at(-5), "issued": at(-5)}))
    cards = run(res, mode, discovery, monkeypatch)
    none_of(cards, "mg-persistent")
    c = the(cards, "mg-severity", "warning")
    assert "future" in text(c) and day(-5) in text(c), text(c)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("when", [{"issued": at(-3)}, {"effectivePeriod": {"start": at(-3)}}], ids=["issued", "period"])
def test_future_by_issued_or_period_is_named(when, mode, discovery, monkeypatch):
    """§2: time from effective[x], else issued; future-dated results are named (mg-not-used)."""
    cards = run(recipient(mg(0.7, "mEq/L", when=when), mg(1.8, "mEq/L", days=5)), mode, discovery, monkeypatch)
    none_of(cards, "mg-severity")
    assert any("future" in text(c) and day(-3) in text(c) for c in cards), summaries(cards)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stamp", ["2026-11-24T07:15:00.123456789Z", "2026-11-24T07:15:00.1+05:30", "2026-11"])
def test_datetime_forms_are_read(stamp, mode, discovery, monkeypatch):
    """§2: "Accept every FHIR dateTime form (any number of fractional-second digits, offsets,
    partial dates)"."""
    cards = run(recipient(mg(0.8, "mEq/L", when={"effectiveDateTime": stamp})), mode, discovery, monkeypatch)
    the(cards, "mg-severity", "critical")


# ---- §2 not serum: ionized, RBC, urine (text-only) ---------------------------------------------

@pytest.mark.parametrize("name", ["Magnesium, ionized", "Ionized Mg, whole blood", "Magnesium, RBC",
                                  "Magnesium, Red Blood Cell", "Magnesium, urine random", "Magnesium, 24 hour urine"])
def test_text_only_non_serum_magnesium_not_classified(name, discovery, monkeypatch):
    """§2: ionized Mg is "never classified with the serum thresholds"; only serum/plasma Mg is."""
    r = obs([(EPIC_LOCAL, "1600", name.upper())], 0.40, "mmol/L", "mmol/L", days=1, text=name)
    cards = run(recipient(mg(1.8, "mEq/L", days=5)), "prefetch", discovery, monkeypatch,
                prefetch_extra=add_to("magnesium", r))
    none_of(cards, "mg-severity")


# ---- §2 local codes through the environment --------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_local_codes_env_serum_urine_creatinine_and_level(mode, discovery, monkeypatch):
    """§2: "a hospital can list its own lab codes per kind in configuration ... recognised like the
    LOINC codes and added to the prefetch templates and FHIR searches" (README: CDS_LOCAL_CODES).
    Local serum Mg 1.0 mEq/L, creatinines and urine Mg → FEMg 7.1 %; local trough 19 ng/mL > 15."""
    env = {"CDS_LOCAL_CODES": json.dumps({"mg_serum": [f"{EPIC_LOCAL}|1558"], "mg_urine": [f"{EPIC_LOCAL}|2201"],
                                          "creatinine_serum": [f"{EPIC_LOCAL}|1500"],
                                          "creatinine_urine": [f"{EPIC_LOCAL}|2202"],
                                          "tacrolimus_level": [f"{EPIC_LOCAL}|3300"]})}
    res = recipient(obs([(EPIC_LOCAL, "1558", "MAGNESIUM")], 1.0, "mEq/L", "meq/L", when=T8, text="MAGNESIUM"),
                    obs([(EPIC_LOCAL, "1500", "CREATININE")], 1.2, "mg/dL", "mg/dL", when=T8, text="CREATININE"),
                    obs([(EPIC_LOCAL, "2202", "CREATININE, URINE")], 60, "mg/dL", "mg/dL", when=T9, text="CREATININE, URINE"),
                    obs([(EPIC_LOCAL, "2201", "MAGNESIUM, URINE")], 3.0, "mg/dL", "mg/dL", when=T9, text="MAGNESIUM, URINE"),
                    level=False) + [obs([(EPIC_LOCAL, "3300", "TACROLIMUS")], 19.0, "ng/mL", "ng/mL", days=2, text="TACROLIMUS")]
    cards = run(res, mode, discovery, monkeypatch, env=env)
    the(cards, "mg-severity", "warning")
    assert "19" in text(the(cards, "mg-contributing", "warning"))
    assert "7.1" in femg_text(cards)


# ---- §7 FEMg ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_femg_mixed_units(mode, discovery, monkeypatch):
    """§7 formula with mixed units: S_Mg 1.0 mg/dL, S_Cr 88.42 µmol/L (1.0 mg/dL), U_Mg 1.0 mmol/L
    (2.4305 mg/dL), U_Cr 50 mg/dL → 2.4305 × 1.0 / (0.7 × 1.0 × 50) × 100 = 6.9 %."""
    res = recipient(mg(1.0, "mg/dL", when=T8), s_cr(88.42, "umol/L"), u_cr(50), u_mg(1.0, "mmol/L"))
    cards = run(res, mode, discovery, monkeypatch)
    assert "6.9" in femg_text(cards), summaries(cards)
    assert "renal" in femg_text(cards)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("which", ["urine-mg-24h", "urine-cr-24h", "25-hours-apart"])
def test_femg_not_computed(which, mode, discovery, monkeypatch):
    """§7: "A urine Mg per 24 h is recognised but not used for FEMg (spot urine only)"; urine
    creatinine 2162-6 is "24 h, not for FEMg"; the four results must be "within 24 hours"."""
    s_when = {"effectiveDateTime": (NOW - timedelta(days=1)).replace(hour=8).isoformat()}
    u_when = {"effectiveDateTime": (NOW - timedelta(days=2)).replace(hour=7).isoformat()} if which == "25-hours-apart" else None
    res = recipient(mg(1.0, "mEq/L", when=s_when), s_cr(1.2, when=s_when),
                    u_cr(60, code="2162-6" if which == "urine-cr-24h" else "2161-8", when=u_when),
                    u_mg(3.0, code="24447-5" if which == "urine-mg-24h" else None, when=u_when))
    cards = run(res, mode, discovery, monkeypatch)
    none_of(cards, "mg-femg")


@pytest.mark.parametrize("mode", MODES)
def test_femg_just_below_two_percent_is_extrarenal(mode, discovery, monkeypatch):
    """§7: "FEMg > 2% points to renal wasting ... < 2% to extrarenal loss": U_Mg 0.85 mg/dL gives
    1.998 % → extrarenal (even though shown as 2.0 to one decimal)."""
    res = recipient(mg(1.0, "mEq/L", when=T8), s_cr(1.2), u_cr(60), u_mg(0.85))
    femg = femg_text(run(res, mode, discovery, monkeypatch))
    assert "extrarenal" in femg and "renal magnesium wasting" not in femg, femg


# ---- §7/§8 contributing factors --------------------------------------------------------------

LOW = 1.2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("resource", [
    rx({"text": "omeprazole 20 mg capsule"}, status="stopped", id="mr-o-stop"),
    rx({"text": "omeprazole 20 mg capsule"}, status="completed", id="mr-o-comp"),
    rx({"text": "omeprazole 20 mg capsule"}, intent="plan", id="mr-o-plan"),
    rx({"text": "omeprazole 20 mg capsule"}, intent="proposal", id="mr-o-prop"),
    statement({"text": "omeprazole 20 mg capsule"}, status="stopped", end_days=3, id="ms-o-stop"),
    statement({"text": "omeprazole 20 mg capsule"}, status="not-taken", id="ms-o-nt"),
    statement({"text": "omeprazole 20 mg capsule"}, status="entered-in-error", id="ms-o-eie"),
    rx({"text": "clotrimazole 1 % cream"}, route=TOPICAL, id="mr-clo-cream"),
    rx({"text": "ketoconazole 2 % shampoo"}, id="mr-keto-sh"),
    rx({"text": "erythromycin 5 mg/g ophthalmic ointment"}, route=OPHTHALMIC, id="mr-ery-eye"),
    rx({"text": "Restasis 0.05 % ophthalmic emulsion"}, route=OPHTHALMIC, id="mr-restasis"),
    rx({"text": "rifampin 300 mg capsule"}, route=ORAL, id="mr-rif", days=5),
    rx({"text": "senna 8.6 mg tablet"}, route=ORAL, id="mr-senna"),
], ids=["stopped", "completed", "plan", "proposal", "stmt-stopped", "stmt-not-taken", "stmt-eie", "clotrimazole-cream",
        "ketoconazole-shampoo", "erythromycin-eye", "cyclosporine-eye", "rifampin-inducer", "senna"])
def test_not_a_contributing_factor(resource, mode, discovery, monkeypatch):
    """§7: "active drugs that waste magnesium" and "drugs that raise tacrolimus levels"; §6/§8:
    topical forms do not count; inducers lower levels; stimulant laxatives "not flagged"."""
    cards = run(recipient(mg(LOW, "mEq/L", days=2), resource), mode, discovery, monkeypatch)
    none_of(cards, "mg-contributing")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("resource, needle", [
    (rx({"text": "omeprazole 20 mg capsule"}, status="on-hold", id="mr-o-hold"), "omeprazole"),
    (rx({"text": "fluconazole 200 mg tablet"}, route=ORAL, id="mr-flu", days=5), "fluconazole"),
    (rx({"text": "clotrimazole 10 mg troche"}, route=ORAL, id="mr-troche"), "clotrimazole"),
    (rx({"text": "Prevymis 480 mg tablet"}, route=ORAL, id="mr-prevymis", days=5), "letermovir"),
    (statement({"coding": [{"system": RXNORM, "code": "5487"}]}, id="ms-hctz"), "hydrochlorothiazide"),
    ({"resourceType": "MedicationStatement", "id": "ms-lasix", "status": "active",
      "contained": [{"resourceType": "Medication", "id": "c1", "code": {"text": "Lasix 40 mg tablet"}}],
      "medicationReference": {"reference": "#c1"}, "subject": {"reference": f"Patient/{PID}"},
      "effectivePeriod": {"start": at(300)}}, "furosemide"),
], ids=["ppi-on-hold", "fluconazole", "clotrimazole-troche", "prevymis", "hctz-statement-code", "lasix-contained-statement"])
def test_contributing_factor_listed(resource, needle, mode, discovery, monkeypatch):
    """§7: the card lists active wasting drugs and drugs that raise tacrolimus levels (§8)."""
    cards = run(recipient(mg(LOW, "mEq/L", days=2), resource), mode, discovery, monkeypatch)
    assert needle in text(the(cards, "mg-contributing", "warning"))


MED_OME = {"resourceType": "Medication", "id": "med-ome",
           "code": {"coding": [{"system": RXNORM, "code": "402014", "display": "omeprazole 40 MG Delayed Release Oral Capsule"}],
                    "text": "omeprazole 40 mg capsule"}}
MED_VORI = {"resourceType": "Medication", "id": "med-vori", "code": {"text": "voriconazole 200 mg tablet"}}


@pytest.mark.parametrize("mode", MODES)
def test_contributing_drugs_through_separate_medication_resources(mode, discovery, monkeypatch):
    """§1/§7: medicationReference to a Medication in the prefetch or read from the FHIR server;
    the wasting drug gets a delete suggestion that is not recommended."""
    refs = [{"resourceType": "MedicationRequest", "id": rid, "status": "active", "intent": "order",
             "medicationReference": {"reference": f"Medication/{mid}"}, "subject": {"reference": f"Patient/{PID}"},
             "authoredOn": at(days)} for rid, mid, days in (("mr-ome-ref", "med-ome", 200), ("mr-vori-ref", "med-vori", 4))]

    def include(prefetch: dict) -> None:
        for m in (MED_OME, MED_VORI):
            prefetch["medications"]["entry"].append({"resource": m, "search": {"mode": "include"}})

    cards = run(recipient(mg(LOW, "mEq/L", days=2), MED_OME, MED_VORI, *refs), mode, discovery, monkeypatch,
                prefetch_extra=include)
    c = the(cards, "mg-contributing", "warning")
    assert "omeprazole" in text(c) and "voriconazole" in text(c)
    assert ("MedicationRequest/mr-ome-ref", False) in deleted(c)


# ---- §5 symptoms -------------------------------------------------------------------------------

def _verification(c: dict, code: str) -> dict:
    c["verificationStatus"]["coding"][0]["code"] = code
    return c


@pytest.mark.parametrize("mode", MODES)
def test_seizure_entered_in_error_verification_not_a_symptom(mode, discovery, monkeypatch):
    """§5: "not refuted/entered-in-error"."""
    seizure = _verification(condition("91175000", "Seizure", onset_days=2, recorded_days=2), "entered-in-error")
    the(run(recipient(mg(1.3, "mEq/L", days=1), seizure), mode, discovery, monkeypatch), "mg-severity", "warning")


@pytest.mark.parametrize("status", ["resolved", "inactive"])
def test_resolved_seizure_sent_by_ehr_prefetch_not_a_symptom(status, discovery, monkeypatch):
    """§5: "clinicalStatus active/recurrence/relapse": an EHR prefetch that ignores the filter."""
    seizure = condition("91175000", "Seizure", onset_days=5, recorded_days=5, status=status)
    cards = run(recipient(mg(1.3, "mEq/L", days=1)), "prefetch", discovery, monkeypatch,
                prefetch_extra=add_to("conditions", seizure))
    the(cards, "mg-severity", "warning")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("recorded, onset_period, indicator", [(3, None, "critical"), (20, None, "warning"), (30, 3, "critical")],
                         ids=["no-onset-recorded-3d", "no-onset-recorded-20d", "onset-period-3d-recorded-30d"])
def test_onset_and_recorded_date(recorded, onset_period, indicator, mode, discovery, monkeypatch):
    """§5: onset decides; "recordedDate decides only when the Condition has no onset"."""
    seizure = condition("91175000", "Seizure", onset_days=None, recorded_days=recorded)
    if onset_period is not None:
        seizure["onsetPeriod"] = {"start": at(onset_period)}
    the(run(recipient(mg(1.3, "mEq/L", days=1), seizure), mode, discovery, monkeypatch), "mg-severity", indicator)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name, indicator", [("Drug-induced tremor", "warning"), ("Muscle spasms", "warning"),
                                             ("Atrial fibrillation with RVR", "critical"), ("Prolonged QT interval", "critical")])
def test_text_only_symptoms(name, indicator, mode, discovery, monkeypatch):
    """§5: text matches for code-less Conditions; minor → warning with TID oral, major → critical."""
    cards = run(recipient(mg(1.3, "mEq/L", days=1), condition(None, name, onset_days=3, recorded_days=3)),
                mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", indicator)
    if indicator == "warning":
        expect_oral_mgo(c, per_day_expected=3)
    else:
        expect_severe_adult_iv(c)


# ---- §4/§10 monitoring card ------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_monitoring_card_names_last_result_interval_and_encounter(mode, discovery, monkeypatch):
    """§4: "a warning card 'Serum magnesium due' naming the last result and its date", with a
    ServiceRequest; §3/§10: suggestions reference the patient and the encounter the hook gave."""
    cards = run(recipient(mg(0.85, "mmol/L", days=4), encounter("IMP")), mode, discovery, monkeypatch, encounter=True)
    c = the(cards, "mg-monitoring", "warning")
    assert "0.85 mmol/L" in c["summary"] and day(4) in c["summary"], c["summary"]
    assert "3" in text(c) and serum_mg_lab(c)
    assert re.search(r"\border\b", c["summary"].split(":")[-1].lower()), c["summary"]


# ---- §6 order hooks ----------------------------------------------------------------------------

APAP = draft({"text": "acetaminophen 500 mg tablet"}, id="d-apap-r2")


@pytest.mark.parametrize("mode", MODES)
def test_order_sign_unrelated_major_symptom_is_critical(mode, discovery, monkeypatch):
    """§6: with no relevant draft "order-sign answers only a critical severity card"; §3 mild Mg
    with a seizure is critical."""
    res = recipient(mg(1.3, "mEq/L", days=1), condition("91175000", "Seizure", onset_days=2, recorded_days=2))
    cards = run(res, mode, discovery, monkeypatch, hook="order-sign", drafts=[APAP])
    assert topics(cards) == ["mg-severity"] and cards[0]["indicator"] == "critical", summaries(cards)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("which", ["future-severe", "mg-high"])
def test_order_sign_unrelated_no_card_without_critical(which, mode, discovery, monkeypatch):
    """§6: order-sign without relevant drafts answers nothing but a critical severity: a severe
    result dated in the future is not used (§2); mg-high is a warning."""
    if which == "future-severe":
        res = recipient(mg(0.8, "mEq/L", when={"effectiveDateTime": at(-2)}), mg(1.8, "mEq/L", days=3))
    else:
        res = recipient(mgo_order(), mg(3.5, "mEq/L", days=1))
    assert run(res, mode, discovery, monkeypatch, hook="order-sign", drafts=[APAP]) == []


@pytest.mark.parametrize("mode", MODES)
def test_order_select_renewal_selected_ppi_in_context_only(mode, discovery, monkeypatch):
    """§6: "For order-select only the drafts named in selections can be relevant": a tacrolimus
    renewal selected (no starting card), an omeprazole draft only in context, Mg at target."""
    drafts = [draft(rxcode("198377", "tacrolimus 1 MG Oral Capsule", "tacrolimus 1 mg capsule"), id="d-tac-r2"),
              draft({"text": "omeprazole 20 mg capsule"}, id="d-ome-r2")]
    cards = run(recipient(mg(1.8, "mEq/L", days=10)), mode, discovery, monkeypatch, hook="order-select",
                drafts=drafts, selected=["d-tac-r2"])
    assert cards == [], summaries(cards)

