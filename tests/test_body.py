"""protocol/body.py: the request body read with the resource memo gives the service the same
data as orjson.loads, the same errors, and never lets one call's data stand for another's.

(The end-to-end proof is tests/test_golden.py: every golden answer is byte-identical with the
memo shared by all cases, on a second identical call, and with the memo off.)
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from prometheus_client import REGISTRY

from cds_service.fhir.client import bundle_resources
from cds_service.guideline.facts import build_facts
from cds_service.guideline.facts import patient as facts_patient
from cds_service.protocol.body import ResourceMemo, SharedEntries, SharedResource, parse_body

from .conftest import PATIENT_VIEW

REQUESTS = sorted((Path(__file__).resolve().parent.parent / "fhir_fixtures" / "requests").glob("*.json"))


def memo(size: int = 1000, seconds: float = 600.0, clock=None, *, called_for: str | None = None) -> ResourceMemo:
    """A memo; with `called_for`, one that has had a call for that patient (so that the next
    call for the patient goes through the memo rather than the plain parse)."""
    made = ResourceMemo(size, seconds, clock) if clock else ResourceMemo(size, seconds)
    if called_for is not None:
        made.called_before(called_for)
    return made


def what_the_service_reads(body):
    """The members the service reads: those of a CDS Hooks request, and of each prefetched
    Bundle its type, links and entries' resource and search (fullUrl, meta, ... are not read)."""
    if not isinstance(body, dict):
        return body
    read = {k: body[k] for k in ("hook", "hookInstance", "fhirServer", "fhirAuthorization", "context")
            if k in body}
    if "prefetch" in body:
        prefetch = body["prefetch"]
        read["prefetch"] = prefetch if not isinstance(prefetch, dict) else {
            key: _bundle_read(value) for key, value in prefetch.items()}
    return read


def _bundle_read(value):
    if not (isinstance(value, dict) and value.get("resourceType") == "Bundle"):
        return value
    out = {k: value[k] for k in ("resourceType", "link") if k in value}
    if "entry" in value:
        out["entry"] = value["entry"] if not isinstance(value["entry"], list) else [
            {k: e[k] for k in ("resource", "search") if k in e} if isinstance(e, dict) else e
            for e in value["entry"]]
    return out


def one_bundle(*resources, patient: str = "p1") -> bytes:
    """A hook body for `patient` whose prefetch is one Bundle of these resources."""
    return orjson.dumps({"hook": "patient-view", "context": {"patientId": patient}, "prefetch": {
        "b": {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}}})


def compact(path: Path) -> bytes:
    return json.dumps(json.loads(path.read_bytes()), separators=(",", ":")).encode()


@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: p.stem)
def test_every_fixture_reads_the_same_cold_and_warm_as_printed_and_compact(path):
    for raw in (path.read_bytes(), compact(path)):
        shared = memo()
        expected = what_the_service_reads(orjson.loads(raw))
        first, second, third = (parse_body(raw, shared) for _ in range(3))  # the memo from the second
        for parsed in (first, second, third):
            assert what_the_service_reads(parsed.body) == expected
        entries = sum(len(bundle_resources(v)) for v in (first.body.get("prefetch") or {}).values()
                      if isinstance(v, dict) and v.get("resourceType") == "Bundle")
        assert second.tally.hits == 0 and third.tally.misses == 0 and third.tally.hits >= entries


def test_a_resource_sent_again_is_the_same_object_and_a_changed_one_is_not():
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "valueQuantity": {"value": 1.1}}
    body = {"hook": "patient-view", "context": {"patientId": "p1"},
            "prefetch": {"mg": {"resourceType": "Bundle", "entry": [{"resource": obs}]}}}
    shared = memo()

    def resource():
        return parse_body(orjson.dumps(body), shared).body["prefetch"]["mg"]["entry"][0]["resource"]

    once = resource()
    assert type(once) is dict and len(shared) == 0  # the patient's first call: read and freed as usual
    first = resource()
    again = resource()
    assert isinstance(first, SharedResource) and again is first
    obs["valueQuantity"]["value"] = 1.2  # a corrected value: other bytes, another resource
    changed = resource()
    assert changed is not first and changed["valueQuantity"]["value"] == 1.2
    assert first["valueQuantity"]["value"] == 1.1


