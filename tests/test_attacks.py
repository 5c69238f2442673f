"""Issue 11 reproduced against the real server: gunicorn as the Procfile starts it, hostile
FHIR and JWKS servers on loopback. Each test failed on the code before the fix."""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service.testing import factories as f
from .hostile_upstream import HostileServer
from .procfile import free_port, procfile_server
from .test_integration import SERVICES, record

PV = SERVICES["patient-view"]


@contextmanager
def gunicorn(port: int | None = None, **env_overrides: str):
    """The Procfile's web: command on a (free) loopback port; yields (base URL, master pid, log)."""
    workdir = tempfile.mkdtemp(prefix="cds-attack-")
    env = {"CDS_STATE_DB": str(Path(workdir) / "state.sqlite3"), **env_overrides}
    with procfile_server(env, port=port) as (base, process, log_path):
        yield base, process.pid, log_path


def worker_pids(master: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(entry))
    return pids


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def events(log_path: Path) -> list[dict]:
    found = []
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                pass
    return found


def hook(base: str, body: dict, **kwargs) -> requests.Response:
    return requests.post(f"{base}/cds-services/{PV}", json=body, timeout=30, **kwargs)


# --- finding 1: the backslash and userinfo ------------------------------------------------------


def test_finding_1_backslash_url_sends_no_token_to_another_host():
    with HostileServer("normal", record()) as allowed, HostileServer("normal", record()) as other:
        with gunicorn(CDS_FHIR_ALLOWED_SERVERS=allowed.base_url) as (base, _, _log):
            sneaky = f"http://127.0.0.1:{other.port}\\@127.0.0.1:{allowed.port}/fhir"
            for server in (sneaky, f"http://user:pw@127.0.0.1:{allowed.port}/fhir"):
                body = f.hook_request(prefetch={}, fhir_server=server, token="EHR-TOKEN")
                assert hook(base, body).status_code == 412
    assert other.authorizations == []
    assert allowed.authorizations == []


# --- finding 2: bounded responses -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["gzip-bomb", "huge-page"])
def test_finding_2_worker_memory_stays_bounded_under_a_bomb_or_a_huge_page(mode):
    with HostileServer(mode, bomb_bytes=512 * 1024 * 1024) as upstream:
        with gunicorn() as (base, master, log_path):
            body = f.hook_request(prefetch={}, fhir_server=upstream.base_url, token="t")
            for _ in range(2):
                assert hook(base, body).status_code == 412
            time.sleep(2)  # let anything still running in the background show in the peak
            peaks = [peak_rss_mib(pid) for pid in worker_pids(master)]
            failures = {e.get("failure") for e in events(log_path) if e.get("event") == "fhir_fetch_failed"}
    assert peaks and max(peaks) < 250, peaks  # before: past 1 GiB (the bomb inflated in memory)
    assert "too large" in failures


# --- finding 5: one slow server starves every caller ----------------------------------------------


def test_finding_5_a_trickling_server_does_not_starve_other_callers():
    with HostileServer("trickle") as slow, HostileServer("normal", record()) as good:
        # A generous deadline so that a loaded CI machine answers the legitimate calls in time;
        # before the fix the trickling fetches outlived any deadline and kept the pool full.
        with gunicorn(CDS_FHIR_DEADLINE="4") as (base, _, log_path):
            attack = f.hook_request(prefetch={}, fhir_server=slow.base_url, token="t")
            legit = f.hook_request(prefetch={}, fhir_server=good.base_url, token="t")
            with ThreadPoolExecutor(6) as pool:
                attackers = [pool.submit(hook, base, attack) for _ in range(6)]
                for a in attackers:
                    a.result()  # each ends at its deadline (the fetch, not only the wait)
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda _: hook(base, legit), range(8)))
            failures = [(e.get("event"), e.get("failure"), e.get("reason"), e.get("resource_type"))
                        for e in events(log_path) if e.get("event") in ("fhir_fetch_failed", "fhir_fetch_shed")
                        and e.get("server") != f"127.0.0.1:{slow.port}"]
    assert [a.status_code for a in answers] == [200] * 8, failures
    assert all("0.4 mmol/L" in a.json()["cards"][0]["summary"] for a in answers)


