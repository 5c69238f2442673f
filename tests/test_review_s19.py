"""Adversarial review of the FHIR-fallback resource memo (commit 7409c4f) and of the deadline
thread's bounded wait (commit 7d950f4).

Every test states an invariant the change must hold: the answer a hook gives (cards, or the
error, ignoring `uuid` keys) is the same with the memo on and off, on a patient's first and
later calls, and with the data fetched or prefetched; what a FHIR server sends gives the same
resources or the same FetchError through the memo as without it; one call never reads data it
did not send or its server did not answer; the memo metrics count each resource once.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
import threading
import time
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import responses
from prometheus_client import REGISTRY

from cds_service import create_app
from cds_service.fhir.client import FetchError, FhirClient, bundle_resources
from cds_service.protocol.body import MAX_KEPT_BYTES, ResourceMemo, Tally, parse_fetched
from cds_service.security.outbound import MAX_JSON_VALUES
from cds_service.services import PATIENT_DATA
from cds_service.testing import factories as f
from cds_service.testing.fhir_stub import FhirStub
from cds_service.web import hooks

from .conftest import ORDER_SELECT, PATIENT_VIEW, without_uuids
from .fake_fhir import BASE
from .hostile_upstream import HostileServer

OTHER = "https://attacker.example.net/fhir"  # a FHIR server a caller controls
ORDER_SIGN = "/cds-services/tacrolimus-magnesium-order-sign"
RXNORM = f.RXNORM


# --- helpers ------------------------------------------------------------------------------------


def fetched(kind: str) -> float:
    return REGISTRY.get_sample_value("cds_fetched_resources_total", {"memo": kind}) or 0.0


def prefetched(kind: str) -> float:
    return REGISTRY.get_sample_value("cds_prefetch_resources_total", {"memo": kind}) or 0.0




def make_client(**settings):
    return create_app({"log_level": "WARNING", **settings}).test_client()


def memo_of(client):
    return client.application.extensions["cds"].resource_memo


def answer(client, body, path=PATIENT_VIEW):
    """(status, payload without uuids): the whole outcome of one hook call."""
    response = client.post(path, data=orjson.dumps(body), content_type="application/json")
    return response.status_code, without_uuids(response.get_json())


def own(resource: dict, patient_id: str) -> dict:
    """A copy of a factory resource about `patient_id`."""
    copied = copy.deepcopy(resource)
    if "subject" in copied:
        copied["subject"] = {"reference": f"Patient/{patient_id}"}
    return copied


def record(patient_id: str = f.PATIENT_ID, mg=((1.5, 20), (1.3, 5))) -> list[dict]:
    resources = [f.patient(patient_id), f.tacrolimus(), f.statement("omeprazole 20 mg daily"),
                 *[f.magnesium(value, days=days) for value, days in mg], f.weight(70),
                 f.lab("33914-3", 40, "mL/min/{1.73_m2}", days=3), f.transplant(400)]
    return [own(r, patient_id) for r in resources]


def body_for(patient_id: str = f.PATIENT_ID, base: str = BASE, **kwargs) -> dict:
    return f.hook_request(prefetch=None, fhir_server=base, patientId=patient_id, **kwargs)


class Server:
    """A FHIR server (mocked with `responses`) that filters searches by patient, pages them
    (`page_size`), gives each search Bundle a new id, and can answer a resource type with fixed
    bytes (`raw`). `served` counts the resources of its answers (entries and reads)."""

    def __init__(self, resources: list[dict], base: str = BASE, *, page_size: int | None = None,
                 indent: int | None = None):
        self.resources = resources
        self.base = base
        self.page_size = page_size
        self.indent = indent
        self.raw: dict[str, tuple[int, bytes | str]] = {}
        self.searches = 0
        self.served = 0
        self.lock = threading.Lock()

    def install(self, mock: responses.RequestsMock) -> Server:
        mock.add_callback(responses.GET, re.compile(re.escape(self.base) + r"/.*"), callback=self.answer)
        return self

    def dumps(self, value) -> str:
        return json.dumps(value, indent=self.indent)

    def answer(self, request):
        parts = urlsplit(request.url)
        path = parts.path[len(urlsplit(self.base).path):].strip("/")
        rtype, _, rid = path.partition("/")
        if rtype in self.raw:
            status, body = self.raw[rtype]
            return status, {}, body
        if rid:
            found = [r for r in self.resources if r["resourceType"] == rtype and r.get("id") == rid]
            if not found:
                return 404, {}, json.dumps({"resourceType": "OperationOutcome",
                                            "issue": [{"severity": "error", "code": "not-found"}]})
            with self.lock:
                self.served += 1
            return 200, {}, self.dumps(found[0])
        query = parse_qs(parts.query)
        patient = query.get("patient", [None])[0]
        matches = [r for r in self.resources if r["resourceType"] == rtype
                   and (patient is None or (r.get("subject") or r.get("patient") or {}).get("reference")
                        == f"Patient/{patient}")]
        if "code" in query and rtype in ("Observation", "Procedure", "ServiceRequest"):
            wanted = set(query["code"][0].split(","))
            matches = [r for r in matches
                       if {f"{c.get('system')}|{c.get('code')}" for c in r.get("code", {}).get("coding", [])} & wanted]
        with self.lock:
            self.searches += 1
            number = self.searches
        bundle: dict = {"resourceType": "Bundle", "id": f"search-{number}", "type": "searchset",
                        "meta": {"lastUpdated": f"2026-11-25T12:00:{number % 60:02d}Z"}, "total": len(matches)}
        offset = int(query.get("_offset", ["0"])[0])
        page = matches
        links = [{"relation": "self", "url": request.url}]
        if self.page_size:
            page = matches[offset:offset + self.page_size]
            if offset + self.page_size < len(matches):
                stem = re.sub(r"&_offset=\d+", "", request.url)
                links.append({"relation": "next", "url": f"{stem}&_offset={offset + self.page_size}"})
        bundle["link"] = links
        bundle["entry"] = [{"fullUrl": f"{self.base}/{r['resourceType']}/{r.get('id')}", "resource": r,
                            "search": {"mode": "match"}} for r in page]
        with self.lock:
            self.served += len(page)
        return 200, {}, self.dumps(bundle)


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch):
    monkeypatch.setattr(hooks, "utc_now", lambda: f.NOW)


@pytest.fixture
def fhir():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def memo_off_and_on(body, *, path=PATIENT_VIEW, calls=4, **settings):
    """The answers of a memo-off app (2 calls) and of a memo-on app (`calls` calls)."""
    off_client = make_client(resource_memo_size=0, **settings)
    off = [answer(off_client, body, path) for _ in range(2)]
    on_client = make_client(**settings)
    on = [answer(on_client, body, path) for _ in range(calls)]
    return off, on


def assert_all_equal(answers):
    first = answers[0]
    for index, other in enumerate(answers[1:], start=1):
        assert other == first, f"answer {index} differs from answer 0"


# --- answers: memo on = memo off = prefetched ----------------------------------------------------


def test_paged_searches_read_the_same_on_every_call_and_as_prefetched(fhir):
    """Six magnesium results on pages of two (three pages, each a new Bundle id): the cards are
    the same with the memo off, on each call with it on, and when the record is prefetched."""
    resources = record(mg=((1.6, 40), (1.5, 30), (1.4, 20), (1.3, 10), (1.2, 5), (1.1, 2)))
    Server(resources, page_size=2).install(fhir)
    off, on = memo_off_and_on(body_for())
    assert_all_equal(off + on)
    assert off[0][0] == 200 and "Mg 1.1 mEq/L" in off[0][1]["cards"][0]["summary"]
    sent = answer(make_client(), f.hook_request(resources))
    assert sent == off[0]


def paged_magnesium_prefetch():
    """Six magnesium results; the EHR prefetches the first page of two with a next link to its
    FHIR server (served in pages of two)."""
    resources = record(mg=((1.6, 40), (1.5, 30), (1.4, 20), (1.3, 10), (1.2, 5), (0.8, 1)))
    query = next(k.query for k in PATIENT_DATA if k.key == "magnesium").replace(
        "{{context.patientId}}", f.PATIENT_ID)
    mg = [r for r in resources if r["resourceType"] == "Observation"
          and r["code"]["coding"][0]["code"] == "19123-9"]
    prefetch = f.prefetch_for(resources)
    prefetch["magnesium"] = {**f.bundle(*mg[:2]), "link": [
        {"relation": "next", "url": f"{BASE}/{query}&_offset=2"}]}
    return resources, prefetch


def test_a_paged_prefetch_completed_from_the_server_reads_the_same(fhir):
    """The EHR prefetches the first page of the magnesium search, with a next link to its FHIR
    server: the rest is fetched (through the memo from the patient's second call on)."""
    resources, prefetch = paged_magnesium_prefetch()
    Server(resources, page_size=2).install(fhir)
    body = f.hook_request(prefetch=prefetch, fhir_server=BASE)
    off, on = memo_off_and_on(body)
    assert_all_equal(off + on)
    assert "Mg 0.8 mEq/L" in off[0][1]["cards"][0]["summary"]  # found on the third page
    assert off[0] == answer(make_client(), f.hook_request(resources))


def test_a_resource_in_two_searches_is_read_once_and_the_same(fhir):
    """One Observation coded both as serum Mg and as eGFR comes back in two searches (the same
    bytes in two entry arrays): same cards on and off, as prefetched."""
    both = f.magnesium(1.1, days=2)
    both["code"]["coding"].append({"system": f.LOINC, "code": "33914-3"})
    resources = record() + [both]
    Server(resources).install(fhir)
    off, on = memo_off_and_on(body_for())
    assert_all_equal(off + on)
    assert off[0] == answer(make_client(), f.hook_request(resources))


@pytest.mark.parametrize("reference", ["Medication/tacro-med", f"{BASE}/Medication/tacro-med"])
def test_a_medication_read_by_reference_reads_the_same(fhir, reference):
    """The only tacrolimus order names its drug through a Medication on the server (relative or
    absolute): it is read by the client (a single resource through the memo)."""
    medication = {"resourceType": "Medication", "id": "tacro-med",
                  "code": {"coding": [{"system": RXNORM, "code": "198377",
                                       "display": "tacrolimus 1 MG Oral Capsule"}]}}
    order = {"resourceType": "MedicationRequest", "id": "order-1", "status": "active", "intent": "order",
             "medicationReference": {"reference": reference},
             "subject": {"reference": f"Patient/{f.PATIENT_ID}"}, "authoredOn": f.days_ago(400)}
    resources = [r for r in record() if r["resourceType"] != "MedicationRequest"] + [order, medication]
    Server(resources).install(fhir)
    off, on = memo_off_and_on(body_for())
    assert_all_equal(off + on)
    assert off[0][1]["cards"], "tacrolimus named through the Medication must be recognised"
    without_medication = [r for r in resources if r["resourceType"] != "Medication"]
    sent = answer(make_client(), f.hook_request(without_medication, fhir_server=BASE))
    assert sent == off[0]


def test_resources_larger_than_what_the_memo_keeps_read_the_same(fhir):
    """A magnesium result and a Patient over MAX_KEPT_BYTES: read each time, never kept; the
    rest of their search still found in the memo."""
    big_mg = f.magnesium(0.9, days=1, note=[{"text": "x" * (MAX_KEPT_BYTES + 100)}])
    resources = record() + [big_mg]
    resources[0] = {**resources[0], "extension": [{"url": "http://example.org/big",
                                                   "valueString": "y" * (MAX_KEPT_BYTES + 100)}]}
    server = Server(resources).install(fhir)
    off, on = memo_off_and_on(body_for())
    assert_all_equal(off + on)
    assert "Mg 0.9 mEq/L" in off[0][1]["cards"][0]["summary"]
    client = make_client()
    for _ in range(2):
        answer(client, body_for())
    before = (fetched("hit"), fetched("miss"), server.served)
    answer(client, body_for())
    hits, misses, served = (fetched("hit") - before[0], fetched("miss") - before[1], server.served - before[2])
    assert misses == 2 and hits == served - 2  # only the two outsized ones parsed again


@pytest.mark.parametrize("change", ["new result", "corrected result", "removed result", "new page"])
def test_a_changed_answer_is_read_anew(fhir, change):
    """The server's answer changes between a patient's calls: the warm memo's answer equals a
    fresh memo-off app's answer for the server as it is now."""
    resources = record(mg=((1.5, 20), (1.3, 5), (1.2, 3)))
    Server(resources, page_size=2 if change == "new page" else None).install(fhir)
    client = make_client()
    before = [answer(client, body_for()) for _ in range(3)][-1]
    mg = [r for r in resources if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "19123-9"]
    if change in ("new result", "new page"):
        resources.append(f.magnesium(0.7, days=1))
    elif change == "corrected result":
        corrected = copy.deepcopy(mg[-1])
        corrected["valueQuantity"]["value"] = 0.6
        corrected["status"] = "corrected"
        resources[resources.index(mg[-1])] = corrected
    else:
        resources.remove(mg[-1])
    now = answer(make_client(resource_memo_size=0), body_for())
    assert now != before, "the change must show in the answer (the test's premise)"
    assert answer(client, body_for()) == now
    assert answer(client, body_for()) == now


def test_outcomes_404s_and_errors_give_the_same_answer(fhir):
    """Searches answered with an OperationOutcome (200 and 500), an Encounter read that is a
    404: the same unavailable data named, and the same 412 when magnesium cannot be read."""
    server = Server(record()).install(fhir)
    oo = json.dumps({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]})
    server.raw["MedicationStatement"] = (200, oo)
    server.raw["Condition"] = (500, oo)
    body = body_for(encounterId="enc-missing")
    off, on = memo_off_and_on(body)
    assert_all_equal(off + on)
    assert off[0][0] == 200
    server.raw["Observation"] = (200, oo)  # magnesium (required) now unobtainable
    off, on = memo_off_and_on(body)
    assert_all_equal(off + on)
    assert off[0][0] == 412


