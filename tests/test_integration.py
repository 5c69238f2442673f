"""The real server, started as the Procfile starts it, called over HTTP on loopback."""

from __future__ import annotations

import json

import pytest
import requests
from jsonschema import Draft202012Validator

from cds_service.testing import factories as f
from cds_service.testing.fhir_stub import FhirStub

from .procfile import ROOT, procfile_server

SERVICES = {"patient-view": "tacrolimus-magnesium-patient-view",
            "order-select": "tacrolimus-magnesium-order-select",
            "order-sign": "tacrolimus-magnesium-order-sign"}


@pytest.fixture(scope="module")
def server():
    """gunicorn started with the Procfile's web: command, on a free loopback port."""
    env = {"CDS_MAX_BODY_BYTES": "200000",
           # Correctness in both data modes, not the deadline (tested on its own): a loaded CI
           # machine must not turn a slow stub answer into a degraded card set.
           "CDS_FHIR_DEADLINE": "6", "CDS_FHIR_READ_TIMEOUT": "5", "CDS_FHIR_CONNECT_TIMEOUT": "2"}
    with procfile_server(env) as (base, _, _log):
        yield base


@pytest.fixture(scope="module")
def schema():
    path = ROOT / "cds_service" / "protocol" / "schemas" / "cds-response.json"
    return Draft202012Validator(json.loads(path.read_text()))


def record(now_days_offset: float = 0) -> list[dict]:
    """A patient on tacrolimus with a recent severe result and a PPI."""
    return [f.patient(), f.tacrolimus(), f.medication("omeprazole 20 mg capsule", id="ppi-1"),
            f.magnesium(0.4, "mmol/L", code="2601-3", days=1)]


def post(base: str, hook: str, body: dict, **kwargs) -> requests.Response:
    return requests.post(f"{base}/cds-services/{SERVICES[hook]}", json=body, timeout=10, **kwargs)


def test_discovery_over_http(server):
    response = requests.get(f"{server}/cds-services", timeout=5)
    assert response.status_code == 200
    assert {s["hook"] for s in response.json()["services"]} >= {"patient-view", "order-select"}


def drafts(hook: str) -> dict:
    """Order hooks answer about a relevant draft (section 6): furosemide being ordered."""
    if hook == "patient-view":
        return {}
    furosemide = f.draft(f.medication("furosemide 40 MG Oral Tablet", id="draft-1"))
    context = {"draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": furosemide}]}}
    if hook == "order-select":
        context["selections"] = ["MedicationRequest/draft-1"]
    return context


@pytest.mark.parametrize("hook", ["patient-view", "order-select", "order-sign"])
def test_every_hook_with_full_prefetch(server, schema, hook):
    response = post(server, hook, f.hook_request(record(), hook=hook, **drafts(hook)))
    assert response.status_code == 200
    assert not list(schema.iter_errors(response.json()))
    cards = response.json()["cards"]
    assert cards[0]["indicator"] == "critical"
    assert "0.4 mmol/L" in cards[0]["summary"]


@pytest.mark.parametrize("hook", ["patient-view", "order-select", "order-sign"])
def test_every_hook_with_fhir_server_and_no_prefetch(server, schema, hook):
    with FhirStub(record()) as stub:
        body = f.hook_request(hook=hook, prefetch={}, fhir_server=stub.base_url, token="tok-123", **drafts(hook))
        response = post(server, hook, body)
    assert response.status_code == 200, response.text
    assert not list(schema.iter_errors(response.json()))
    cards = response.json()["cards"]
    assert cards[0]["indicator"] == "critical" and "0.4 mmol/L" in cards[0]["summary"]
    if hook == "patient-view":
        assert any(c["source"]["topic"]["code"] == "mg-contributing" and "omeprazole" in c["summary"] for c in cards)
    else:
        assert any(c["source"]["topic"]["code"] == "mg-order-wasting" and "Furosemide" in c["summary"] for c in cards)
    assert set(stub.authorizations) == {"Bearer tok-123"}


def test_same_cards_in_both_modes(server):
    with_prefetch = post(server, "patient-view", f.hook_request(record())).json()["cards"]
    with FhirStub(record()) as stub:
        fetched = post(server, "patient-view",
                       f.hook_request(prefetch={}, fhir_server=stub.base_url)).json()["cards"]
    strip = lambda cards: [(c["indicator"], c["summary"]) for c in cards]  # noqa: E731
    assert strip(with_prefetch) == strip(fetched)


@pytest.mark.parametrize("kwargs, status", [
    ({"data": "{", "headers": {"Content-Type": "application/json"}}, 400),
    ({"data": "{}", "headers": {"Content-Type": "text/plain"}}, 415),
    ({"json": {"hook": "patient-view"}}, 400),
])
def test_bad_requests_get_their_status(server, kwargs, status):
    response = requests.post(f"{server}/cds-services/{SERVICES['patient-view']}", timeout=5, **kwargs)
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"


def test_unknown_service_is_404(server):
    assert requests.post(f"{server}/cds-services/nope", json={}, timeout=5).status_code == 404


def test_unobtainable_data_is_412(server):
    response = post(server, "patient-view", f.hook_request(prefetch={}))
    assert response.status_code == 412


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_body_is_413_and_the_server_keeps_answering(server, chunked):
    payload = json.dumps(f.hook_request(record() + [f.magnesium(2.0, days=d) for d in range(2, 2000)])).encode()
    assert len(payload) > 200000
    data = iter([payload[i:i + 65536] for i in range(0, len(payload), 65536)]) if chunked else payload
    response = requests.post(f"{server}/cds-services/{SERVICES['patient-view']}", data=data, timeout=10,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert requests.get(f"{server}/cds-services", timeout=5).status_code == 200


def test_cors_preflight_over_http(server):
    response = requests.options(f"{server}/cds-services/{SERVICES['patient-view']}", timeout=5, headers={
        "Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert response.status_code == 200
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
