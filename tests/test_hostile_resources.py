"""Odd and hostile values inside the FHIR resources an EHR sends: each is skipped or refused,
never a 500 (reproducers from review, then a mutation fuzz over a realistic request)."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.testing import factories as f
from .conftest import PATIENT_VIEW

ORDER_SIGN = "/cds-services/tacrolimus-magnesium-order-sign"


def base_record() -> list[dict]:
    return [f.tacrolimus(), f.medication("omeprazole 20 mg"), f.magnesium(1.2, days=1),
            f.lab("98979-8", 25, "mL/min/{1.73_m2}", days=2), f.lab("11253-2", 9, "ng/mL", days=2),
            f.condition(snomed="26079004", days=2), f.transplant(400), f.encounter("IMP")]


def post(client, body: dict, path: str = PATIENT_VIEW):
    response = client.post(path, data=json.dumps(body), content_type="application/json")
    assert response.status_code < 500, response.get_data(as_text=True)
    return response


def mutate(body: dict, key: str, index: int, path: list, value):
    resource = body["prefetch"][key]["entry"][index]["resource"] if "entry" in body["prefetch"][key] \
        else body["prefetch"][key]
    target = resource
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize("key, path, value", [
    ("magnesium", ["code", "coding", 0, "code"], ["19123-9"]),
    ("conditions", ["code", "coding", 0, "code"], ["26079004"]),
    ("magnesium", ["effectiveDateTime"], "0001-01-01T00:00:00+01:00"),
    ("magnesium", ["effectiveDateTime"], "9999-12-31T23:00:00-05:00"),
    ("labs", ["effectiveDateTime"], "0001-01-05"),
    ("magnesium", ["valueQuantity", "value"], True),
    ("magnesium", ["valueQuantity", "comparator"], {"x": 1}),
    ("magnesium", ["status"], ["final"]),
    ("medications", ["status"], {"a": 1}),
    ("medications", ["contained"], 5),
    ("medications", ["dosageInstruction"], "oral"),
    ("labs", ["referenceRange"], "high"),
])
def test_odd_values_inside_resources_are_survived(client, key, path, value):
    body = f.hook_request(base_record())
    post(client, mutate(body, key, 0, path, value))


def test_encounter_class_as_a_list(client):
    body = f.hook_request(base_record(), encounter_id="enc-1")
    body["prefetch"]["encounter"]["class"] = {"code": ["IMP"]}
    post(client, body)


def test_bundle_link_that_is_not_a_list(client):
    body = f.hook_request(base_record(), fhir_server="https://ehr.example.org/fhir")
    body["prefetch"]["magnesium"]["link"] = 5
    assert post(client, body).status_code == 200


@pytest.mark.parametrize("server", ["http://[::1/fhir", "http://host:99999/fhir"])
def test_fhir_server_that_is_not_a_url_is_refused_not_a_crash(server):
    from cds_service import create_app

    app = create_app({"fhir_allowed_servers": "https://ehr.example.org/fhir", "log_level": "WARNING"})
    body = f.hook_request(base_record(), fhir_server=server)
    assert app.test_client().post(PATIENT_VIEW, json=body).status_code in (200, 400)


def test_draft_service_request_with_odd_status(client):
    body = f.order_request([f.tacrolimus(), f.magnesium(1.8, days=3)],
                           [{"resourceType": "ServiceRequest", "id": "x", "status": {}, "code": {}}],
                           hook="order-sign")
    assert post(client, body, ORDER_SIGN).status_code == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["0001-01-01", "9999-12-31T23:59:59-12:00", "final", "mmol/L",
                                              "19123-9", "http://loinc.org", "#med", "Medication/x"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10)


def _paths(value, prefix=()):
    """Every path to a value inside a JSON document."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


BASE_BODY = f.order_request(base_record() + [f.medication_with_contained("Prograf 1 mg")],
                            [f.draft(f.medication("fluconazole 200 mg")), f.draft(f.serum_mg_order("draft"))],
                            hook="order-sign", encounter_id="enc-1")
PATHS = [p for p in _paths(BASE_BODY["prefetch"]) if p] + \
        [("context", "draftOrders") + p for p in _paths(BASE_BODY["context"]["draftOrders"]) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(st.sampled_from(PATHS), json_values), min_size=1, max_size=6))
def test_fuzz_values_inside_resources_never_500(client, changes):
    body = copy.deepcopy(BASE_BODY)
    for path, value in changes:
        root = body["prefetch"] if path[0] != "context" else body
        target = root
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this path
    response = client.post(ORDER_SIGN, data=json.dumps(body), content_type="application/json")
    assert response.status_code < 500, response.get_data(as_text=True)
    assert isinstance(response.get_json(), dict)
