"""Bounded upstreams (issue 11, findings 2 and 5) at unit level: the byte cap, the entry cap,
the deadline that ends the fetch itself, the per-server cap and load shedding."""

from __future__ import annotations

import gzip
import re
import threading
import time

import pytest
import responses

from cds_service import create_app
from cds_service.fhir.client import FetchError, FhirClient
from cds_service.runtime import SheddingExecutor

from cds_service.testing import factories as f
from .conftest import PATIENT_VIEW
from .fake_fhir import BASE
from .hostile_upstream import HostileServer


def client(base: str = BASE, **kwargs) -> FhirClient:
    options = {"connect_timeout": 1.0, "read_timeout": 1.0, "max_pages": 5, **kwargs}
    return FhirClient(base, "t", **options)


def test_a_gzip_body_is_cut_at_the_cap_while_it_inflates():
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/Patient/p", body=bomb, headers={"Content-Encoding": "gzip"},
                 content_type="application/fhir+json")
        with pytest.raises(FetchError) as error:
            client(max_response_bytes=1024 * 1024).get_json(f"{BASE}/Patient/p", time.monotonic() + 5)
    assert error.value.kind == "too large"


def test_a_small_gzip_body_is_read():
    body = gzip.compress(b'{"resourceType": "Patient", "id": "p"}')
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/Patient/p", body=body, headers={"Content-Encoding": "gzip"},
                 content_type="application/fhir+json")
        assert client().get_json(f"{BASE}/Patient/p", time.monotonic() + 5)["id"] == "p"


@pytest.mark.parametrize("body", [b"\xff\xfe{\x00}\x00",
                                  "{\"resourceType\": \"Patient\", \"name\": \"\xe9\"}".encode("latin-1")])
def test_json_is_parsed_from_bytes_as_utf8_only(body):
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/Patient/p", body=body, content_type="application/fhir+json")
        with pytest.raises(FetchError, match="not JSON"):
            client().get_json(f"{BASE}/Patient/p", time.monotonic() + 5)


def test_entries_read_per_hook_are_capped_and_the_card_says_so(monkeypatch):
    app = create_app({"fhir_max_entries": 10, "log_level": "WARNING"})
    body = f.hook_request([f.tacrolimus(), f.magnesium(1.2, days=1)], fhir_server=BASE, token="t")
    body["prefetch"]["magnesium"]["link"] = [{"relation": "next", "url": f"{BASE}/Observation?page=2"}]
    page = f.bundle(*[f.magnesium(1.3, days=d) for d in range(2, 40)])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{BASE}/Observation?page=2", json=page)
        response = app.test_client().post(PATIENT_VIEW, json=body)
    assert response.status_code == 200
    assert "magnesium results (partly: more than 10 entries)" in response.get_json()["cards"][0]["detail"]


def assert_a_trickling_fetch_is_cut_at_its_deadline() -> None:
    """The server sends a byte every 0.2 s, well within the read timeout: only the deadline can
    end the fetch, and it must end the fetch (the thread), not only the caller's wait."""
    with HostileServer("trickle") as slow:
        fhir = client(slow.base_url, read_timeout=5.0)
        outcome = []
        worker = threading.Thread(target=lambda: outcome.append(
            pytest.raises(FetchError, fhir.get_json, f"{slow.base_url}/Patient/p", time.monotonic() + 0.5)))
        worker.start()
        worker.join(timeout=30)  # a hang detector, not a timing assertion
        assert not worker.is_alive(), "the fetch outlived its deadline"
    assert outcome[0].value.kind == "timeout"


def test_the_deadline_ends_a_trickling_fetch_itself():
    assert_a_trickling_fetch_is_cut_at_its_deadline()


def test_a_deadline_beyond_what_a_lock_can_wait_for_leaves_the_others_cut_at_theirs():
    """CDS_FHIR_DEADLINE accepts any finite number: a fetch with a deadline years away must not
    end the process's one deadline thread (it did: OverflowError in Condition.wait), or no
    later fetch would be cut at its own deadline."""
    with HostileServer("hang") as hanging:
        with pytest.raises(FetchError):  # its own read timeout ends it
            client(hanging.base_url, read_timeout=0.3).get_json(f"{hanging.base_url}/Patient/p",
                                                                time.monotonic() + 1e12)
    assert_a_trickling_fetch_is_cut_at_its_deadline()


