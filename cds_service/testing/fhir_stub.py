"""A tiny FHIR server on loopback for integration tests and the benchmark.

It answers reads (`Type/id`) and searches (`Type?patient=...&code=system|code,...`) from a list
of resources, all matches on one page, each answer after a fixed delay (measured from the
request's arrival, so the stub's own work is not added to it). Each connection gets its own
thread, so concurrent hooks see the delay once per query, not queued behind each other. It
records the Authorization header and path of every request.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the benchmark's 8 hooks × 11 queries connect at once (default 5)


class FhirStub:
    def __init__(self, resources: list[dict], delay: float = 0.0, *, cache: bool = False):
        """`cache`: keep each answer's bytes (the benchmark: the stub's own CPU stays small);
        off for tests that change `resources` while the stub runs."""
        self.resources = resources
        self.delay = delay
        self.authorizations: list[str | None] = []
        self.paths: list[str] = []
        self._cache: dict[str, tuple[int, bytes]] | None = {} if cache else None
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on, a kept-alive
            # connection waits for the client's delayed ACK (~40 ms on Linux): an artefact of
            # the stub that would be charged to the service in the benchmark.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                started = time.perf_counter()
                stub.authorizations.append(self.headers.get("Authorization"))
                stub.paths.append(self.path)
                status, data = stub.answer_bytes(self.path)
                rest = stub.delay - (time.perf_counter() - started)
                if rest > 0:
                    time.sleep(rest)
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"

    @property
    def requests(self) -> int:
        """How many requests the stub has answered."""
        return len(self.paths)

    def answer_bytes(self, raw_path: str) -> tuple[int, bytes]:
        """Status and serialised body for a path (cached when the stub was made with `cache`)."""
        if self._cache is not None and raw_path in self._cache:
            return self._cache[raw_path]
        status, body = self.answer(raw_path)
        answer = (status, json.dumps(body).encode())
        if self._cache is not None:
            self._cache[raw_path] = answer
        return answer

    def answer(self, raw_path: str) -> tuple[int, dict]:
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

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