# Bodies the plain parse refuses or reads differently from the skeleton's expectations: the
# answer (data or error) must be orjson's.
ODD_BODIES = [
    b'{"hook": "patient-view",',  # truncated
    b'["patient-view"]',
    b'"patient-view"',
    b'null',
    b'{"hook":"patient-view"} trailing',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":[]}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":null}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"p":null,"q":"text","r":7,"s":[1]}}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":"Bundle","entry":"no"}}}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":"Bundle","entry":[7,null,{"resource":null},{"resource":"x"},{}]}}}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"entry":[{"resource":{"id":"no-type"}}]}}}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":"Bundle","entry":[{"resource":{"v":NaN}}]}}}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":"Bundle","entry":[{"resource":{"v":1e400}}]}}}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":"Bundle","entry":[{"resource":{"v":"\\ud800"}}]}}}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":"Bundle","entry":[{"resource":{"v":"\xff"}}]}}}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":"Bundle","entry":[{"resource":'
    + b'[' * 2000 + b']' * 2000 + b'}]}}}',  # nesting too deep inside a resource
    b'[' * 5000 + b']' * 5000,
    b'{"hook":"patient-view","context":{"patientId":"p1"},"hook":"order-sign","prefetch":{"p":{"resourceType":"Patient","id":"a"},'
    b'"p":{"resourceType":"Patient","id":"b"}}}',  # duplicate members: the last one counts
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":"Bundle","resourceType":"Patient","id":"x"}}}',
    # A single prefetched resource is remembered by its members' JSON: duplicate members (the
    # last counts), escaped names and white space read as orjson reads them.
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"patient":{"resourceType":"Patient",'
    b'"id":"x","gender":"male","id":"y","n\\u0061me":[ {"text" : "A"} ] , "birthDate":"1970"}}}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"patient":{},"encounter":{"resourceType":7}}}',
    b' \n{"hook" : "patient-view" , "context" : {"patientId" : "p1"} ,'
    b'"prefetch" : { "b" : { "resourceType" : "Bundle" , "entry" : [ { "resource" : {"id" : "x"} } ] } } } \n',
]


@pytest.mark.parametrize("raw", ODD_BODIES, ids=range(len(ODD_BODIES)))
def test_odd_bodies_get_orjsons_answer(raw):
    try:
        expected = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        with pytest.raises(orjson.JSONDecodeError) as raised:
            parse_body(raw, memo(called_for="p1"))
        assert ("depth" in str(raised.value).lower()) == ("depth" in str(error).lower())
        return
    assert what_the_service_reads(parse_body(raw, memo(called_for="p1")).body) == what_the_service_reads(expected)


def test_members_the_service_does_not_read_are_only_checked_for_syntax():
    """The documented leniency, and its limit: invalid UTF-8 anywhere is refused on every path
    (as orjson does); an out-of-range number in a member the service does not read (a Bundle's
    meta) is refused by a patient's first call, parsed whole by orjson, and not by the next
    ones; anything read (a resource, the context) is always checked by orjson."""
    def body(meta: bytes) -> bytes:
        return (b'{"hook":"patient-view","context":{"patientId":"p1"},'
                b'"prefetch":{"b":{"resourceType":"Bundle","meta":{"tag":' + meta + b'},'
                b'"entry":[{"fullUrl":"x","resource":{"resourceType":"Patient","id":"p"}}]}}}')

    for bad in (b'"\xff"', b'1e400'):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(body(bad))
        with pytest.raises(orjson.JSONDecodeError):
            parse_body(body(bad), memo())  # the patient's first call
    with pytest.raises(orjson.JSONDecodeError):
        parse_body(body(b'"\xff"'), memo(called_for="p1"))
    lenient = parse_body(body(b'1e400'), memo(called_for="p1")).body
    assert lenient["prefetch"]["b"]["entry"] == [{"resource": {"resourceType": "Patient", "id": "p"}}]
    with pytest.raises(orjson.JSONDecodeError):
        parse_body(b'{"hook":"patient-view","context":{"patientId":"p1","x":1e400},"prefetch":{}}',
                   memo(called_for="p1"))


def test_the_memo_holds_at_most_its_size():
    shared = memo(size=4)
    for i in range(20):
        resources = [{"resourceType": "Observation", "id": f"o{i}-{j}"} for j in range(3)]
        body = {"hook": "patient-view", "context": {"patientId": "p1"}, "prefetch": {"b": {"resourceType": "Bundle",
                                                            "entry": [{"resource": r} for r in resources]}}}
        for _ in range(2):  # the memo from the patient's second call
            parse_body(orjson.dumps(body), shared)
        assert 0 < len(shared) <= 4


