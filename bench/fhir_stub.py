"""A loopback FHIR server for the benchmark's fallback runs (self-contained: no tests/ import).

Every read (`Type/id`) or search (`Type?patient=...&code=system|code,...`) is answered from a
list of resources after a fixed delay, all matches on one page. Each connection gets its own
thread, so concurrent hooks see the delay once per query, not queued behind each other.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 8 hooks × 8 queries connect at once; the default backlog is 5


class FhirStub:
    def __init__(self, resources: list[dict], delay: float = 0.1):
        self.resources = resources
        self.delay = delay
        self.requests = 0
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[int, bytes]] = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, a kept-alive connection
            # would wait for the client's delayed ACK (~40 ms), charged to the service.
            disable_nagle_algorithm = True

            def do_GET(self):
                started = time.perf_counter()
                with stub._lock:
                    stub.requests += 1
                status, data = stub.answer(self.path)
                rest = stub.delay - (time.perf_counter() - started)
                if rest > 0:
                    time.sleep(rest)
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"

    def answer(self, raw_path: str) -> tuple[int, bytes]:
        """Status and body for a path; bodies are cached (the stub's own CPU stays small)."""
        cached = self._cache.get(raw_path)
        if cached is None:
            status, body = self._answer(raw_path)
            cached = self._cache[raw_path] = (status, json.dumps(body).encode())
        return cached

    def _answer(self, raw_path: str) -> tuple[int, dict]:
        parts = urlsplit(raw_path)
        path = parts.path.removeprefix("/fhir/").strip("/")
        rtype, _, rid = path.partition("/")
        if rid:
            for r in self.resources:
                if r["resourceType"] == rtype and r.get("id") == rid:
                    return 200, r
            return 404, {"resourceType": "OperationOutcome",
                         "issue": [{"severity": "error", "code": "not-found"}]}
        query = parse_qs(parts.query)
        found = [r for r in self.resources if r["resourceType"] == rtype]
        if "code" in query and rtype in ("Observation", "Procedure"):
            wanted = set(query["code"][0].split(","))
            found = [r for r in found
                     if {f"{c.get('system')}|{c.get('code')}"
                         for c in r.get("code", {}).get("coding", [])} & wanted]
        return 200, {"resourceType": "Bundle", "type": "searchset", "total": len(found),
                     "entry": [{"resource": r, "search": {"mode": "match"}} for r in found]}

    def __enter__(self) -> FhirStub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
