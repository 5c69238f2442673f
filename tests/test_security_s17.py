"""Security review s17: the session's changes attacked from outside (a caller of the hooks) and
from inside (a hostile record in the EHR's data).

Changes under review: single prefetched resources in the resource memo (protocol/body.py), the
last call's PatientFacts kept on the call's first shared resource (guideline/facts/patient.py),
dict subclasses on the request fast path (protocol/request.py), Medications named by an absolute
reference read from the hook's own fhirServer only (fhir/data.py, fhir/references.py), symptom
onset ages and lab text parsing.

Tests marked DEFECT fail on the reviewed commit; the others pin attacks that held.
House rules applied: bad input is a clear JSON error, never a 500; no patient data or token in
the logs; the memo's memory stays within what the README promises (Security, "Patient data in
memory": at most CDS_RESOURCE_MEMO_SIZE resources, "60 MB at most" for 5000 of them, i.e.
12 KB per resource the memo may hold).
"""

from __future__ import annotations

import copy
import gc
import tracemalloc
from urllib.parse import urlsplit

import orjson
import pytest
import responses

from cds_service import create_app
from cds_service.testing import factories as f
from cds_service.web import hooks

from .conftest import PATIENT_VIEW, without_uuids

BASE = "https://ehr.example.org/fhir"
OTHER = "https://other-hospital.example/fhir"
TOKEN = "tok-SECRET-7f3a9c"

TAC_MED = {"resourceType": "Medication", "id": "med-tac",
           "code": {"coding": [{"system": f.RXNORM, "code": "198377", "display": "tacrolimus 1 MG Oral Capsule"}],
                    "text": "tacrolimus 1 mg capsule"}}


def order_naming(reference, id: str = "mr-ref") -> dict:
    """An active order whose drug is named only by a medicationReference (Epic/Cerner shape)."""
    order = f.medication(rxnorm=None, text=None, id=id)
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": reference}
    return order


@pytest.fixture
def mock():
    # Nothing registered unless a test says so: any outbound call is recorded in mock.calls
    # (and answered with a connection error, which the service treats as a failed fetch).
    with responses.RequestsMock(assert_all_requests_are_fired=False) as m:
        yield m


def post(client, body, path: str = PATIENT_VIEW):
    return client.post(path, data=orjson.dumps(body), content_type="application/json")


def assert_json_error_or_ok(response) -> None:
    """Never a 500 or a stack trace: 200 with cards, or a 4xx OperationOutcome."""
    text = response.get_data(as_text=True)
    assert response.status_code < 500, text
    assert "Traceback" not in text
    if response.status_code >= 400:
        assert response.get_json()["resourceType"] == "OperationOutcome"


# --------------------------------------------------------------------------------------------
# DEFECT 1: the kept PatientFacts are outside the memo's memory bound