def test_a_resource_is_forgotten_about_seconds_after_it_was_last_sent():
    now = [0.0]
    shared = memo(seconds=600, clock=lambda: now[0])
    body = one_bundle({"resourceType": "Observation", "id": "o1"})
    parse_body(body, shared)
    first = parse_body(body, shared).body["prefetch"]["b"]["entry"][0]["resource"]
    now[0] = 299.0
    assert parse_body(body, shared).body["prefetch"]["b"]["entry"][0]["resource"] is first
    now[0] = 599.0  # sent again at 299: still remembered
    assert parse_body(body, shared).body["prefetch"]["b"]["entry"][0]["resource"] is first
    for second in range(600, 1220, 10):  # idle: the background thread checks every 10 s
        now[0] = float(second)
        shared.rotate_if_due()
        if second <= 599 + 290:  # at least half the time
            assert len(shared) == 2  # the resource and its Bundle's entry array
    assert len(shared) == 0  # gone about `seconds` after it was last sent


def test_readings_are_kept_per_reader_and_per_local_codes(monkeypatch):
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "code": {"coding": [{"system": "urn:lab", "code": "MG"}]},
           "effectiveDateTime": "2026-11-20T08:00:00Z", "valueQuantity": {"value": 0.5, "unit": "mmol/L"}}
    body = one_bundle(obs)
    shared = memo()
    calls = []
    real = facts_patient.read_lab
    monkeypatch.setattr(facts_patient, "read_lab", lambda r, local=None: calls.append(1) or real(r, local))

    def labs(local):
        resources = bundle_resources(parse_body(body, shared).body["prefetch"]["b"])
        return build_facts(resources, patient_id=None, encounter_id=None, local_codes=local).labs

    from cds_service.guideline.codes import LabKind
    # A local code, unknown without CDS_LOCAL_CODES: read at the first two calls (the second
    # keeps the resource and its reading), not at the third.
    assert labs(None) == () and labs(None) == () and labs(None) == ()
    assert len(calls) == 2
    local = {("urn:lab", "MG"): LabKind.MG_SERUM}
    assert [r.normalised for r in labs(local)] == [1.0]  # read again under the hospital's codes
    assert [r.normalised for r in labs(local)] == [1.0]
    assert len(calls) == 3


def test_facts_are_reused_only_for_the_same_shared_resources_and_arguments():
    """build_facts keeps its answer on the first shared resource: the same objects (the same
    bytes) and the same arguments give the same PatientFacts; anything else is read again."""
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"}
    mg = {"resourceType": "Observation", "id": "mg1", "status": "final",
          "code": {"coding": [{"system": "http://loinc.org", "code": "19123-9"}]},
          "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-20T08:00:00Z",
          "valueQuantity": {"value": 0.8, "unit": "mmol/L"}}

    def body(value: float) -> bytes:
        return orjson.dumps({"hook": "patient-view", "context": {"patientId": "p1"}, "prefetch": {
            "patient": patient,
            "mg": {"resourceType": "Bundle",
                   "entry": [{"resource": {**mg, "valueQuantity": {"value": value, "unit": "mmol/L"}}}]}}})

    shared = memo(called_for="p1")

    def facts(sent: bytes, **arguments):
        prefetch = parse_body(sent, shared).body["prefetch"]
        resources = [r for value in prefetch.values() for r in bundle_resources(value)]
        assert all(isinstance(r, SharedResource) for r in resources)  # the patient too
        return build_facts(resources, patient_id="p1", encounter_id=arguments.get("encounter"),
                           unavailable=arguments.get("unavailable", ()),
                           draft_orders=arguments.get("drafts", ()), local_codes=arguments.get("local"))

    first = facts(body(0.8))
    assert facts(body(0.8)) is first and [r.normalised for r in first.labs] == [1.6]
    assert facts(body(0.8), encounter="e1").encounter_id == "e1"
    assert facts(body(0.8), unavailable=("procedures",)).unavailable == ("procedures",)
    from cds_service.guideline.codes import LabKind
    assert facts(body(0.8), local={("urn:lab", "MG"): LabKind.MG_SERUM}) is not first
    corrected = facts(body(0.4))  # the same patient, the result with another value
    assert [r.normalised for r in corrected.labs] == [0.8]
    back = facts(body(0.8))
    assert back == first and [r.normalised for r in back.labs] == [1.6]
    draft = {"resourceType": "MedicationRequest", "id": "d1", "status": "draft",
             "medicationCodeableConcept": {"text": "omeprazole 20 MG Oral Capsule"}}
    with_drafts = facts(body(0.8), drafts=[draft])
    assert [d.ingredient for d in with_drafts.draft_orders] == ["omeprazole"]
    assert facts(body(0.8), drafts=[draft]) is not with_drafts  # drafts are new at every call
    assert facts(body(0.8)).draft_orders == ()


