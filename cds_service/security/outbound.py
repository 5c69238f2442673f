"""Outbound HTTP for FHIR servers and JWKS documents, bounded in every dimension.

- Connections are made by connection classes that resolve the host themselves and, for a URL
  approved through ``*``, check every address they actually connect to (the URL policy in
  ``urlpolicy.py``): no DNS-rebinding window between the check and the connection.
- Sessions keep no cookies (a policy that refuses all) and ignore the environment (no proxies,
  no netrc): nothing of one clinician's call leaks into the next patient's.
- A response is read raw, decompressed here with a running count, and stopped at
  ``max_bytes`` of decoded body (a gzip bomb costs at most the cap).
- A watchdog shuts the connection down at the deadline, so a trickling or hanging server ends
  the fetch itself, not only the caller's wait.
"""

from __future__ import annotations

import heapq
import os
import socket
import threading
import time
import zlib
from http.cookiejar import Cookie, CookiePolicy
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Mapping
from urllib.request import Request

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.response import HTTPResponse

from .urlpolicy import normalise_address, open_address_allowed

CHUNK_BYTES = 16 * 1024
# Parsing multiplies memory: 4 MiB of "[{},{},...]" is 1.4 million dicts (97 MiB). Every JSON
# value or member after the first follows a ',', '[' or '{', so counting those bytes (at C speed,
# before parsing) bounds the objects a body can create: at this limit, about 35 MiB at worst.
# A compact 4 MiB FHIR Bundle of Observations has about 250,000.
MAX_JSON_VALUES = 500_000


class FetchFailure(Exception):
    """An outbound fetch failed. `kind` is one of: timeout, policy, too large, http, unreachable,
    invalid; the message is safe to log and show (no URL, no patient data)."""

    def __init__(self, kind: str, message: str, status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status


class AddressRefused(NewConnectionError):
    """Every address the host resolved to is refused by the URL policy."""


class _RejectAllCookies(CookiePolicy):
    netscape = True
    rfc2965 = False
    hide_cookie2 = True

    def set_ok(self, cookie: Cookie, request: Request) -> bool:
        return False

    def return_ok(self, cookie: Cookie, request: Request) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: Request) -> bool:
        return False

    def path_return_ok(self, path: str, request: Request) -> bool:
        return False


# --- the deadline watchdog ---------------------------------------------------------------------

_local = threading.local()


def _shut(sock: socket.socket) -> None:
    try:  # the plain socket's shutdown, also for a TLS socket: unblocks a recv in another thread
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _Watchdog:
    """Shuts down the sockets of one fetch when its deadline passes (one shared timer thread)."""

    def __init__(self, deadline: float):
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._active = True
        self.fired = False
        _TIMER.schedule(deadline, self)

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if not self._active:
                return
            if self.fired:
                _shut(sock)
            else:
                self._sockets.append(sock)

    def _fire(self) -> None:
        with self._lock:
            if not self._active:
                return
            self.fired = True
            for sock in self._sockets:
                _shut(sock)

    def disarm(self) -> None:
        with self._lock:
            self._active = False
            self._sockets.clear()


