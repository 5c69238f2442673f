"""GUIDELINE.md section 6 through the order hooks (order-select and order-sign), in both data
modes: full prefetch, and no prefetch with the FHIR server answering."""

from __future__ import annotations

import pytest
import responses
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest

from . import factories as f
from .fake_fhir import BASE, FakeFhirServer

ORDER_SELECT = "/cds-services/tacrolimus-magnesium-order-select"
ORDER_SIGN = "/cds-services/tacrolimus-magnesium-order-sign"
HOOKS = [("order-select", ORDER_SELECT), ("order-sign", ORDER_SIGN)]


def topic(card: dict) -> str:
    return card["source"]["topic"]["code"]


def by_topic(cards: list[dict]) -> dict[str, dict]:
    return {topic(c): c for c in cards}


def resources(card: dict, resource_type: str) -> list[dict]:
    return [a["resource"] for s in card.get("suggestions", []) for a in s["actions"]
            if a["type"] == "create" and a["resource"]["resourceType"] == resource_type]


@pytest.fixture(params=["prefetch", "fhir"])
def order_hook(request, call_hook):
    """Call an order hook with the patient's history either prefetched or on a FHIR server."""

    def call(history, drafts, *, hook="order-select", selected=None):
        path = dict(HOOKS)[hook]
        if request.param == "prefetch":
            return call_hook(f.order_request(history, drafts, hook=hook, selected=selected), path)
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            FakeFhirServer([f.patient()] + history).install(mock)
            body = f.order_request(None, drafts, hook=hook, selected=selected, prefetch={},
                                   fhir_server=BASE, token="t")
            return call_hook(body, path)

    return call


PROGRAF = dict(rxnorm="198377", display="tacrolimus 1 MG Oral Capsule")


def new_tacrolimus(**kwargs):
    """A sandbox-shaped draft: RxNorm-coded, R4 dosageInstruction with timing and dose."""
    order = f.draft(f.medication(**{**PROGRAF, **kwargs}))
    order["dosageInstruction"] = [{"text": "1 mg twice daily", "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                                   "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "mg", "system": f.UCUM, "code": "mg"}}]}]
    return order


# --- Starting tacrolimus -------------------------------------------------------------------------


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("history, indicator, summary", [
    ([], "warning", "baseline serum Mg needed (no Mg on record)"),
    ([f.magnesium(1.9, days=60)], "warning", "baseline serum Mg needed (last Mg 1.9 mEq/L on 2026-09-26)"),
    ([f.magnesium(1.9, days=10)], "info", "baseline Mg 1.9 mEq/L on 2026-11-15 in range; plan weekly serum Mg"),
])
def test_starting_tacrolimus_asks_for_baseline_and_plan(order_hook, hook, history, indicator, summary):
    cards = order_hook(history, [new_tacrolimus()], hook=hook)
    start = by_topic(cards)["mg-order-tacrolimus"]
    assert start["indicator"] == indicator and summary in start["summary"]
    (order,) = resources(start, "ServiceRequest")
    ServiceRequest.model_validate(order)
    assert order["code"]["coding"][0]["code"] == "19123-9" and order["status"] == "draft"
    assert "weekly for the first month" in start["detail"]
    assert "mg-monitoring" not in by_topic(cards)  # one card asks for the test, not two


@pytest.mark.parametrize("plan", [f.serum_mg_order("active"), f.draft(f.serum_mg_order("draft"))])
def test_no_start_card_with_recent_normal_result_and_plan_in_place(order_hook, plan):
    history, drafts = [f.magnesium(1.9, days=10)], [new_tacrolimus()]
    if plan["status"] == "draft":
        drafts.append(plan)
    else:
        history.append(plan)
    assert order_hook(history, drafts, selected=drafts[:1]) == []


