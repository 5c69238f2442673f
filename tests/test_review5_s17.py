# ruff: noqa: E501  (a FHIR resource reads best on one line)
"""Review 5 (s17): COMPOSITE patients, where several rules of the clinical rules (revision 2)
apply at once. Every answer is checked as a whole: at most one card per kind and critical cards
first (section 10), no two suggestions ordering the same test (section 4), no fixed dose for
children or dialysis patients (section 3), doses that follow renal function in text and
structure alike (section 3), no card that undoes another (start magnesium here, stop it there),
and summaries that carry their number and date (section 10).

Patients are built from the rules text and from EHR data shapes, never from the code. Each runs
with the EHR's prefetch and with no prefetch (a mocked FHIR server)."""

from __future__ import annotations

import json
import re

import pytest

from .test_independent_patients import (
    IV,
    ORAL,
    PID,
    UCUM,
    MODES,
    at,
    condition,
    created,
    deleted,
    dose_mg,
    draft,
    egfr,
    encounter,
    lab_codes,
    mg,
    mgo,
    mgo_order,
    mgso4,
    patient,
    per_day,
    procedure,
    prograf,
    recipient,
    run,
    rx,
    rxcode,
    text,
    the,
    topics,
    trough,
    weight,
)

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
SERUM_MG = {"19123-9", "2601-3"}
TROUGH = {"11253-2", "74096-9", "74097-7", "77348-1"}
RESULT_TOPICS = {"mg-severity", "mg-persistent", "mg-high", "mg-monitoring"}


# --------------------------------------------------------------------------------------------
# Builders

def mg_admin(days: float, grams: float = 2, id: str = "ma-iv") -> dict:
    """An IV MgSO4 bag charted on the MAR (Epic/Cerner shape: text-only premix, IV route)."""
    return {"resourceType": "MedicationAdministration", "id": id, "status": "completed",
            "medicationCodeableConcept": {"text": f"magnesium sulfate {grams:g} g/50 mL IVPB"},
            "subject": {"reference": f"Patient/{PID}"},
            "effectivePeriod": {"start": at(days), "end": at(days - 0.04)},
            "dosage": {"route": IV, "dose": {"value": grams, "unit": "g", "system": UCUM, "code": "g"}}}


def mgcl_order(days: float = 40, **kw) -> dict:
    return rx({"text": "magnesium chloride 64 mg SR tablet (Slow-Mag)"}, route=ORAL,
              sig="Take 2 tablets by mouth daily", days=days, **kw)


def omeprazole(days: float = 300, **kw) -> dict:
    return rx(rxcode("200329", None, "omeprazole 20 mg capsule,delayed release"), route=ORAL, days=days, **kw)


def furosemide(days: float = 200, **kw) -> dict:
    return rx({"text": "furosemide 40 mg tablet"}, route=ORAL, sig="Take 1 tablet by mouth daily", days=days, **kw)


def child_recipient(*extra: dict, birth: str = "2016-05-02") -> list[dict]:
    return [patient(birth, "male"), prograf(), procedure("70536003", "Kidney transplant", 700),
            trough(6.5)] + list(extra)


# --------------------------------------------------------------------------------------------
# Whole-answer checks

def mag_meds(card: dict) -> list[dict]:
    """Magnesium MedicationRequests a card suggests creating."""
    return [r for r in created(card, "MedicationRequest")
            if "magnesium" in json.dumps(r.get("medicationCodeableConcept", {})).lower()
            or any(c.get("code") == "198741" for c in r.get("medicationCodeableConcept", {}).get("coding", []))]


def all_created(cards: list[dict], rtype: str) -> list[dict]:
    return [r for c in cards for r in created(c, rtype)]


def suggestion_words(cards: list[dict]) -> str:
    out = []
    for c in cards:
        out.append(c["summary"])
        for s in c.get("suggestions") or []:
            out.append(s["label"])
            for a in s.get("actions", []):
                res = a.get("resource") or {}
                for d in res.get("dosageInstruction", []):
                    out.append(d.get("text", ""))
    return "\n".join(out).lower()