class _DeadlineTimer:
    """One daemon thread per process firing the watchdogs whose deadline has passed.

    A `threading.Timer` per fetch started (and ended) a thread for each of a hook's ~11 fetches:
    ~90 µs of CPU each (issue 13). Disarmed watchdogs stay in the heap until their deadline
    (a few seconds at most: the hook's deadline) and are then dropped without firing.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Watchdog]] = []
        self._condition = threading.Condition()
        self._count = 0
        self._thread: threading.Thread | None = None
        self._pid = 0

    def schedule(self, deadline: float, watchdog: _Watchdog) -> None:
        with self._condition:
            if self._thread is None or self._pid != os.getpid():  # none yet, or forked since
                self._heap.clear()
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="fetch-deadline", daemon=True)
                self._thread.start()
            self._count += 1
            heapq.heappush(self._heap, (deadline, self._count, watchdog))
            if self._heap[0][2] is watchdog:
                self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    # At most a minute at a time: a deadline far off (CDS_FHIR_DEADLINE is any
                    # finite number) beyond what a lock can wait for would end this thread, and
                    # no fetch of the process would be cut at its deadline again.
                    self._condition.wait(min(self._heap[0][0] - time.monotonic(), 60.0) if self._heap else None)
                _, _, due = heapq.heappop(self._heap)
            due._fire()


_TIMER = _DeadlineTimer()


def _watch(sock: socket.socket | None) -> None:
    watchdog = getattr(_local, "watchdog", None)
    if watchdog is not None:
        watchdog.watch(sock)


# --- connections that check the addresses they connect to ---------------------------------------


def _connect_checked(conn: HTTPConnection) -> socket.socket:
    """Resolve, and connect only to addresses the open policy allows (each one checked)."""
    try:
        infos = socket.getaddrinfo(conn._dns_host, conn.port, 0, socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise NameResolutionError(conn.host, conn, error) from error
    timeout = conn.timeout if isinstance(conn.timeout, (int, float)) else None
    refused, last_error = False, None
    for family, kind, proto, _, sockaddr in infos:
        if not open_address_allowed(normalise_address(str(sockaddr[0]))):
            refused = True
            continue
        sock = socket.socket(family, kind, proto)
        try:
            for option in conn.socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            if not open_address_allowed(normalise_address(sock.getpeername()[0])):
                sock.close()
                refused = True
                continue
            return sock
        except TimeoutError as error:
            sock.close()
            raise ConnectTimeoutError(conn, "connection timed out") from error
        except OSError as error:
            sock.close()
            last_error = error
    if refused and last_error is None:
        raise AddressRefused(conn, "address refused by the URL policy")
    raise NewConnectionError(conn, f"failed to connect: {type(last_error).__name__}")


if TYPE_CHECKING:  # a mixin of urllib3's connections (see _pool_classes): checked as one
    _Connection = HTTPConnection
else:
    _Connection = object


class _Checked(_Connection):
    check_addresses = False

    def _new_conn(self) -> socket.socket:
        sock = _connect_checked(self) if self.check_addresses else super()._new_conn()
        _watch(sock)
        return sock

    # urllib3 overrides http.client's getresponse with its own response type the same way.
    def getresponse(self, *args: Any, **kwargs: Any) -> HTTPResponse:  # type: ignore[override]
        _watch(self.sock)  # a kept-alive connection, reused for this fetch
        return super().getresponse(*args, **kwargs)


def _pool_classes(check: bool) -> dict[str, type]:
    http_conn = type("CheckedHTTPConnection", (_Checked, HTTPConnection), {"check_addresses": check})
    https_conn = type("CheckedHTTPSConnection", (_Checked, HTTPSConnection), {"check_addresses": check})
    return {"http": type("CheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("CheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})}


_POOLS = {True: _pool_classes(True), False: _pool_classes(False)}


class PolicyAdapter(HTTPAdapter):
    """Connections through the checked connection classes; `check` applies the open policy."""

    def __init__(self, check: bool):
        self._check = check
        super().__init__(pool_connections=4, pool_maxsize=4, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS[self._check])


def new_session(check_addresses: bool) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies, netrc or CA bundle overrides from the environment
    session.cookies.set_policy(_RejectAllCookies())
    adapter = PolicyAdapter(check_addresses)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def session(check_addresses: bool) -> requests.Session:
    """One pooled session per worker thread and policy (sessions are not shared across threads)."""
    sessions = getattr(_local, "sessions", None)
    if sessions is None:
        sessions = _local.sessions = {}
    if check_addresses not in sessions:
        sessions[check_addresses] = new_session(check_addresses)
    return sessions[check_addresses]


# --- the bounded fetch ---------------------------------------------------------------------------


def _caused_by(error: BaseException, kind: type) -> bool:
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return True
        todo.extend([getattr(current, "reason", None), current.__cause__, current.__context__,
                     *(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))])
    return False


def _decoder(encoding: str):  # type: ignore[no-untyped-def]
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise FetchFailure("invalid", "unsupported content encoding")


_DEFAULT_HEADERS = {**requests.utils.default_headers(), "Accept-Encoding": "gzip, deflate"}


def bounded_get(url: str, *, check_addresses: bool, headers: Mapping[str, str], deadline: float,
                connect_timeout: float, read_timeout: float, max_bytes: int) -> bytes:
    """The decoded body of a 200 answer to GET `url`, within `deadline` and `max_bytes`, or
    FetchFailure. `url` must already be approved (canonical) by the URL policy."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchFailure("timeout", "deadline reached")
    watchdog = _Watchdog(deadline)
    _local.watchdog = watchdog
    response = None
    complete = False
    try:
        try:
            # Prepared directly and sent: Session.get would merge the session's environment,
            # cookies and hooks into every request (none apply: trust_env off, cookies refused),
            # ~65 µs a fetch. The headers sent are the same (requests' defaults first).
            prepared = requests.PreparedRequest()
            prepared.prepare(method="GET", url=url, headers={**_DEFAULT_HEADERS, **headers})
            response = session(check_addresses).send(
                prepared, stream=True, allow_redirects=False,
                timeout=(min(connect_timeout, remaining), min(read_timeout, remaining)))
        except requests.RequestException as error:
            if _caused_by(error, AddressRefused):
                raise FetchFailure("policy", "address refused by the URL policy") from None
            if watchdog.fired or isinstance(error, requests.Timeout):
                raise FetchFailure("timeout", "timed out") from None
            raise FetchFailure("unreachable", f"unreachable ({type(error).__name__})") from None
        if response.status_code != 200:
            raise FetchFailure("http", f"HTTP {response.status_code}", response.status_code)
        body = _read_capped(response, deadline, max_bytes, watchdog)
        complete = True
        return body
    finally:
        watchdog.disarm()
        _local.watchdog = None
        if response is not None:
            if complete:
                response.raw.release_conn()  # read to the end: the connection may be reused
            else:
                response.close()  # unread or cut short: the connection is dropped


