"""Issue 11, finding 8: the reverse proxy of deploy/nginx.conf in front of the Procfile's gunicorn
keeps 20 clients that send one byte at a time from holding the service's threads.

Debian's nginx is started on loopback by the test (installed by .ci/run). Without nginx the test
skips locally; with CDS_REQUIRE_REAL_PARTS=1 (set by .ci/run) it fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from cds_service.config import Settings

from cds_service.testing import factories as f
from .test_attacks import gunicorn
from .procfile import ROOT, free_port, stop
from .test_integration import SERVICES, record

CONFIG = ROOT / "deploy" / "nginx.conf"
PV = SERVICES["patient-view"]


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                           if os.access(p, os.X_OK)), None)
    if found is None:
        if os.environ.get("CDS_REQUIRE_REAL_PARTS") == "1":
            pytest.fail("nginx is required here (CDS_REQUIRE_REAL_PARTS=1) but is not installed")
        pytest.skip("nginx is not installed (apt-get install -y nginx); .ci/run installs it")
    return found


def test_proxy_body_limit_matches_the_service_limit():
    text = CONFIG.read_text()
    size = re.search(r"^\s*client_max_body_size\s+(\d+)([km]?);", text, re.M)
    value = int(size.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[size.group(2)]
    assert value == Settings().max_body_bytes
    for directive in ("proxy_request_buffering on", "client_header_timeout", "client_body_timeout",
                      "proxy_read_timeout", "proxy_connect_timeout", "proxy_send_timeout"):
        assert directive in text, directive


def start_nginx(binary: str, proxy_port: int, upstream_port: int, workdir: Path) -> subprocess.Popen:
    site = CONFIG.read_text().replace("127.0.0.1:8080", f"127.0.0.1:{upstream_port}")
    site = site.replace("listen 127.0.0.1:8000;", f"listen 127.0.0.1:{proxy_port};")
    (workdir / "site.conf").write_text(site)
    temp = {name: workdir / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    os.chmod(workdir, 0o777)
    for path in temp.values():
        os.chmod(path, 0o777)  # nginx's workers drop root privileges when started as root
    (workdir / "nginx.conf").write_text(f"""
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {temp['body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    include {workdir}/site.conf;
}}
""")
    process = subprocess.Popen([binary, "-p", str(workdir), "-c", str(workdir / "nginx.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", proxy_port), timeout=1):
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("nginx did not start: " + process.stderr.read().decode()[-2000:])
            time.sleep(0.05)


@contextmanager
def proxied_service() -> Iterator[int]:
    """The Procfile's gunicorn with Debian's nginx of deploy/nginx.conf in front; yields the
    proxy's port and stops both."""
    binary = nginx_binary()
    proxy_port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="cds-nginx-"))
    with gunicorn() as (upstream, _, _log):
        nginx = start_nginx(binary, proxy_port, int(upstream.rsplit(":", 1)[1]), workdir)
        try:
            yield proxy_port
        finally:
            stop(nginx, timeout=10)
            shutil.rmtree(workdir, ignore_errors=True)


class SlowClient(threading.Thread):
    """Sends a hook request one byte at a time (headers, or a body announced as 100 kB)."""

    def __init__(self, port: int, in_headers: bool, stop: threading.Event):
        super().__init__(daemon=True)
        head = (f"POST /cds-services/{PV} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n").encode()
        self.port, self.stop, self.in_headers = port, stop, in_headers
        self.prefix = head[:10] if in_headers else head
        self.trickle = head[10:] if in_headers else b" " * 100000

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=60) as sock:
                sock.sendall(self.prefix)
                for byte in self.trickle:
                    if self.stop.wait(0.3):
                        return
                    sock.sendall(bytes([byte]))
        except OSError:
            pass  # the proxy gave up on us: that is the point


def test_twenty_slow_clients_do_not_block_a_normal_hook_call_through_the_proxy():
    stop = threading.Event()
    with proxied_service() as proxy_port:
        try:
            slow = [SlowClient(proxy_port, in_headers=n % 2 == 0, stop=stop) for n in range(20)]
            for client in slow:
                client.start()
            time.sleep(1.0)  # let every slow client open its connection and start trickling
            base = f"http://127.0.0.1:{proxy_port}"
            # Generous socket timeouts: this is about completing at all, not about speed.
            response = requests.post(f"{base}/cds-services/{PV}", json=f.hook_request(record()), timeout=60)
            health = requests.get(f"{base}/healthz", timeout=60)
            assert response.status_code == 200, response.text
            assert response.json()["cards"][0]["indicator"] == "critical"
            assert health.status_code == 200
            assert sum(client.is_alive() for client in slow) == 20  # they were still trickling
        finally:
            stop.set()


def test_an_oversized_body_through_the_proxy_is_a_json_413():
    with proxied_service() as proxy_port:
        response = requests.post(f"http://127.0.0.1:{proxy_port}/cds-services/{PV}",
                                 data=b"{" + b" " * Settings().max_body_bytes + b"}",
                                 headers={"Content-Type": "application/json"}, timeout=60)
        assert response.status_code == 413
        assert response.json()["resourceType"] == "OperationOutcome"


def test_gunicorn_reads_its_config_and_bounds_request_headers():
    """gunicorn.conf.py (read from the Procfile's working directory) limits what a client may send
    before the app sees it; the time limits need the proxy above."""
    with gunicorn() as (base, _, _log):
        flooded = requests.get(f"{base}/healthz", headers={f"X-Pad-{n}": "v" for n in range(100)}, timeout=30)
        normal = requests.get(f"{base}/healthz", timeout=30)
    assert flooded.status_code in (400, 431)
    assert normal.status_code == 200


@pytest.mark.parametrize("required, outcome", [("1", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_without_nginx_the_test_skips_locally_and_fails_in_ci(monkeypatch, required, outcome):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    monkeypatch.setenv("CDS_REQUIRE_REAL_PARTS", required)
    with pytest.raises(outcome):
        nginx_binary()