def coherent(cards: list[dict], *, no_fixed_dose: bool = False, renal_low: bool = False) -> None:
    """What must hold for any composite answer (sections 3, 4, 7 and 10)."""
    kinds = topics(cards)
    assert len(kinds) == len(set(kinds)), f"two cards of one kind: {kinds}"
    ranks = [{"critical": 0, "warning": 1, "info": 2}[c["indicator"]] for c in cards]
    assert ranks == sorted(ranks), f"critical cards not first: {[(c['indicator'], c['summary']) for c in cards]}"
    assert not ({"mg-severity", "mg-persistent"} <= set(kinds)), "two cards restate one result (severity and persistence)"
    # no two suggestions ordering the same lab (section 4: don't show two cards that ask for the same test)
    labs: list[str] = []
    for c in cards:
        for r in created(c, "ServiceRequest"):
            codes = {cd["code"] for cd in r["code"].get("coding", [])}
            labs.append("serum-mg" if codes & SERUM_MG else "trough" if codes & TROUGH else ",".join(sorted(codes)))
    dup = {x for x in labs if labs.count(x) > 1}
    assert not dup, f"the same test ordered twice across the answer: {dup}: " + " | ".join(c["summary"] for c in cards)
    # summaries: <= 140, and the result cards carry their number and date
    for c in cards:
        assert len(c["summary"]) <= 140, c["summary"]
        if c["source"]["topic"]["code"] in RESULT_TOPICS - {"mg-monitoring"}:
            assert DATE.search(c["summary"]) and re.search(r"\d\.\d", c["summary"]), f"no number/date: {c['summary']}"
    # no card starts magnesium while another stops it
    starts = [c["source"]["topic"]["code"] for c in cards if mag_meds(c)]
    stops = [c["source"]["topic"]["code"] for c in cards
             if any("magnesium" in ref.lower() or ref.split("/")[-1].startswith(("mr-mg", "mr-mgo", "mr-mgcl")) for ref, _ in deleted(c))]
    assert not (starts and stops), f"magnesium started on {starts} and stopped on {stops}"
    if no_fixed_dose:
        meds = all_created(cards, "MedicationRequest")
        assert not meds, f"fixed-dose medication suggested where none may be: {[m['medicationCodeableConcept'].get('text') for m in meds]}"
    if renal_low:
        for c in cards:
            for r in mgso4(c):
                assert dose_mg(r) <= 1000 + 1e-6, f"IV MgSO4 {dose_mg(r)} mg at eGFR < 30 on {c['summary']}"
            for r in mgo(c):
                assert per_day(r) <= 1, f"MgO {per_day(r)}x/day at eGFR < 30: {r['dosageInstruction'][0]['text']}"
        words = suggestion_words(cards)
        assert not re.search(r"\b2 g (iv|intravenous)|\b4 g\b", words), f"full IV dose in text at eGFR < 30: {words}"
        assert not re.search(r"(twice|two times|2 times|three times|3 times) (a )?dai", words), \
            f"more than once-daily oral magnesium in text at eGFR < 30: {words}"
        assert "half" not in words, words


def mag_card(cards: list[dict]) -> dict:
    found = [c for c in cards if c["source"]["topic"]["code"] in ("mg-severity", "mg-persistent")]
    assert len(found) == 1, topics(cards)
    return found[0]


# --------------------------------------------------------------------------------------------
# 1. A child on dialysis with a seizure, and an oral PPI being ordered

@pytest.mark.parametrize("mode", MODES)
def test_child_on_dialysis_with_seizure_and_ppi_draft(mode, discovery, monkeypatch):
    """Section 3: "Children (under 18 from Patient.birthDate): no fixed-dose medication
    suggestions" and "Dialysis ...: no one-click supplementation orders ... no FEMg work-up; lab
    rechecks still suggested". A seizure at Mg <= 1.4 is `critical` and first (section 10)."""
    res = child_recipient(mg(0.9, "mEq/L", days=0.5), procedure("302497006", "Hemodialysis", 2),
                          condition("91175000", "Seizure", onset_days=0.5, recorded_days=0.5), weight(28))
    cards = run(res, mode, discovery, monkeypatch, hook="order-select",
                drafts=[draft({"text": "omeprazole 20 mg capsule"}, id="d-ome-kid")])
    coherent(cards)
    assert cards and cards[0]["indicator"] == "critical", [c["summary"] for c in cards]
    sev = mag_card(cards)
    assert not mag_meds(sev), "one-click magnesium for a child on dialysis"
    assert "dialys" in text(sev) and "nephrolog" in text(sev)
    assert lab_codes(sev) & SERUM_MG, "lab recheck still suggested on dialysis"
    assert "mg-femg" not in topics(cards) and not (lab_codes(sev) & {"19124-7", "2598-1"})


