"""Per-process state of the app: settings and the executor for concurrent FHIR fetches.

The executor is created on first use, in the worker process, never before gunicorn forks.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from . import logs
from .config import Settings
from .fhir.client import FhirClient
from .protocol.request import HookRequest
from .security.issuers import parse_trusted_issuers, url_allowed
from .security.jwt_auth import Client, JwksCache, ReplayStore, TokenVerifier


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.issuers = parse_trusted_issuers(settings.trusted_issuers)
        self.fhir_allowed = tuple(u.strip() for u in settings.fhir_allowed_servers.split(",") if u.strip())
        self.verifier: TokenVerifier | None = None
        if settings.auth_required:
            if not self.issuers:
                raise ValueError("CDS_AUTH_REQUIRED is on but CDS_TRUSTED_ISSUERS names no issuer")
            self.verifier = TokenVerifier(self.issuers, JwksCache(), ReplayStore(settings.state_db),
                                          leeway=settings.jwt_leeway_seconds)

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