def test_some_keys_prefetched_and_others_fetched_read_the_same(fhir):
    """Prefetch for the patient, medications and conditions (one null), the rest fetched."""
    resources = record(mg=((1.4, 9), (1.0, 2)))
    Server(resources).install(fhir)
    full = f.prefetch_for(resources)
    prefetch = {"patient": full["patient"], "medications": full["medications"], "conditions": None,
                "labs": {"resourceType": "OperationOutcome", "issue": []}}
    body = f.hook_request(prefetch=prefetch, fhir_server=BASE)
    off, on = memo_off_and_on(body)
    assert_all_equal(off + on)
    assert "Mg 1.0 mEq/L" in off[0][1]["cards"][0]["summary"]


def test_prefetched_and_fetched_calls_of_one_patient_alternate_with_the_same_answers(fhir):
    """A patient's calls alternate between prefetch and fallback (the same data): every answer
    is the same, whichever call noted the patient and whichever filled the memo."""
    resources = record(mg=((1.4, 9), (1.0, 2)))
    Server(resources).install(fhir)
    client = make_client()
    with_prefetch = f.hook_request(resources, fhir_server=BASE)
    answers = [answer(client, with_prefetch if i % 2 else body_for()) for i in range(6)]
    assert_all_equal(answers)


@pytest.mark.parametrize("path, hook", [(ORDER_SELECT, "order-select"), (ORDER_SIGN, "order-sign")])
def test_order_hooks_with_fallback_read_the_same(fhir, path, hook):
    resources = record(mg=((1.4, 9), (1.1, 2))) + [f.serum_mg_order()]
    Server(resources).install(fhir)
    medication = {"resourceType": "Medication", "id": "ppi-med",
                  "code": {"text": "omeprazole 40 mg delayed release capsule"}}
    resources.append(medication)
    drafts = [f.draft(f.medication("omeprazole 40 mg daily", id="draft-ppi")),
              f.draft(f.tacrolimus(id="draft-tac")),
              f.draft({"resourceType": "MedicationRequest", "id": "draft-ref", "intent": "order",
                       "medicationReference": {"reference": "Medication/ppi-med"},
                       "subject": {"reference": f"Patient/{f.PATIENT_ID}"}})]
    body = f.order_request(None, drafts, hook=hook, fhir_server=BASE)
    assert "prefetch" not in body
    off, on = memo_off_and_on(body, path=path)
    assert_all_equal(off + on)
    assert off[0][0] == 200 and off[0][1]["cards"]
    history = [r for r in resources if r["resourceType"] != "Medication"]
    sent = answer(make_client(), f.order_request(history, drafts, hook=hook, fhir_server=BASE), path)
    assert sent == off[0]