def test_kept_facts_keep_no_resource_alive_and_follow_the_last_call():
    """The facts are kept on the first resource with weak references to the others: a resource
    the memo drops is freed (its place can never be taken by another object), and a call that
    cannot keep its facts removes the previous call's."""
    import gc
    import weakref

    patient = SharedResource({"resourceType": "Patient", "id": "p1"})
    def observation(value):
        return SharedResource({"resourceType": "Observation", "id": "mg1", "status": "final",
                               "code": {"coding": [{"system": "http://loinc.org", "code": "19123-9"}]},
                               "effectiveDateTime": "2026-11-20T08:00:00Z",
                               "valueQuantity": {"value": value, "unit": "mmol/L"}})

    def facts(*resources):
        return build_facts(resources, patient_id="p1", encounter_id=None)

    mg = observation(0.8)
    first = facts(patient, mg)
    assert facts(patient, mg) is first
    gone = weakref.ref(mg)
    del mg
    gc.collect()
    assert gone() is None  # the kept facts did not keep it
    again = facts(patient, observation(0.8))
    assert again is not first and again == first
    plain = {"resourceType": "Observation", "id": "mg2", "status": "final"}
    mg = observation(0.8)
    facts(patient, mg)
    facts(patient, mg, plain)  # a resource read for this call only: nothing kept, nothing left
    assert patient.readings.get(facts_patient._FACTS) is None


def test_the_facts_of_at_most_max_kept_facts_calls_are_kept(monkeypatch):
    """A memory bound of their own: the facts of many patients' calls over the same shared
    resources are not counted by the memo, so only the most recent MAX_KEPT_FACTS are kept."""
    monkeypatch.setattr(facts_patient, "MAX_KEPT_FACTS", 5)
    monkeypatch.setattr(facts_patient, "_kept_owners", type(facts_patient._kept_owners)())
    shared_mg = SharedResource({"resourceType": "Observation", "id": "mg1", "status": "final",
                                "code": {"coding": [{"system": "http://loinc.org", "code": "19123-9"}]},
                                "effectiveDateTime": "2026-11-20T08:00:00Z",
                                "valueQuantity": {"value": 0.8, "unit": "mmol/L"}})
    patients = [SharedResource({"resourceType": "Patient", "id": f"p{i}"}) for i in range(12)]
    for i, patient in enumerate(patients):
        build_facts((patient, shared_mg), patient_id=f"p{i}", encounter_id=None)
    holding = [i for i, p in enumerate(patients) if facts_patient._FACTS in p.readings]
    assert holding == [7, 8, 9, 10, 11]
    again = build_facts((patients[11], shared_mg), patient_id="p11", encounter_id=None)
    assert again is patients[11].readings[facts_patient._FACTS][2]  # the recent ones still hit


def test_plain_resources_are_always_read_again():
    """Resources parsed for one call only (a patient's first call, the memo off) may be changed
    by their caller: their facts are never kept."""
    resources = [{"resourceType": "Observation", "id": "mg1", "status": "final",
                  "code": {"coding": [{"system": "http://loinc.org", "code": "19123-9"}]},
                  "effectiveDateTime": "2026-11-20T08:00:00Z", "valueQuantity": {"value": 0.8, "unit": "mmol/L"}}]
    first = build_facts(resources, patient_id=None, encounter_id=None)
    resources[0]["valueQuantity"]["value"] = 0.4
    assert [r.normalised for r in build_facts(resources, patient_id=None, encounter_id=None).labs] == [0.8]
    assert [r.normalised for r in first.labs] == [1.6]


