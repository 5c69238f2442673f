# ruff: noqa: E501  (a FHIR resource or an EHR text reads best on one line)
"""Third clinical-safety review s17: order hooks in depth (§6/§8), persistence and escalation
(§7), suggestions as a client applies them literally (§3), card text (§10).

Patients are built from the guideline (revision 2, docs/clinical-rules.md) and from Epic/Cerner
FHIR R4 shapes, never from the service's code. A failing test is a disagreement between the
service and the guideline (no xfail: the lead decides). Every patient runs in both data modes of
tests/test_independent_patients.py (the EHR's prefetch, and no prefetch with a
``responses``-mocked FHIR server), and every answer is checked against section 10 there
(summary length, uuid, links, topics, FHIR R4B validity of every suggested resource, ordering).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from .test_independent_patients import (
    MODES, run, topics, summaries,
    IV, LOINC, NOW, ORAL, PID, SNOMED, TOPICAL, at, condition, created, day, deleted, draft,
    egfr, mg, mgo_order, mgso4, none_of, obs, patient, procedure, prograf, recipient, rx, rxcode, statement, text, the,
    trough,
)

OPHTHALMIC = {"coding": [{"system": SNOMED, "code": "54485002", "display": "Ophthalmic route"}], "text": "Both Eyes"}
VAGINAL = {"coding": [{"system": SNOMED, "code": "16857009", "display": "Vaginal route"}], "text": "Vaginal"}


def d(txt: str, id: str, **kw) -> dict:
    return draft({"text": txt}, id=id, **kw)


def lab_draft(id: str, code: str, txt: str) -> dict:
    """A lab order being placed, as Epic sends it in draftOrders (LOINC-mapped procedure)."""
    return {"resourceType": "ServiceRequest", "id": id, "status": "draft", "intent": "order",
            "category": [{"coding": [{"system": SNOMED, "code": "108252007", "display": "Laboratory procedure"}]}],
            "code": {"coding": [{"system": LOINC, "code": code}], "text": txt},
            "subject": {"reference": f"Patient/{PID}"}, "authoredOn": NOW.isoformat()}


def tacrolimus_draft(id: str) -> dict:
    return draft(rxcode("198377", "tacrolimus 1 MG Oral Capsule", "tacrolimus (PROGRAF) 1 mg capsule"), id=id,
                 sig="Take 3 capsules by mouth every 12 hours")


def kidney_recipient_off_list(*extra: dict) -> list[dict]:
    """Kidney recipient (2.5 years), eGFR 58, trough 7.2: tacrolimus orders supplied by the test."""
    return [patient(), procedure("70536003", "Kidney transplant", 900), egfr(58), trough(7.2), *extra]


def service_requests(card: dict) -> list[dict]:
    return created(card, "ServiceRequest")


def serum_mg_orders(card: dict) -> list[dict]:
    return [r for r in service_requests(card) if {c["code"] for c in r["code"].get("coding", [])} & {"19123-9", "2601-3"}]


def as_date(value: str) -> date:
    return date.fromisoformat(value[:10])


TODAY = NOW.date()


# =============================================================================================
# DISAGREEMENTS (each fails against the service as reviewed)
# =============================================================================================

@pytest.mark.parametrize("mode", MODES)
def test_renewal_after_the_prescription_expired_last_week_is_not_a_start(mode, discovery, monkeypatch):
    """The guideline §6: "A tacrolimus renewal for a patient already on it gets no 'starting'
    card." §4: "Tacrolimus start: the earliest authoredOn among all of the patient's systemic
    tacrolimus orders, stopped and completed ones included (a renewal is not a start ...); a new
    tacrolimus order in order-select, with no earlier one, starts it now." §1: tacrolimus
    completed within 14 days keeps the patient in scope.

    Kidney recipient for 2.5 years; the outpatient Prograf prescription (authored 400 days ago)
    ran out 3 days ago (Epic sets it `completed`) and the nephrologist renews it. This is not a
    start: no "Starting tacrolimus ... weekly for the first month" card."""
    expired = prograf(status="completed", days=400, id="mr-prograf-expired",
                      dispenseRequest={"validityPeriod": {"start": at(400), "end": at(3)}})
    cards = run(kidney_recipient_off_list(expired, mg(1.8, "mEq/L", days=10)), mode, discovery, monkeypatch,
                hook="order-select", drafts=[tacrolimus_draft("d-renew")])
    none_of(cards, "mg-order-tacrolimus")


@pytest.mark.parametrize("mode", MODES)
def test_halved_iv_magnesium_order_names_no_2_g_product(mode, discovery, monkeypatch):
    """The guideline §3, renal impairment (eGFR < 30): "lower doses: IV magnesium sulfate halved
    (1 g) ... in the text and the structured dose alike." A client applies the suggested
    MedicationRequest literally: its medication text is what pharmacy dispenses. With eGFR 20 and
    Mg 0.8 mEq/L the 1 g order must not name a "2 g in 50 mL" product (the dose would then be
    half a premixed bag, or a pharmacist would dispense the 2 g bag)."""
    cards = run(recipient(mg(0.8, "mEq/L", days=1), renal=False) + [egfr(20)], mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "critical")
    iv = mgso4(c)
    assert iv, [s["label"] for s in c.get("suggestions") or []]
    r = iv[0]
    q = r["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    assert (q["value"], q.get("code")) in ((1000, "mg"), (1, "g")), q
    order_words = r["medicationCodeableConcept"]["text"] + " " + r["dosageInstruction"][0]["text"]
    assert not re.search(r"\b2 ?g\b", order_words), f"1 g order names a 2 g product: {order_words!r}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("resources, topic, min_days", [
    (lambda: recipient(mg(1.2, "mEq/L", days=1)), "mg-severity", 7),  # "Recheck serum Mg in 1–2 weeks"
    (lambda: recipient(mgo_order(days=60), mg(1.2, "mEq/L", days=30), mg(1.25, "mEq/L", days=2)), "mg-persistent", 7),
], ids=["mild-oral-1-2-weeks", "persistent-1-2-weeks"])
def test_recheck_in_1_to_2_weeks_is_not_orderable_today(resources, topic, min_days, mode, discovery, monkeypatch):
    """The guideline §3: "Recheck serum Mg in 1–2 weeks" (oral replacement). The suggested
    ServiceRequest is what the EHR schedules: an occurrencePeriod that starts today lets the lab
    draw it with tomorrow's bloods, before oral magnesium can have had any effect. The structure
    must say what the text says: not before 1 week, by 2 weeks."""
    cards = run(resources(), mode, discovery, monkeypatch)
    c = the(cards, topic)
    orders = serum_mg_orders(c)
    assert orders, f"no recheck order on {topic}"
    period = orders[0].get("occurrencePeriod") or {}
    assert period, orders[0]
    assert as_date(period["start"]) >= TODAY + timedelta(days=min_days), \
        f"'recheck in 1–2 weeks' orderable from {period['start']} (today is {TODAY})"
    assert as_date(period["end"]) <= TODAY + timedelta(days=14), period


@pytest.mark.parametrize("mode", MODES)
def test_femg_work_up_actions_each_have_their_own_description(mode, discovery, monkeypatch):
    """The guideline §7: "FEMg work-up (urine Mg, urine and serum creatinine as ServiceRequests,
    one description each)". A client lists the actions of an accepted suggestion by description:
    three identical lines ("Order the FEMg work-up" x3) do not tell the clinician which lab is which."""
    cards = run(recipient(mgo_order(days=60), mg(1.2, "mEq/L", days=30), mg(1.25, "mEq/L", days=2)),
                mode, discovery, monkeypatch)
    c = the(cards, "mg-persistent", "warning")
    femg = [a for s in c.get("suggestions") or [] for a in s.get("actions", [])
            if a["type"] == "create" and a["resource"]["resourceType"] == "ServiceRequest"
            and {cd["code"] for cd in a["resource"]["code"].get("coding", [])} & {"19124-7", "2598-1", "2161-8", "2160-0", "14682-9"}]
    assert len(femg) == 3, [a["resource"]["code"] for a in femg]
    descriptions = [a.get("description", "") for a in femg]
    assert len(set(descriptions)) == 3, f"FEMg actions share one description: {descriptions}"
    assert any("urine" in x.lower() and "magnesium" in x.lower() for x in descriptions), descriptions


@pytest.mark.parametrize("mode", MODES)
def test_interacting_drug_started_without_a_trough_since_is_said_first(mode, discovery, monkeypatch):
    """The guideline §7: one card "listing what applies, the most actionable first"; "drugs that
    raise tacrolimus levels (section 8), newest first (a drug started recently without a trough
    since is the first thing to say)".

    Mg 1.2 mEq/L; furosemide for 100 days; voriconazole started 4 days ago; the last trough
    (7.2 ng/mL) was taken 5 days ago, before voriconazole. The card must lead with voriconazole and
    say that no trough has been taken since it was started."""
    cards = run(recipient(mg(1.2, "mEq/L", days=2),
                          rx({"text": "furosemide (LASIX) 40 mg tablet"}, id="mr-furo", days=100, route=ORAL),
                          rx({"text": "voriconazole (VFEND) 200 mg tablet"}, id="mr-vori", days=4, route=ORAL)),
                mode, discovery, monkeypatch)
    c = the(cards, "mg-contributing", "warning")
    s = c["summary"].lower()
    assert "voriconazole" in s and "furosemide" in s, c["summary"]
    assert s.index("voriconazole") < s.index("furosemide"), f"newly started interacting drug not first: {c['summary']}"
    assert re.search(r"no (tacrolimus )?(trough|level)[^.\n]*since", text(c)), \
        f"card does not say no trough was taken since voriconazole started: {c['detail']}"


@pytest.mark.parametrize("mode", MODES)
def test_persistent_card_with_egfr_20_keeps_the_renal_dose_limits(mode, discovery, monkeypatch):
    """The guideline §3: "Renal impairment (eGFR < 30 ...): every supplementation suggestion
    carries a caution (check Mg more often: hypermagnesemia risk) and lower doses: ... oral
    magnesium oxide 400 mg once daily". §7: the persistent card "carries the acute advice of the
    severity class ... and the escalation".

    On magnesium oxide, Mg 1.2 then 1.25 mEq/L over 28 days, eGFR 20: the escalation must not
    advise magnesium oxide "up to three times daily" (the full-renal-function titration), and the
    caution must name the hypermagnesemia risk."""
    cards = run(recipient(mgo_order(days=60), mg(1.2, "mEq/L", days=30), mg(1.25, "mEq/L", days=2), renal=False)
                + [egfr(20)], mode, discovery, monkeypatch)
    c = the(cards, "mg-persistent", "warning")
    t = text(c)
    assert "three times daily" not in t, f"full-dose titration advised at eGFR 20: {c['detail']}"
    assert "hypermagnes" in t, f"renal caution without the hypermagnesemia risk: {c['detail']}"


@pytest.mark.parametrize("mode", MODES)
def test_fosphenytoin_is_phenytoin(mode, discovery, monkeypatch):
    """The guideline §8: "Drugs that lower them: rifampin, rifabutin, phenytoin, carbamazepine,
    phenobarbital, St John's wort"; §6: inducers get a `warning` with a trough suggestion.
    Fosphenytoin (Cerebyx) is the phenytoin prodrug loaded IV in hospital (seizures in transplant
    recipients are common) and induces CYP3A exactly as phenytoin does; Epic's text names only
    fosphenytoin. (Ambiguous: the list names phenytoin only.)"""
    cards = run(recipient(mg(1.8, "mEq/L", days=10)), mode, discovery, monkeypatch, hook="order-select",
                drafts=[d("fosphenytoin (CEREBYX) 1,500 mg PE in sodium chloride 0.9 % 100 mL IVPB", "d-fos", route=IV)])
    c = the(cards, "mg-order-interaction", "warning")
    assert "phenytoin" in text(c)


# =============================================================================================
# Scenarios that agree with the guideline (kept as regression checks)
# =============================================================================================

# ---- §6 relevance: selections vs context drafts, order-sign all drafts -----------------------

@pytest.mark.parametrize("mode", MODES)
def test_order_select_context_paxlovid_is_not_answered(mode, discovery, monkeypatch):
    """§6: "For order-select only the drafts named in selections can be relevant"."""
    cards = run(recipient(mg(1.8, "mEq/L", days=10)), mode, discovery, monkeypatch, hook="order-select",
                drafts=[d("omeprazole 20 mg capsule", "s-ome"), d("Paxlovid 300 mg-100 mg dose pack", "s-pax")],
                selected=["s-ome"])
    assert topics(cards) == ["mg-order-wasting"], summaries(cards)


@pytest.mark.parametrize("mode", MODES)
def test_order_select_supplement_selected_ppi_in_context(mode, discovery, monkeypatch):
    """§6: a magnesium supplement draft is relevant (severity card, no duplicate dose); the
    context PPI is not answered at order-select."""
    mgo = draft(rxcode("198741", "magnesium oxide 400 MG Oral Tablet", "magnesium oxide 400 mg tablet"), id="s-mgo")
    cards = run(recipient(mg(1.2, "mEq/L", days=2)), mode, discovery, monkeypatch, hook="order-select",
                drafts=[mgo, d("omeprazole 20 mg capsule", "s-ome2")], selected=["s-mgo"])
    c = the(cards, "mg-severity", "warning")
    none_of(cards, "mg-order-wasting")
    assert not created(c, "MedicationRequest")


@pytest.mark.parametrize("mode", MODES)
def test_order_sign_answers_every_draft(mode, discovery, monkeypatch):
    """§6: "for order-sign, all drafts": a wasting drug, a ritonavir product and an unrelated
    drug; one card per kind; the famotidine swap deletes the PPI draft only."""
    cards = run(recipient(mg(1.2, "mEq/L", days=2)), mode, discovery, monkeypatch, hook="order-sign",
                drafts=[d("acetaminophen 500 mg tablet", "g-apap"), d("omeprazole 20 mg capsule", "g-ome"),
                        d("Paxlovid 300 mg-100 mg dose pack", "g-pax")])
    assert topics(cards)[0] == "mg-order-interaction" and cards[0]["indicator"] == "critical", summaries(cards)
    assert {"mg-severity", "mg-order-wasting"} <= set(topics(cards))
    wasting = the(cards, "mg-order-wasting", "warning")
    assert {r for r, _ in deleted(wasting)} == {"MedicationRequest/g-ome"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("code, txt, relevant", [
    ("19124-7", "Magnesium, urine random", True),
    ("11253-2", "Tacrolimus level", False),
], ids=["urine-mg-draft-relevant", "trough-draft-not-relevant"])
def test_lab_drafts(code, txt, relevant, mode, discovery, monkeypatch):
    """§6: "a magnesium lab order" is a relevant draft; a tacrolimus level order is not."""
    cards = run(recipient(mg(1.2, "mEq/L", days=2)), mode, discovery, monkeypatch, hook="order-select",
                drafts=[lab_draft("sr-lab", code, txt)])
    assert topics(cards) == (["mg-severity"] if relevant else []), summaries(cards)


# ---- §6 tacrolimus drafts ------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_held_tacrolimus_resumed_is_not_a_start(mode, discovery, monkeypatch):
    """§1: on-hold counts as on tacrolimus; §6: no starting card for a patient already on it."""
    cards = run(kidney_recipient_off_list(prograf(status="on-hold"), mg(1.8, "mEq/L", days=10)), mode, discovery,
                monkeypatch, hook="order-select", drafts=[tacrolimus_draft("d-resume")])
    none_of(cards, "mg-order-tacrolimus")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("txt, route", [
    ("tacrolimus 0.1 % ophthalmic suspension", OPHTHALMIC),
    ("tacrolimus 0.03 % ointment", {"text": "Apply to skin"}),
    ("Protopic 0.1 % ointment", TOPICAL),
], ids=["ophthalmic", "ointment-skin-text", "protopic"])
def test_non_systemic_tacrolimus_draft_is_not_a_start(txt, route, mode, discovery, monkeypatch):
    """§1: topical tacrolimus is out of scope (route or dose form); no starting card."""
    cards = run([patient(), mg(1.8, "mEq/L", days=1)], mode, discovery, monkeypatch, hook="order-select",
                drafts=[d(txt, "d-nonsys", route=route)])
    assert cards == [], summaries(cards)


@pytest.mark.parametrize("mode", MODES)
def test_iv_tacrolimus_start_after_transplant(mode, discovery, monkeypatch):
    """§6 starting tacrolimus with a recent normal Mg: info, first weekly check, not a baseline."""
    cards = run([patient(), procedure("70536003", "Kidney transplant", 1), mg(1.8, "mEq/L", days=1)], mode, discovery,
                monkeypatch, hook="order-select", drafts=[d("tacrolimus 5 mg/mL injection", "d-tac-iv", route=IV)])
    c = the(cards, "mg-order-tacrolimus", "info")
    assert "first weekly" in text(c) and serum_mg_orders(c)


@pytest.mark.parametrize("mode", MODES)
def test_tacrolimus_and_voriconazole_signed_together(mode, discovery, monkeypatch):
    """§6: a starting card and a strong-inhibitor card (dose reduction, trough in 2–3 days)."""
    cards = run([patient(), procedure("70536003", "Kidney transplant", 1), egfr(40), mg(1.8, "mEq/L", days=1)],
                mode, discovery, monkeypatch, hook="order-sign",
                drafts=[tacrolimus_draft("d-tac-new"), d("voriconazole (VFEND) 200 mg tablet", "d-vfend")])
    c = the(cards, "mg-order-interaction", "warning")
    assert "reduc" in text(c)
    the(cards, "mg-order-tacrolimus", "info")


# ---- §6/§8 interacting drugs as EHRs name them -------------------------------------------------

INTERACTIONS = [
    ("isavuconazonium sulfate (CRESEMBA) 186 mg capsule", "warning", "isavuconazonium"),
    ("atazanavir (REYATAZ) 300 mg capsule", "warning", "atazanavir"),
    ("glecaprevir-pibrentasvir (MAVYRET) 100-40 mg tablet", "warning", "glecaprevir"),
    ("ombitasvir-paritaprevir-ritonavir and dasabuvir (VIEKIRA PAK)", "critical", "ritonavir"),
    ("atazanavir-cobicistat (EVOTAZ) 300-150 mg tablet", "critical", "cobicistat"),
    ("dilTIAZem (CARDIZEM CD) 120 mg 24 hr capsule", "warning", "diltiazem"),
    ("trandolapril-verapamil (TARKA) 2-240 mg tablet", "warning", "verapamil"),
    ("rifAMPin (RIFADIN) 300 mg capsule", "warning", "rifampin"),
    ("carBAMazepine (CARBATROL) 200 mg 12 hr capsule", "warning", "carbamazepine"),
    ("PHENobarbital 32.4 mg tablet", "warning", "phenobarbital"),
    ("Hypericum perforatum 300 mg capsule", "warning", "hypericum"),
    ("voriconazole (VFEND) 200 mg in sodium chloride 0.9 % 100 mL IVPB", "warning", "voriconazole"),
    ("letermovir 480 mg in sodium chloride 0.9 % 250 mL IVPB", "warning", "letermovir"),
    ("erythromycin ethylsuccinate (E.E.S.) 400 mg tablet", "warning", "erythromycin"),
    ("amiodarone (PACERONE) 200 mg tablet", "warning", "amiodarone"),
    ("itraconazole 10 mg/mL oral solution", "warning", "itraconazole"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("txt, indicator, ingredient", INTERACTIONS, ids=[t.split()[0] for t, _, _ in INTERACTIONS])
def test_interacting_drugs_as_ehrs_name_them(txt, indicator, ingredient, mode, discovery, monkeypatch):
    """§6/§8: interacting ingredient named, strength by class, trough suggested."""
    cards = run(recipient(mg(1.8, "mEq/L", days=10)), mode, discovery, monkeypatch, hook="order-select",
                drafts=[d(txt, "d-int", route=IV if "IVPB" in txt else ORAL)])
    c = the(cards, "mg-order-interaction", indicator)
    assert ingredient in text(c)
    assert {cd["code"] for r in service_requests(c) for cd in r["code"]["coding"]} & {"11253-2", "77348-1", "74096-9", "74097-7"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("txt, route", [
    ("voriconazole 1 % ophthalmic solution", OPHTHALMIC),
    ("erythromycin 5 mg/g ophthalmic ointment", OPHTHALMIC),
    ("clotrimazole 1 % vaginal cream", VAGINAL),
    ("ketoconazole 2 % cream", None),
], ids=["vori-eye", "ery-eye", "clotrimazole-vaginal", "keto-cream"])
def test_local_forms_of_interacting_drugs_get_nothing(txt, route, mode, discovery, monkeypatch):
    """§6: "Topical forms (ketoconazole shampoo, clotrimazole cream) do not count"."""
    cards = run(recipient(mg(1.8, "mEq/L", days=10)), mode, discovery, monkeypatch, hook="order-select",
                drafts=[d(txt, "d-local", route=route)])
    assert cards == [], summaries(cards)


# ---- §7 persistence --------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("supplements, persistent", [
    (lambda: [statement({"text": "magnesium oxide 400 mg tablet"}, start_days=60)], True),
    (lambda: [statement({"text": "magnesium oxide 400 mg tablet"}, start_days=20)], False),
    (lambda: [mgo_order(days=60), rx({"text": "magnesium chloride (SLOW-MAG) 64 mg DR tablet"}, days=5, route=ORAL)], True),
    (lambda: [mgo_order(days=60, status="stopped"), rx({"text": "magnesium chloride (SLOW-MAG) 64 mg DR tablet"}, days=10, route=ORAL)], False),
], ids=["statement-since-60d", "statement-since-20d", "two-supplements", "stopped-then-new"])
def test_persistence_from_the_active_supplement_start(supplements, persistent, mode, discovery, monkeypatch):
    """§7: "at least 2 results ≤ 1.4 mEq/L spanning ≥ 14 days ... all taken after an active
    magnesium supplement was started" (statement effectivePeriod or order authoredOn)."""
    cards = run(recipient(*supplements(), mg(1.2, "mEq/L", days=30), mg(1.25, "mEq/L", days=2)), mode, discovery, monkeypatch)
    if persistent:
        c = the(cards, "mg-persistent", "warning")
        none_of(cards, "mg-severity")
        assert "amiloride" in text(c) and "increase" in c["summary"].lower()
    else:
        c = the(cards, "mg-severity", "warning")
        none_of(cards, "mg-persistent")
        assert "start oral" not in text(c), "a regimen the patient is already on is 'started'"