def test_two_patients_on_one_server_each_read_their_own(fhir):
    """Two patients on one server, calls interleaved: each patient's answers are those of a
    memo-off app, and they differ from each other."""
    first = record("pat-a", mg=((1.6, 20), (1.5, 5)))
    second = record("pat-b", mg=((1.2, 20), (0.7, 1)))
    Server(first + second).install(fhir)
    reference = make_client(resource_memo_size=0)
    expected = {pid: answer(reference, body_for(pid)) for pid in ("pat-a", "pat-b")}
    assert expected["pat-a"] != expected["pat-b"]
    client = make_client()
    for _ in range(4):
        for pid in ("pat-a", "pat-b"):
            assert answer(client, body_for(pid)) == expected[pid]


@pytest.mark.parametrize("size", [4, 10, 24, 64, 200])
def test_a_tiny_memo_rotating_during_calls_reads_the_same(fhir, size):
    """Memos so small that generations rotate inside one call (and arrays are kept or not):
    three patients interleaved over five rounds, each answer the memo-off one."""
    patients = {"pat-a": ((1.6, 20), (1.5, 5)), "pat-b": ((1.2, 20), (0.7, 1)), "pat-c": ((1.9, 9), (1.4, 3))}
    resources = [r for pid, mg in patients.items() for r in record(pid, mg=mg)]
    Server(resources, page_size=3).install(fhir)
    reference = make_client(resource_memo_size=0)
    expected = {pid: answer(reference, body_for(pid)) for pid in patients}
    client = make_client(resource_memo_size=size)
    for _ in range(5):
        for pid in patients:
            assert answer(client, body_for(pid)) == expected[pid]
    assert len(memo_of(client)) <= size + 2  # newer and older halves (arrays aside)