def test_kept_facts_stay_within_the_documented_memo_memory_bound(monkeypatch):
    """DEFECT. build_facts keeps the last call's whole PatientFacts on the call's first shared
    resource. The memo counts that resource (a 40-byte Patient) as one entry of ~40 bytes of
    JSON, but what hangs on it is the facts of up to MAX_KEPT_FACTS_RESOURCES (1000) other
    resources. A caller sends many patients (each twice: the memo starts at a patient's second
    call), each with its own tiny Patient first and the SAME 900 subject-less magnesium
    administrations (shared bytes: the memo holds them once). Administrations are read again
    at each call (no `remember=`), so each kept PatientFacts holds 900 fresh MagnesiumGiven
    objects: ~0.2 MB per patient on a 40-byte memo entry.

    Here: memo size 1000 (documented bound 1000 x 12 KB = 12 MB), 300 shared administrations,
    350 patients (the memo keeps them all: 300 + 350 < 2 x 500). With MAX_KEPT_FACTS_RESOURCES
    set to 0 the same calls retain under 1 MB. Retained ~230 bytes per administration per kept
    patient; with shared = size / 4 a worker keeps size patients: at the default 5000, about
    1250 x 5000 x 230 B = 1.4 GB per worker, against the README's "60 MB at most"."""
    monkeypatch.setattr(hooks, "utc_now", lambda: f.NOW)
    size, shared_count, patients = 1000, 300, 350
    app = create_app({"log_level": "WARNING", "resource_memo_size": size})
    client = app.test_client()
    administrations = []
    for i in range(shared_count):
        given = f.administration(days=0.5)
        given["id"] = f"adm-{i}"
        given.pop("subject", None)  # not stated: about the patient of the call (patient.py)
        administrations.append(given)
    shared = {"medicationAdministrations": f.bundle(*administrations),
              "medications": f.bundle(f.tacrolimus()), "magnesium": f.bundle(f.magnesium(1.2))}

    def body(i: int) -> bytes:
        request = f.hook_request(prefetch={**shared, "patient": f.patient(f"p-{i}")})
        request["context"]["patientId"] = f"p-{i}"
        return orjson.dumps(request)

    bodies = [body(i) for i in range(patients)]
    warm = body(10**6)  # the shared resources enter the memo; code and caches load
    for _ in range(2):
        client.post(PATIENT_VIEW, data=warm, content_type="application/json")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for raw in bodies:
            for _ in range(2):
                response = client.post(PATIENT_VIEW, data=raw, content_type="application/json")
                assert response.status_code == 200
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    bound = size * 12 * 1024  # README: 60 MB at most for 5000 resources
    assert retained <= bound, (f"{retained / 1e6:.1f} MB retained after {patients} patients, above the "
                               f"documented {bound / 1e6:.1f} MB for CDS_RESOURCE_MEMO_SIZE={size}")


# --------------------------------------------------------------------------------------------
# DEFECT 2 and 3: a hostile record raises a 500


@pytest.mark.parametrize("bad_id", [[], {}, ["med-tac"]], ids=["list", "object", "list-of-id"])
def test_prefetched_medication_with_a_non_string_id_is_not_a_500(bad_id, client, mock):
    """DEFECT. fhir/data.py _read_referenced_medications adds every sent Medication's `id` to a
    set: an id that is a JSON array or object (unhashable) raises TypeError -> 500 on every
    call that carries it (EHRs put Medications into the medications Bundle with _include)."""
    mock.add(responses.GET, f"{BASE}/Medication/med-tac", json=TAC_MED)
    request = f.hook_request([f.patient(), order_naming("Medication/med-tac"), f.magnesium(1.2)],
                             fhir_server=BASE, token=TOKEN)
    request["prefetch"]["medications"]["entry"].append({"resource": {**TAC_MED, "id": bad_id}})
    assert_json_error_or_ok(post(client, request))


def test_prefetched_medication_with_a_non_string_id_without_fhir_server_is_not_a_500(client):
    """DEFECT (same line): the walk runs with no fhirServer too (prefetch-only EHRs)."""
    request = f.hook_request([f.patient(), order_naming("Medication/med-tac"), f.magnesium(1.2)])
    request["prefetch"]["medications"]["entry"].append({"resource": {**TAC_MED, "id": ["x"]}})
    assert_json_error_or_ok(post(client, request))


@pytest.mark.parametrize("status", [[], ["completed"], {"code": "completed"}], ids=["list", "list-of-code", "object"])
def test_administration_with_a_non_string_status_is_not_a_500(status, client):
    """DEFECT (older than this session, found by the same fuzzing): read_administration tests
    `status not in GIVEN_ADMINISTRATION_STATUSES` (a frozenset): an unhashable status raises
    TypeError -> 500. The other readers compare statuses with == or a tuple."""
    given = f.administration()
    given["status"] = status
    request = f.hook_request([f.patient(), f.tacrolimus(), f.magnesium(1.2), given])
    assert_json_error_or_ok(post(client, request))


# --------------------------------------------------------------------------------------------
# Held: absolute medication references never reach another host, nor carry the token there