def test_starting_tacrolimus_with_low_magnesium(order_hook):
    cards = order_hook([f.magnesium(1.2, days=3)], [new_tacrolimus()])
    assert [topic(c) for c in cards][0] == "mg-severity"
    assert "mg-contributing" not in by_topic(cards)  # no "missing level" before tacrolimus starts
    start = by_topic(cards)["mg-order-tacrolimus"]
    assert start["indicator"] == "warning" and "Starting tacrolimus with low Mg 1.2 mEq/L" in start["summary"]
    assert resources(start, "ServiceRequest") == []  # the severity card carries the Mg order
    severity = by_topic(cards)["mg-severity"]
    assert "—" not in severity["summary"]  # section 10: no "— starting tacrolimus" filler
    assert "being ordered" in severity["detail"]
    recheck = next(r for r in resources(severity, "ServiceRequest")
                   if r["code"]["coding"][0]["code"] == "19123-9")  # first month: weekly, not 1-2 weeks
    assert recheck["occurrencePeriod"] == {"start": "2026-11-25", "end": "2026-12-02"}


def test_drafted_supplement_replaces_the_start_advice(order_hook):
    history = [f.tacrolimus(), f.magnesium(1.2, days=1)]
    severity = by_topic(order_hook(history, [f.draft(f.medication("magnesium oxide 400 mg tablet"))]))["mg-severity"]
    assert "Start oral magnesium" not in severity["detail"]


def test_renewal_for_a_patient_already_on_tacrolimus_is_not_a_start(order_hook):
    assert order_hook([f.tacrolimus(), f.magnesium(1.9, days=10)], [new_tacrolimus()]) == []


def test_topical_tacrolimus_draft_is_not_a_start(order_hook):
    ointment = f.draft(f.medication("tacrolimus 0.1% ointment"))
    assert order_hook([], [ointment]) == []


def test_first_tacrolimus_order_starts_the_early_phase(order_hook):
    # An 8-day-old normal result is fine routinely, but not in the first month of tacrolimus:
    # the start card asks for the level now (and no separate due card asks again).
    cards = order_hook([f.magnesium(1.9, days=8)], [new_tacrolimus()])
    assert [topic(c) for c in cards] == ["mg-order-tacrolimus"]
    (order,) = resources(cards[0], "ServiceRequest")
    assert order["occurrencePeriod"] == {"start": "2026-11-25", "end": "2026-11-26"}


def test_serum_mg_already_ordered_silences_the_due_card(order_hook):
    history = [f.tacrolimus(), f.magnesium(1.9, days=60), f.serum_mg_order()]
    assert order_hook(history, [f.draft(f.medication("amlodipine 5 mg"))]) == []


# --- Magnesium-wasting drugs -------------------------------------------------------------------


def test_ppi_for_a_patient_on_tacrolimus_offers_famotidine(order_hook):
    history = [f.tacrolimus(), f.magnesium(1.6, days=5), f.lab("11253-2", 7.5, "ng/mL", days=5)]
    ppi = f.draft(f.medication("omeprazole 20 MG Delayed Release Oral Capsule", rxnorm="7646"))
    cards = order_hook(history, [ppi])
    card = by_topic(cards)["mg-order-wasting"]
    assert card["indicator"] == "warning"
    assert "(omeprazole) with Mg 1.6 mEq/L on 2026-11-20" in card["summary"]
    assert "7.5 ng/mL" in card["detail"] and "famotidine" in card["detail"]
    replace = next(s for s in card["suggestions"] if "famotidine" in s["label"])
    kinds = [a["type"] for a in replace["actions"]]
    assert kinds == ["delete", "create"]
    assert replace["actions"][0]["resourceId"] == f"MedicationRequest/{ppi['id']}"
    famotidine = MedicationRequest.model_validate(replace["actions"][1]["resource"])
    assert famotidine.medicationCodeableConcept.text.startswith("famotidine")


@pytest.mark.parametrize("drug", ["furosemide 40 mg tablet", "Lasix 20 mg", "gentamicin 80 mg IV",
                                  "hydrochlorothiazide 25 mg", "cyclosporine 100 mg capsule"])