def test_calls_during_the_admission_pause_read_the_same(fhir):
    """The admission pause: forced (and brought on by thrashing a small memo with patients
    called twice each): answers during and after it are the memo-off ones."""
    patients = [f"pat-{i}" for i in range(12)]
    resources = [r for pid in patients for r in record(pid)]
    Server(resources).install(fhir)
    reference = make_client(resource_memo_size=0)
    expected = {pid: answer(reference, body_for(pid)) for pid in patients}
    client = make_client(resource_memo_size=20)
    memo = memo_of(client)
    memo._paused_calls = 3
    for pid in patients[:2] * 3:
        assert answer(client, body_for(pid)) == expected[pid]
    assert not memo.paused()
    paused_seen = False
    for pid in patients:
        for _ in range(2):
            assert answer(client, body_for(pid)) == expected[pid]
            paused_seen |= memo._paused_calls > 0
    assert paused_seen, "thrashing should have paused the memo (the test's premise)"
    for pid in patients[:3] * 2:
        assert answer(client, body_for(pid)) == expected[pid]


# --- data isolation -------------------------------------------------------------------------------


def test_a_caller_pointing_fhir_server_at_its_own_server_cannot_change_another_patients_answer(fhir):
    """A caller names the victim's patient id and its own FHIR server, which answers the
    victim's resources byte for byte plus a critical magnesium result (and a Patient of a
    different sex and age): the victim's calls to the EHR's server keep the memo-off answer,
    before, between and after the caller's calls."""
    victim = record(mg=((1.6, 20), (1.5, 5)))
    Server(victim).install(fhir)
    planted = copy.deepcopy(victim) + [f.magnesium(0.4, days=0.5)]
    planted[0] = f.patient(birth_date="2020-01-01", gender="male")
    Server(planted, base=OTHER).install(fhir)
    expected = answer(make_client(resource_memo_size=0), body_for())
    attacker_expected = answer(make_client(resource_memo_size=0), body_for(base=OTHER))
    assert expected != attacker_expected
    client = make_client()
    for _ in range(4):
        assert answer(client, body_for(base=OTHER)) == attacker_expected
        assert answer(client, body_for()) == expected
    assert "0.4" not in json.dumps(answer(client, body_for()))


def test_the_fetched_resources_are_the_ones_this_servers_answer_holds(fhir):
    """Two servers answer the same searches for one patient id with the same resource ids but
    different values: every resource the client reads through a shared memo has the bytes its
    own server sent (never the other server's twin)."""
    shared = ResourceMemo(1000, 600.0)
    mine = [f.magnesium(1.5, days=3, id="mg-x"), f.magnesium(1.2, days=1, id="mg-y")]
    theirs = [f.magnesium(0.3, days=3, id="mg-x"), f.magnesium(1.2, days=1, id="mg-y")]
    Server(mine).install(fhir)
    Server(theirs, base=OTHER).install(fhir)
    for _ in range(3):
        for base, expected in ((BASE, mine), (OTHER, theirs)):
            client = FhirClient(base, None, connect_timeout=1, read_timeout=1, max_pages=5, memo=shared)
            got = client.resources(f"Observation?patient={f.PATIENT_ID}&code={f.LOINC}|19123-9",
                                   deadline=time.monotonic() + 10).resources
            assert orjson.dumps(got) == orjson.dumps(expected)