HOSTILE_REFERENCES = [
    f"{OTHER}/Medication/med-tac",
    "//evil.example/fhir/Medication/med-tac",
    "https:evil.example/Medication/med-tac",
    "https://ehr.example.org@evil.example/fhir/Medication/med-tac",
    "https://ehr.example.org\\@evil.example/fhir/Medication/med-tac",
    "https://evil.example\\.ehr.example.org/fhir/Medication/med-tac",
    "https://ehr.example.org:8443/fhir/Medication/med-tac",
    "https://ehr.example.org:99999/fhir/Medication/med-tac",
    "http://ehr.example.org/fhir/Medication/med-tac",
    "https://[::1]/fhir/Medication/med-tac",
    "http://169.254.169.254/latest/Medication/x",
    "https://ehr.example.org/fhir/Medication/med-tac/../../../evil/Medication/med-tac",
    "https://ehr.example.org/fhir/Medication/%2e%2e%2f%2e%2e%2fPatient%2fpat-2",
    "https://ehr.example.org/fhir/Medication/https:%2F%2Fevil.example",
    "Medication/@evil.example",
    "Medication/..",
    "Medication/m1%2F..%2F..%2Fadmin",
    "Medication/\\evil",
    "HtTpS://EvIl.ExAmPlE/Medication/med-tac",
    "https://ehr.example.org/fhir/Medication/med-tac#@evil.example",
    5, ["https://evil.example/Medication/x"], {"reference": "https://evil.example/Medication/x"}, None,
]


@pytest.mark.parametrize("reference", HOSTILE_REFERENCES)
@pytest.mark.parametrize("hook", ["patient-view", "order-select"])
def test_a_record_naming_another_host_never_makes_the_service_call_it(reference, hook, client, mock):
    """Held: whatever the reference says, the only URLs requested are on the hook's fhirServer,
    and the access token goes nowhere else."""
    mock.add(responses.GET, f"{BASE}/Medication/med-tac", json=TAC_MED)
    if hook == "patient-view":
        request = f.hook_request([f.patient(), order_naming(reference), f.magnesium(1.2)],
                                 fhir_server=BASE, token=TOKEN)
        response = post(client, request)
    else:
        draft = {**order_naming(reference, id="draft-1"), "status": "draft"}
        request = f.order_request([f.patient(), f.tacrolimus(), f.magnesium(1.2)], [draft],
                                  fhir_server=BASE, token=TOKEN)
        response = post(client, request, "/cds-services/tacrolimus-magnesium-order-select")
    assert_json_error_or_ok(response)
    for call in mock.calls:  # an id such as '@evil.example' is fine as an escaped path segment
        url = urlsplit(call.request.url)
        assert (url.scheme, url.netloc) == ("https", "ehr.example.org"), call.request.url
        assert url.path.startswith("/fhir/Medication/") and "/" not in url.path[len("/fhir/Medication/"):]


# --------------------------------------------------------------------------------------------
# Held: one call's facts never answer another call


def _same_bytes_calls() -> list[dict]:
    """Calls whose resources are byte for byte the same (subject-less, shared by the memo) but
    whose patient, fhirServer or drafts differ: each must be answered from its own inputs."""
    symptom = f.condition("seizure", days=200)
    symptom.pop("subject", None)
    symptom.pop("onsetDateTime", None)
    symptom["onsetAge"] = {"value": 56, "unit": "years", "system": f.UCUM, "code": "a"}
    low = f.magnesium(1.1, days=1)
    low.pop("subject", None)
    order = order_naming(f"{BASE}/Medication/med-tac")
    order.pop("subject", None)
    prefetch = {"patient": f.patient("pat-A", birth_date="1970-06-01"),
                "medications": f.bundle(order, TAC_MED), "magnesium": f.bundle(low),
                "conditions": f.bundle(symptom)}
    # Every other key known to be empty: nothing is fetched (failed fetches would name what is
    # missing in the order the fetches happened to fail, which differs from call to call).
    prefetch.update({key: None for key in f.PREFETCH_KEYS if key not in prefetch})
    calls = []
    for patient_id in ("pat-A", "pat-B"):
        for server in (BASE, OTHER, None):
            request = f.hook_request(prefetch=copy.deepcopy(prefetch), fhir_server=server)
            request["context"]["patientId"] = patient_id
            calls.append(request)
    return calls


