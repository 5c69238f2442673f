"""What a FHIR server answers when prefetch is missing goes through the resource memo for the
calls that use it (protocol/body.parse_fetched): the service reads the same data and gives the
same errors as with a plain parse (but for parse_body's leniency towards unread members,
tests/test_review_s19.py), a changed answer is read anew, and a patient's first call keeps
nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import orjson
import pytest
import responses
from prometheus_client import REGISTRY

from cds_service import create_app
from cds_service.fhir.client import FetchError, FhirClient, bundle_resources, next_link
from cds_service.protocol.body import ResourceMemo, SharedEntries, SharedResource, Tally, parse_fetched
from cds_service.testing import factories as f
from cds_service.testing.fhir_stub import FhirStub
from cds_service.web import hooks

from .conftest import PATIENT_VIEW, without_uuids
from .fake_fhir import BASE, FakeFhirServer

REQUESTS = sorted((Path(__file__).resolve().parent.parent / "fhir_fixtures" / "requests").glob("*.json"))


def fetched(kind: str) -> float:
    return REGISTRY.get_sample_value("cds_fetched_resources_total", {"memo": kind}) or 0.0


def answers_in_fixtures():
    """Every prefetch value of every fixture request, as a FHIR server would send it (a search
    Bundle with its own id, meta and self link, or one resource)."""
    for path in REQUESTS:
        body = json.loads(path.read_text())
        for key, value in (body.get("prefetch") or {}).items():
            if isinstance(value, dict):
                if value.get("resourceType") == "Bundle":
                    value = {"resourceType": "Bundle", "id": f"search-{key}", "type": "searchset",
                             "meta": {"lastUpdated": "2026-12-07T10:00:00Z"},
                             "link": [{"relation": "self", "url": f"{BASE}/x?{key}"}],
                             **{k: v for k, v in value.items() if k not in ("id", "meta", "link")}}
                yield pytest.param(value, id=f"{path.stem}-{key}")


def what_the_client_reads(body):
    return (body.get("resourceType"), bundle_resources(body), next_link(body))


@pytest.mark.parametrize("answer", list(answers_in_fixtures()))
def test_an_answer_read_through_the_memo_is_what_a_plain_parse_reads(answer):
    shared = ResourceMemo(1000, 600.0)
    for dumps in (lambda v: json.dumps(v).encode(), orjson.dumps):  # with and without spaces
        raw = dumps(answer)
        expected = what_the_client_reads(orjson.loads(raw))
        first, again = Tally(), Tally()
        assert what_the_client_reads(parse_fetched(raw, shared, first)) == expected
        read_again = parse_fetched(raw, shared, again)
        assert what_the_client_reads(read_again) == expected
        resources = bundle_resources(read_again)
        if resources:  # the second answer is the first one's resources, not a new parse
            assert again.misses == 0 and again.hits == len(resources)
            assert all(type(r) is SharedResource for r in resources)


def test_a_search_answered_again_is_one_look_up_and_a_new_result_is_read_anew():
    shared = ResourceMemo(1000, 600.0)
    results = [f.magnesium(1.6, days=d) for d in (30, 20, 10)]
    first = parse_fetched(orjson.dumps(f.bundle(*results)), shared, Tally())
    again = parse_fetched(orjson.dumps({**f.bundle(*results), "id": "another-search"}), shared, Tally())
    assert type(again["entry"]) is SharedEntries and again["entry"] is first["entry"]
    newer = f.magnesium(0.9, days=1)
    tally = Tally()
    changed = parse_fetched(orjson.dumps(f.bundle(*results, newer)), shared, tally)
    assert bundle_resources(changed)[-1] == newer and tally.misses == 1 and tally.hits == 3


ODD_ANSWERS = [
    b"not json", b"\xff\xfe{}", b"[]", b'"Bundle"', b"{}", b"null",
    b'{"resourceType":"OperationOutcome","issue":[]}',
    b'{"resourceType":"Bundle","entry":{}}',
    b'{"resourceType":"Bundle","entry":[1,"x",{"resource":[]},{"resource":{"id":"no-type"}}]}',
    b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","valueQuantity":{"value":1e400}}}]}',
    b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","note":'
    + b"[" * 2000 + b"]" * 2000 + b"}}]}",  # deeper than orjson parses
    b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","id":"\xe9"}}]}',
    b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","id":"a"}},]}',
    b'{"resourceType":"Bundle","resourceType":"Patient","id":"dup"}',
    b'{"resourceType":"Patient","id":"p1"} trailing',
    b'{"resourceType":"Bundle","link":[{"relation":"next","url":7}],"entry":[{"search":{"mode":"outcome"},'
    b'"resource":{"resourceType":"OperationOutcome"}}]}',
]


def outcome(memo: ResourceMemo | None, answer: bytes):
    client = FhirClient(BASE, None, connect_timeout=1, read_timeout=1, max_pages=1, memo=memo)
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/Observation", body=answer, status=200)
        try:
            got = client.resources("Observation?patient=p", deadline=time.monotonic() + 10)
        except FetchError as error:
            return ("error", error.kind, str(error))
    return ("ok", got.resources, got.incomplete)


@pytest.mark.parametrize("answer", ODD_ANSWERS)
def test_an_odd_answer_gives_what_it_gives_without_the_memo(answer):
    shared = ResourceMemo(1000, 600.0)
    without = outcome(None, answer)
    assert outcome(shared, answer) == without
    assert outcome(shared, answer) == without  # and again, from what the memo kept


@pytest.fixture
def fhir():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def cards_of(client, body):
    response = client.post(PATIENT_VIEW, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return without_uuids(response.get_json()["cards"])


def test_a_patients_calls_without_prefetch_read_the_same_and_a_new_result_is_seen(fhir, monkeypatch):
    monkeypatch.setattr(hooks, "utc_now", lambda: f.NOW)
    client = create_app({"log_level": "WARNING"}).test_client()
    server = FakeFhirServer([f.tacrolimus(), f.magnesium(1.5, days=20), f.magnesium(1.3, days=5),
                             f.lab("33914-3", 55, "mL/min/{1.73_m2}", days=5)])
    server.install(fhir)
    body = f.hook_request(prefetch={}, fhir_server=BASE)

    counts = []
    answers = []
    for _ in range(3):
        before = (fetched("hit"), fetched("miss"))
        answers.append(cards_of(client, body))
        counts.append((fetched("hit") - before[0], fetched("miss") - before[1]))
    assert answers[0] == answers[1] == answers[2]
    assert "Mg 1.3 mEq/L" in answers[0][0]["summary"]
    assert counts[0] == (0, 0)  # the patient's first call: parsed as usual, nothing kept
    hits, misses = counts[1]
    assert hits == 0 and misses >= 4  # the second keeps what it reads
    assert counts[2] == (misses, 0)  # the third finds all of it

    server.resources.append(f.magnesium(0.8, days=1))  # a new, severe result
    before = (fetched("hit"), fetched("miss"))
    cards = cards_of(client, body)
    assert cards[0]["indicator"] == "critical" and "Mg 0.8 mEq/L" in cards[0]["summary"]
    assert fetched("miss") - before[1] == 1  # only the new result is parsed and read
    assert fetched("hit") - before[0] == misses  # the rest found again (entries reused)


def test_another_patients_first_call_keeps_nothing_from_the_first_patients(fhir, monkeypatch):
    monkeypatch.setattr(hooks, "utc_now", lambda: f.NOW)
    client = create_app({"log_level": "WARNING"}).test_client()
    FakeFhirServer([f.tacrolimus(), f.magnesium(1.3, days=5)]).install(fhir)
    first = f.hook_request(prefetch={}, fhir_server=BASE)
    for _ in range(2):
        cards_of(client, first)
    other = {**first, "context": {**first["context"], "patientId": "another-patient"}}
    before = (fetched("hit"), fetched("miss"))
    cards_of(client, other)
    assert (fetched("hit"), fetched("miss")) == before


def test_memo_off_reads_fetched_answers_as_before(fhir, monkeypatch):
    monkeypatch.setattr(hooks, "utc_now", lambda: f.NOW)
    client = create_app({"log_level": "WARNING", "resource_memo_size": 0}).test_client()
    FakeFhirServer([f.tacrolimus(), f.magnesium(1.3, days=5)]).install(fhir)
    body = f.hook_request(prefetch={}, fhir_server=BASE)
    before = (fetched("hit"), fetched("miss"))
    assert cards_of(client, body) == cards_of(client, body)
    assert (fetched("hit"), fetched("miss")) == before


def test_over_loopback_http_the_calls_agree_with_prefetch(monkeypatch):
    """A real FHIR server on loopback (not a mock): the fallback's answers, through the memo from
    the second call on, are the cards the same record gives when it is prefetched."""
    monkeypatch.setattr(hooks, "utc_now", lambda: f.NOW)
    record = [f.patient(), f.tacrolimus(), f.statement("omeprazole 20 mg daily"),
              f.magnesium(1.6, days=40), f.magnesium(1.1, days=3), f.weight(70),
              f.lab("33914-3", 40, "mL/min/{1.73_m2}", days=3)]
    prefetched = cards_of(create_app({"log_level": "WARNING"}).test_client(), f.hook_request(record))
    client = create_app({"log_level": "WARNING"}).test_client()
    with FhirStub(record) as stub:
        body = f.hook_request(prefetch={}, fhir_server=stub.base_url)
        before = fetched("hit")
        answers = [cards_of(client, body) for _ in range(3)]
    assert answers[0] == answers[1] == answers[2] == prefetched
    assert fetched("hit") > before