# --- metrics --------------------------------------------------------------------------------------


def test_fetched_resource_counts_are_one_per_resource_served(fhir):
    """Pages and a Medication read: the patient's first call counts nothing, the second counts
    each resource its server answered once as a miss, the third once as a hit; prefetch counts
    do not move for calls without prefetch."""
    medication = {"resourceType": "Medication", "id": "tacro-med",
                  "code": {"coding": [{"system": RXNORM, "code": "198377"}]}}
    order = {"resourceType": "MedicationRequest", "id": "order-1", "status": "active", "intent": "order",
             "medicationReference": {"reference": "Medication/tacro-med"},
             "subject": {"reference": f"Patient/{f.PATIENT_ID}"}, "authoredOn": f.days_ago(400)}
    resources = record(mg=((1.6, 40), (1.5, 30), (1.4, 20), (1.3, 10), (1.2, 5))) + [order, medication]
    server = Server(resources, page_size=2).install(fhir)
    client = make_client()
    counts = []
    for _ in range(4):
        before = (fetched("hit"), fetched("miss"), server.served, prefetched("hit"), prefetched("miss"))
        status, _ = answer(client, body_for())
        assert status == 200
        counts.append((fetched("hit") - before[0], fetched("miss") - before[1], server.served - before[2],
                       prefetched("hit") - before[3], prefetched("miss") - before[4]))
    served = counts[0][2]
    assert served >= 12
    assert counts[0] == (0, 0, served, 0, 0)
    assert counts[1] == (0, served, served, 0, 0)
    assert counts[2] == (served, 0, served, 0, 0)
    assert counts[3] == (served, 0, served, 0, 0)


def test_a_paged_prefetch_counts_its_first_page_as_prefetched_and_the_rest_as_fetched(fhir):
    """The first page prefetched, two more fetched: from the third call on, the prefetch
    counters see the prefetched resources only, the fetch counters the fetched pages only."""
    resources, prefetch = paged_magnesium_prefetch()
    server = Server(resources, page_size=2).install(fhir)
    sent = sum(len(bundle_resources(v)) for v in prefetch.values() if isinstance(v, dict))
    body = f.hook_request(prefetch=prefetch, fhir_server=BASE)
    client = make_client()
    for _ in range(2):
        answer(client, body)
    before = (fetched("hit"), fetched("miss"), server.served, prefetched("hit"), prefetched("miss"))
    assert answer(client, body)[0] == 200
    assert (fetched("hit") - before[0], fetched("miss") - before[1]) == (server.served - before[2], 0)
    assert server.served - before[2] == 4
    assert (prefetched("hit") - before[3], prefetched("miss") - before[4]) == (sent, 0)


# --- odd answers through FhirClient ----------------------------------------------------------------


def outcome(memo: ResourceMemo | None, answer_bytes: bytes, headers: dict | None = None, read: bool = False):
    """What the client makes of one answer: ("ok", the resources as JSON, incomplete) or
    ("error", kind, message)."""
    client = FhirClient(BASE, None, connect_timeout=1, read_timeout=1, max_pages=1, memo=memo)
    relative = "Medication/m1" if read else "Observation?patient=p"
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/{relative.split('?')[0]}", body=answer_bytes, status=200,
                 headers=headers or {})
        try:
            got = client.resources(relative, deadline=time.monotonic() + 10)
        except FetchError as error:
            return ("error", error.kind, str(error))
    return ("ok", orjson.dumps(got.resources), got.incomplete)


OBS = b'{"resourceType":"Observation","id":"o1","valueQuantity":{"value":1.0}}'
OBS_INT = b'{"resourceType":"Observation","id":"o1","valueQuantity":{"value":1}}'
BUNDLE = b'{"resourceType":"Bundle","entry":['  # the start of a search answer
PRETTY = json.dumps(json.loads(b'{"resourceType":"Bundle","entry":[{"resource":' + OBS + b'}]}'), indent=2).encode()

