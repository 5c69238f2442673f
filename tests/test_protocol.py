"""CDS Hooks 2.0 protocol: discovery, request validation, error statuses, CORS, JSON rules."""

from __future__ import annotations

import json
import re

import pytest

from cds_service import create_app
from cds_service.services import SERVICES

from cds_service.testing import factories as f
from .conftest import ORDER_SELECT, PATIENT_VIEW

ALLOWED_TEMPLATE_TOKENS = {"context.patientId", "context.encounterId", "context.userId",
                           "userPractitionerId", "userPractitionerRoleId", "userPatientId"}


def outcome_text(response) -> str:
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "error"
    return body["issue"][0]["details"]["text"]


# --- Discovery -------------------------------------------------------------------------------


def test_discovery_lists_patient_view_and_order_select(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = {s["hook"]: s for s in response.get_json()["services"]}
    assert set(services) >= {"patient-view", "order-select", "order-sign"}
    for service in services.values():
        assert {"id", "hook", "title", "description", "prefetch"} <= set(service)


def test_prefetch_templates_use_only_cds_hooks_tokens_and_bounded_searches(client):
    for service in client.get("/cds-services").get_json()["services"]:
        for key, template in service["prefetch"].items():
            tokens = set(re.findall(r"\{\{\s*([^}]+?)\s*\}\}", template))
            assert tokens <= ALLOWED_TEMPLATE_TOKENS, (key, tokens)
            if "?" in template:  # searches: patient-scoped, newest first, bounded
                assert "patient={{context.patientId}}" in template, key
                assert re.search(r"[?&]_count=\d+", template), key
                assert "_sort=-" in template, key
                query = template.split("?", 1)[1].replace("http://", "").replace("https://", "")
                assert "_include" not in template and ":" not in query, key


def test_prefetch_asks_for_everything_the_guideline_reads(client):
    templates = " ".join(client.get("/cds-services").get_json()["services"][0]["prefetch"].values())
    for needle in ("Patient/", "MedicationRequest?", "19123-9", "2601-3", "2160-0", "98979-8",
                   "19124-7", "2161-8", "11253-2", "Condition?", "Procedure?", "70536003",
                   "Encounter/{{context.encounterId}}"):
        assert needle in templates, needle


def test_service_ids_are_unique_and_registered_once():
    ids = [s.id for s in SERVICES]
    assert len(ids) == len(set(ids))


# --- Errors ------------------------------------------------------------------------------------


def test_unknown_service_is_404(client):
    response = client.post("/cds-services/nope", json=f.hook_request([]))
    assert response.status_code == 404
    assert "no CDS service" in outcome_text(response)


def test_unknown_route_is_404_operation_outcome(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    outcome_text(response)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_is_415(client, content_type):
    kwargs = {"data": json.dumps(f.hook_request([]))}
    if content_type:
        kwargs["content_type"] = content_type
    response = client.post(PATIENT_VIEW, **kwargs)
    assert response.status_code == 415
    assert "application/json" in outcome_text(response)


def test_fhir_json_content_type_is_accepted(client):
    body = json.dumps(f.hook_request([f.tacrolimus(), f.magnesium(2.0)]))
    response = client.post(PATIENT_VIEW, data=body, content_type="application/fhir+json; charset=utf-8")
    assert response.status_code == 200


@pytest.mark.parametrize("raw, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('"text"', "JSON object"),
    ("[" * 100000 + "]" * 100000, "JSON"),  # nesting too deep for the parser, or not an object
])
def test_malformed_body_is_400(client, raw, message):
    response = client.post(PATIENT_VIEW, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert message in outcome_text(response) or "nests too deeply" in outcome_text(response)


def _without(body: dict, *path: str) -> dict:
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


@pytest.mark.parametrize("mutate, needle", [
    (lambda b: _without(b, "hook"), "'hook' is a required property"),
    (lambda b: _without(b, "hookInstance"), "'hookInstance' is a required property"),
    (lambda b: _without(b, "context"), "'context' is a required property"),
    (lambda b: _without(b, "context", "patientId"), "'patientId' is a required property"),
    (lambda b: _without(b, "context", "userId"), "'userId' is a required property"),
    (lambda b: {**b, "context": "pat-1"}, "context: must be of type object"),
    (lambda b: {**b, "hook": "order-select"}, "answers the 'patient-view' hook"),
    (lambda b: {**b, "fhirServer": "ftp://example.org/fhir"}, "fhirServer"),
    (lambda b: {**b, "fhirAuthorization": {"access_token": "t", "token_type": "Bearer"}}, "requires fhirServer"),
    (lambda b: {**b, "prefetch": {"medications": "a string"}}, "prefetch/medications"),
    (lambda b: {**b, "prefetch": {"medications": {"entry": []}}}, "'resourceType' is a required property"),
])
def test_invalid_request_is_400_and_names_the_problem(client, mutate, needle):
    body = mutate(f.hook_request([f.tacrolimus(), f.magnesium(2.0)]))
    response = client.post(PATIENT_VIEW, json=body)
    assert response.status_code == 400
    assert needle in outcome_text(response)


def test_error_messages_do_not_echo_patient_data(client):
    body = f.hook_request([])
    body["context"]["patientId"] = {"secret": "Jane Doe 1970-01-01"}
    response = client.post(PATIENT_VIEW, json=body)
    assert response.status_code == 400
    assert "Jane" not in response.get_data(as_text=True)


def test_order_select_requires_selections_and_draft_orders(client):
    body = f.hook_request([f.tacrolimus(), f.magnesium(2.0)], hook="order-select")
    del body["context"]["draftOrders"]
    response = client.post(ORDER_SELECT, json=body)
    assert response.status_code == 400
    assert "draftOrders" in outcome_text(response)


def test_unknown_context_keys_and_extensions_are_accepted(call_hook):
    body = f.hook_request([f.tacrolimus(), f.magnesium(2.0)], futureField={"a": 1})
    body["extension"] = {"com.example.ehr": {"x": 1}}
    assert call_hook(body) == []


def test_body_over_the_limit_is_413(monkeypatch):
    app = create_app({"max_body_bytes": 2000, "log_level": "WARNING"})
    body = f.hook_request([f.tacrolimus()] + [f.magnesium(2.0, days=i) for i in range(1, 40)])
    response = app.test_client().post(PATIENT_VIEW, json=body)
    assert response.status_code == 413
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_wrong_method_is_405_operation_outcome(client):
    response = client.get(PATIENT_VIEW)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    outcome_text(response)


def test_defect_in_a_handler_is_500_without_a_trace(client, monkeypatch):
    from cds_service import services

    def broken(request, env):
        raise KeyError("patient secret value")

    monkeypatch.setattr(services, "SERVICES_BY_ID", {
        "tacrolimus-magnesium-patient-view": services.SERVICES[0].__class__(
            **{**services.SERVICES[0].__dict__, "handler": broken})})
    monkeypatch.setattr("cds_service.web.hooks.SERVICES_BY_ID", services.SERVICES_BY_ID)
    response = client.post(PATIENT_VIEW, json=f.hook_request([]))
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "secret" not in text
    outcome_text(response)


# --- Prefetch semantics -----------------------------------------------------------------------


def test_missing_required_data_without_fhir_server_is_412(client):
    body = f.hook_request(prefetch={"patient": f.patient()})
    response = client.post(PATIENT_VIEW, json=body)
    assert response.status_code == 412
    body = response.get_json()
    assert "medication list" in outcome_text(response)
    assert set(body["issue"][0]["expression"]) == {"prefetch.medications", "prefetch.magnesium"}


def test_null_prefetch_key_means_known_empty_not_412(call_hook):
    body = f.hook_request([f.tacrolimus()])
    body["prefetch"]["magnesium"] = None
    cards = call_hook(body)
    assert [c["source"]["topic"]["code"] for c in cards] == ["mg-monitoring"]
    assert "never measured" in cards[0]["summary"]


def test_operation_outcome_in_prefetch_counts_as_absent(client):
    body = f.hook_request([f.tacrolimus(), f.magnesium(2.0)])
    body["prefetch"]["magnesium"] = {"resourceType": "OperationOutcome", "issue": []}
    response = client.post(PATIENT_VIEW, json=body)
    assert response.status_code == 412
    assert response.get_json()["issue"][0]["expression"] == ["prefetch.magnesium"]


def test_missing_supplementary_data_is_named_on_the_card(call_hook):
    body = f.hook_request([f.tacrolimus(), f.magnesium(1.2)])
    del body["prefetch"]["labs"]
    cards = call_hook(body)
    severity = next(c for c in cards if c["source"]["topic"]["code"] == "mg-severity")
    assert "kidney function and urine results" in severity["detail"]


def test_malformed_entries_are_skipped_one_by_one(call_hook):
    body = f.hook_request([f.tacrolimus(), f.magnesium(1.2)])
    body["prefetch"]["magnesium"]["entry"] += [None, {"resource": "x"}, {"resource": {"no": "type"}},
                                                {"resource": {"resourceType": "Observation", "status": 5,
                                                              "code": ["odd"], "valueQuantity": "1"}}]
    cards = call_hook(body)
    assert cards[0]["indicator"] == "warning" and "Mg 1.2 mEq/L" in cards[0]["summary"]


def test_patient_not_on_tacrolimus_gets_no_cards(call_hook):
    assert call_hook(f.hook_request([f.medication("amlodipine 5 mg"), f.magnesium(0.5)])) == []


def test_order_hooks_apply_severity_rules(call_hook):
    furosemide = f.draft(f.medication("furosemide 40 mg"))
    body = f.order_request([f.tacrolimus(), f.magnesium(0.8)], [furosemide], hook="order-select")
    cards = call_hook(body, ORDER_SELECT)
    assert cards[0]["indicator"] == "critical"


# --- Responses --------------------------------------------------------------------------------


def test_empty_cards_is_the_only_empty_value(client):
    response = client.post(PATIENT_VIEW, json=f.hook_request([f.tacrolimus(), f.magnesium(2.0)]))
    assert response.get_json() == {"cards": []}


def test_no_null_or_empty_values_anywhere(client):
    response = client.post(PATIENT_VIEW, json=f.hook_request([f.tacrolimus(), f.magnesium(0.8)]))

    def walk(value, path="$"):
        assert value is not None and value != "" and value != {} , path
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            assert value or path == "$.cards", path
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")

    walk(response.get_json())


def test_cors_preflight_from_the_sandbox(client):
    response = client.options(PATIENT_VIEW, headers={
        "Origin": "https://sandbox.cds-hooks.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://sandbox.cds-hooks.org")
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_cors_headers_on_discovery(client):
    response = client.get("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://sandbox.cds-hooks.org")


def test_feedback_is_accepted(client):
    body = {"feedback": [{"card": "9368d37b-283f-44a0-93ea-547cebab93ed", "outcome": "overridden",
                          "overrideReason": {"reason": {"code": "already-addressed",
                                                        "system": "urn:tacrolimus-magnesium-cds:override-reason"}},
                          "outcomeTimestamp": "2026-11-25T00:00:00Z"}]}
    response = client.post(PATIENT_VIEW + "/feedback", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert client.post(PATIENT_VIEW + "/feedback", json={"feedback": [{"card": "x"}]}).status_code == 400
    assert client.post("/cds-services/nope/feedback", json=body).status_code == 404


def test_rule_pages_show_the_thresholds_in_force():
    from cds_service.guideline.thresholds import Thresholds

    app = create_app({"log_level": "WARNING", "thresholds": Thresholds(severe_below=0.9)})
    page = app.test_client().get("/docs/rules/mg-severity")
    assert page.status_code == 200 and "severe below 0.9" in page.get_data(as_text=True)
    assert app.test_client().get("/docs/rules/nope").status_code == 404


def test_card_source_urls_point_at_served_rule_pages(client):
    cards = client.post(PATIENT_VIEW, json=f.hook_request([f.tacrolimus(), f.magnesium(0.8)])).get_json()["cards"]
    for card in cards:
        url = card["source"]["url"]
        assert url.startswith("http://localhost/docs/rules/")
        assert client.get(url.replace("http://localhost", "")).status_code == 200
