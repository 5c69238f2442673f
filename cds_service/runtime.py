"""Per-process state of the app: settings, the URL policies, and the fetch pool.

The fetch pool is created on first use, in the worker process, never before gunicorn forks; it
sheds load (answers from prefetch alone) rather than queueing behind slow FHIR servers.
"""

from __future__ import annotations

import threading
from functools import partial
from concurrent.futures import Executor, Future, ThreadPoolExecutor

from . import logs
from .config import Settings
from .fhir.client import FetchError, FhirClient
from .protocol.request import HookRequest
from .security.issuers import parse_trusted_issuers
from .security.urlpolicy import UrlPolicy, UrlRefused
from .security.jwt_auth import Client, JwksCache, ReplayStore, TokenVerifier, fetch_jwks


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.issuers = parse_trusted_issuers(settings.trusted_issuers)
        self.fhir_allowed = tuple(u.strip() for u in settings.fhir_allowed_servers.split(",") if u.strip())
        self.fhir_policy = UrlPolicy(self.fhir_allowed)
        self._issuer_policies = {iss: UrlPolicy(i.fhir_servers) for iss, i in self.issuers.items()
                                 if i.fhir_servers}
        self.verifier: TokenVerifier | None = None
        if settings.auth_required:
            self._check_secure_configuration()
            jwks = JwksCache(partial(fetch_jwks, max_bytes=settings.fhir_max_response_bytes))
            self.verifier = TokenVerifier(self.issuers, jwks, ReplayStore(settings.state_db),
                                          leeway=settings.jwt_leeway_seconds,
                                          max_lifetime=settings.jwt_max_lifetime_seconds)

    def _check_secure_configuration(self) -> None:
        """With authentication on, refuse to start on settings that would undo it."""
        if not self.issuers:
            raise ValueError("CDS_AUTH_REQUIRED is on but CDS_TRUSTED_ISSUERS names no issuer")
        if not self.settings.public_base_url:
            # The JWT audience must be this service's own URL, not one taken from the Host
            # header the caller chose.
            raise ValueError("CDS_AUTH_REQUIRED is on: set CDS_PUBLIC_BASE_URL to this service's URL")
        if "*" in self.fhir_allowed and not all(i.fhir_servers for i in self.issuers.values()):
            raise ValueError("CDS_AUTH_REQUIRED is on: list the FHIR servers the service may call "
                             "in CDS_FHIR_ALLOWED_SERVERS (or fhir_servers for every issuer)")

    @property
    def executor(self) -> "SheddingExecutor":
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = SheddingExecutor(self.settings.fhir_max_workers,
                                                      self.settings.fhir_max_per_server)
        return self._executor

    def fhir_client(self, request: HookRequest, caller: Client | None = None) -> FhirClient | None:
        """A client for the request's FHIR server, or None when there is none or it is not allowed
        (an issuer's own list, when it has one, replaces the global list)."""
        if not request.fhir_server:
            return None
        policy = self._issuer_policies.get(caller.iss) if caller else None
        try:
            target = (policy or self.fhir_policy).check(request.fhir_server)
        except UrlRefused as refusal:
            logs.event("fhir_server_refused", hook_instance=request.hook_instance, reason=str(refusal))
            return None
        s = self.settings
        return FhirClient(target, request.access_token,
                          connect_timeout=s.fhir_connect_timeout, read_timeout=s.fhir_read_timeout,
                          max_pages=s.fhir_max_pages, max_response_bytes=s.fhir_max_response_bytes,
                          max_entries=s.fhir_max_entries)


class SheddingExecutor(Executor):
    """A fetch pool that never queues: when every fetch thread is busy, or one FHIR server
    already has `per_server` fetches in flight, a submitted fetch fails at once (``busy``) and
    the hook answers from prefetch alone, naming what it could not read, instead of waiting
    behind a slow server until its deadline. (With fetches cut at their deadline, a slow server
    holds at most `per_server` threads for at most one deadline.)"""

    def __init__(self, max_workers: int, per_server: int | None = None):
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fhir")
        self._capacity = max_workers
        self._per_server = per_server or max_workers
        self._running = 0
        self._by_server: dict[object, int] = {}
        self._lock = threading.Lock()

    def submit(self, fn, /, *args, **kwargs) -> Future:  # type: ignore[no-untyped-def, override]
        server = getattr(getattr(fn, "__self__", None), "origin", None)  # a FhirClient's server
        with self._lock:
            full = self._running >= self._capacity
            busy = server is not None and self._by_server.get(server, 0) >= self._per_server
            if not (full or busy):
                self._running += 1
                if server is not None:
                    self._by_server[server] = self._by_server.get(server, 0) + 1
        if full or busy:
            logs.event("fhir_fetch_shed", reason="fetch pool full" if full else "FHIR server busy")
            shed: Future = Future()
            shed.set_exception(FetchError("fetch pool full; answered from prefetch alone", "busy"))
            return shed
        future = self._pool.submit(fn, *args, **kwargs)
        future.add_done_callback(lambda _: self._finished(server))
        return future

    def _finished(self, server: object) -> None:
        with self._lock:
            self._running -= 1
            if server is not None:
                left = self._by_server.get(server, 1) - 1
                if left > 0:
                    self._by_server[server] = left
                else:
                    self._by_server.pop(server, None)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