def test_other_wasting_drugs_get_a_warning_without_famotidine(order_hook, drug):
    cards = order_hook([f.tacrolimus(), f.magnesium(1.8, days=5)], [f.draft(f.medication(drug))])
    card = by_topic(cards)["mg-order-wasting"]
    assert "famotidine" not in str(card["suggestions"])
    assert resources(card, "ServiceRequest")  # recheck Mg


def test_wasting_drug_for_a_patient_not_on_tacrolimus_gets_nothing(order_hook):
    assert order_hook([f.magnesium(1.2, days=5)], [f.draft(f.medication("omeprazole 20 mg"))]) == []


def test_several_wasting_drugs_make_one_card(order_hook):
    drafts = [f.draft(f.medication("omeprazole 20 mg")), f.draft(f.medication("furosemide 40 mg"))]
    cards = order_hook([f.tacrolimus(), f.magnesium(1.8, days=5)], drafts)
    assert [topic(c) for c in cards] == ["mg-order-wasting"]
    assert "omeprazole, furosemide" in cards[0]["summary"]


# --- Drugs that change tacrolimus levels --------------------------------------------------------


@pytest.mark.parametrize("drug, verb", [("fluconazole 200 mg tablet", "raises"), ("clarithromycin 500 mg", "raises"),
                                        ("rifampin 300 mg capsule", "lowers"), ("Tegretol 200 mg", "lowers")])
def test_interacting_drug_asks_for_trough_and_magnesium(order_hook, drug, verb):
    history = [f.tacrolimus(), f.magnesium(1.8, days=5), f.lab("11253-2", 8.0, "ng/mL", days=5)]
    cards = order_hook(history, [f.draft(f.medication(drug))])
    card = by_topic(cards)["mg-order-interaction"]
    assert card["indicator"] == "warning"
    assert "last trough 8.0 ng/mL on 2026-11-20" in card["summary"] and verb in card["summary"]
    # the drug (ingredient, also for a brand name) leads the summary
    assert card["summary"].split()[0] in ("Fluconazole", "Clarithromycin", "Rifampin", "Carbamazepine")
    codes = {r["code"]["coding"][0]["code"] for r in resources(card, "ServiceRequest")}
    assert codes == {"11253-2", "19123-9"}


def test_azithromycin_is_not_an_interacting_macrolide(order_hook):
    assert order_hook([f.tacrolimus(), f.magnesium(1.8, days=5)], [f.draft(f.medication("azithromycin 250 mg"))]) == []


# --- Selections, drafts of magnesium, malformed drafts ------------------------------------------


def test_order_select_acts_on_selections_order_sign_on_every_draft(call_hook):
    history = [f.tacrolimus(), f.magnesium(1.8, days=5)]
    ppi, other = f.draft(f.medication("omeprazole 20 mg")), f.draft(f.medication("amlodipine 5 mg"))
    selected_other = f.order_request(history, [ppi, other], selected=[other])
    assert call_hook(selected_other, ORDER_SELECT) == []
    signing = f.order_request(history, [ppi, other], hook="order-sign")
    assert [topic(c) for c in call_hook(signing, ORDER_SIGN)] == ["mg-order-wasting"]


@pytest.mark.parametrize("value, drug", [(1.2, "magnesium oxide 400 mg tablet"), (0.8, "magnesium sulfate 2 g IV")])
def test_magnesium_being_ordered_removes_the_supplement_suggestion(order_hook, value, drug):
    history = [f.tacrolimus(), f.magnesium(value, days=1)]
    supplement = f.draft(f.medication(drug))
    severity = by_topic(order_hook(history, [supplement]))["mg-severity"]
    assert resources(severity, "MedicationRequest") == []
    assert f"Magnesium already being ordered: {drug}" in severity["detail"]
    assert resources(severity, "ServiceRequest")  # the recheck stays