def test_a_changing_record_is_answered_as_without_the_memo(app, client):
    """A patient's record sent again and again, with a result corrected in between: each answer
    is the one the service gives with the memo off (card and suggestion uuids aside)."""
    from cds_service import create_app
    plain = create_app({"resource_memo_size": 0}).test_client()
    original = json.loads((REQUESTS[0].parent / "at-target.patient-view.json").read_bytes())
    corrected = json.loads(json.dumps(original))
    corrected["prefetch"]["magnesium"]["entry"][0]["resource"]["valueQuantity"]["value"] = 0.9
    corrected["prefetch"]["patient"]["gender"] = "female"  # the single resource changes too

    def without_uuids(value):
        if isinstance(value, dict):
            return {k: without_uuids(v) for k, v in value.items() if k != "uuid"}
        return [without_uuids(v) for v in value] if isinstance(value, list) else value

    def answer(service, sent):
        response = service.post(PATIENT_VIEW, json=sent)
        assert response.status_code == 200
        return without_uuids(response.get_json()["cards"])

    seen = set()
    for sent in (original, original, original, corrected, original, corrected, corrected):
        got = answer(client, sent)
        assert got == answer(plain, sent)
        seen.add(tuple(card["summary"] for card in got))
    assert len(seen) == 2  # the correction changed the answer, and changing back restored it


def test_memo_hits_and_misses_are_counted_and_size_zero_turns_it_off(app, client):
    assert app.extensions["cds"].resource_memo is not None
    body = json.loads(REQUESTS[0].read_bytes())

    def count(kind):
        return REGISTRY.get_sample_value("cds_prefetch_resources_total", {"memo": kind}) or 0.0

    before = count("hit"), count("miss")
    for _ in range(3):
        assert client.post(PATIENT_VIEW, json=body).status_code == 200
    hits, misses = count("hit") - before[0], count("miss") - before[1]
    # The first call for the patient is read as usual (not counted); the second looks every
    # entry up and keeps it; the third finds them all.
    assert misses > 0 and hits == misses

    from cds_service import create_app
    off = create_app({"resource_memo_size": 0})
    assert off.extensions["cds"].resource_memo is None
    assert off.test_client().post(PATIENT_VIEW, json=body).status_code == 200
    assert (count("hit"), count("miss")) == (before[0] + hits, before[1] + misses)


def test_no_call_changes_a_remembered_resource(app, client):
    """Resources are shared between calls: after every fixture, thrice, each remembered resource
    is still exactly what its bytes say (a reader that modified one would corrupt later calls)."""
    for path in REQUESTS:
        body = json.loads(path.read_bytes())
        service = "/cds-services/tacrolimus-magnesium-" + body["hook"]
        for _ in range(3):
            assert client.post(service, json=body).status_code == 200, path.name
    shared = app.extensions["cds"].resource_memo
    remembered = {**shared._previous, **shared._current}
    assert len(remembered) > 100
    for raw, resource in remembered.items():
        if isinstance(resource, SharedEntries):  # an entry array: the members the service reads
            assert resource == [{k: v for k, v in entry.items() if k in ("resource", "search")}
                                for entry in orjson.loads(raw)]
            assert resource.resources is None or resource.resources == bundle_resources(
                {"resourceType": "Bundle", "entry": orjson.loads(raw)})
        else:
            assert resource == orjson.loads(raw)
    from cds_service.protocol import body
    for raw, search in body._SEARCHES.items():  # the shared search members too
        assert search == orjson.loads(raw) and len(raw) <= 64


def test_an_idle_process_forgets_too():
    """The background thread (one per process) sweeps every memo: a worker that gets no call
    does not keep patient data past its time."""
    import threading

    from cds_service.protocol import body

    now = [0.0]
    shared = memo(seconds=60, clock=lambda: now[0])
    raw = one_bundle({"resourceType": "Observation", "id": "o1"})
    parse_body(raw, shared)
    parse_body(raw, shared)
    assert len(shared) == 2  # the resource and its Bundle's entry array
    assert any(t.name == "resource-memo-expiry" and t.is_alive() for t in threading.enumerate())
    for second in range(0, 80, 10):  # no call: only the sweeps
        now[0] = float(second)
        body.sweep_once()
    assert len(shared) == 0 and not shared._patients and not shared._patients_before


def test_outsized_resources_are_never_kept_and_the_json_kept_is_bounded():
    from cds_service.protocol.body import AVERAGE_KEPT_BYTES, MAX_KEPT_BYTES

    shared = memo(size=10)
    big = {"resourceType": "Observation", "id": "big", "note": [{"text": "x" * MAX_KEPT_BYTES}]}
    raw = one_bundle(big)
    for _ in range(3):
        assert parse_body(raw, shared).body["prefetch"]["b"]["entry"][0]["resource"] == big
    assert len(shared) == 0
    for i in range(30):  # resources of 15 KB each: the byte budget, not the count, decides
        resource = {"resourceType": "Observation", "id": f"o{i}", "note": [{"text": "y" * 15000}]}
        raw = one_bundle(resource)
        parse_body(raw, shared)
        parse_body(raw, shared)
        kept = sum(len(k) for k in [*shared._current, *shared._previous])
        assert kept <= 2 * (5 * AVERAGE_KEPT_BYTES + MAX_KEPT_BYTES)


