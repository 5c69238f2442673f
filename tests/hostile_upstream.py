"""Hostile upstream servers on loopback (FHIR or JWKS), for the attack tests of issue 11.

`HostileServer(mode, resources)` answers like tests/fhir_stub.FhirStub in mode "normal", and
otherwise attacks its caller:
- "gzip-bomb": a small gzip body that inflates to `bomb_bytes` of JSON whitespace;
- "huge-page": a searchset Bundle of `entries` entries;
- "trickle": headers, then one byte of body every 0.2 s for as long as the caller reads;
- "hang": reads the request and never answers;
- "cookie": a normal answer that also sets a cookie;
- "json": `body` (a dict) as JSON;
- "error": HTTP 500.
It records the Authorization and Cookie headers and the paths it was sent.
"""

from __future__ import annotations

import gzip
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cds_service.testing.fhir_stub import FhirStub


def gzip_bomb(size: int) -> bytes:
    """`size` bytes of spaces, gzip-compressed (about 1000:1), without holding them in memory."""
    out = io.BytesIO()
    block = b" " * (1 << 20)
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as writer:
        for _ in range(size // len(block)):
            writer.write(block)
    return out.getvalue()


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 drops SYNs under 16 concurrent fetches: not the service's fault
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the service hanging up on an attack is expected, not worth a traceback


class HostileServer:
    def __init__(self, mode: str = "normal", resources: list[dict] | None = None, *,
                 bomb_bytes: int = 512 * 1024 * 1024, entries: int = 100_000, body: dict | None = None,
                 host: str = "127.0.0.1"):
        self.mode = mode
        self.stub = FhirStub(resources or [])
        self.stub.server.server_close()  # only its answer() is used
        self.authorizations: list[str | None] = []
        self.cookies: list[str | None] = []
        self.paths: list[str] = []
        self.body = body
        self._bomb = gzip_bomb(bomb_bytes) if mode == "gzip-bomb" else b""
        self._page = b""
        if mode == "huge-page":
            entry = {"resource": {"resourceType": "Observation", "id": "x", "status": "final",
                                  "code": {"text": "noise"}}, "search": {"mode": "match"}}
            self._page = json.dumps({"resourceType": "Bundle", "type": "searchset",
                                     "entry": [entry] * entries}).encode()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self):
                server.authorizations.append(self.headers.get("Authorization"))
                server.cookies.append(self.headers.get("Cookie"))
                server.paths.append(self.path)
                getattr(server, "_" + server.mode.replace("-", "_"))(self)

            def log_message(self, *args):
                pass

        self.server = _Server((host, 0), Handler)
        self.server.daemon_threads = True
        port = self.server.server_address[1]
        self.base_url = f"http://{host}:{port}/fhir"
        self.port = port

    # --- behaviours -----------------------------------------------------------------------------

    def _send(self, handler, data: bytes, headers: dict[str, str] | None = None, status: int = 200):
        handler.send_response(status)
        for name, value in {"Content-Type": "application/fhir+json", "Content-Length": str(len(data)),
                            **(headers or {})}.items():
            handler.send_header(name, value)
        handler.end_headers()
        try:
            handler.wfile.write(data)
        except OSError:
            pass

    def _normal(self, handler, headers=None):
        status, body = self.stub.answer(handler.path)
        self._send(handler, json.dumps(body).encode(), headers, status)

    def _cookie(self, handler):
        self._normal(handler, {"Set-Cookie": "session=abc123; Path=/"})

    def _json(self, handler):
        self._send(handler, json.dumps(self.body).encode())

    def _gzip_bomb(self, handler):
        self._send(handler, self._bomb, {"Content-Encoding": "gzip"})

    def _huge_page(self, handler):
        # No Content-Length (chunked): only a running count can stop the reader.
        handler.send_response(200)
        handler.send_header("Content-Type", "application/fhir+json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        try:
            for start in range(0, len(self._page), 1 << 16):
                piece = self._page[start:start + (1 << 16)]
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass

    def _trickle(self, handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/fhir+json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        try:
            handler.wfile.write(b"1\r\n{\r\n")
            while not self._stop.is_set():
                handler.wfile.write(b"1\r\n \r\n")
                handler.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass

    def _error(self, handler):
        self._send(handler, b'{"error": "down"}', status=500)

    def _hang(self, handler):
        self._stop.wait(60)

    # --- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> HostileServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
