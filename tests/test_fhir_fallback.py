"""FHIR server fallback when prefetch is missing: tokens, failures, paging, deadlines."""

from __future__ import annotations

import re
import time

import pytest
import requests
import responses

from cds_service import create_app
from cds_service.fhir.templates import fillable, render, token_values

from cds_service.testing import factories as f
from .conftest import PATIENT_VIEW
from .fake_fhir import BASE, FakeFhirServer



def fallback_request(resources, *, token: str | None = "secret-token", encounter_id=None, prefetch=None):
    return f.hook_request(prefetch=prefetch or {}, fhir_server=BASE, token=token,
                          encounter_id=encounter_id)


@pytest.fixture
def fhir():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_templates_are_filled_from_context():
    values = token_values({"patientId": "a b/c", "userId": "Practitioner/9", "encounterId": "e1"})
    assert render("Patient/{{context.patientId}}", values) == "Patient/a%20b%2Fc"
    assert render("x?performer={{userPractitionerId}}", values) == "x?performer=9"
    assert render("Encounter/{{context.encounterId}}", {"context.patientId": "p"}) is None


@pytest.mark.parametrize("template", [
    "Patient/{{context.patientId}}", "Encounter/{{context.encounterId}}",
    "Observation?patient={{context.patientId}}&encounter={{ context.encounterId }}",
    "x?performer={{userPractitionerId}}", "x?who={{userPatientId}}", "Medication?_count=5"])
@pytest.mark.parametrize("context", [
    {"patientId": "p"}, {"patientId": "p", "encounterId": "e"}, {"userId": "Practitioner/9"},
    {"userId": "Patient/p", "patientId": "p"}, {}])
def test_fillable_agrees_with_render(template, context):
    """gather skips a template the context cannot fill without building its query."""
    values = token_values(context)
    assert fillable(template, values) == (render(template, values) is not None)


def test_everything_fetched_with_the_bearer_token(fhir, call_hook):
    server = FakeFhirServer([f.tacrolimus(), f.magnesium(0.8, days=2), f.encounter("IMP", id="enc-9")])
    server.install(fhir)
    cards = call_hook(fallback_request(None, encounter_id="enc-9"))
    assert cards[0]["indicator"] == "critical" and "Mg 0.8 mEq/L" in cards[0]["summary"]
    assert server.types_called() == ["Condition", "Encounter", "MedicationAdministration",
                                     "MedicationRequest", "MedicationStatement", "Observation",
                                     "Observation", "Observation", "Observation", "Patient", "Procedure"]
    assert {c.headers["Authorization"] for c in server.calls} == {"Bearer secret-token"}


def test_open_server_gets_no_token(fhir, call_hook):
    server = FakeFhirServer([f.tacrolimus(), f.magnesium(2.0)])
    server.install(fhir)
    call_hook(fallback_request(None, token=None))
    assert server.calls and all("Authorization" not in c.headers for c in server.calls)


def test_only_absent_keys_are_fetched(fhir, call_hook):
    server = FakeFhirServer([f.magnesium(1.2)])
    server.install(fhir)
    prefetch = {"patient": f.patient(), "medications": f.bundle(f.tacrolimus()), "labs": None,
                "tacrolimusLevels": None, "conditions": None, "procedures": None,
                "medicationStatements": None, "medicationAdministrations": None, "bodyWeight": None}
    cards = call_hook(fallback_request(None, prefetch=prefetch))
    assert server.types_called() == ["Observation"]
    assert "Mg 1.2 mEq/L" in cards[0]["summary"]


@pytest.mark.parametrize("failure", [
    (500, "oops"),
    (200, "not json {"),
    (200, "[" * 100000 + "]" * 100000),  # a hostile server's nesting
    (200, {"resourceType": "OperationOutcome", "issue": []}),
    (200, ["a list"]),
    (401, {"resourceType": "OperationOutcome", "issue": []}),
    (302, ""),
    (0, requests.ConnectionError("refused")),
    (0, requests.ReadTimeout("slow")),
])
def test_failing_required_query_answers_412(fhir, client, failure):
    server = FakeFhirServer([f.tacrolimus(), f.magnesium(1.2)])
    server.overrides["MedicationRequest"] = failure
    server.install(fhir)
    response = client.post(PATIENT_VIEW, json=fallback_request(None))
    assert response.status_code == 412
    assert response.get_json()["issue"][0]["expression"] == ["prefetch.medications"]


@pytest.mark.parametrize("failed_type, label", [
    ("Condition", "active conditions (symptoms, kidney disease)"),
    ("Procedure", "transplant and dialysis procedures"),
    ("MedicationStatement", "home medications (medication statements)"),
    ("MedicationAdministration", "medication administrations"),
    ("Patient", "patient record"),
])
def test_failing_supplementary_query_degrades_the_answer(fhir, call_hook, failed_type, label):
    server = FakeFhirServer([f.tacrolimus(), f.magnesium(1.2)])
    server.overrides[failed_type] = (500, "down")
    server.install(fhir)
    cards = call_hook(fallback_request(None))
    severity = next(c for c in cards if c["source"]["topic"]["code"] == "mg-severity")
    assert label in severity["detail"]