@pytest.mark.parametrize("draft_orders", [
    [],
    [{"resourceType": "NutritionOrder", "id": "diet", "status": "draft"}],
    [{"resourceType": "MedicationRequest", "id": "blank", "status": "draft", "intent": "order"}],  # sandbox page load
    [{"resourceType": "MedicationRequest", "id": "odd", "status": "draft", "medicationCodeableConcept": "text"}],
    [{"resourceType": "MedicationRequest", "id": "odd2", "medicationCodeableConcept": {"coding": [None, 3]}}],
    [{"resourceType": "MedicationRequest", "id": "ref", "medicationReference": {"reference": "Medication/unknown"}}],
])
@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_unrelated_empty_or_malformed_drafts_get_no_cards(order_hook, draft_orders, hook):
    assert order_hook([f.tacrolimus(), f.magnesium(1.8, days=5)], draft_orders, hook=hook) == []


def test_malformed_draft_bundle_entries_are_skipped(call_hook):
    body = f.order_request([f.tacrolimus(), f.magnesium(1.8, days=5)], [], hook="order-sign")
    body["context"]["draftOrders"]["entry"] = [None, 1, "x", {"resource": None}, {"resource": ["a"]}]
    assert call_hook(body, ORDER_SIGN) == []


def test_severity_cards_still_apply_in_order_hooks(order_hook):
    cards = order_hook([f.tacrolimus(), f.magnesium(0.8, days=1)], [f.draft(f.medication("amlodipine 5 mg"))])
    assert [topic(c) for c in cards][0] == "mg-severity" and cards[0]["indicator"] == "critical"


def test_order_cards_use_the_same_latest_result_as_the_severity_rules(order_hook):
    # A newer lower bound ("> 1.0") cannot be classified; every card speaks of the 1.2.
    history = [f.tacrolimus(), f.magnesium(1.2, days=5), f.magnesium(1.0, comparator=">", days=1)]
    cards = order_hook(history, [f.draft(f.medication("omeprazole 20 mg"))])
    assert "Mg 1.2 mEq/L" in by_topic(cards)["mg-order-wasting"]["summary"]


@pytest.mark.parametrize("egfr, text, dose, per_day", [
    (75, "Famotidine 20 mg by mouth twice daily", 20, 2),
    (45, "Famotidine 20 mg by mouth once daily in place of the proton pump inhibitor (reduced for eGFR 45", 20, 1),
    (22, "Famotidine 10 mg by mouth once daily in place of the proton pump inhibitor (reduced for eGFR 22", 10, 1),
    (None, "(no eGFR on record", 20, 1),
])
def test_famotidine_is_dosed_to_renal_function(order_hook, egfr, text, dose, per_day):
    history = [f.tacrolimus(), f.magnesium(1.8, days=5)]
    if egfr is not None:
        history.append(f.lab("98979-8", egfr, "mL/min/{1.73_m2}", days=5))
    card = by_topic(order_hook(history, [f.draft(f.medication("omeprazole 20 mg"))]))["mg-order-wasting"]
    (famotidine,) = resources(card, "MedicationRequest")
    dosage = famotidine["dosageInstruction"][0]
    assert text in dosage["text"]
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == dose
    assert dosage["timing"]["repeat"]["frequency"] == per_day


def test_interaction_advice_follows_the_direction(order_hook):
    history = [f.tacrolimus(), f.magnesium(1.8, days=5)]
    raising = by_topic(order_hook(history, [f.draft(f.medication("voriconazole 200 mg"))]))["mg-order-interaction"]
    lowering = by_topic(order_hook(history, [f.draft(f.medication("rifampin 300 mg"))]))["mg-order-interaction"]
    assert "dose reduction" in raising["detail"] and "rejection" not in raising["detail"]
    assert "rejection" in lowering["detail"] and "dose reduction" not in lowering["detail"]
