"""Per-process state of the app: settings and the executor for concurrent FHIR fetches.

The executor is created on first use, in the worker process, never before gunicorn forks.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from . import logs
from .config import Settings
from .fhir.client import FhirClient
from .guideline.cards import RULES
from .metrics import CARDS_NOT_RECORDED
from .guideline.codes import parse_local_codes
from .protocol.request import HookRequest
from .security.issuers import parse_trusted_issuers, url_allowed
from .security.jwt_auth import Client, JwksCache, TokenVerifier
from .store import Store, database_url
from .store.recorder import CardRecorder


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
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.issuers = parse_trusted_issuers(settings.trusted_issuers)
        # Hospital-local lab codes: a typo must stop the start, not silently drop results.
        self.local_codes = parse_local_codes(settings.local_codes)
        self.fhir_allowed = tuple(u.strip() for u in settings.fhir_allowed_servers.split(",") if u.strip())
        # The state store, migrated before use (gunicorn.conf.py already did it before forking).
        # One store and one recorder thread per database per process, however many apps are built.
        self.store, self.recorder = _shared_store(database_url(settings.database_url, settings.state_db))
        self.silent_kinds = frozenset(k.strip() for k in settings.silent_kinds.split(",") if k.strip())
        unknown_kinds = self.silent_kinds - set(RULES)
        if unknown_kinds:  # a misspelt kind would quietly stay live
            raise ValueError(f"CDS_SILENT_KINDS names unknown card kinds: {', '.join(sorted(unknown_kinds))} "
                             f"(card kinds: {', '.join(sorted(RULES))})")
        self.verifier: TokenVerifier | None = None
        if settings.auth_required:
            self._check_secure_configuration()
            self.verifier = TokenVerifier(self.issuers, JwksCache(), self.store,
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
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        max_workers=self.settings.fhir_max_workers, thread_name_prefix="fhir")
        return self._executor

    def fhir_client(self, request: HookRequest, caller: Client | None = None) -> FhirClient | None:
        """A client for the request's FHIR server, or None when there is none or it is not allowed
        (an issuer's own list, when it has one, replaces the global list)."""
        if not request.fhir_server:
            return None
        allowed = caller.issuer.fhir_servers if caller and caller.issuer.fhir_servers else self.fhir_allowed
        if not url_allowed(request.fhir_server, allowed):
            logs.event("fhir_server_refused", hook_instance=request.hook_instance)
            return None
        s = self.settings
        return FhirClient(request.fhir_server, request.access_token,
                          connect_timeout=s.fhir_connect_timeout, read_timeout=s.fhir_read_timeout,
                          max_pages=s.fhir_max_pages)
