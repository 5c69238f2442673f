"""A tiny FHIR server on loopback for integration tests and the benchmark.

It answers reads (`Type/id`) and searches (`Type?patient=...&code=...`) from a list of
resources, optionally after a fixed delay, and records the Authorization header it saw.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FhirStub:
    def __init__(self, resources: list[dict], delay: float = 0.0):
        self.resources = resources
        self.delay = delay
        self.authorizations: list[str | None] = []
        self.paths: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on, a kept-alive
            # connection waits for the client's delayed ACK (~40 ms on Linux): an artefact of
            # the stub that would be charged to the service in the benchmark.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                stub.authorizations.append(self.headers.get("Authorization"))
                stub.paths.append(self.path)
                if stub.delay:
                    time.sleep(stub.delay)
                status, body = stub.answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"

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
                     if {f"{c.get('system')}|{c.get('code')}" for c in r.get("code", {}).get("coding", [])} & wanted]
        return 200, {"resourceType": "Bundle", "type": "searchset", "total": len(found),
                     "entry": [{"resource": r, "search": {"mode": "match"}} for r in found]}

    def __enter__(self) -> FhirStub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
