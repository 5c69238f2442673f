"""Per-process state of the app: settings and the executor for concurrent FHIR fetches.

The executor is created on first use, in the worker process, never before gunicorn forks.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from .config import Settings
from .fhir.client import FhirClient
from .protocol.request import HookRequest


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        max_workers=self.settings.fhir_max_workers, thread_name_prefix="fhir")
        return self._executor

    def fhir_client(self, request: HookRequest) -> FhirClient | None:
        if not request.fhir_server:
            return None
        s = self.settings
        return FhirClient(request.fhir_server, request.access_token,
                          connect_timeout=s.fhir_connect_timeout, read_timeout=s.fhir_read_timeout,
                          max_pages=s.fhir_max_pages)
