"""Suggested orders (docs/clinical-rules.md sections 3, 6 and 9): coded where a verified code exists,
always with text, pointed at the hospital's own orderables by CDS_ORDERABLES, and safe to take in
a client that applies actions the way the CDS Hooks sandbox does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cds_service import cli, create_app
from cds_service.config import Settings
from cds_service.guideline.suggestions import PRODUCT_KEYS

from .fixture_replay import SCENARIOS, all_cards, load_request, replay

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
ORDER_HOOKS = ("order-select", "order-sign")


def creates(card: dict) -> list[dict]:
    return [a["resource"] for s in card.get("suggestions", []) for a in s["actions"] if a["type"] == "create"]


def concept(resource: dict) -> dict:
    return resource.get("medicationCodeableConcept") or resource["code"]


@pytest.fixture(scope="module")
def default_answers():
    with pytest.MonkeyPatch.context() as monkeypatch:
        return replay(monkeypatch)


# --------------------------------------------------------------------------------------------
# Coding (section 9)

EXPECTED_DRUG_CODES = {"magnesium oxide 400 mg oral tablet": ("198741", "magnesium oxide 400 MG Oral Tablet"),
                       "famotidine 20 mg oral tablet": ("310273", "famotidine 20 MG Oral Tablet")}


def test_every_suggested_drug_is_coded_where_a_verified_code_exists_and_always_has_text(default_answers):
    seen = set()
    for _, card in all_cards(default_answers):
        for resource in creates(card):
            if resource["resourceType"] != "MedicationRequest":
                continue
            drug = resource["medicationCodeableConcept"]
            assert drug["text"], drug
            seen.add(drug["text"])
            if drug["text"] in EXPECTED_DRUG_CODES:
                code, display = EXPECTED_DRUG_CODES[drug["text"]]
                assert drug["coding"] == [{"system": RXNORM, "code": code, "display": display}]
            else:  # magnesium sulfate IV: its RxNorm code is not confirmed (section 9): text only
                assert drug["text"].startswith("magnesium sulfate") and "coding" not in drug
    assert seen >= set(EXPECTED_DRUG_CODES) | {"magnesium sulfate 40 mg/mL injection (2 g in 50 mL premix)"}


def test_every_suggested_lab_is_loinc_coded_with_text(default_answers):
    seen = set()
    for _, card in all_cards(default_answers):
        for resource in creates(card):
            if resource["resourceType"] == "ServiceRequest":
                code = resource["code"]
                assert code["text"] and code["coding"][0]["system"] == LOINC
                seen.add(code["coding"][0]["code"])
    assert seen >= {"19123-9", "11253-2"}


# --------------------------------------------------------------------------------------------
# CDS_ORDERABLES: the hospital's own orderables

HOSPITAL = "urn:oid:2.16.840.1.113883.3.9999.1"
ORDERABLES = {key: {"system": HOSPITAL, "code": f"LOCAL-{key.upper()}", "display": f"Local {key}"}
              for key in PRODUCT_KEYS}


def test_the_orderable_map_is_applied_to_every_suggestion(monkeypatch, default_answers):
    answers = replay(monkeypatch, {"orderables": json.dumps(ORDERABLES)})
    local_codes = {entry["code"] for entry in ORDERABLES.values()}
    used = set()
    for name, card in all_cards(answers):
        for resource in creates(card):
            coded = concept(resource)
            first = coded["coding"][0]
            assert first["system"] == HOSPITAL and first["code"] in local_codes, (name, coded)
            used.add(first["code"])
            assert coded["text"]  # the text stays, for an EHR that cannot map the code either
    assert {"LOCAL-SERUM_MG", "LOCAL-TACROLIMUS_TROUGH", "LOCAL-FAMOTIDINE_20_TABLET",
            "LOCAL-MAGNESIUM_OXIDE_400_TABLET", "LOCAL-MAGNESIUM_SULFATE_IV", "LOCAL-URINE_MG"} <= used
    # The same cards otherwise: the map changes codings only.
    assert [(n, c["summary"]) for n, c in all_cards(answers)] == [
        (n, c["summary"]) for n, c in all_cards(default_answers)]


def test_the_standard_code_follows_the_hospital_code(monkeypatch):
    orderables = {"famotidine_20_tablet": ORDERABLES["famotidine_20_tablet"]}
    answers = replay(monkeypatch, {"orderables": json.dumps(orderables)})
    famotidine = next(r for _, c in all_cards(answers) for r in creates(c)
                      if r["resourceType"] == "MedicationRequest"
                      and "famotidine" in r["medicationCodeableConcept"]["text"])
    coding = famotidine["medicationCodeableConcept"]["coding"]
    assert [c["code"] for c in coding] == ["LOCAL-FAMOTIDINE_20_TABLET", "310273"]


@pytest.mark.parametrize("raw, message", [
    ("{", "CDS_ORDERABLES is not valid JSON"),
    ("[]", "CDS_ORDERABLES must be a JSON object"),
    ('{"famotidine_20": {"system": "s", "code": "c"}}', "unknown product key 'famotidine_20'"),
    ('{"serum_mg": "LOCAL-1"}', r"CDS_ORDERABLES\['serum_mg'\] must be an object"),
    ('{"serum_mg": {"system": "s"}}', r"CDS_ORDERABLES\['serum_mg'\] needs a non-empty 'system' and 'code'"),
    ('{"serum_mg": {"system": "", "code": "x"}}', "needs a non-empty 'system' and 'code'"),
    ('{"serum_mg": {"system": "s", "code": "x", "display": 3}}', "'display' must be text"),
    ('{"serum_mg": {"system": "s", "code": "x", "dispaly": "typo"}}', "unknown field"),
])
def test_a_bad_orderable_map_stops_the_service_at_start_up(monkeypatch, raw, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env({"CDS_ORDERABLES": raw})
    monkeypatch.setenv("CDS_ORDERABLES", raw)
    with pytest.raises(ValueError, match=message):
        create_app({"log_level": "WARNING"})


def test_cli_reports_a_bad_orderable_map_without_a_trace(monkeypatch, capsys):
    monkeypatch.setenv("CDS_ORDERABLES", '{"nope": {}}')
    request = next(s for s in SCENARIOS if s["name"] == "order-ppi-on-tacrolimus")
    path = Path(__file__).resolve().parent.parent / "fhir_fixtures" / "requests" / request["request"]
    assert cli.main(["evaluate", str(path)]) == 1  # a bad setting is bad input (exit 1)
    err = capsys.readouterr().err
    assert "configuration error: CDS_ORDERABLES: unknown product key 'nope'" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------
# Taking suggestions the way the CDS Hooks sandbox does
#
# The sandbox (cds-hooks/sandbox, src/reducers/medication-reducers.js, TAKE_SUGGESTION) walks a
# suggestion's actions in order over its single draft medication: a create/update whose resource
# has a medicationCodeableConcept with text and coding[0].code replaces the draft and ends the
# walk; a create it cannot map (no code, or not a medication, e.g. a ServiceRequest) is skipped;
# a delete empties the draft and ends the walk, whatever resourceId it names.


def take_like_the_sandbox(draft: dict | None, suggestion: dict) -> dict | None:
    for action in suggestion["actions"]:
        if action["type"] in ("create", "update"):
            medication = (action.get("resource") or {}).get("medicationCodeableConcept")
            if medication and medication.get("text") and (medication.get("coding") or [{}])[0].get("code"):
                return {"name": medication["text"], "code": medication["coding"][0]["code"]}
        elif action["type"] == "delete":
            return None
    return draft


def draft_in_the_sandbox(request: dict) -> dict | None:
    """The order being written: the (first selected) medication draft, as the sandbox holds it."""
    entries = [e["resource"] for e in request["context"]["draftOrders"]["entry"]]
    selected = request["context"].get("selections")
    drafts = [r for r in entries if r["resourceType"] == "MedicationRequest"
              and (selected is None or f"MedicationRequest/{r['id']}" in selected)]
    for resource in drafts:
        medication = resource.get("medicationCodeableConcept") or {}
        coding = (medication.get("coding") or [{}])[0]
        return {"name": medication.get("text") or coding.get("display"), "code": coding.get("code")}
    return None


def drafts_named(scenario: dict) -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for e in load_request(scenario)["context"]["draftOrders"]["entry"]}


@pytest.mark.parametrize("config", [{}, {"orderables": json.dumps(ORDERABLES)}], ids=["standard", "orderables"])
def test_every_suggestion_taken_in_the_sandbox_leaves_an_order(monkeypatch, config):
    answers = replay(monkeypatch, config)
    by_name = {s["name"]: s for s in SCENARIOS}
    kinds = set()
    for name, cards in answers.items():
        scenario = by_name[name]
        if scenario["hook"] not in ORDER_HOOKS:
            continue
        start = draft_in_the_sandbox(load_request(scenario))
        for card in cards:
            for suggestion in card.get("suggestions", []):
                kinds.add((card["source"]["topic"]["code"], suggestion["label"].split(" (")[0]))
                result = take_like_the_sandbox(start, suggestion)
                removes_this_draft = any(a["type"] == "delete" and a["resourceId"] in drafts_named(scenario)
                                         for a in suggestion["actions"])
                if start is not None and not removes_this_draft:
                    assert result is not None, (name, suggestion["label"])  # never an empty order
                for action in suggestion["actions"]:  # a delete in an order hook only removes a draft
                    if action["type"] == "delete":
                        assert action["resourceId"] in drafts_named(scenario), (name, action)
                medications = [a["resource"] for a in suggestion["actions"] if a["type"] == "create"
                               and a["resource"]["resourceType"] == "MedicationRequest"]
                coded = [m for m in medications
                         if (m["medicationCodeableConcept"].get("coding") or [{}])[0].get("code")]
                if coded:  # a coded drug suggestion ends as that drug
                    assert result == {"name": coded[0]["medicationCodeableConcept"]["text"],
                                      "code": coded[0]["medicationCodeableConcept"]["coding"][0]["code"]}
    # The kinds of suggestion the order hooks emit were all played (drug swap, labs, supplements).
    topics = {topic for topic, _ in kinds}
    assert {"mg-order-wasting", "mg-order-interaction", "mg-order-tacrolimus", "mg-severity"} <= topics
    assert any(label.startswith("Replace omeprazole with famotidine") for _, label in kinds)


def test_replacing_omeprazole_ends_with_a_famotidine_order(default_answers):
    card = next(c for c in default_answers["order-ppi-on-tacrolimus"]
                if c["source"]["topic"]["code"] == "mg-order-wasting")
    swap = next(s for s in card["suggestions"] if s["label"] == "Replace omeprazole with famotidine")
    start = draft_in_the_sandbox(load_request(next(s for s in SCENARIOS if s["name"] == "order-ppi-on-tacrolimus")))
    assert start["code"] == "7646"
    assert take_like_the_sandbox(start, swap) == {"name": "famotidine 20 mg oral tablet", "code": "310273"}
    # The old order (delete first) would have left the sandbox with nothing: the model can tell.
    backwards = {**swap, "actions": list(reversed(swap["actions"]))}
    assert take_like_the_sandbox(start, backwards) is None