# ---- §3 suggestions applied literally ----------------------------------------------------------

FREQ_WORDS = {"once daily": 1, "twice daily": 2, "three times daily": 3}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("resources, per_day", [
    (lambda: recipient(mg(1.2, "mEq/L", days=1)), 2),
    (lambda: recipient(mg(1.2, "mEq/L", days=1), condition("55300003", "Muscle cramp", onset_days=2, recorded_days=2)), 3),
    (lambda: recipient(mg(1.2, "mEq/L", days=1), renal=False) + [egfr(20)], 1),
], ids=["bid", "tid-minor-symptom", "once-daily-renal"])
def test_oral_structure_matches_the_text(resources, per_day, mode, discovery, monkeypatch):
    """§3: "dosageInstruction text and structured dose/route/timing" say the same."""
    c = the(run(resources(), mode, discovery, monkeypatch), "mg-severity", "warning")
    oral = [r for r in created(c, "MedicationRequest") if "oxide" in r["medicationCodeableConcept"]["text"]]
    assert oral
    dosage = oral[0]["dosageInstruction"][0]
    first_clause = dosage["text"].split(";")[0].lower()
    said = [n for w, n in FREQ_WORDS.items() if w in first_clause]
    rep = dosage["timing"]["repeat"]
    assert said == [per_day] and rep["frequency"] == per_day and rep["period"] == 1 and rep["periodUnit"] == "d"
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 400 and "400 mg" in first_clause
    assert "half" not in dosage["text"].lower()