def test_a_hanging_server_is_cut_at_the_deadline():
    with HostileServer("hang") as hanging:
        with pytest.raises(FetchError) as error:
            client(hanging.base_url, read_timeout=30.0).get_json(f"{hanging.base_url}/Patient/p",
                                                                 time.monotonic() + 0.5)
    assert error.value.kind == "timeout"


class _Fetcher:
    def __init__(self, origin):
        self.origin = origin

    def fetch(self, gate: threading.Event) -> str:
        gate.wait(30)
        return "done"


def test_fetches_per_server_are_capped_a_few_wait_and_the_rest_shed_at_once():
    pool = SheddingExecutor(max_workers=4, per_server=2)
    gate = threading.Event()
    slow, other = _Fetcher(("http", "slow.example", 80)), _Fetcher(("http", "ok.example", 80))
    try:
        held = [pool.submit(slow.fetch, gate) for _ in range(2)]
        waiting = [pool.submit(slow.fetch, gate) for _ in range(2)]  # wait for a slot, no thread
        shed = pool.submit(slow.fetch, gate)
        assert shed.done() and isinstance(shed.exception(), FetchError)
        assert shed.exception().kind == "busy"
        fine = pool.submit(other.fetch, gate)  # another server still gets a thread
        assert not fine.done()
        third = _Fetcher(("http", "third.example", 80))
        full = [pool.submit(third.fetch, gate), pool.submit(third.fetch, gate)]
        assert not full[0].done()
        assert full[1].done() and full[1].exception().kind == "busy"  # the pool (4) is full
        assert waiting[1].cancel()  # a waiting fetch can be given up (the hook's deadline)
    finally:
        gate.set()
    assert [h.result(timeout=30) for h in held + waiting[:1]] == ["done"] * 3
    assert fine.result(timeout=30) == "done"
    pool.shutdown()


def test_twenty_reads_of_one_server_all_complete():
    pool = SheddingExecutor(max_workers=32, per_server=16)
    gate = threading.Event()
    server = _Fetcher(("https", "ehr.example", 443))
    futures = [pool.submit(server.fetch, gate) for _ in range(20)]
    gate.set()
    assert [f.result(timeout=30) for f in futures] == ["done"] * 20
    pool.shutdown()


def test_a_full_fetch_pool_answers_from_prefetch_at_once():
    app = create_app({"fhir_max_workers": 2, "log_level": "WARNING"})
    runtime = app.extensions["cds"]
    gate = threading.Event()
    blockers = [runtime.executor.submit(gate.wait, 30) for _ in range(2)]
    body = f.hook_request([f.tacrolimus(), f.magnesium(0.8, days=1)], fhir_server=BASE, token="t")
    del body["prefetch"]["conditions"]
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.add(responses.GET, re.compile(re.escape(BASE) + ".*"), json=f.bundle())
            response = app.test_client().post(PATIENT_VIEW, json=body)
            assert len(mock.calls) == 0  # shed, not queued behind the busy threads
    finally:
        gate.set()
        for b in blockers:
            b.result()
    assert response.status_code == 200
    card = response.get_json()["cards"][0]
    assert card["indicator"] == "critical" and "active conditions" in card["detail"]


def test_a_body_of_millions_of_tiny_values_is_refused_before_parsing():
    """4 MiB of '[{},{},...]' would be 1.4 million dicts (about 97 MiB) once parsed."""
    body = b"[" + b"{}," * 1_000_000 + b"{}]"
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/Observation", body=body, content_type="application/fhir+json")
        with pytest.raises(FetchError) as error:
            client().get_json(f"{BASE}/Observation", time.monotonic() + 5)
    assert error.value.kind == "too large"


def test_a_realistic_full_page_is_within_the_value_budget():
    from cds_service.security.outbound import MAX_JSON_VALUES

    page = f.bundle(*[f.magnesium(1.2, days=d % 700) for d in range(2000)])
    raw = __import__("json").dumps(page, separators=(",", ":")).encode()  # compact: the densest
    values = sum(raw.count(c) for c in (b",", b"{", b"[")) * (4 * 1024 * 1024) / len(raw)
    assert values < MAX_JSON_VALUES * 0.6, values  # a full 4 MiB page of these fits with room
