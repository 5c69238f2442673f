"""The fast acceptance of hook requests (protocol/request.py) never accepts what the JSON Schemas
reject; what it does not accept goes to jsonschema, which words every error."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hypothesis import given, settings, strategies as st

from cds_service.protocol import request as rq

REQUESTS = Path(__file__).resolve().parent.parent / "fhir_fixtures" / "requests"
V = rq.request_validator()
HOOKS = ("patient-view", "order-select", "order-sign")


def schema_valid(body) -> bool:
    return not any(True for _ in V._request.iter_errors(body))


def context_valid(hook: str, context) -> bool:
    return not any(True for _ in V._contexts[hook].iter_errors(context))


def test_fast_path_is_written_for_the_schemas_in_the_package():
    """A schema changed: review fast_valid_request / fast_valid_context against it, then
    update FAST_PATH_SCHEMAS (until then the service validates with jsonschema only)."""
    for name, digest in rq.FAST_PATH_SCHEMAS.items():
        actual = hashlib.sha256(rq.schema_text(name).encode()).hexdigest()
        assert actual == digest, (
            f"schemas/{name} changed, so the fast path of protocol/request.py is off (answers stay "
            f"right, validation costs ~0.15 ms more). Review fast_valid_request/fast_valid_context "
            f"against the new schema, then set FAST_PATH_SCHEMAS[{name!r}] = {actual!r}")
    assert V.fast_path


def test_every_fixture_request_takes_the_fast_path():
    for path in REQUESTS.glob("*.json"):
        body = json.loads(path.read_text("utf-8"))
        assert rq.fast_valid_request(body), path.name
        assert rq.fast_valid_context(body["hook"], body["context"]), path.name


ids = st.one_of(st.text(max_size=3), st.text(min_size=199, max_size=202), st.integers(), st.none(),
                st.booleans(), st.just(""))
strings = st.one_of(st.text(max_size=4), st.sampled_from(
    ["http://x", "https://fhir.example/r4", "https://a b", "https://x\n", "ftp://x", "Bearer",
     "bearer", "Bearer\n", "BEARER", "Bundle", "bundle"]))
anything = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                  strings), lambda c: st.one_of(st.lists(c, max_size=3),
                                                                st.dictionaries(strings, c, max_size=3)),
                        max_leaves=8)
resources = st.one_of(st.none(), anything,
                      st.fixed_dictionaries({"resourceType": st.one_of(strings, st.integers())},
                                            optional={"entry": anything}))
auth = st.fixed_dictionaries({}, optional={
    "access_token": st.one_of(strings, st.integers()), "token_type": strings,
    "expires_in": st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), strings),
    "scope": st.one_of(strings, st.none()), "subject": anything, "patient": anything})
bodies = st.fixed_dictionaries({}, optional={
    "hook": st.one_of(st.sampled_from(HOOKS), ids), "hookInstance": ids,
    "context": st.one_of(st.dictionaries(strings, anything, max_size=2), anything),
    "fhirServer": st.one_of(strings, st.integers()), "fhirAuthorization": st.one_of(auth, anything),
    "prefetch": st.one_of(st.dictionaries(strings, resources, max_size=3), anything),
    "extra": anything})
contexts = st.fixed_dictionaries({}, optional={
    "userId": ids, "patientId": ids, "encounterId": ids,
    "selections": st.one_of(st.lists(st.one_of(strings, st.integers()), max_size=3), anything),
    "draftOrders": resources, "other": anything})


@settings(max_examples=400)
@given(bodies)
def test_fast_request_acceptance_implies_schema_validity(body):
    if rq.fast_valid_request(body):
        assert schema_valid(body)


@settings(max_examples=400)
@given(st.sampled_from(HOOKS), contexts)
def test_fast_context_acceptance_implies_schema_validity(hook, context):
    if rq.fast_valid_context(hook, context):
        assert context_valid(hook, context)


BASE = {"hook": "order-select", "hookInstance": "i-1", "fhirServer": "https://fhir.example/r4",
        "fhirAuthorization": {"access_token": "t", "token_type": "Bearer", "expires_in": 300,
                              "scope": "patient/*.read", "subject": "s", "patient": "p"},
        "context": {"userId": "Practitioner/1", "patientId": "p", "encounterId": "e",
                    "selections": ["MedicationRequest/1"],
                    "draftOrders": {"resourceType": "Bundle", "entry": []}},
        "prefetch": {"patient": {"resourceType": "Patient"}, "empty": None}}
BAD = [None, True, 0, 1.5, "", "x" * 201, "x" * 2001, [], {}, ["x"], {"resourceType": 1},
       "https://a b", "https://x\n", "ftp://x", "bearer\n", "BEARER", "bundle"]
PATHS = [("hook",), ("hookInstance",), ("fhirServer",), ("fhirAuthorization",),
         ("fhirAuthorization", "access_token"), ("fhirAuthorization", "token_type"),
         ("fhirAuthorization", "expires_in"), ("fhirAuthorization", "scope"),
         ("fhirAuthorization", "subject"), ("fhirAuthorization", "patient"), ("context",),
         ("prefetch",), ("prefetch", "patient"), ("prefetch", "patient", "resourceType")]
CONTEXT_PATHS = [("userId",), ("patientId",), ("encounterId",), ("selections",),
                 ("selections", 0), ("draftOrders",), ("draftOrders", "resourceType"),
                 ("draftOrders", "entry")]


def mutated(base, path, value):
    copy = json.loads(json.dumps(base))
    target = copy
    for step in path[:-1]:
        target = target[step]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return copy


def test_base_request_is_fast_and_schema_valid():
    assert rq.fast_valid_request(BASE) and schema_valid(BASE)
    for hook in HOOKS:
        assert rq.fast_valid_context(hook, BASE["context"]) and context_valid(hook, BASE["context"])


def test_no_single_change_makes_the_fast_path_accept_what_the_schema_rejects():
    for path in PATHS:
        for value in BAD + [KeyError]:
            body = mutated(BASE, path, value)
            if rq.fast_valid_request(body):
                assert schema_valid(body), (path, value)
    for path in CONTEXT_PATHS:
        for value in BAD + [KeyError]:
            context = mutated(BASE["context"], path, value)
            for hook in HOOKS:
                if rq.fast_valid_context(hook, context):
                    assert context_valid(hook, context), (hook, path, value)