# ---- §10 card text ---------------------------------------------------------------------------

T8 = {"effectiveDateTime": at(1, hour=8), "issued": at(1, hour=10)}
T9 = {"effectiveDateTime": at(1, hour=9), "issued": at(1, hour=11)}

CARD_KINDS = {
    "mg-high": lambda: recipient(mgo_order(days=90, id="mr-mgo-high"), mg(3.4, "mg/dL", days=1)),
    "mg-not-used": lambda: recipient(mg(1.8, "mEq/L", days=10), mg(0.8, "mEq/L", days=-3)),
    "mg-femg": lambda: recipient(mg(1.2, "mEq/L", when=T8),
                                 obs([(LOINC, "2160-0", "Creatinine [Mass/volume] in Serum or Plasma")], 1.0, "mg/dL", "mg/dL", when=T8),
                                 obs([(LOINC, "19124-7", "Magnesium [Mass/volume] in Urine")], 6.0, "mg/dL", "mg/dL", when=T9),
                                 obs([(LOINC, "2161-8", "Creatinine [Mass/volume] in Urine")], 100, "mg/dL", "mg/dL", when=T9)),
    "mg-contributing": lambda: recipient(mg(1.2, "mEq/L", days=2), rx({"text": "furosemide 40 mg tablet"}, days=100)),
    "mg-persistent": lambda: recipient(mgo_order(days=60), mg(1.2, "mEq/L", days=30), mg(1.25, "mEq/L", days=2)),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", sorted(CARD_KINDS))
def test_every_card_kind_has_number_date_evidence_and_no_identifiers(kind, mode, discovery, monkeypatch):
    """§10: summary "the finding, its number and date, then the action"; detail "the evidence
    used (values, dates ...) ... and the guideline reference"; no patient identifiers."""
    cards = run(CARD_KINDS[kind](), mode, discovery, monkeypatch)
    c = the(cards, kind)
    assert re.search(r"\d{4}-\d{2}-\d{2}", c["summary"]) and re.search(r"\d\.\d", c["summary"]), c["summary"]
    assert re.search(r"guideline section \d", c["detail"]), c["detail"]
    for card in cards:
        words = card["summary"] + card.get("detail", "") + " ".join(s["label"] for s in card.get("suggestions") or [])
        for ident in (PID, "E4711", "Test Review", "Review, Test", "1968-03-14"):
            assert ident not in words, f"patient identifier {ident!r} on {card['source']['topic']['code']}"


@pytest.mark.parametrize("mode", MODES)
def test_order_cards_name_the_latest_mg_with_its_date(mode, discovery, monkeypatch):
    """§6 wasting card "naming the drug and the latest Mg"; §10 evidence with dates."""
    cards = run(recipient(mg(0.65, "mmol/L", days=3)), mode, discovery, monkeypatch, hook="order-sign",
                drafts=[d("omeprazole 20 mg capsule", "n-ome"), d("diltiazem 120 mg 24 hr capsule", "n-dil")])
    for kind in ("mg-order-wasting", "mg-order-interaction"):
        c = the(cards, kind)
        assert "0.65 mmol/l" in text(c) and day(3) in c["detail"], (kind, c["detail"])