# --- finding 6: cookies and the environment ---------------------------------------------------------


def test_finding_6_no_cookie_travels_between_calls():
    with HostileServer("cookie", record()) as upstream:
        with gunicorn() as (base, _, _log):
            for n in range(6):
                body = f.hook_request(prefetch={}, fhir_server=upstream.base_url, token=f"user-{n}")
                assert hook(base, body).status_code == 200
    assert len(upstream.cookies) > 6 and set(upstream.cookies) == {None}


def test_finding_6_environment_proxies_are_ignored():
    with HostileServer("normal", record()) as proxy, HostileServer("normal", record()) as upstream:
        with gunicorn(HTTP_PROXY=f"http://127.0.0.1:{proxy.port}", http_proxy=f"http://127.0.0.1:{proxy.port}",
                      NO_PROXY="", no_proxy="") as (base, _, _log):
            body = f.hook_request(prefetch={}, fhir_server=upstream.base_url, token="t")
            assert hook(base, body).status_code == 200
    assert proxy.paths == [] and upstream.paths


# --- finding 7: `*` and internal addresses ----------------------------------------------------------


def test_finding_7_metadata_address_in_hex_is_refused_by_the_real_server():
    with gunicorn() as (base, _, log_path):
        for server in ("http://0xa9.0xfe.0xa9.0xfe/latest", "http://2852039166/latest",
                       "http://[::ffff:169.254.169.254]/latest", "http://10.0.0.1/fhir"):
            body = f.hook_request(prefetch={}, fhir_server=server, token="t")
            assert hook(base, body).status_code == 412
        refused = [e for e in events(log_path) if e.get("event") == "fhir_server_refused"]
    assert len(refused) == 4


# --- finding 4: JWKS fetching -------------------------------------------------------------------

EC_KEY = ec.generate_private_key(ec.SECP256R1())
ISS = "https://ehr.hospital.example"


def signed(base: str, kid: str) -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISS, "aud": f"{base}/cds-services/{PV}", "exp": now + 300, "iat": now,
                       "jti": str(uuid.uuid4())}, EC_KEY, algorithm="ES256", headers={"kid": kid})


@contextmanager
def secured(jwks_url: str):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"CDS_AUTH_REQUIRED": "true", "CDS_PUBLIC_BASE_URL": base,
           "CDS_FHIR_ALLOWED_SERVERS": "https://ehr.hospital.example/fhir",
           "CDS_TRUSTED_ISSUERS": json.dumps({ISS: {"jwks_url": jwks_url}})}
    with gunicorn(port, **env) as started:
        yield started


def test_finding_4_a_failing_jwks_is_not_fetched_for_every_token():
    with HostileServer("error") as keys:
        with secured(keys.base_url + "/jwks.json") as (base, _, log_path):
            body = f.hook_request(record())
            with ThreadPoolExecutor(10) as pool:
                statuses = list(pool.map(
                    lambda n: hook(base, body,
                                   headers={"Authorization": f"Bearer {signed(base, f'kid-{n}')}"}).status_code,
                    range(50)))
            checks = {e.get("check") for e in events(log_path) if e.get("event") == "auth_failed"}
    assert statuses == [401] * 50
    assert len(keys.paths) <= 4, len(keys.paths)  # before: one fetch per token (50)
    assert checks == {"jwks unavailable"}


def test_finding_2_a_50_mb_jwks_is_refused():
    big = {"keys": [{"kid": f"pad-{n}", "kty": "EC", "crv": "P-256", "x": "A" * 1000, "y": "B" * 1000}
                    for n in range(25000)]}
    with HostileServer("json", body=big) as keys:
        with secured(keys.base_url + "/jwks.json") as (base, master, log_path):
            response = hook(base, f.hook_request(record()),
                            headers={"Authorization": f"Bearer {signed(base, 'pad-1')}"})
            failed = [e for e in events(log_path) if e.get("event") == "jwks_fetch_failed"]
    assert response.status_code == 401
    assert failed and failed[0]["check"] == "jwks unavailable (too large)"