def parse_json(raw: bytes, max_values: int = MAX_JSON_VALUES,
               loads: Callable[[bytes], object] = orjson.loads) -> object:
    """JSON from bytes (UTF-8 only: no character-set guessing), refused before parsing when it
    holds more values than `max_values`. Raises FetchFailure. `loads` parses (orjson.loads, or
    a reader that raises orjson.JSONDecodeError where it would)."""
    if raw.count(b",") + raw.count(b"{") + raw.count(b"[") > max_values:
        raise FetchFailure("too large", f"response holds more than {max_values} JSON values")
    try:
        return loads(raw)
    except orjson.JSONDecodeError:  # not JSON, not UTF-8, or nested deeper than the parser goes
        raise FetchFailure("invalid", "response was not JSON") from None


def _next_chunk(response: requests.Response, watchdog: _Watchdog) -> bytes:
    """The next raw (still compressed) chunk of the body; b"" at its end."""
    try:
        chunk: bytes = response.raw.read(CHUNK_BYTES, decode_content=False)
    except Exception:
        if watchdog.fired:
            raise FetchFailure("timeout", "timed out") from None
        raise FetchFailure("unreachable", "connection broken") from None
    return chunk


def _read_capped(response: requests.Response, deadline: float, max_bytes: int,
                 watchdog: _Watchdog) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchFailure("too large", f"response larger than {max_bytes} bytes")
    decoder = _decoder(response.headers.get("Content-Encoding", ""))
    body = bytearray()
    received = 0
    while True:
        if time.monotonic() >= deadline:
            raise FetchFailure("timeout", "timed out")
        chunk = _next_chunk(response, watchdog)
        if not chunk:
            break
        received += len(chunk)
        if received > max_bytes:
            raise FetchFailure("too large", f"response larger than {max_bytes} bytes")
        if decoder is None:
            body += chunk
        else:
            try:
                body += decoder.decompress(chunk, max_bytes - len(body) + 1)
            except zlib.error:
                raise FetchFailure("invalid", "corrupt compressed response") from None
            if decoder.unconsumed_tail:
                raise FetchFailure("too large", f"response larger than {max_bytes} bytes")
        if len(body) > max_bytes:
            raise FetchFailure("too large", f"response larger than {max_bytes} bytes")
    if watchdog.fired:
        raise FetchFailure("timeout", "timed out")
    if decoder is not None:
        try:
            body += decoder.flush()
        except zlib.error:
            raise FetchFailure("invalid", "corrupt compressed response") from None
        if len(body) > max_bytes:
            raise FetchFailure("too large", f"response larger than {max_bytes} bytes")
    return bytes(body)
