"""docs/clinical-rules.md section 6 through the order hooks (order-select and order-sign), in both data
modes: full prefetch, and no prefetch with the FHIR server answering."""

from __future__ import annotations

import pytest
import responses
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.testing import factories as f
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
    order["dosageInstruction"] = [{
        "text": "1 mg twice daily", "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "mg", "system": f.UCUM, "code": "mg"}}]}]
    return order


# --- Starting tacrolimus -------------------------------------------------------------------------


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("history, indicator, summary", [
    ([], "warning", "Starting tacrolimus, Mg never measured: order a baseline serum Mg, then weekly"),
    ([f.magnesium(1.9, days=60)], "warning",
     "no Mg in 30 days (last Mg 1.9 mEq/L on 2026-09-26): order a baseline serum Mg"),
    ([f.magnesium(1.9, days=10)], "info",
     "baseline Mg 1.9 mEq/L (2026-11-15) in range: first weekly serum Mg check now"),
])
def test_starting_tacrolimus_asks_for_baseline_and_plan(order_hook, hook, history, indicator, summary):
    cards = order_hook(history, [new_tacrolimus()], hook=hook)
    start = by_topic(cards)["mg-order-tacrolimus"]
    assert start["indicator"] == indicator and summary in start["summary"]
    (order,) = resources(start, "ServiceRequest")
    ServiceRequest.model_validate(order)
    assert order["code"]["coding"][0]["code"] == "19123-9" and order["status"] == "draft"
    assert "every 7 days (weekly) for the first 30 days, then every 42 days" in start["detail"]
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
    assert start["indicator"] == "warning"
    assert "Starting tacrolimus with low Mg 1.2 mEq/L (2026-11-22)" in start["summary"]
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


OMEPRAZOLE = dict(rxnorm="7646", display="omeprazole")


def test_oral_ppi_offers_coded_famotidine_created_before_the_draft_is_deleted(order_hook):
    history = [f.tacrolimus(), f.magnesium(1.6, days=5), f.lab("11253-2", 7.5, "ng/mL", days=5)]
    ppi = f.draft(f.medication("omeprazole 20 MG Delayed Release Oral Capsule", **OMEPRAZOLE))
    card = by_topic(order_hook(history, [ppi]))["mg-order-wasting"]
    # At target: an info card (a PPI's effect on Mg is a long-term one), no recheck order.
    assert card["indicator"] == "info"
    assert card["summary"].startswith("Omeprazole ordered, Mg 1.6 mEq/L (2026-11-20) at target: "
                                      "consider famotidine instead; keep routine Mg checks")
    assert "omeprazole 20 mg delayed-release oral capsule" in card["detail"]  # as a clinician writes it
    assert "7.5 ng/mL" in card["detail"] and resources(card, "ServiceRequest") == []
    replace = next(s for s in card["suggestions"] if "famotidine" in s["label"])
    assert [a["type"] for a in replace["actions"]] == ["create", "delete"]
    assert replace["actions"][1]["resourceId"] == f"MedicationRequest/{ppi['id']}"
    famotidine = MedicationRequest.model_validate(replace["actions"][0]["resource"])
    concept = famotidine.medicationCodeableConcept
    assert concept.coding[0].code == "310273" and concept.text == "famotidine 20 mg oral tablet"
    assert "Lab ordered elsewhere" not in str(card["overrideReasons"])  # the card asks for no lab


def test_iv_ppi_gets_no_swap(order_hook):
    iv = f.draft(f.medication("pantoprazole 40 MG Injection", rxnorm="40790",
                              dosageInstruction=[{"route": {"coding": [{"system": f.SNOMED, "code": "47625008"}],
                                                            "text": "Intravenous"}}]))
    card = by_topic(order_hook([f.tacrolimus(), f.magnesium(1.2, days=2)], [iv]))["mg-order-wasting"]
    assert card["indicator"] == "warning"
    assert not any(a["type"] == "delete" for s in card.get("suggestions", []) for a in s["actions"])
    assert resources(card, "MedicationRequest") == []
    assert "IV famotidine" in card["detail"]


@pytest.mark.parametrize("history, indicator, action", [
    ([f.magnesium(1.8, days=5)], "info", "keep routine Mg checks (every 42 days)"),
    ([f.magnesium(1.2, days=5)], "warning", "use the lowest dose, recheck Mg in 1–2 weeks"),
    ([f.magnesium(1.45, days=5)], "warning", "recheck Mg in 1–2 weeks"),  # below target is not at target
    ([f.magnesium(1.8, days=50)], "warning", "no Mg in 42 days"),
    ([], "warning", "Mg never measured: check serum Mg now"),
])
def test_wasting_drug_indicator_follows_the_latest_magnesium(order_hook, history, indicator, action):
    cards = order_hook([f.tacrolimus()] + history, [f.draft(f.medication("furosemide 40 MG Oral Tablet"))])
    card = by_topic(cards)["mg-order-wasting"]
    assert card["indicator"] == indicator and action in card["summary"], card["summary"]
    # A warning asks for a serum Mg, on this card or (one order per test) on a more urgent one.
    serum = [r for c in cards for r in resources(c, "ServiceRequest") if r["code"]["coding"][0]["code"] == "19123-9"]
    assert len(serum) == (1 if indicator == "warning" else 0)


@pytest.mark.parametrize("drug", ["furosemide 40 mg tablet", "Lasix 20 mg", "gentamicin 80 mg IV",
                                  "hydrochlorothiazide 25 mg", "cyclosporine 100 mg capsule"])
def test_other_wasting_drugs_get_no_famotidine(order_hook, drug):
    cards = order_hook([f.tacrolimus(), f.magnesium(1.2, days=5)], [f.draft(f.medication(drug))])
    card = by_topic(cards)["mg-order-wasting"]
    assert "famotidine" not in str(card.get("suggestions", []))


def test_wasting_drug_for_a_patient_not_on_tacrolimus_gets_nothing(order_hook):
    assert order_hook([f.magnesium(1.2, days=5)], [f.draft(f.medication("omeprazole 20 mg"))]) == []


def test_several_wasting_drugs_make_one_card(order_hook):
    drafts = [f.draft(f.medication("omeprazole 20 mg")), f.draft(f.medication("furosemide 40 mg"))]
    cards = order_hook([f.tacrolimus(), f.magnesium(1.8, days=5)], drafts)
    assert [topic(c) for c in cards] == ["mg-order-wasting"]
    assert cards[0]["summary"].startswith("Omeprazole, furosemide ordered")


# --- Drugs that change tacrolimus levels --------------------------------------------------------


@pytest.mark.parametrize("drug, verb, ingredient", [
    ("fluconazole 200 mg tablet", "raises", "Fluconazole"), ("erythromycin 250 mg", "raises", "Erythromycin"),
    ("clotrimazole 10 MG Oral Troche", "raises", "Clotrimazole"),
    ("rifampin 300 mg capsule", "lowers", "Rifampin"), ("Tegretol 200 mg", "lowers", "Carbamazepine")])
def test_other_interacting_drugs_ask_for_trough_and_magnesium_within_a_week(order_hook, drug, verb, ingredient):
    history = [f.tacrolimus(), f.magnesium(1.8, days=5), f.lab("11253-2", 8.0, "ng/mL", days=5)]
    card = by_topic(order_hook(history, [f.draft(f.medication(drug))]))["mg-order-interaction"]
    assert card["indicator"] == "warning"
    assert card["summary"] == (f"{ingredient} {verb} tacrolimus levels, trough 8.0 ng/mL (2026-11-20): "
                               "trough and Mg within a week")
    codes = {r["code"]["coding"][0]["code"] for r in resources(card, "ServiceRequest")}
    assert codes == {"11253-2", "19123-9"}
    trough = next(r for r in resources(card, "ServiceRequest") if r["code"]["coding"][0]["code"] == "11253-2")
    assert trough["occurrencePeriod"] == {"start": "2026-11-25", "end": "2026-12-02"}


@pytest.mark.parametrize("drug", ["voriconazole 200 mg", "posaconazole 100 MG Delayed Release Oral Tablet",
                                  "ketoconazole 200 mg tablet", "itraconazole 100 mg capsule",
                                  "clarithromycin 500 mg"])
def test_strong_cyp3a_inhibitors_ask_for_a_dose_reduction_and_a_trough_in_2_to_3_days(order_hook, drug):
    history = [f.tacrolimus(), f.magnesium(1.8, days=5), f.lab("11253-2", 8.0, "ng/mL", days=5)]
    card = by_topic(order_hook(history, [f.draft(f.medication(drug))]))["mg-order-interaction"]
    assert card["indicator"] == "warning"
    assert card["summary"].endswith(": reduce tacrolimus dose at start; trough within 2–3 days")
    assert "dose reduction is usually needed" in card["detail"]
    trough = next(r for r in resources(card, "ServiceRequest") if r["code"]["coding"][0]["code"] == "11253-2")
    assert trough["occurrencePeriod"] == {"start": "2026-11-25", "end": "2026-11-28"}


@pytest.mark.parametrize("drug", [
    dict(text="Paxlovid 300 MG / 100 MG (nirmatrelvir/ritonavir) dose pack"),
    dict(text="nirmatrelvir 150 MG / ritonavir 100 MG Oral Tablet"),
    dict(rxnorm="2587892", display="nirmatrelvir"),
    dict(text="ritonavir 100 mg tablet"),
    dict(text="Prezcobix 800 mg/150 mg tablet"),
])
def test_ritonavir_and_cobicistat_products_are_critical_and_name_the_booster(order_hook, drug):
    history = [f.tacrolimus(), f.magnesium(1.8, days=5), f.lab("11253-2", 8.0, "ng/mL", days=5)]
    card = by_topic(order_hook(history, [f.draft(f.medication(**drug))]))["mg-order-interaction"]
    assert card["indicator"] == "critical"
    booster = "Cobicistat" if "Prezcobix" in str(drug) else "Ritonavir"
    assert card["summary"].startswith(f"{booster} raises tacrolimus levels, trough 8.0 ng/mL (2026-11-20): "
                                      "hold or sharply reduce tacrolimus (transplant team); trough on day 2–3")
    assert "nirmatrelvir" not in card["summary"].lower()
    assert "transplant team before the first dose" in card["detail"]
    trough = next(r for r in resources(card, "ServiceRequest") if r["code"]["coding"][0]["code"] == "11253-2")
    assert trough["occurrencePeriod"] == {"start": "2026-11-27", "end": "2026-11-28"}
    assert "Transplant team already managing" in str(card["overrideReasons"])


@pytest.mark.parametrize("drug", ["ketoconazole 2% shampoo", "clotrimazole 1% cream",
                                  "clotrimazole 100 mg vaginal tablet", "erythromycin 0.5% ophthalmic ointment"])
def test_topical_forms_of_interacting_drugs_do_not_count(order_hook, drug):
    assert order_hook([f.tacrolimus(), f.magnesium(1.8, days=5)], [f.draft(f.medication(drug))]) == []


def test_azithromycin_is_not_an_interacting_macrolide(order_hook):
    assert order_hook([f.tacrolimus(), f.magnesium(1.8, days=5)], [f.draft(f.medication("azithromycin 250 mg"))]) == []


def test_the_strongest_interaction_decides_and_every_drug_is_named(order_hook):
    drafts = [f.draft(f.medication("fluconazole 200 mg")), f.draft(f.medication("ritonavir 100 mg")),
              f.draft(f.medication("rifampin 300 mg"))]
    cards = order_hook([f.tacrolimus(), f.magnesium(1.8, days=5)], drafts)
    card = by_topic(cards)["mg-order-interaction"]
    assert card["indicator"] == "critical"
    # The list is cut at a separator and counted, never mid-word (section 10), strongest first.
    assert card["summary"].startswith("Ritonavir +2 change tacrolimus levels, no trough on record: hold or "
                                      "sharply reduce tacrolimus")
    assert len(card["summary"]) <= 140
    assert "fluconazole raises" in card["detail"] and "rifampin lowers" in card["detail"]


# --- Selections, drafts of magnesium, malformed drafts ------------------------------------------


def test_order_select_acts_on_selections_order_sign_on_every_draft(call_hook):
    history = [f.tacrolimus(), f.magnesium(1.8, days=5)]
    ppi, other = f.draft(f.medication("omeprazole 20 mg")), f.draft(f.medication("amlodipine 5 mg"))
    selected_other = f.order_request(history, [ppi, other], selected=[other])
    assert call_hook(selected_other, ORDER_SELECT) == []
    signing = f.order_request(history, [ppi, other], hook="order-sign")
    assert [topic(c) for c in call_hook(signing, ORDER_SIGN)] == ["mg-order-wasting"]


@pytest.mark.parametrize("mg, select_topics, sign_topics", [
    (0.8, [], ["mg-severity"]),  # order-sign keeps only an unaddressed critical severity
    (1.2, [], []),  # a warning is patient-view's job
    (1.8, [], []),
])
def test_unrelated_drafts_only_ever_get_a_critical_severity_at_signing(order_hook, mg, select_topics, sign_topics):
    history = [f.tacrolimus(), f.magnesium(mg, days=1), f.lab("11253-2", 30.0, "ng/mL", days=1),
               f.medication("omeprazole 20 mg")]  # factors that patient-view would list
    amlodipine = [f.draft(f.medication("amlodipine 5 mg"))]
    assert [topic(c) for c in order_hook(history, amlodipine, hook="order-select")] == select_topics
    sign = order_hook(history, amlodipine, hook="order-sign")
    assert [topic(c) for c in sign] == sign_topics
    assert all(c["indicator"] == "critical" for c in sign)


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_a_magnesium_lab_draft_is_relevant(order_hook, hook):
    lab = f.draft(f.serum_mg_order("draft"))
    cards = order_hook([f.tacrolimus(), f.magnesium(1.2, days=1)], [lab], hook=hook)
    assert [topic(c) for c in cards] == ["mg-severity"]


def test_order_hooks_show_only_the_severity_and_monitoring_cards_of_the_patient(order_hook):
    history = [f.tacrolimus(), f.magnesium(1.2, days=1), f.lab("11253-2", 30.0, "ng/mL", days=1),
               f.medication("furosemide 40 mg")]
    cards = order_hook(history, [f.draft(f.medication("omeprazole 20 mg"))])
    assert [topic(c) for c in cards] == ["mg-severity", "mg-order-wasting"]  # no factors card


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


def test_severity_cards_still_apply_with_a_relevant_draft(order_hook):
    cards = order_hook([f.tacrolimus(), f.magnesium(0.8, days=1)], [f.draft(f.medication("furosemide 40 mg"))])
    assert [topic(c) for c in cards][0] == "mg-severity" and cards[0]["indicator"] == "critical"


def test_order_cards_use_the_same_latest_result_as_the_severity_rules(order_hook):
    # A newer lower bound ("> 1.0") cannot be classified; every card speaks of the 1.2.
    history = [f.tacrolimus(), f.magnesium(1.2, days=5), f.magnesium(1.0, comparator=">", days=1)]
    cards = order_hook(history, [f.draft(f.medication("omeprazole 20 mg"))])
    assert "Mg 1.2 mEq/L (2026-11-20) low" in by_topic(cards)["mg-order-wasting"]["summary"]


@pytest.mark.parametrize("egfr, text, period, per_day", [
    (75, "Famotidine 20 mg by mouth twice daily", 1, 2),
    (45, "Famotidine 20 mg by mouth once daily in place of the proton pump inhibitor (reduced for eGFR 45", 1, 1),
    (22, "Famotidine 20 mg by mouth every other day in place of the proton pump inhibitor (reduced for eGFR 22", 2, 1),
    (None, "(no eGFR on record", 1, 1),
])
def test_famotidine_is_dosed_to_renal_function_in_whole_tablets(order_hook, egfr, text, period, per_day):
    history = [f.tacrolimus(), f.magnesium(1.8, days=5)]
    if egfr is not None:
        history.append(f.lab("98979-8", egfr, "mL/min/{1.73_m2}", days=5))
    card = by_topic(order_hook(history, [f.draft(f.medication("omeprazole 20 mg"))]))["mg-order-wasting"]
    (famotidine,) = resources(card, "MedicationRequest")
    dosage = famotidine["dosageInstruction"][0]
    assert text in dosage["text"]
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 20
    assert dosage["timing"]["repeat"]["frequency"] == per_day and dosage["timing"]["repeat"]["period"] == period


def test_interaction_advice_follows_the_direction(order_hook):
    history = [f.tacrolimus(), f.magnesium(1.8, days=5)]
    raising = by_topic(order_hook(history, [f.draft(f.medication("voriconazole 200 mg"))]))["mg-order-interaction"]
    lowering = by_topic(order_hook(history, [f.draft(f.medication("rifampin 300 mg"))]))["mg-order-interaction"]
    assert "dose reduction" in raising["detail"] and "rejection" not in raising["detail"]
    assert "rejection" in lowering["detail"] and "dose reduction" not in lowering["detail"]


@pytest.mark.parametrize("status, said", [("on-hold", "tacrolimus on hold"), ("stopped", "tacrolimus stopped on")])
def test_no_trough_for_held_or_stopped_tacrolimus(order_hook, status, said):
    tacrolimus = f.tacrolimus(status=status)
    if status == "stopped":  # stopped 5 days ago: still in scope (recently stopped)
        tacrolimus["dispenseRequest"] = {"validityPeriod": {"start": f.days_ago(100), "end": f.days_ago(5)}}
    cards = order_hook([tacrolimus, f.magnesium(1.8, days=5)], [f.draft(f.medication("ritonavir 100 mg"))])
    card = by_topic(cards)["mg-order-interaction"]
    assert said in card["summary"] and card["summary"].endswith("agree any restart dose with the transplant team")
    assert not [r for r in resources(card, "ServiceRequest") if r["code"]["coding"][0]["code"] == "11253-2"]
    assert "no tacrolimus trough is suggested now" in card["detail"]


def test_a_hospital_coded_magnesium_lab_draft_is_relevant(monkeypatch):
    import json

    from cds_service import create_app
    from cds_service.web import hooks

    monkeypatch.setattr(hooks, "utc_now", lambda: f.NOW)
    local = {"mg_serum": ["urn:oid:1.2.3.4|MG"]}
    client = create_app({"log_level": "WARNING", "local_codes": json.dumps(local)}).test_client()
    lab = f.draft({**f.serum_mg_order("draft"), "code": {"coding": [{"system": "urn:oid:1.2.3.4", "code": "MG"}]}})
    body = f.order_request([f.tacrolimus(), f.magnesium(1.2, days=1)], [lab])
    cards = client.post(ORDER_SELECT, json=body).get_json()["cards"]
    assert [topic(c) for c in cards] == ["mg-severity"]