@pytest.mark.parametrize("mode", MODES)
def test_child_ppi_swap_offers_no_fixed_adult_famotidine_dose(mode, discovery, monkeypatch):
    """Section 3, Children: "(under 18 from Patient.birthDate): no fixed-dose medication
    suggestions." A 10-year-old's oral PPI draft must not be swapped for a one-click
    "famotidine 20 mg" adult tablet order (section 6's swap names an adult fixed product)."""
    res = child_recipient(mg(1.2, "mEq/L", days=3), weight(28))
    cards = run(res, mode, discovery, monkeypatch, hook="order-select",
                drafts=[draft({"text": "omeprazole 20 mg capsule"}, id="d-ome-kid2")])
    coherent(cards)
    meds = all_created(cards, "MedicationRequest")
    assert not meds, "fixed-dose drug suggested for a child: " + "; ".join(
        (m["medicationCodeableConcept"].get("text") or "") + " / " + m["dosageInstruction"][0].get("text", "") for m in meds)


# --------------------------------------------------------------------------------------------
# 2. Severe, eGFR < 30, MgSO4 already given today, persistent-low history

@pytest.mark.parametrize("mode", MODES)
def test_severe_renal_given_today_persistent(mode, discovery, monkeypatch):
    """Section 7: persistence "replaces the severity card" ("One card per result") and is
    `critical` if severe. Section 3: "Magnesium already given since this result ... no new dose
    is suggested; the card says what was given and when, and suggests the post-replacement
    recheck"; with eGFR < 30 any dose is halved / once daily."""
    res = recipient(mgo_order(days=60, id="mr-mgo-p"), mg(1.2, "mEq/L", days=30), mg(1.3, "mEq/L", days=16),
                    mg(0.8, "mEq/L", when={"effectiveDateTime": at(0.6), "issued": at(0.55)}),
                    mg_admin(0.4), renal=False) + [egfr(22)]
    cards = run(res, mode, discovery, monkeypatch)
    coherent(cards, renal_low=True)
    c = the(cards, "mg-persistent", "critical")
    assert cards[0] is c
    assert not mag_meds(c), f"new dose while 2 g was given today: {[s['label'] for s in c.get('suggestions', [])]}"
    assert "given" in text(c) or "administered" in text(c), text(c)
    assert lab_codes(c) & SERUM_MG


# --------------------------------------------------------------------------------------------
# 3. Inpatient early after transplant, on a supplement, an old low result and a future-dated one

@pytest.mark.parametrize("mode", MODES)
def test_inpatient_early_supplement_old_and_future_result(mode, discovery, monkeypatch):
    """Section 2: a future-dated result is "never used ... and named on the card that is shown".
    Section 3: a severity card on a result older than the interval "asks for a repeat level
    first" and words treatment as conditional. Section 4: "When a severity card exists, the
    repeat-level suggestion goes on that card: don't show two cards that ask for the same test.\""""
    res = [patient(), prograf(days=12), procedure("70536003", "Kidney transplant", 10), egfr(55), trough(9.1, days=1),
           encounter(), mgo_order(days=9, id="mr-mgo-inp"), mg(1.2, "mEq/L", days=5),
           mg(2.0, "mEq/L", when={"effectiveDateTime": at(-2), "issued": at(-2)})]
    cards = run(res, mode, discovery, monkeypatch, encounter=True)
    coherent(cards)
    sev = mag_card(cards)
    assert sev["indicator"] == "warning", sev["summary"]
    assert "future" in "\n".join(text(c) for c in cards), "future-dated result not named"
    assert "repeat" in text(sev) and lab_codes(sev) & SERUM_MG
    assert "mg-monitoring" not in topics(cards)
    assert "if the repeat" in text(sev) or "if a repeat" in text(sev), text(sev)
    # already on MgO 400 mg twice daily: no second identical MgO order (double dose)
    for r in mgo(sev):
        assert per_day(r) != 2, "suggests the same MgO 400 mg twice daily the patient is already on"


# --------------------------------------------------------------------------------------------
# 4. High Mg on two supplements, eGFR 20, and a magnesium draft being signed