def test_an_order_naming_a_medication_resource_follows_that_resource(app, client):
    """Medication orders that reference a Medication in another entry are read again each call:
    their reading depends on that other resource, which may change while the order does not."""
    from cds_service.testing import factories as f

    order = f.medication("tacrolimus", id="order-1")
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "Medication/m1"}

    def body(name: str, rxnorm: str) -> dict:
        medication = {"resourceType": "Medication", "id": "m1",
                      "code": {"text": name, "coding": [{"system": f.RXNORM, "code": rxnorm}]}}
        request = f.hook_request([order, f.magnesium(0.9, id="mg-1")])
        request["prefetch"]["medications"]["entry"].append({"resource": medication})  # as _include
        return request

    def summaries(b: dict) -> list[str]:
        return [c["summary"] for c in client.post(PATIENT_VIEW, json=b).get_json()["cards"]]

    on_tacrolimus = body("tacrolimus 1 MG Oral Capsule", "198377")
    for _ in range(3):
        first = summaries(on_tacrolimus)
    assert first  # low magnesium on tacrolimus: cards
    assert summaries(body("amlodipine 5 MG Oral Tablet", "197361")) == []  # no tacrolimus: no cards
    assert summaries(on_tacrolimus) == first


def test_the_memo_starts_at_a_patients_second_call():
    """A worker that mostly sees patients once pays nothing for the memo: the first call for a
    patient (none within the memo's time) is parsed whole as usual; the next goes through it."""
    shared = memo()

    def call(patient):
        context = {} if patient is None else {"patientId": patient}
        return parse_body(orjson.dumps({"hook": "patient-view", "context": context, "prefetch": {
            "b": {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Observation",
                                                                     "id": "o1"}}]}}}), shared)

    assert call("p1").tally is None
    assert call("p2").tally is None
    assert call("p1").tally.misses == 1 and call("p1").tally.hits == 1
    assert call("p2").tally.hits == 1  # the same resource bytes: whoever sent them
    assert call(None).tally is None and call(None).tally is None  # no patient: never the memo


def test_a_thrashing_memo_steps_aside_and_a_useful_one_never_does():
    """More patients coming back than the memo holds: each call would keep resources dropped
    before they are found again (2.4x the CPU of a call without the memo). When a full older
    generation is dropped with over MAX_UNUSED_SHARE of it never found again, the memo pauses
    for PAUSE_CALLS calls. A memo whose resources are found again, or that is only filling up
    (a cold start), never pauses."""
    from cds_service.protocol.body import PAUSE_CALLS

    def record(patient: str, n: int = 5) -> bytes:
        return one_bundle(*({"resourceType": "Observation", "id": f"{patient}-{i}"} for i in range(n)),
                          patient=patient)

    useful = memo(size=20)  # 15 resources through generations of 10: it rotates
    for _ in range(30):
        for patient in ("a", "b", "c"):
            parse_body(record(patient), useful)
    assert useful._previous_size > 0 and useful._paused_calls == 0
    assert parse_body(record("a"), useful).tally.hits == 5

    cold_start = memo(size=20)
    for _ in range(4):  # one patient whose 15 resources fill a generation at once
        parse_body(record("solo", 15), cold_start)
    assert cold_start._paused_calls == 0 and parse_body(record("solo", 15), cold_start).tally.hits > 0

    thrashing = memo(size=20)
    patients = [f"p{i}" for i in range(10)]  # 50 resources in turn through a memo of 20
    for _ in range(3):
        for patient in patients:
            parse_body(record(patient), thrashing)
    assert thrashing._paused_calls > 0
    assert parse_body(record("p0"), thrashing).tally is None  # read as usual while paused
    for _ in range(PAUSE_CALLS):
        parse_body(record("p1"), thrashing)
    assert parse_body(record("p1"), thrashing).tally is not None  # then it tries again


def test_the_patients_noted_are_bounded():
    shared = memo(size=100)
    for i in range(10_000):
        shared.called_before(f"patient-{i}")
    assert len(shared._patients) + len(shared._patients_before) <= 100