def test_search_pages_are_followed(fhir, call_hook):
    page2 = f"{BASE}/Observation?page=2"
    fhir.add(responses.GET, page2, json=f.bundle(f.magnesium(0.8, days=1)))
    first = f.bundle(f.magnesium(2.0, days=30))
    first["link"] = [{"relation": "self", "url": f"{BASE}/Observation"}, {"relation": "next", "url": page2}]
    server = FakeFhirServer([f.tacrolimus()])
    server.overrides["Observation"] = (200, first)
    server.install(fhir)
    cards = call_hook(fallback_request(None))
    assert "Mg 0.8 mEq/L" in cards[0]["summary"]  # the newest result was on page 2


def test_paged_prefetch_is_completed_from_the_server(fhir, call_hook):
    page2 = f"{BASE}/Observation?page=2"
    fhir.add(responses.GET, page2, json=f.bundle(f.magnesium(0.8, days=1)))
    body = f.hook_request([f.tacrolimus(), f.magnesium(2.0, days=30)], fhir_server=BASE, token="t")
    body["prefetch"]["magnesium"]["link"] = [{"relation": "next", "url": page2}]
    cards = call_hook(body)
    assert "Mg 0.8 mEq/L" in cards[0]["summary"]


def test_next_page_on_another_server_is_not_followed(fhir, call_hook):
    body = f.hook_request([f.tacrolimus(), f.magnesium(1.2, days=1)], fhir_server=BASE, token="t")
    body["prefetch"]["magnesium"]["link"] = [{"relation": "next", "url": "https://evil.example.com/x"}]
    cards = call_hook(body)  # responses would raise on any unregistered URL
    assert "magnesium results (partly: next page on another server)" in cards[0]["detail"]


def test_page_bound_keeps_what_was_read(fhir):
    app = create_app({"fhir_max_pages": 2, "log_level": "WARNING"})
    for n in (2, 3):
        page = f.bundle(f.magnesium(1.2, days=n))
        page["link"] = [{"relation": "next", "url": f"{BASE}/Observation?page={n + 1}"}]
        fhir.add(responses.GET, f"{BASE}/Observation?page={n}", json=page)
    body = f.hook_request([f.tacrolimus(), f.magnesium(1.2, days=1)], fhir_server=BASE, token="t")
    body["prefetch"]["magnesium"]["link"] = [{"relation": "next", "url": f"{BASE}/Observation?page=2"}]
    response = app.test_client().post(PATIENT_VIEW, json=body)
    assert response.status_code == 200
    assert "more than 2 pages" in response.get_json()["cards"][0]["detail"]


def test_hanging_server_is_cut_at_the_deadline(fhir):
    app = create_app({"fhir_deadline": 0.3, "fhir_read_timeout": 5.0, "log_level": "WARNING"})
    server = FakeFhirServer([f.tacrolimus(), f.magnesium(1.2)])

    def hang(request):
        time.sleep(1.0)
        return server.answer(request)

    fhir.add_callback(responses.GET, re.compile(re.escape(BASE) + r"/Condition.*"), callback=hang)
    server.install(fhir)
    started = time.monotonic()
    response = app.test_client().post(PATIENT_VIEW, json=fallback_request(None))
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert "active conditions (symptoms, kidney disease)" in response.get_json()["cards"][0]["detail"]
    assert elapsed < 1.0  # answered before the hanging query finished


def test_medication_named_only_by_reference_is_read_from_the_server(fhir, call_hook):
    order = f.medication(rxnorm=None, text=None)
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "Medication/tac-1"}
    server = FakeFhirServer([{"resourceType": "Medication", "id": "tac-1",
                              "code": {"coding": [{"system": f.RXNORM, "code": "198377"}]}}])
    server.install(fhir)
    body = f.hook_request([order, f.magnesium(0.8, days=1)], fhir_server=BASE, token="t")
    cards = call_hook(body)
    assert cards and cards[0]["indicator"] == "critical"
    assert "Medication" in server.types_called()


def test_unresolvable_medication_reference_is_said_not_hidden(call_hook):
    order = f.medication(rxnorm=None, text=None)
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "Medication/unknown"}
    cards = call_hook(f.hook_request([f.tacrolimus(), order, f.magnesium(1.2, days=1)]))
    assert "Medication that was not sent" in cards[0]["detail"]


def test_next_page_path_must_be_under_the_base_by_segment():
    from cds_service.fhir.client import FhirClient

    client = FhirClient(BASE, "t", connect_timeout=1, read_timeout=1, max_pages=3)
    assert client.same_server(BASE + "/Observation?page=2")
    assert not client.same_server("https://ehr.example.org/fhir-admin/export")
    assert not client.same_server("http://[::1")


@pytest.mark.parametrize("next_url", [BASE + "/../admin/export", BASE + "/Observation/%2e%2e/%2e%2e/admin",
                                      BASE + "\\..\\admin", BASE.replace("https://", "https://x@") + "/Observation"])
def test_next_link_cannot_leave_the_base_path(fhir, call_hook, next_url):
    body = f.hook_request([f.tacrolimus(), f.magnesium(1.2, days=1)], fhir_server=BASE, token="t")
    body["prefetch"]["magnesium"]["link"] = [{"relation": "next", "url": next_url}]
    cards = call_hook(body)  # responses would raise on any unregistered URL
    assert "magnesium results (partly: next page on another server)" in cards[0]["detail"]
    assert len(fhir.calls) == 0
