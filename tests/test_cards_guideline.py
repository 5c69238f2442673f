"""The guideline's cards through the patient-view hook (docs/clinical-rules.md sections 3, 4, 7 and 10)."""

from __future__ import annotations

import re

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.testing import factories as f

VALIDATORS = {"MedicationRequest": MedicationRequest, "ServiceRequest": ServiceRequest}
INDICATOR_RANK = {"critical": 0, "warning": 1, "info": 2}
EGFR_UNIT = "mL/min/{1.73_m2}"
RECENT_LEVEL = f.lab("11253-2", 8.0, "ng/mL", days=5)


def topic(card: dict) -> str:
    return card["source"]["topic"]["code"]


def by_topic(cards: list[dict]) -> dict[str, dict]:
    topics = [topic(c) for c in cards]
    assert len(topics) == len(set(topics)), f"more than one card per topic: {topics}"
    return dict(zip(topics, cards, strict=True))


def actions(card: dict) -> list[dict]:
    return [a for s in card.get("suggestions", []) for a in s["actions"]]


def created(card: dict, resource_type: str) -> list[dict]:
    return [a["resource"] for a in actions(card)
            if a["type"] == "create" and a["resource"]["resourceType"] == resource_type]


def loinc_codes(service_requests: list[dict]) -> set[str]:
    return {c["code"] for r in service_requests for c in r["code"]["coding"] if c["system"] == f.LOINC}


def hook(call_hook, *resources, encounter_id=None, tacrolimus=True):
    meds = [f.tacrolimus()] if tacrolimus else []
    return call_hook(f.hook_request([*meds, *resources], encounter_id=encounter_id))


# --------------------------------------------------------------------------------------------
# Section 3 and 10: one severity card per class, in each unit


MG_DATE = f.days_ago(3)[:10]  # the results below are 3 days old


# Symptoms: seizure (91175000) is major (critical); tremor (26079004) is minor (warning, section 3).
@pytest.mark.parametrize("value, unit, symptom, indicator, title", [
    (0.8, "mEq/L", None, "critical", "Severe low magnesium"),
    (0.4, "mmol/L", None, "critical", "Severe low magnesium"),
    (1.1, "mg/dL", None, "critical", "Severe low magnesium"),
    (1.3, "mEq/L", "91175000", "critical", "Symptomatic low magnesium with seizure"),
    (0.65, "mmol/L", "91175000", "critical", "Symptomatic low magnesium with seizure"),
    (1.6, "mg/dL", "91175000", "critical", "Symptomatic low magnesium with seizure"),
    (1.3, "mEq/L", "26079004", "warning", "Low magnesium with tremor"),
    (0.65, "mmol/L", "26079004", "warning", "Low magnesium with tremor"),
    (1.6, "mg/dL", "26079004", "warning", "Low magnesium with tremor"),
    (1.2, "mEq/L", None, "warning", "Low magnesium: Mg 1.2"),
    (0.6, "mmol/L", None, "warning", "Low magnesium: Mg 0.6"),
    (1.5, "mg/dL", None, "warning", "Low magnesium: Mg 1.5"),
    (1.45, "mEq/L", None, "info", "Magnesium just below target"),
    (0.72, "mmol/L", None, "info", "Magnesium just below target"),
    (1.78, "mg/dL", None, "info", "Magnesium just below target"),
])
def test_severity_card_in_each_unit(call_hook, value, unit, symptom, indicator, title):
    resources = [f.magnesium(value, unit, days=3), RECENT_LEVEL]
    if symptom:
        resources.append(f.condition(snomed=symptom, days=2))
    cards = by_topic(hook(call_hook, *resources))
    card = cards["mg-severity"]
    assert card["indicator"] == indicator
    summary = card["summary"]
    assert summary.startswith(title)
    assert f"{value:g} {unit}" in summary
    assert MG_DATE in summary and re.search(r"\d{4}-\d{2}-\d{2}", summary)
    assert len(summary) <= 140
    if unit != "mEq/L":
        assert re.search(r"\(\d\.\d{2,3} mEq/L, ", summary), "the mEq/L equivalent where the unit differs"
    assert "—" not in summary and "patient on tacrolimus" not in summary  # section 10: no filler
    assert "mg-monitoring" not in cards