def search_body(patient: str, resources: list[dict], search_id: str) -> bytes:
    """A hook body whose prefetch is one searchset as a FHIR server answers it: the Bundle's own
    id, meta and self link are new at every search; fullUrl and search.mode are per entry."""
    return orjson.dumps({"hook": "patient-view", "context": {"patientId": patient}, "prefetch": {"mg": {
        "resourceType": "Bundle", "id": search_id, "type": "searchset",
        "meta": {"lastUpdated": f"2026-12-07T12:00:00.{search_id}Z"},
        "link": [{"relation": "self", "url": f"https://ehr.example/fhir/Observation?_search={search_id}"}],
        "entry": [{"fullUrl": f"https://ehr.example/fhir/Observation/{r['id']}", "resource": r,
                   "search": {"mode": "match"}} for r in resources]}}})


def test_the_same_entries_in_a_new_search_are_one_shared_array_and_a_new_result_reuses_the_rest():
    """A search answered again with the same entries is the same shared entry array (neither
    walked nor looked up entry by entry), whatever the Bundle's own members say; one new result
    makes a new array whose other resources are the remembered ones."""
    results = [{"resourceType": "Observation", "id": f"mg{i}", "status": "final",
                "valueQuantity": {"value": 1.1 + i / 10, "unit": "mg/dL"}} for i in range(3)]
    shared = memo()

    def call(resources, search_id):
        parsed = parse_body(search_body("p1", resources, search_id), shared)
        return parsed, parsed.body["prefetch"]["mg"]

    assert call(results, "1")[0].tally is None  # the patient's first call: read as usual
    _, second = call(results, "2")
    parsed, third = call(results, "3")
    assert isinstance(third["entry"], SharedEntries) and third["entry"] is second["entry"]
    assert (parsed.tally.hits, parsed.tally.misses) == (3, 0)
    assert third["link"][0]["url"].endswith("=3")  # the Bundle's own members are this call's
    assert bundle_resources(third) == results
    assert all(a is b for a, b in zip(bundle_resources(second), bundle_resources(third), strict=True))
    mine = bundle_resources(third)
    mine.clear()  # each caller gets its own list
    assert bundle_resources(third) == results

    new = {"resourceType": "Observation", "id": "mg9", "status": "final", "valueQuantity": {"value": 0.9}}
    parsed, fourth = call(results + [new], "4")
    assert fourth["entry"] is not third["entry"] and (parsed.tally.hits, parsed.tally.misses) == (3, 1)
    assert all(a is b for a, b in zip(bundle_resources(fourth)[:3], bundle_resources(third), strict=True))
    assert bundle_resources(fourth)[3] == new

    outcome = orjson.loads(search_body("p1", results, "5"))
    outcome["prefetch"]["mg"]["entry"][0]["search"]["mode"] = "outcome"  # other bytes: other entries
    again = parse_body(orjson.dumps(outcome), shared).body["prefetch"]["mg"]
    assert again["entry"] is not third["entry"] and bundle_resources(again) == results[1:]


def test_entry_arrays_that_are_not_lists_of_objects_or_are_outsized_are_read_as_sent_and_not_kept():
    from cds_service.protocol.body import KEPT_ENTRIES_SHARE

    shared = memo(size=40)  # generations of 20 resources, 40 KB of JSON
    odd = b'[7,null,{"resource":null},{"resource":"x"},{}]'
    raw = (b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":"Bundle","entry":'
           + odd + b'}}}')
    for _ in range(3):
        assert parse_body(raw, shared).body["prefetch"]["b"]["entry"] == orjson.loads(odd)
    assert not any(isinstance(v, SharedEntries) for v in shared._current.values())
    large = [{"resourceType": "Observation", "id": f"o{i}", "note": [{"text": "z" * 2000}]} for i in range(4)]
    assert len(orjson.dumps(large)) > shared._half_bytes // KEPT_ENTRIES_SHARE
    for _ in range(3):
        entries = parse_body(search_body("p2", large, "1"), shared).body["prefetch"]["mg"]["entry"]
        assert type(entries) is list and [e["resource"] for e in entries] == large
    assert all(isinstance(r, SharedResource) for r in (e["resource"] for e in entries))  # kept one by one


