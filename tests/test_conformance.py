"""Replays the CDS Hooks specification's examples, when ../shared/conformance exists beside the
checkout.

Why they may skip: the examples are copied from the HL7 specification and the reference sandbox
into a folder the maintainers keep beside their checkout (with its SOURCES.md), not into this
repository, whose licence does not cover them. A user's clone has no ../shared, so these tests
skip there; the protocol itself is still tested by test_protocol.py and test_security.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses

from cds_service.protocol.request import request_validator

from cds_service.testing import factories as f

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "conformance" / "cds-hooks-examples"
pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason=(
    "the CDS Hooks spec examples live outside the repository, in ../shared/conformance beside a "
    "maintainer's checkout (see this file's docstring); absent here"))
SERVICE_FOR_HOOK = {"patient-view": "tacrolimus-magnesium-patient-view",
                    "order-select": "tacrolimus-magnesium-order-select",
                    "order-sign": "tacrolimus-magnesium-order-sign"}


def examples(pattern: str) -> list[Path]:
    return sorted(EXAMPLES.glob(pattern)) if EXAMPLES.is_dir() else []


def full_requests() -> list[Path]:
    return [p for p in examples("*/*.json")
            if isinstance(body := json.loads(p.read_text()), dict) and {"hook", "hookInstance", "context"} <= set(body)]


@pytest.mark.parametrize("path", full_requests(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_spec_requests_get_a_valid_answer_never_an_error(client, response_schema, path):
    """Their prefetch keys are not ours and their FHIR servers are unreachable: the spec's
    answer is 412 (or cards from what is there), never a 500."""
    body = json.loads(path.read_text())
    service = SERVICE_FOR_HOOK.get(body["hook"])
    if service is None:
        pytest.skip(f"no service for {body['hook']} yet")
    with responses.RequestsMock(assert_all_requests_are_fired=False):  # no real network
        response = client.post(f"/cds-services/{service}", json=body)
    payload = response.get_json()
    if "patientId" not in body["context"]:  # the extension example snips its context
        assert response.status_code == 400
        assert "patientId" in payload["issue"][0]["details"]["text"]
        return
    assert response.status_code in (200, 412), response.get_data(as_text=True)
    if response.status_code == 200:
        assert not list(response_schema.iter_errors(payload))
    else:
        assert payload["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("path", examples("hl7-cds-hooks-library-1.0.1/*-context-*.json"), ids=lambda p: p.name)
def test_spec_contexts_validate_for_their_hook(path, call_hook):
    context = json.loads(path.read_text())["context"]
    hook = path.name.split("-context")[0]
    if hook not in SERVICE_FOR_HOOK:
        pytest.skip(f"no service for {hook} yet")
    body = f.hook_request([f.medication("amoxicillin 500 mg")], hook=hook)
    body["context"] = context
    request_validator().parse(body, hook)
    # The example patient has no tacrolimus: the right answer is an empty card list.
    assert call_hook(body, f"/cds-services/{SERVICE_FOR_HOOK[hook]}") == []


@pytest.mark.parametrize("path", examples("*/feedback-*.json"), ids=lambda p: p.name)
def test_spec_feedback_is_accepted(client, path):
    response = client.post("/cds-services/tacrolimus-magnesium-patient-view/feedback",
                           data=path.read_text(), content_type="application/json")
    assert response.status_code == 200


def test_our_discovery_has_every_member_the_spec_example_has(client):
    spec = json.loads((EXAMPLES / "hl7-cds-hooks-2.0.1" / "discovery-response.json").read_text())
    required = {"hook", "id", "description"}
    assert required <= set(spec["services"][0])
    for service in client.get("/cds-services").get_json()["services"]:
        assert required <= set(service)


def test_the_sandbox_signing_key_is_usable():
    from cds_service.security.jwt_auth import signing_key

    jwks = json.loads((EXAMPLES / "cds-hooks-sandbox" / "sandbox-jwks.json").read_text())
    assert signing_key(jwks["keys"][0], "ES384") is not None