@pytest.mark.parametrize("value, unit", [(1.8, "mEq/L"), (0.85, "mmol/L"), (2.0, "mg/dL")])
def test_at_target_gives_no_card(call_hook, value, unit):
    assert hook(call_hook, f.magnesium(value, unit, days=3)) == []


@pytest.mark.parametrize("value, unit, drug, route_code", [
    (0.8, "mEq/L", "magnesium sulfate", "47625008"),
    (1.2, "mEq/L", "magnesium oxide", "26643006"),
])
def test_supplementation_suggestion_is_a_valid_draft_order(call_hook, value, unit, drug, route_code):
    body = f.hook_request([f.tacrolimus(), f.magnesium(value, unit, days=3), f.encounter("AMB")],
                          encounter_id="enc-1")
    card = by_topic(call_hook(body))["mg-severity"]
    [order] = created(card, "MedicationRequest")
    MedicationRequest.model_validate(order)
    assert order["status"] == "draft" and order["intent"] == "order"
    assert order["subject"] == {"reference": "Patient/pat-1"}
    assert order["encounter"] == {"reference": "Encounter/enc-1"}
    assert drug in order["medicationCodeableConcept"]["text"].lower()
    dosage = order["dosageInstruction"][0]
    assert dosage["text"] and dosage["timing"] and dosage["doseAndRate"]
    assert dosage["route"]["coding"][0]["code"] == route_code
    assert "CAUTION" not in dosage["text"]
    recheck = next(r for r in created(card, "ServiceRequest") if loinc_codes([r]) == {"19123-9"})
    assert recheck["encounter"] == {"reference": "Encounter/enc-1"}
    # No FEMg work-up next to a supplement (section 7: the dose makes it uninterpretable); with
    # no eGFR or creatinine on record a serum creatinine rides along with the recheck (section 3);
    # no tacrolimus level on record: a trough (section 7).
    assert loinc_codes(created(card, "ServiceRequest")) == {"19123-9", "2160-0", "11253-2"}
    assert "Renal function unknown" in card["detail"]


def test_no_encounter_reference_without_an_encounter_in_the_hook(call_hook):
    card = by_topic(hook(call_hook, f.magnesium(1.2, days=3)))["mg-severity"]
    for resource in created(card, "MedicationRequest") + created(card, "ServiceRequest"):
        assert "encounter" not in resource
        assert resource["subject"] == {"reference": "Patient/pat-1"}


@pytest.mark.parametrize("scenario", [
    [f.magnesium(0.8, days=3), f.medication("omeprazole 20 mg", id="ppi-1")],
    [f.magnesium(1.2, days=60), f.medication("furosemide 40 mg")],
    [f.magnesium(1.45, days=60)],
    [],
    [f.magnesium(0.6, "mmol/L", days=3), f.medication("magnesium oxide 400 mg", days=60),
     f.magnesium(0.6, "mmol/L", days=30)],
], ids=["severe+ppi", "stale-mild", "stale-below-target", "never-measured", "persistent"])
def test_every_suggested_resource_is_valid_fhir_r4(call_hook, scenario):
    cards = hook(call_hook, *scenario, encounter_id="enc-1")
    resources = [a["resource"] for c in cards for a in actions(c) if a["type"] == "create"]
    assert resources
    for resource in resources:
        VALIDATORS[resource["resourceType"]].model_validate(resource)
        assert resource["status"] == "draft"
        assert resource["intent"] == "order"
        assert resource["subject"] == {"reference": "Patient/pat-1"}
        assert resource["encounter"] == {"reference": "Encounter/enc-1"}
        if resource["resourceType"] == "ServiceRequest":
            assert {c["system"] for c in resource["code"]["coding"]} == {f.LOINC}


# --------------------------------------------------------------------------------------------
# Renal caution (eGFR below 30) on every supplementation suggestion


@pytest.mark.parametrize("mg, egfr, caution", [
    (0.8, 29, True),
    (1.2, 29, True),
    (1.2, 30, False),
    (0.8, 45, False),
])
def test_renal_caution_in_the_dosage_text(call_hook, mg, egfr, caution):
    card = by_topic(hook(call_hook, f.magnesium(mg, days=3), f.lab("98979-8", egfr, EGFR_UNIT, days=2)))["mg-severity"]
    orders = created(card, "MedicationRequest")
    assert orders
    for order in orders:
        text = order["dosageInstruction"][0]["text"]
        assert ("CAUTION" in text and "IV halved, oral once daily" in text and f"eGFR {egfr}" in text) is caution
    assert ("IV halved, oral once daily" in card["detail"]) is caution