@pytest.mark.parametrize("mode", MODES)
def test_high_mg_two_supplements_renal_and_mg_draft(mode, discovery, monkeypatch):
    """Section 3, high magnesium on a supplement: "the latest usable Mg is above high_above = 2.5
    mEq/L ... while a magnesium supplement is active: hold or reduce the supplement ... with eGFR
    < 30 say that renal impairment is the likely cause. Suggest stopping the supplement (`delete`
    of that order, `isRecommended: false`)". The supplements that are active (and raised Mg) are
    the two orders on file; removing only the new draft from the signing leaves both running, so
    the card must name them to hold (their one-click stop stays on patient-view)."""
    res = recipient(mgo_order(days=90, id="mr-mgo-h"), mgcl_order(days=40, id="mr-mgcl-h"),
                    mg(3.4, "mg/dL", days=1), renal=False) + [egfr(20)]
    cards = run(res, mode, discovery, monkeypatch, hook="order-sign",
                drafts=[draft(rxcode("198741", "magnesium oxide 400 MG Oral Tablet", "magnesium oxide 400 mg tablet"),
                              id="d-mgo-h", sig="Take 1 tablet by mouth 2 times daily")])
    coherent(cards, renal_low=True)
    high = the(cards, "mg-high", "warning")
    assert "renal" in text(high) or "kidney" in text(high)
    refs = {r.split("/")[-1]: rec for r, rec in deleted(high)}
    # In an order hook a delete may only remove the draft being signed (a client that keeps one
    # draft applies any delete to it: cards/build.py); the card names the active ones to hold.
    assert set(refs) == {"d-mgo-h"}, refs
    assert not any(refs.values()), "stopping must be isRecommended: false"
    assert "hold or reduce the supplements already taken" in text(high)
    assert "magnesium chloride" in text(high) or "slow-mag" in text(high), high["detail"]
    assert not any(mag_meds(c) for c in cards)
    assert "mg-severity" not in topics(cards) and "mg-persistent" not in topics(cards)


# --------------------------------------------------------------------------------------------
# 5. order-sign: a magnesium draft, an oral PPI, voriconazole and a tacrolimus renewal at once

@pytest.mark.parametrize("mode", MODES)
def test_order_sign_four_drafts(mode, discovery, monkeypatch):
    """Section 6: "A tacrolimus renewal for a patient already on it gets no 'starting' card"; the
    PPI card offers famotidine "the `create` action first, then the `delete`"; voriconazole is a
    strong inhibitor (`warning`, trough within 2–3 days). Section 3: a magnesium order in the
    same signing means replacement is under way (no second magnesium order suggested). Section 4:
    no two suggestions for the same test (the trough asked once)."""
    drafts = [draft(rxcode("198741", "magnesium oxide 400 MG Oral Tablet", "magnesium oxide 400 mg tablet"),
                    id="d-mgo-4", sig="Take 1 tablet by mouth 2 times daily"),
              draft({"text": "omeprazole 20 mg capsule"}, id="d-ome-4"),
              draft({"text": "voriconazole 200 mg tablet"}, id="d-vori-4"),
              draft(rxcode("198377", "tacrolimus 1 MG Oral Capsule", "tacrolimus (PROGRAF) 1 mg capsule"), id="d-tac-4",
                    sig="Take 3 capsules by mouth every 12 hours")]
    res = recipient(mg(1.2, "mEq/L", days=2), level=False)
    cards = run(res, mode, discovery, monkeypatch, hook="order-sign", drafts=drafts)
    coherent(cards)
    assert "mg-order-tacrolimus" not in topics(cards), "renewal treated as a start"
    w = the(cards, "mg-order-wasting", "warning")
    kinds = [a["type"] for s in w.get("suggestions") or [] for a in s.get("actions", [])]
    assert "create" in kinds and "delete" in kinds and kinds.index("create") < kinds.index("delete"), kinds
    i = the(cards, "mg-order-interaction", "warning")
    assert "voriconazole" in text(i)
    # the trough is asked exactly once in the whole answer (coherent() forbids a second one)
    assert any(lab_codes(c) & TROUGH for c in cards), "no tacrolimus trough suggested for a voriconazole start"
    assert not any(mag_meds(c) for c in cards), "a second magnesium order suggested while one is being signed"


# --------------------------------------------------------------------------------------------
# 6. ESRD and a child's birth date