SAME_OUTCOME = {
    "plain": b'{"resourceType":"Bundle","entry":[{"resource":' + OBS + b'}]}',
    "pretty, LF": PRETTY,
    "pretty, CRLF and tabs": PRETTY.replace(b"\n", b"\r\n").replace(b"  ", b"\t"),
    "leading and trailing white space": b" \r\n\t" + PRETTY + b" \n",
    "BOM": b"\xef\xbb\xbf" + PRETTY,
    "latin-1 text": b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","id":"caf\xe9"}}]}',
    "latin-1 in the Bundle id": b'{"resourceType":"Bundle","id":"caf\xe9","entry":[{"resource":' + OBS + b'}]}',
    "UTF-16": PRETTY.decode().encode("utf-16"),
    "1 instead of 1.0": b'{"resourceType":"Bundle","entry":[{"resource":' + OBS_INT + b'}]}',
    "1E0 and -0": BUNDLE + b'{"resource":{"resourceType":"Observation","a":1E0,"b":-0,"c":-0.0}}]}',
    "big integer": BUNDLE + b'{"resource":{"resourceType":"Observation","v":123456789012345678901234567890}}]}',
    "duplicate entry member": b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"a"}}],'
                              b'"entry":[{"resource":' + OBS + b'}]}',
    "duplicate resource member": b'{"resourceType":"Bundle","entry":[{"resource":' + OBS + b',"resource":'
                                 + OBS_INT + b'}]}',
    "duplicate keys in a resource": b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation",'
                                    b'"id":"a","status":"final","id":"b"}}]}',
    "duplicate search member": b'{"resourceType":"Bundle","entry":[{"search":{"mode":"outcome"},"resource":'
                               + OBS + b',"search":{"mode":"match"}}]}',
    "escaped member names": b'{"resource\\u0054ype":"Bundle","\\u0065ntry":[{"r\\u0065source":' + OBS + b'}]}',
    "nested Bundle in an entry": b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Bundle","entry":'
                                 b'[{"resource":' + OBS + b'}]}}]}',
    "entry is an object": b'{"resourceType":"Bundle","entry":{"resource":' + OBS + b'}}',
    "entry is a string": b'{"resourceType":"Bundle","entry":"' + OBS.replace(b'"', b'\\"') + b'"}',
    "entry is a number": b'{"resourceType":"Bundle","entry":7}',
    "entry is null": b'{"resourceType":"Bundle","entry":null}',
    "entry holds null and lists": b'{"resourceType":"Bundle","entry":[null,[],{"resource":' + OBS + b'}]}',
    "entry resource is a list": b'{"resourceType":"Bundle","entry":[{"resource":[' + OBS + b']}]}',
    "entry resource is a string": b'{"resourceType":"Bundle","entry":[{"resource":"x"},{"resource":' + OBS + b'}]}',
    "empty entry array": b'{"resourceType":"Bundle","entry":[]}',
    "search is a list": b'{"resourceType":"Bundle","entry":[{"search":["outcome"],"resource":' + OBS + b'}]}',
    "lone surrogate in a resource": BUNDLE + b'{"resource":{"resourceType":"Observation","id":"\\ud800"}}]}',
    "lone surrogate in the Bundle id": b'{"resourceType":"Bundle","id":"\\udc00","entry":[]}',
    "lone surrogate member name in a read": b'{"resourceType":"Medication","\\ud800":1}',
    "control character in the Bundle id": b'{"resourceType":"Bundle","id":"a\x01","entry":[]}',
    "1e400 in a resource": b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","v":1e400}}]}',
    "1e400 in an entry's search": BUNDLE + b'{"search":{"score":1e400},"resource":' + OBS + b'}]}',
    "1e400 in the link": b'{"resourceType":"Bundle","link":[{"relation":"self","x":1e400}],"entry":[]}',
    "resourceType not a string": b'{"resourceType":["Bundle"],"entry":[{"resource":' + OBS + b'}]}',
    "resourceType twice, Bundle last": (b'{"resourceType":"Patient","id":"p","resourceType":"Bundle",'
                                        b'"entry":[{"resource":' + OBS + b'}]}'),
    "an OperationOutcome Bundle entry": b'{"resourceType":"Bundle","entry":[{"search":{"mode":"outcome"},"resource":'
                                        b'{"resourceType":"OperationOutcome"}},{"resource":' + OBS + b'}]}',
    "empty object": b"{}",
    "values just over the budget": b'{"resourceType":"Bundle","entry":[' + b"0," * MAX_JSON_VALUES + b"0]}",
    "values at the budget": b'{"resourceType":"Bundle","x":[' + b"0," * (MAX_JSON_VALUES - 3) + b'0],"entry":[]}',
}


@pytest.mark.parametrize("raw", list(SAME_OUTCOME.values()), ids=list(SAME_OUTCOME))
def test_an_odd_search_answer_gives_the_same_outcome_through_the_memo(raw):
    shared = ResourceMemo(1000, 600.0)
    without = outcome(None, raw)
    assert outcome(shared, raw) == without
    assert outcome(shared, raw) == without


READS = {
    "a read": b'{"resourceType":"Medication","id":"m1","code":{"text":"tacrolimus"}}',
    "a pretty read": json.dumps({"resourceType": "Medication", "id": "m1", "code": {"text": "tacrolimus"}},
                                indent=3).encode(),
    "a read with duplicate members": b'{"resourceType":"Medication","id":"m1","code":{"text":"a"},"code":{"text":"b"}}',
    "a read answered with a Bundle": BUNDLE + b'{"resource":{"resourceType":"Medication","id":"m1"}}]}',
    "a read answered with an OperationOutcome": b'{"resourceType":"OperationOutcome","issue":[]}',
    "a read over MAX_KEPT_BYTES": b'{"resourceType":"Medication","id":"m1","x":"' + b"z" * MAX_KEPT_BYTES + b'"}',
    "a read with 1e400": b'{"resourceType":"Medication","id":"m1","x":1e400}',
    "a read with no resourceType": b'{"id":"m1"}',
    "a list": b'[{"resourceType":"Medication","id":"m1"}]',
}


@pytest.mark.parametrize("raw", list(READS.values()), ids=list(READS))
def test_an_odd_read_answer_gives_the_same_outcome_through_the_memo(raw):
    shared = ResourceMemo(1000, 600.0)
    without = outcome(None, raw, read=True)
    assert outcome(shared, raw, read=True) == without
    assert outcome(shared, raw, read=True) == without