# --------------------------------------------------------------------------------------------
# Section 7: contributing factors -> delete suggestions (the clinician decides)


def test_wasting_drugs_get_delete_suggestions_not_recommended(call_hook):
    cards = by_topic(hook(call_hook, f.magnesium(1.2, days=3), RECENT_LEVEL,
                          f.medication("omeprazole 20 mg", id="ppi-1"),
                          f.medication("Lasix 40 mg", id="loop-1"),
                          f.medication("pantoprazole 40 mg", id="old-ppi", status="stopped")))
    card = cards["mg-contributing"]
    assert card["indicator"] == "warning"
    assert "omeprazole" in card["summary"] and "furosemide" in card["summary"]
    deletes = [(s, a) for s in card["suggestions"] for a in s["actions"] if a["type"] == "delete"]
    assert sorted(a["resourceId"] for _, a in deletes) == ["MedicationRequest/loop-1", "MedicationRequest/ppi-1"]
    assert all(s["isRecommended"] is False for s, _ in deletes)
    assert "famotidine" in card["detail"]  # the PPI alternative


def test_missing_tacrolimus_level_is_a_trough_on_the_severity_card_not_a_factor(call_hook):
    cards = by_topic(hook(call_hook, f.magnesium(1.2, days=3)))
    assert "mg-contributing" not in cards  # section 7, revision 2: never a card by itself
    severity = cards["mg-severity"]
    assert "11253-2" in loinc_codes(created(severity, "ServiceRequest"))
    assert "No tacrolimus level in the last 90 days" in severity["detail"]  # transplant not on record


def test_below_target_gets_only_its_info_card(call_hook):
    cards = by_topic(hook(call_hook, f.magnesium(1.45, days=3), f.medication("omeprazole 20 mg")))
    assert list(cards) == ["mg-severity"]
    assert cards["mg-severity"]["indicator"] == "info"


def test_femg_card_shows_the_value_to_one_decimal(call_hook):
    cards = by_topic(hook(call_hook, RECENT_LEVEL, f.magnesium(1.5, "mg/dL", days=1),
                          f.lab("2160-0", 1.2, "mg/dL", days=1),
                          f.lab("19124-7", 8.0, "mg/dL", days=1.1),
                          f.lab("2161-8", 60.0, "mg/dL", days=1.1)))
    card = cards["mg-femg"]
    assert card["summary"].startswith("FEMg 15.2% ")
    assert "renal magnesium wasting" in card["summary"]
    assert "suggestions" not in card


def test_no_femg_workup_next_to_a_supplement_suggestion(call_hook):
    cards = by_topic(hook(call_hook, RECENT_LEVEL, f.magnesium(1.2, days=1)))
    assert "mg-femg" not in cards  # no separate card for what is not there
    assert not any("FEMg" in s["label"] for s in cards["mg-severity"]["suggestions"])


def test_femg_workup_is_on_the_persistent_card_before_the_next_dose(call_hook):
    cards = by_topic(hook(call_hook, RECENT_LEVEL, f.medication("magnesium oxide 400 mg", days=60),
                          f.magnesium(1.2, days=30), f.magnesium(1.3, days=3)))
    workup = next(s for s in cards["mg-persistent"]["suggestions"] if "FEMg" in s["label"])
    assert workup["isRecommended"] is False
    orders = [a["resource"] for a in workup["actions"]]
    assert loinc_codes(orders) == {"19124-7", "2161-8", "2160-0"}
    assert all("before the next magnesium dose" in o["note"][0]["text"] for o in orders)


def test_persistent_card(call_hook):
    cards = by_topic(hook(call_hook, RECENT_LEVEL, f.medication("magnesium oxide 400 mg", days=60),
                          f.magnesium(1.2, days=30), f.magnesium(1.3, days=3)))
    card = cards["mg-persistent"]
    assert "mg-severity" not in cards  # one card per result: persistence replaces it
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Persistent low magnesium despite supplement: Mg 1.3 mEq/L")
    assert "increase magnesium oxide" in card["summary"] and "Start" not in card["detail"]
    assert "amiloride" in card["detail"] and "FEMg" in card["detail"]