@pytest.mark.parametrize("mode", MODES)
def test_esrd_child(mode, discovery, monkeypatch):
    """Section 3: children get no fixed dose, ESRD gets "no one-click supplementation orders ...
    discuss replacement with nephrology; no FEMg work-up; lab rechecks still suggested"."""
    res = child_recipient(mg(1.1, "mEq/L", days=1),
                          condition("46177005", "End-stage renal disease", onset_days=400, recorded_days=400),
                          birth="2012-09-30")
    cards = run(res, mode, discovery, monkeypatch)
    coherent(cards, no_fixed_dose=True)
    sev = the(cards, "mg-severity", "warning")
    assert "nephrolog" in text(sev) and lab_codes(sev) & SERUM_MG
    assert "mg-femg" not in topics(cards) and not (lab_codes(sev) & {"19124-7", "2598-1", "2161-8"})


# --------------------------------------------------------------------------------------------
# 7. Severe with seizure and tremor, eGFR 25

@pytest.mark.parametrize("mode", MODES)
def test_severe_major_and_minor_symptoms_renal(mode, discovery, monkeypatch):
    """Section 3: severe or major symptom: IV MgSO4, "halved (1 g)" at eGFR < 30 and oral MgO
    "400 mg once daily ... in the text and the structured dose alike"; one card per result."""
    res = recipient(mg(0.9, "mEq/L", days=0.3), renal=False) + [
        egfr(25), condition("91175000", "Seizure", onset_days=0.4, recorded_days=0.4),
        condition("26079004", "Tremor", onset_days=3, recorded_days=3)]
    cards = run(res, mode, discovery, monkeypatch)
    coherent(cards, renal_low=True)
    sev = the(cards, "mg-severity", "critical")
    assert cards[0] is sev
    iv = mgso4(sev)
    assert iv and abs(dose_mg(iv[0]) - 1000) < 1e-6
    assert "mg-symptoms" not in topics(cards), "symptom card restating the severity finding"


# --------------------------------------------------------------------------------------------
# 8. Low with cramp, renal function unknown, two wasting drugs and a high trough

@pytest.mark.parametrize("mode", MODES)
def test_low_cramp_unknown_renal_wasting_drugs_high_trough(mode, discovery, monkeypatch):
    """Section 3: minor symptoms: MgO three times daily; renal function unknown: "the card says
    renal function is unknown and suggests a serum creatinine with the recheck". Section 7: one
    contributing card, stops `isRecommended: false`; FEMg on a severity card "only when no
    supplement is active and none is being suggested"."""
    res = recipient(mg(1.2, "mEq/L", days=1), omeprazole(id="mr-ome-8"), furosemide(id="mr-furo-8"),
                    condition("55300003", "Muscle cramp", onset_days=2, recorded_days=2),
                    renal=False, level=False) + [trough(18.5, days=2)]
    cards = run(res, mode, discovery, monkeypatch)
    coherent(cards)
    sev = the(cards, "mg-severity", "warning")
    assert "unknown" in text(sev) and lab_codes(sev) & {"2160-0", "14682-9"}
    assert not (lab_codes(sev) & {"19124-7", "2598-1"}) and "mg-femg" not in topics(cards)
    con = the(cards, "mg-contributing", "warning")
    refs = dict((r.split("/")[-1], rec) for r, rec in deleted(con))
    assert {"mr-ome-8", "mr-furo-8"} <= set(refs) and not any(refs.values())
    assert "18.5" in text(con)


# --------------------------------------------------------------------------------------------
# 9. Child with a weight, severe, eGFR 25

@pytest.mark.parametrize("mode", MODES)
def test_child_severe_weight_renal(mode, discovery, monkeypatch):
    """Section 3, Children: "IV magnesium sulfate 25–50 mg/kg (max 2 g) per dose ... with a body
    weight (LOINC 29463-7) from the last 30 days it shows the computed mg range"; no fixed dose."""
    res = child_recipient(mg(0.8, "mEq/L", days=0.5), weight(30), egfr(25))
    cards = run(res, mode, discovery, monkeypatch)
    coherent(cards, no_fixed_dose=True)
    sev = the(cards, "mg-severity", "critical")
    assert re.search(r"750\D{1,6}1[,.]?500", text(sev)), text(sev)
    assert lab_codes(sev) & SERUM_MG