def test_a_gzip_answer_gives_the_same_outcome_through_the_memo():
    raw = SAME_OUTCOME["pretty, LF"]
    shared = ResourceMemo(1000, 600.0)
    for body in (gzip.compress(raw), gzip.compress(b"not json"), gzip.compress(raw)[:-9]):
        without = outcome(None, body, {"Content-Encoding": "gzip"})
        assert outcome(shared, body, {"Content-Encoding": "gzip"}) == without
        assert outcome(shared, body, {"Content-Encoding": "gzip"}) == without
    assert outcome(shared, gzip.compress(raw), {"Content-Encoding": "gzip"})[0] == "ok"


def test_the_same_resource_as_1_and_as_1_0_stays_two_resources():
    """Two answers for one result, one writing its value 1.0 and the other 1 (the same number
    to Python): each answer reads its own bytes through a shared memo."""
    shared = ResourceMemo(1000, 600.0)
    for raw in (OBS, OBS_INT, OBS, OBS_INT):
        bundle = b'{"resourceType":"Bundle","entry":[{"resource":' + raw + b"}]}"
        assert outcome(shared, bundle) == outcome(None, bundle)
        assert outcome(shared, bundle)[1] == b"[" + orjson.dumps(orjson.loads(raw)) + b"]"


UNREAD_OUT_OF_RANGE = {
    "1e400 as the Bundle total": b'{"resourceType":"Bundle","total":1e400,"entry":[{"resource":' + OBS + b'}]}',
    "-1e400 in the Bundle meta": b'{"resourceType":"Bundle","meta":{"versionId":-1e400},"entry":[{"resource":'
                                 + OBS + b'}]}',
    "1e309 in an entry's response": b'{"resourceType":"Bundle","entry":[{"response":{"status":1e309},"resource":'
                                    + OBS + b'}]}',
    "a 400-digit integer as the Bundle total": b'{"resourceType":"Bundle","total":1' + b"0" * 400
                                               + b',"entry":[{"resource":' + OBS + b'}]}',
    "1e400 in an entry array shadowed by a second one": (BUNDLE + b'{"resource":{"resourceType":'
                                                         b'"Observation","v":1e400}}],"entry":[{"resource":'
                                                         + OBS + b'}]}'),
    "1e400 in a resource shadowed by a second one": b'{"resourceType":"Bundle","entry":[{"resource":{"v":1e400},'
                                                    b'"resource":' + OBS + b'}]}',
}


def test_an_out_of_range_number_in_a_shadowed_member_of_a_read_is_read_past_through_the_memo():
    """Leniency, as for prefetch (protocol/body.parse_body): a read whose JSON names a member
    twice, the first value 1e400. orjson refuses the whole answer; through the memo the resource
    is rebuilt from the last value of each member, as orjson itself would keep it, and read."""
    raw = b'{"resourceType":"Medication","id":"m1","code":1e400,"code":{"text":"tacrolimus"}}'
    assert outcome(None, raw, read=True)[0] == "error"
    status, resources, _ = outcome(ResourceMemo(1000, 600.0), raw, read=True)
    assert status == "ok" and orjson.loads(resources) == [
        {"resourceType": "Medication", "id": "m1", "code": {"text": "tacrolimus"}}]


@pytest.mark.parametrize("raw", list(UNREAD_OUT_OF_RANGE.values()), ids=list(UNREAD_OUT_OF_RANGE))
def test_an_out_of_range_number_where_the_service_does_not_read_is_read_past_through_the_memo(raw):
    """Leniency, as for prefetch: a search answer whose only fault is a number beyond float range
    (valid JSON, beyond orjson's limits) in a member the service does not read (Bundle.total,
    Bundle.meta, an entry's response, a member shadowed by a later duplicate). Without the memo
    (and on a patient's first call) parse_json refuses it; through the memo msgspec skips the
    member and the resources are read: exactly the entry resources, nothing else."""
    assert outcome(None, raw)[0] == "error"
    status, resources, incomplete = outcome(ResourceMemo(1000, 600.0), raw)
    assert status == "ok" and incomplete is None
    assert orjson.loads(resources) == [orjson.loads(OBS)]


def test_out_of_range_numbers_in_what_the_service_reads_are_refused_through_the_memo_too():
    """The leniency stops at what the service reads: 1e400 in a resource, in an entry's search or
    in the paging links fails the fetch with the memo as without it."""
    for raw in (b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","v":1e400}}]}',
                b'{"resourceType":"Bundle","entry":[{"search":{"score":1e400},"resource":' + OBS + b'}]}',
                b'{"resourceType":"Bundle","link":[{"relation":"next","url":1e400}],"entry":[]}'):
        without = outcome(None, raw)
        assert without[0] == "error"
        assert outcome(ResourceMemo(1000, 600.0), raw) == without


