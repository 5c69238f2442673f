"""Per-process state of the app: settings, the URL policies, and the fetch pool.

The fetch pool is created on first use, in the worker process, never before gunicorn forks; it
sheds load (answers from prefetch alone) rather than queueing behind slow FHIR servers.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from functools import partial
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

from . import logs
from .config import Settings
from .fhir.client import FetchError, FhirClient
from .guideline.cards import RULES
from .guideline.codes import parse_local_codes
from .metrics import CARDS_NOT_RECORDED
from .protocol.body import ResourceMemo
from .protocol.request import HookRequest
from .security.issuers import parse_trusted_issuers
from .security.jwt_auth import Client, JwksCache, TokenVerifier, fetch_jwks
from .security.urlpolicy import UrlPolicy, UrlRefused
from .store import Store, database_url
from .store.recorder import CardRecorder

T = TypeVar("T")


_SHARED: dict[str, tuple[Store, CardRecorder]] = {}
_SHARED_LOCK = threading.Lock()


def _shared_store(url: str) -> tuple[Store, CardRecorder]:
    """The process's store (one engine, one pool) and card recorder (one thread) for a database."""
    with _SHARED_LOCK:
        if url not in _SHARED:
            store = Store(url)
            store.migrate()
            _SHARED[url] = (store, CardRecorder(store, on_drop=CARDS_NOT_RECORDED.inc))
        return _SHARED[url]


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._executor: SheddingExecutor | None = None
        self._lock = threading.Lock()
        self.issuers = parse_trusted_issuers(settings.trusted_issuers)
        # Hospital-local lab codes: a typo must stop the start, not silently drop results.
        self.local_codes = parse_local_codes(settings.local_codes)
        self.fhir_allowed = tuple(u.strip() for u in settings.fhir_allowed_servers.split(",") if u.strip())
        self.fhir_policy = UrlPolicy(self.fhir_allowed)
        self._issuer_policies = {iss: UrlPolicy(i.fhir_servers) for iss, i in self.issuers.items()
                                 if i.fhir_servers}
        # The state store, migrated before use (gunicorn.conf.py already did it before forking).
        # One store and one recorder thread per database per process, however many apps are built.
        self.store, self.recorder = _shared_store(database_url(settings.database_url, settings.state_db))
        self.resource_memo = (ResourceMemo(settings.resource_memo_size, settings.resource_memo_seconds)
                              if settings.resource_memo_size else None)
        self.silent_kinds = frozenset(k.strip() for k in settings.silent_kinds.split(",") if k.strip())
        unknown_kinds = self.silent_kinds - set(RULES)
        if unknown_kinds:  # a misspelt kind would quietly stay live
            raise ValueError(f"CDS_SILENT_KINDS names unknown card kinds: {', '.join(sorted(unknown_kinds))} "
                             f"(card kinds: {', '.join(sorted(RULES))})")
        self.verifier: TokenVerifier | None = None
        if settings.auth_required:
            self._check_secure_configuration()
            jwks = JwksCache(partial(fetch_jwks, max_bytes=settings.fhir_max_response_bytes))
            self.verifier = TokenVerifier(self.issuers, jwks, self.store,
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
    def executor(self) -> SheddingExecutor:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = SheddingExecutor(self.settings.fhir_max_workers,
                                                      self.settings.fhir_max_per_server)
        return self._executor

    def fhir_client(self, request: HookRequest, caller: Client | None = None, *,
                    memo: ResourceMemo | None = None) -> FhirClient | None:
        """A client for the request's FHIR server, or None when there is none or it is not allowed
        (an issuer's own list, when it has one, replaces the global list). `memo`: the call
        uses the resource memo (protocol/body.Parsed.tally), so do its fetches."""
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
                          max_entries=s.fhir_max_entries, memo=memo)


class SheddingExecutor(Executor):
    """A fetch pool that sheds load instead of queueing behind slow FHIR servers.

    - When every fetch thread is busy, a submitted fetch fails at once (``busy``): the hook
      answers from prefetch alone, naming what it could not read.
    - At most `per_server` fetches of one FHIR server run at a time; a few more (up to
      `per_server`) wait for that server's next free slot without holding a thread, and beyond
      that they fail at once. So one slow server holds at most `per_server` threads, for at most
      one deadline (fetches end at their deadline), and a hook with many reads of one healthy
      server (e.g. 20 referenced Medications) still gets them all.
    """

    def __init__(self, max_workers: int, per_server: int | None = None):
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fhir")
        self._capacity = max_workers
        self._per_server = per_server or max_workers
        self._running = 0
        self._by_server: dict[object, int] = {}
        self._waiting: dict[object, deque] = {}
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        server = getattr(getattr(fn, "__self__", None), "origin", None)  # a FhirClient's server
        future: Future[T] = Future()
        task = (server, fn, args, kwargs, future)
        with self._lock:
            if server is not None and self._by_server.get(server, 0) >= self._per_server:
                waiting = self._waiting.setdefault(server, deque())
                if len(waiting) < self._per_server:
                    waiting.append(task)
                    return future
                reason = "FHIR server busy"
            elif self._running >= self._capacity:
                reason = "fetch pool full"
            else:
                reason = None
                self._take(server)
        if reason is not None:
            logs.event("fhir_fetch_shed", reason=reason)
            future.set_exception(FetchError(f"{reason}; answered from prefetch alone", "busy"))
            return future
        self._pool.submit(self._run, task)
        return future

    def _take(self, server: object) -> None:
        self._running += 1
        if server is not None:
            self._by_server[server] = self._by_server.get(server, 0) + 1

    def _run(self, task) -> None:  # type: ignore[no-untyped-def]
        server, fn, args, kwargs, future = task
        try:
            if future.set_running_or_notify_cancel():  # False: cancelled while it waited
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as error:
                    future.set_exception(error)
        finally:
            self._finished(server)

    def _finished(self, server: object) -> None:
        with self._lock:
            self._running -= 1
            if server is not None:
                left = self._by_server.get(server, 1) - 1
                if left > 0:
                    self._by_server[server] = left
                else:
                    self._by_server.pop(server, None)
            waiting = self._waiting.get(server)
            following = waiting.popleft() if waiting else None
            if waiting is not None and not waiting:
                self._waiting.pop(server, None)
            if following is not None:
                self._take(server)
        if following is not None:
            self._pool.submit(self._run, following)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