# --------------------------------------------------------------------------------------------
# Section 10: order, one card per topic, override reasons, no empty values


def test_cards_are_ordered_critical_warning_info_one_per_topic(call_hook):
    cards = hook(call_hook, f.magnesium(0.8, days=3), f.medication("omeprazole 20 mg", id="ppi-1"),
                 f.medication("magnesium oxide 400 mg", days=60), f.magnesium(1.2, days=30))
    ranks = [INDICATOR_RANK[c["indicator"]] for c in cards]
    assert ranks == sorted(ranks)
    # Severe and persistent: ONE critical card (persistence replaces severity), then the factors.
    assert set(by_topic(cards)) == {"mg-contributing", "mg-persistent"}
    assert [c["indicator"] for c in cards] == ["critical", "warning"]
    assert any("IV" in s["label"] for s in by_topic(cards)["mg-persistent"]["suggestions"])


def _no_empty(value, path="$"):
    assert value is not None and value != "" and value != [] and value != {}, path
    if isinstance(value, dict):
        for key, item in value.items():
            _no_empty(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_empty(item, f"{path}[{i}]")


@pytest.mark.parametrize("scenario", [
    [f.magnesium(0.8, days=3), f.medication("omeprazole 20 mg"), f.condition("seizure", days=1)],
    [f.magnesium(1.9, days=3), f.condition(snomed="26079004", days=1)],
    [],
], ids=["severe", "symptoms-normal-mg", "never-measured"])
def test_every_card_is_complete(call_hook, scenario):
    cards = hook(call_hook, *scenario)
    assert cards
    for card in cards:
        _no_empty(card)
        assert len(card["summary"]) <= 140
        assert card["uuid"]
        assert card["source"]["label"] and card["source"]["url"].endswith("/" + topic(card))
        reasons = {r["code"] for r in card["overrideReasons"]}
        assert reasons >= {"already-addressed", "not-relevant"}
        # "Lab ordered elsewhere" only where the card asks for a lab (section 10).
        asks_for_lab = any(a["type"] == "create" and a["resource"]["resourceType"] == "ServiceRequest"
                           for s in card.get("suggestions", []) for a in s["actions"])
        assert ("lab-elsewhere" in reasons) == asks_for_lab
        assert ("patient-declined" in reasons) == bool(card.get("suggestions"))
        assert card["links"] == [{"label": "How this advice is derived", "url": card["source"]["url"],
                                  "type": "absolute"}]
        if card.get("suggestions"):
            assert card["selectionBehavior"] == "any"
            assert all(s["uuid"] for s in card["suggestions"])


# --------------------------------------------------------------------------------------------
# Section 4: monitoring


def test_never_measured_is_due(call_hook):
    cards = hook(call_hook)
    [card] = cards
    assert topic(card) == "mg-monitoring"
    assert card["indicator"] == "warning"
    assert "never measured" in card["summary"]
    assert loinc_codes(created(card, "ServiceRequest")) == {"19123-9"}


def test_monitoring_card_names_the_last_result_and_the_interval(call_hook):
    [card] = hook(call_hook, f.magnesium(0.9, "mmol/L", days=50))
    assert topic(card) == "mg-monitoring"
    assert "0.9 mmol/L" in card["summary"] and f.days_ago(50)[:10] in card["summary"]
    assert "42-day" in card["summary"]


def test_hospitalized_patient_is_due_after_3_days(call_hook):
    body = f.hook_request([f.tacrolimus(), f.magnesium(1.8, days=4), f.encounter("IMP")], encounter_id="enc-1")
    [card] = call_hook(body)
    assert topic(card) == "mg-monitoring" and "3-day" in card["summary"]
    # Due now, within the 3-day interval (not the outpatient week).
    [order] = created(card, "ServiceRequest")
    assert order["occurrencePeriod"] == {"start": "2026-11-25", "end": "2026-11-28"}


def test_an_outpatient_due_test_is_ordered_within_a_week(call_hook):
    [card] = hook(call_hook, f.magnesium(1.8, days=50))
    [order] = created(card, "ServiceRequest")
    assert order["occurrencePeriod"] == {"start": "2026-11-25", "end": "2026-12-02"}


@pytest.mark.parametrize("value, days, indicator", [
    (1.2, 50, "warning"),
    (0.8, 50, "critical"),
    (1.45, 50, "warning"),   # a stale below-target result is also due: not milder than the due card
])
def test_stale_severity_card_says_the_interval_and_asks_for_a_repeat(call_hook, value, days, indicator):
    cards = by_topic(hook(call_hook, RECENT_LEVEL, f.magnesium(value, days=days)))
    assert "mg-monitoring" not in cards  # the repeat request is on the severity card
    card = cards["mg-severity"]
    assert card["indicator"] == indicator
    assert f"{days} days old, beyond the 42-day monitoring interval" in card["detail"]
    assert f"({days} days ago)" in card["summary"] and "repeat Mg now" in card["summary"]
    repeat = next(r for r in created(card, "ServiceRequest") if loinc_codes([r]) == {"19123-9"})
    assert repeat["occurrencePeriod"] == {"start": "2026-11-25", "end": "2026-11-27"}


# --------------------------------------------------------------------------------------------
# Scope and readability


@pytest.mark.parametrize("medications", [
    [],
    [f.medication("tacrolimus 0.1% ointment")],
    [f.medication("Protopic 0.1%", route="topical")],
    [f.tacrolimus(status="stopped")],
])
def test_no_cards_when_not_on_systemic_tacrolimus(call_hook, medications):
    assert hook(call_hook, *medications, f.magnesium(0.3, days=1), tacrolimus=False) == []


def test_ionized_magnesium_is_shown_but_not_classified(call_hook):
    [card] = hook(call_hook, f.magnesium(0.3, "mmol/L", code="73573-8", days=1))
    assert topic(card) == "mg-monitoring"
    assert "no serum Mg on record (ionized 0.3 mmol/L on 2026-11-24)" in card["summary"]


def test_ionized_magnesium_is_shown_on_the_severity_card(call_hook):
    cards = by_topic(hook(call_hook, f.magnesium(1.2, days=2), f.magnesium(0.4, "mmol/L", code="73573-8", days=1)))
    assert "Ionized magnesium 0.4 mmol/L" in cards["mg-severity"]["detail"]
    assert cards["mg-severity"]["indicator"] == "warning"


def test_unreadable_newer_result_is_mentioned(call_hook):
    cards = by_topic(hook(call_hook, RECENT_LEVEL, f.magnesium(1.2, days=5), f.magnesium(0.4, "mg/kg", days=1)))
    detail = cards["mg-severity"]["detail"]
    assert "Could not read a magnesium result" in detail and "mg/kg" in detail
    assert "1.2 mEq/L" in cards["mg-severity"]["summary"]


def test_symptoms_with_normal_magnesium_get_an_info_card(call_hook):
    cards = by_topic(hook(call_hook, f.magnesium(1.9, days=3), f.condition(snomed="26079004", days=1)))
    assert list(cards) == ["mg-symptoms"]
    assert cards["mg-symptoms"]["indicator"] == "info"
    assert "1.9 mEq/L" in cards["mg-symptoms"]["summary"]


def test_already_supplemented_patient_is_not_offered_a_second_supplement(call_hook):
    supplement = f.medication("magnesium oxide 400 mg tablet", days=20)
    cards = hook(call_hook, supplement, f.magnesium(1.2, days=1))
    severity = by_topic(cards)["mg-severity"]
    assert created(severity, "MedicationRequest") == []
    assert "Already on magnesium oxide 400 mg tablet" in severity["detail"]
    assert "19123-9" in loinc_codes(created(severity, "ServiceRequest"))


def test_stale_low_result_recommends_the_repeat_level_first(call_hook):
    cards = hook(call_hook, f.magnesium(1.2, days=50))
    severity = by_topic(cards)["mg-severity"]
    supplement = next(s for s in severity["suggestions"] if "Magnesium oxide" in s["label"])
    assert supplement["isRecommended"] is False
    assert "beyond the 42-day monitoring interval" in severity["detail"]


def test_unreadable_newer_result_gets_its_own_card_when_nothing_else_applies(call_hook):
    cards = hook(call_hook, f.magnesium(1.8, days=5), f.magnesium(0.4, "furlongs", days=1))
    assert [topic(c) for c in cards] == ["mg-not-used"]
    assert cards[0]["indicator"] == "info"
    assert "could not be read (0.4 furlongs)" in cards[0]["summary"]
    assert "last usable Mg 1.8 mEq/L" in cards[0]["summary"]


def test_preliminary_newer_result_is_shown(call_hook):
    cards = hook(call_hook, f.magnesium(1.8, days=5), f.magnesium(0.5, days=1, status="preliminary"))
    assert [topic(c) for c in cards] == ["mg-not-used"]
    assert "is preliminary (0.5 mEq/L)" in cards[0]["summary"]


def test_long_names_from_the_ehr_are_clipped_in_cards(call_hook):
    long_name = "omeprazole " + "x" * 5000
    cards = hook(call_hook, f.medication(long_name), f.magnesium(1.2, days=1))
    contributing = by_topic(cards)["mg-contributing"]
    assert "x" * 100 not in contributing["detail"]
    assert len(contributing["summary"]) <= 140


# --- Review fixes ------------------------------------------------------------------------------


def test_old_severe_result_asks_for_a_repeat_before_iv_magnesium(call_hook):
    severity = by_topic(hook(call_hook, f.magnesium(0.8, days=400)))["mg-severity"]
    first, iv = severity["suggestions"][0], next(s for s in severity["suggestions"] if "IV" in s["label"])
    assert "serum magnesium" in first["label"].lower()
    assert iv["isRecommended"] is False


@pytest.mark.parametrize("mg, dose, per_day, text", [
    (1.2, 400, 1, "400 mg (241 mg elemental) by mouth once daily"),  # never half a tablet
    (0.8, 1000, 1, "1 g IV over 1 hour: dose halved for renal impairment"),
])
def test_renal_caution_lowers_the_structured_dose_as_the_text_says(call_hook, mg, dose, per_day, text):
    cards = hook(call_hook, f.magnesium(mg, days=1), f.lab("98979-8", 20, "mL/min/{1.73_m2}", days=1))
    (order,) = created(by_topic(cards)["mg-severity"], "MedicationRequest")
    dosage = order["dosageInstruction"][0]
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == dose
    assert text in dosage["text"] and "half a" not in dosage["text"]
    if mg > 1:
        assert dosage["timing"]["repeat"]["frequency"] == per_day


def test_abdominal_cramps_are_not_a_magnesium_symptom(call_hook):
    cards = hook(call_hook, f.magnesium(1.3, days=1), f.condition("Abdominal cramps", days=1))
    assert by_topic(cards)["mg-severity"]["indicator"] == "warning"


def test_recent_onset_counts_even_when_recorded_long_ago(call_hook):
    seizure = f.condition(snomed="91175000", days=60)
    seizure["onsetDateTime"] = f.days_ago(2)
    cards = hook(call_hook, f.magnesium(1.2, days=1), seizure)
    assert by_topic(cards)["mg-severity"]["indicator"] == "critical"


def test_one_card_asks_for_each_test(call_hook):
    # Low Mg, no recent trough, a PPI and an azole: several cards, each test suggested once.
    body = f.order_request([f.tacrolimus(), f.magnesium(1.2, days=1)],
                           [f.draft(f.medication("omeprazole 20 mg")), f.draft(f.medication("fluconazole 200 mg"))])
    cards = call_hook(body, "/cds-services/tacrolimus-magnesium-order-select")
    ordered = [code for card in cards for code in loinc_codes(created(card, "ServiceRequest"))]
    assert sorted(ordered) == sorted(set(ordered))
    assert {"19123-9", "11253-2"} <= set(ordered)
    for card in cards:
        assert ("selectionBehavior" in card) == bool(card.get("suggestions"))


def test_persistent_card_carries_the_renal_caution(call_hook):
    supplement = f.medication("magnesium oxide 400 mg tablet", days=60)
    cards = hook(call_hook, supplement, f.magnesium(1.2, days=30), f.magnesium(1.1, days=1),
                 f.lab("98979-8", 22, "mL/min/{1.73_m2}", days=1))
    assert "Caution: renal impairment" in by_topic(cards)["mg-persistent"]["detail"]


def test_only_a_preliminary_result_is_not_called_never_measured(call_hook):
    cards = hook(call_hook, f.magnesium(1.8, days=1, status="preliminary"))
    assert "is still preliminary" in by_topic(cards)["mg-monitoring"]["summary"]


def test_rule_page_shows_the_egfr_rise_as_a_percentage(client):
    assert "eGFR up by 20% or more" in client.get("/docs/rules/mg-contributing").get_data(as_text=True)


# --- Clinician review ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Mg", "Mg, serum", "Serum Mg", "MG (SERUM)"])
def test_lab_systems_short_names_for_magnesium_are_read(call_hook, text):
    result = f.magnesium(0.9, days=1, code=None, text=text)
    cards = hook(call_hook, result)
    assert by_topic(cards)["mg-severity"]["indicator"] == "critical"


def test_egfr_sent_as_text_carries_the_renal_caution(call_hook):
    egfr = f.lab("98979-8", 1, "mL/min/{1.73_m2}", days=1)
    del egfr["valueQuantity"]
    egfr["valueString"] = "<15"
    (order,) = created(by_topic(hook(call_hook, f.magnesium(0.8, days=1), egfr))["mg-severity"],
                       "MedicationRequest")
    assert order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 1000


def test_no_egfr_on_record_is_said_before_supplementing(call_hook):
    severity = by_topic(hook(call_hook, f.magnesium(0.8, days=1)))["mg-severity"]
    assert "Renal function unknown" in severity["detail"]
    assert "2160-0" in loinc_codes(created(severity, "ServiceRequest"))  # a serum creatinine


def test_iv_magnesium_ordered_today_is_not_suggested_again(call_hook):
    given = f.medication("magnesium sulfate 2 g IV", days=0.2)
    severity = by_topic(hook(call_hook, given, f.magnesium(0.8, days=0.5)))["mg-severity"]
    assert created(severity, "MedicationRequest") == []
    assert "Magnesium already given or ordered since this result: magnesium sulfate 2 g IV" in severity["detail"]


def test_newer_preliminary_result_is_in_the_summary_and_asks_for_a_repeat_now(call_hook):
    cards = hook(call_hook, f.magnesium(1.2, days=10), f.magnesium(0.8, days=1, status="preliminary"))
    severity = by_topic(cards)["mg-severity"]
    assert "; preliminary Mg 0.8 mEq/L on 2026-11-24" in severity["summary"]
    assert len(severity["summary"]) <= 140
    repeat = next(r for r in created(severity, "ServiceRequest") if loinc_codes([r]) == {"19123-9"})
    assert repeat["occurrencePeriod"]["end"] == "2026-11-27"


@pytest.mark.parametrize("symptom", ["91175000", "26079004"])
def test_seizure_or_tremor_points_at_tacrolimus_neurotoxicity(call_hook, symptom):
    cards = hook(call_hook, f.magnesium(1.2, days=1), f.condition(snomed=symptom, days=1))
    severity = by_topic(cards)["mg-severity"]
    assert "also a sign of tacrolimus toxicity" in severity["detail"]
    assert " with " in severity["summary"]


def test_below_target_with_a_symptom_is_one_card(call_hook):
    cards = hook(call_hook, f.magnesium(1.45, days=1), f.condition(snomed="55300003", days=1))
    assert [topic(c) for c in cards] == ["mg-severity"]
    assert "empirical trial" in cards[0]["detail"]
    assert "1.82 mg/dL, 0.75 mmol/L" in cards[0]["detail"]  # the target in every unit


def test_high_trough_gets_tacrolimus_advice_and_no_drug_advice(call_hook):
    cards = hook(call_hook, f.magnesium(1.2, days=1), f.lab("11253-2", 18.2, "ng/mL", days=2))
    contributing = by_topic(cards)["mg-contributing"]
    assert "Review the tacrolimus dose with the transplant team" in contributing["detail"]
    assert "stop drugs" not in contributing["detail"]


def test_tacrolimus_level_in_nmol_per_l_is_read(call_hook):
    cards = hook(call_hook, f.magnesium(1.2, days=1), f.lab("11253-2", 22, "nmol/L", days=2))
    contributing = by_topic(cards)["mg-contributing"]
    assert "tacrolimus level 22 nmol/L" in contributing["summary"]  # 17.7 ng/mL: above 15
    assert "No tacrolimus level" not in contributing["detail"]


def test_persistent_low_is_escalated_on_one_card_not_repeated(call_hook):
    supplement = f.medication("magnesium oxide 400 mg tablet", days=60)
    cards = by_topic(hook(call_hook, supplement, f.magnesium(1.2, days=30), f.magnesium(1.1, days=1)))
    assert "mg-severity" not in cards
    assert "check adherence" in cards["mg-persistent"]["detail"]