def test_a_patients_later_calls_read_a_search_whose_unread_total_is_out_of_range(fhir):
    """End to end, the leniency above: the magnesium search (required) answered with
    `"total": 1e400`. The patient's first call cannot parse it and answers 412 (the service
    says what it could not read); from the second call on the memo reads the entries and the
    call answers with the card the result deserves. Memo off: 412 every time."""
    resources = record(mg=((1.3, 5),))
    server = Server(resources).install(fhir)
    mg = [r for r in resources if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "19123-9"]
    server.raw["Observation"] = (200, b'{"resourceType":"Bundle","total":1e400,"entry":'
                                 + orjson.dumps([{"resource": r} for r in mg]) + b"}")
    off, on = memo_off_and_on(body_for(), calls=3)
    assert [status for status, _ in off] == [412, 412]
    assert [status for status, _ in on] == [412, 200, 200]
    assert "Mg 1.3 mEq/L" in on[1][1]["cards"][0]["summary"]


# --- concurrency ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [5000, 10])
def test_concurrent_fallback_calls_over_loopback_read_the_same(size):
    """12 threads, 4 calls each, for 3 patients (the stub answers every patient's searches with
    pat-1's resources; only pat-1 has a Patient), against a real loopback FHIR server: no
    error, and each answer is the patient's memo-off answer. Generous timeouts: the test checks
    data, not speed."""
    resources = record(mg=((1.6, 40), (1.4, 9), (1.1, 2)))
    settings = {"fhir_deadline": 60.0, "fhir_read_timeout": 30.0, "fhir_connect_timeout": 10.0}
    patients = [f.PATIENT_ID, "pat-2", "pat-3"]
    with FhirStub(resources) as stub:
        reference = make_client(resource_memo_size=0, **settings)
        expected = {pid: answer(reference, body_for(pid, base=stub.base_url)) for pid in patients}
        assert expected[f.PATIENT_ID][0] == 200
        app = create_app({"log_level": "WARNING", "resource_memo_size": size, **settings})
        hits_before = fetched("hit")
        results: list[tuple[str, tuple]] = []
        failures: list[BaseException] = []
        start = threading.Barrier(12)

        def work(index: int) -> None:
            client = app.test_client()
            try:
                start.wait(timeout=30)
                for call in range(4):
                    pid = patients[(index + call) % len(patients)]
                    results.append((pid, answer(client, body_for(pid, base=stub.base_url))))
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not failures, failures
    assert len(results) == 48
    assert fetched("hit") > hits_before  # the memo was used (the test's premise)
    for pid, got in results:
        assert got == expected[pid], pid


def test_concurrent_reads_of_one_memo_with_rotations_give_each_answer_its_own_data():
    """8 threads read 6 overlapping search answers through one tiny memo (rotating all the
    time, entry arrays kept and dropped): every read gives exactly what orjson gives."""
    shared = ResourceMemo(16, 600.0)
    results = [f.magnesium(1.0 + i / 10, days=i + 1, id=f"mg-{i}") for i in range(8)]
    answers = [orjson.dumps(f.bundle(*results[i:i + 3])) for i in range(6)]
    answers += [orjson.dumps(r) for r in results[:3]]
    expected = [orjson.dumps(bundle_resources(orjson.loads(raw))) for raw in answers]
    failures: list[str] = []

    def work(offset: int) -> None:
        for step in range(400):
            index = (offset + step * 5) % len(answers)
            got = orjson.dumps(bundle_resources(parse_fetched(answers[index], shared, Tally())))
            if got != expected[index]:
                failures.append(f"answer {index} read as {got!r}")
                return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures[:3]
    assert len(shared) <= 16 + 8


# --- the deadline thread -------------------------------------------------------------------------


def test_a_far_deadline_in_progress_does_not_hold_back_a_near_one():
    """While a fetch whose deadline is years away waits on a hanging server, a trickling fetch
    with a 0.5 s deadline is still cut at its own deadline (scheduling a nearer deadline wakes
    the deadline thread out of its bounded wait)."""
    outcomes: list = []
    with HostileServer("hang") as hanging, HostileServer("trickle") as slow:
        far = FhirClient(hanging.base_url, None, connect_timeout=1.0, read_timeout=3.0, max_pages=1)
        near = FhirClient(slow.base_url, None, connect_timeout=1.0, read_timeout=5.0, max_pages=1)
        waiting = threading.Thread(target=lambda: outcomes.append(
            pytest.raises(FetchError, far.get_json, f"{hanging.base_url}/Patient/p", time.monotonic() + 1e12)))
        waiting.start()
        time.sleep(0.2)
        worker = threading.Thread(target=lambda: outcomes.append(
            pytest.raises(FetchError, near.get_json, f"{slow.base_url}/Patient/p", time.monotonic() + 0.5)))
        worker.start()
        worker.join(timeout=30)  # a hang detector, not a timing assertion
        assert not worker.is_alive(), "the near fetch outlived its deadline"
        waiting.join(timeout=30)
    kinds = sorted(o.value.kind for o in outcomes)
    assert kinds == ["timeout", "timeout"]


def test_a_deadline_beyond_what_a_lock_can_wait_for_leaves_fallback_hooks_answering():
    """CDS_FHIR_DEADLINE accepts any finite number: a deadline beyond threading.TIMEOUT_MAX
    (~9.2e9 s) must not break fetches. fhir/data.gather waited for them with
    concurrent.futures.wait(timeout=deadline - now), which raised OverflowError for such a
    timeout: every fallback hook whose fetches were not all done at once answered 500 (found
    by review; the deadline thread itself was fixed first)."""
    resources = record()
    with FhirStub(resources, delay=0.3) as stub:
        client = make_client(fhir_deadline=1e12)
        status, payload = answer(client, body_for(base=stub.base_url))
    assert status == 200, payload