# --------------------------------------------------------------------------------------------
# 10. Tacrolimus stopped 5 days ago, severe, no trough, voriconazole being ordered

@pytest.mark.parametrize("mode", MODES)
def test_stopped_tacrolimus_severe_and_azole_draft(mode, discovery, monkeypatch):
    """Section 1: cards say "tacrolimus stopped on DATE" "and never suggest a tacrolimus level for
    stopped or held tacrolimus"; section 7: the missing-level trough "Never for stopped or held
    tacrolimus". No card of the answer may order a trough."""
    stopped = prograf(status="stopped", days=400)
    stopped["dispenseRequest"] = {"validityPeriod": {"start": at(400), "end": at(5)}}
    res = [patient(), stopped, procedure("70536003", "Kidney transplant", 900), egfr(58), mg(0.9, "mEq/L", days=1)]
    cards = run(res, mode, discovery, monkeypatch, hook="order-select",
                drafts=[draft({"text": "voriconazole 200 mg tablet"}, id="d-vori-10")])
    coherent(cards)
    sev = the(cards, "mg-severity", "critical")
    assert "stopped" in text(sev)
    for c in cards:
        assert not (lab_codes(c) & TROUGH), f"trough suggested for stopped tacrolimus on {c['summary']}"


# --------------------------------------------------------------------------------------------
# 11. Tacrolimus on hold, severe, no trough on record, a furosemide draft

@pytest.mark.parametrize("mode", MODES)
def test_held_tacrolimus_severe_loop_diuretic_draft(mode, discovery, monkeypatch):
    """Section 1: held tacrolimus stays in scope, the cards say "tacrolimus on hold" and never
    suggest a tacrolimus level; section 6: a wasting-drug draft at low Mg is `warning`."""
    res = [patient(), prograf(status="on-hold"), procedure("70536003", "Kidney transplant", 900), egfr(58),
           mg(0.9, "mEq/L", days=1)]
    cards = run(res, mode, discovery, monkeypatch, hook="order-sign",
                drafts=[draft({"text": "furosemide 40 mg tablet"}, id="d-furo-11")])
    coherent(cards)
    assert cards[0]["indicator"] == "critical"
    the(cards, "mg-order-wasting", "warning")
    assert any("hold" in text(c) for c in cards)
    for c in cards:
        assert not (lab_codes(c) & TROUGH), f"trough suggested for held tacrolimus on {c['summary']}"


# --------------------------------------------------------------------------------------------
# 12. Persistent low on MgO twice daily, eGFR 24

@pytest.mark.parametrize("mode", MODES)
def test_persistent_on_mgo_bid_with_egfr_24(mode, discovery, monkeypatch):
    """Section 7: persistence says "increase", naming the current regimen, never "start" it;
    section 3: with eGFR < 30 "oral magnesium oxide 400 mg once daily ... in the text and the
    structured dose alike" (the increase may not exceed the renal cap in one-click form)."""
    res = recipient(mgo_order(days=60, id="mr-mgo-12"), mg(1.2, "mEq/L", days=30), mg(1.3, "mEq/L", days=2),
                    renal=False) + [egfr(24)]
    cards = run(res, mode, discovery, monkeypatch)
    coherent(cards, renal_low=True)
    p = the(cards, "mg-persistent", "warning")
    assert "start magnesium" not in text(p)
    assert "magnesium oxide" in text(p) and ("increase" in text(p) or "split" in text(p))
    assert "amiloride" in text(p) and (lab_codes(p) & {"19124-7", "2598-1"})


# --------------------------------------------------------------------------------------------
# 13. Below target on a supplement, a symptom-free inpatient with a wasting drug and an azole

@pytest.mark.parametrize("mode", MODES)
def test_below_target_gets_no_contributing_noise(mode, discovery, monkeypatch):
    """Section 7: "a result merely below target, 1.4–1.5, gets only its `info` card: don't add
    noise"; the contributing card exists only when the latest Mg is <= 1.4."""
    res = recipient(mg(1.45, "mEq/L", days=1), omeprazole(id="mr-ome-13"),
                    rx({"text": "fluconazole 200 mg tablet"}, route=ORAL, days=20, id="mr-fluc-13"))
    cards = run(res, mode, discovery, monkeypatch)
    coherent(cards)
    assert topics(cards) == ["mg-severity"], [c["summary"] for c in cards]
    assert cards[0]["indicator"] == "info"