def test_a_returning_patients_resources_stay_with_their_entry_array_while_others_fill_the_memo():
    """Returning patients answered from whole entry arrays while other patients fill the memo,
    generation after generation: each array found brings its resources along (a search with
    one new result still finds them), the memo holds every resource its arrays keep alive,
    and it does not judge itself thrashing."""
    def record(patient: str, n: int = 5) -> bytes:
        return search_body(patient, [{"resourceType": "Observation", "id": f"{patient}-{i}"} for i in range(n)],
                           "1")

    shared = memo(size=400)  # generations of 200 resources; arrays of up to 25 are kept whole
    for _ in range(3):  # the gate, then 15 resources and 3 arrays kept, then the arrays found again
        for patient in ("a", "b", "c"):
            parse_body(record(patient), shared)
    kept = {raw: value for raw, value in shared._current.items() if isinstance(value, SharedResource)}
    assert len(kept) == 15
    generations = set()
    for _ in range(5):  # 12 others of 20 resources each, coming back: more than a generation
        for i in range(12):
            parse_body(record(f"other-{i}", 20), shared)
            generations.add(id(shared._previous))
            for patient in ("a", "b", "c"):
                tally = parse_body(record(patient), shared).tally
                assert (tally.hits, tally.misses) == (5, 0)
                generations.add(id(shared._previous))
    assert len(generations) >= 3  # the memo rotated while they came back
    assert all((shared._current.get(raw) or shared._previous.get(raw)) is value for raw, value in kept.items())
    assert shared._paused_calls == 0
    grown = [{"resourceType": "Observation", "id": f"a-{i}"} for i in range(6)]  # one new result
    tally = parse_body(search_body("a", grown, "2"), shared).tally
    assert (tally.hits, tally.misses) == (5, 1)


def test_an_entry_array_and_a_resource_with_the_same_bytes_never_stand_for_each_other():
    """Resources and entry arrays share the memo, keyed by their JSON: an 'entry' member that
    is an object, or a 'resource' member that is an array, must still read as sent."""
    shared = memo(called_for="p1")

    def bundle(entry) -> bytes:
        return orjson.dumps({"hook": "patient-view", "context": {"patientId": "p1"},
                             "prefetch": {"b": {"resourceType": "Bundle", "entry": entry}}})

    entries = [{"resource": {"resourceType": "Observation", "id": "o1"}}]
    for _ in range(2):  # an empty resource and an entry array, both kept
        parse_body(bundle([{"resource": {}}]), shared)
        parse_body(bundle(entries), shared)
    for odd in ({}, {"resourceType": "Observation", "id": "o1"}):
        assert parse_body(bundle(odd), shared).body["prefetch"]["b"]["entry"] == odd
    as_resource = parse_body(bundle([{"resource": entries}]), shared).body["prefetch"]["b"]["entry"]
    assert as_resource == [{"resource": entries}] and type(as_resource[0]["resource"]) is list


def test_a_single_prefetched_resource_is_the_same_object_only_for_the_same_members():
    shared = memo(called_for="p1")

    def patient(text: bytes):
        raw = b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"patient":' + text + b"}}"
        return parse_body(raw, shared).body["prefetch"]["patient"]

    first = patient(b'{"resourceType":"Patient","id":"p1","gender":"female"}')
    assert isinstance(first, SharedResource) and first == {"resourceType": "Patient", "id": "p1", "gender": "female"}
    assert patient(b'{ "resourceType" : "Patient",\n "id":"p1", "gender": "female" }') is first  # white space only
    other = patient(b'{"resourceType":"Patient","id":"p1","gender":"male"}')
    assert other is not first and other["gender"] == "male" and first["gender"] == "female"
    assert patient(b'{"resourceType":"Patient","id":"p1","gender":"female","gender":"male"}') == other


@pytest.mark.parametrize("seed", range(6))
def test_every_resource_a_kept_entry_array_holds_is_in_the_memo_whatever_the_order_of_calls(seed):
    """The invariant behind the memo's bounds, over random calls into a memo that rotates often
    (arrays kept while generations fill and drop): each resource of each kept entry array is
    itself in the memo, and each call reads what orjson reads."""
    import random

    rng = random.Random(seed)
    shared = memo(size=160)  # generations of 80 resources; arrays of up to 10 kept whole
    for _ in range(1500):
        patient = f"p{rng.randrange(12)}"
        results = [{"resourceType": "Observation", "id": f"{patient}-{i}"}
                   for i in range(rng.randrange(12)) if rng.random() > 0.1]
        raw = search_body(patient, results, str(rng.randrange(3)))
        parsed = parse_body(raw, shared)
        assert what_the_service_reads(parsed.body) == what_the_service_reads(orjson.loads(raw))
        held = {**shared._previous, **shared._current}
        for value in held.values():
            if isinstance(value, SharedEntries):
                for entry in value:
                    resource = entry["resource"]
                    assert held.get(resource.key) is resource
    assert shared._paused_calls == 0 or shared._previous_size > 0