def test_calls_sharing_resource_bytes_answer_as_without_the_memo(monkeypatch, mock):
    """Held: the same resource bytes under two patient ids and three fhirServers, each call
    made three times in interleaved order: every answer equals a memo-less service's."""
    monkeypatch.setattr(hooks, "utc_now", lambda: f.NOW)
    with_memo = create_app({"log_level": "WARNING"}).test_client()
    without = create_app({"log_level": "WARNING", "resource_memo_size": 0}).test_client()
    calls = _same_bytes_calls()
    expected = [without_uuids(post(without, c).get_json()) for c in calls]
    assert len({orjson.dumps(e) for e in expected}) > 1  # the inputs do change the answer
    for _ in range(3):
        for call, answer in zip(calls, expected, strict=True):
            assert without_uuids(post(with_memo, call).get_json()) == answer
    assert not mock.calls




# --------------------------------------------------------------------------------------------
# Held: odd types where the new readers expect objects, first call and memo calls alike


ODD_VALUES = ["x", 5, -1, True, [], [1], {}, [{}], "", "1968"]


def _odd_cases():
    for value in ODD_VALUES:
        yield "onsetAge", value
        yield "onsetRange", value
        yield "onsetRange.low", value
        yield "onsetAge.value", value
        yield "onsetAge.code", value
        yield "valueQuantity", value
        yield "valueQuantity.code", value
        yield "code.text", value
        yield "birthDate", value
        yield "medicationReference", value
        yield "medicationReference.reference", value


@pytest.mark.parametrize("where, value", list(_odd_cases()))
def test_odd_types_in_the_new_readers_are_never_a_500(where, value, client):
    condition = f.condition("seizure", days=2)
    condition.pop("onsetDateTime", None)
    condition["onsetAge"] = {"value": 56, "code": "a"}
    condition["onsetRange"] = {"low": {"value": 50, "code": "a"}, "high": {"value": 56, "code": "a"}}
    lab = f.magnesium(1.1, text="Magnesium, serum", code=None)
    patient = f.patient()
    order = order_naming("Medication/med-tac")
    targets = {"onsetAge": condition, "onsetRange": condition, "valueQuantity": lab, "code": lab,
               "birthDate": patient, "medicationReference": order}
    path = where.split(".")
    target = targets[path[0]]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    request = f.hook_request([patient, f.tacrolimus(), order, lab, condition])
    request["prefetch"]["medications"]["entry"].append({"resource": TAC_MED})
    for _ in range(3):  # the first call, then the memo's calls (kept readings and facts)
        assert_json_error_or_ok(post(client, request))


# --------------------------------------------------------------------------------------------
# Held: the logs of these paths carry no patient id, value, token or URL from the record


def test_logs_of_the_new_paths_hold_no_patient_data(client, mock, capfd):
    patient_id = "pt-SECRET-4711"
    hostile = "https://secret-other.example/fhir/Medication/med-SECRET"
    mock.add(responses.GET, f"{BASE}/Medication/med-tac", json=TAC_MED)
    condition = f.condition("seizure", days=2)
    condition.pop("onsetDateTime", None)
    condition["onsetAge"] = {"value": 55.123, "code": "a"}
    resources = [f.patient(patient_id), order_naming(hostile), order_naming(f"{BASE}/Medication/med-tac", id="mr-2"),
                 f.magnesium(0.873), condition]
    for resource in resources:
        if "subject" in resource:
            resource["subject"] = {"reference": f"Patient/{patient_id}"}
    request = f.hook_request(resources, fhir_server=BASE, token=TOKEN)
    request["context"]["patientId"] = patient_id
    for _ in range(3):
        assert post(client, request).status_code == 200
    bad = copy.deepcopy(request)
    bad["prefetch"]["patient"]["birthDate"] = ["1970"]
    assert_json_error_or_ok(post(client, bad))
    logged = capfd.readouterr().err
    for secret in (patient_id, TOKEN, "secret-other", "med-SECRET", "0.873", "55.123"):
        assert secret not in logged
