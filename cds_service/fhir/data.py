"""CDS Hooks 2.0 prefetch semantics, with the FHIR server as fallback.

For each prefetch key a service declares:
- present with a resource or Bundle: used as sent (further Bundle pages fetched when possible);
- present and null: known to be empty, not fetched;
- absent, or an OperationOutcome: fetched from ``fhirServer`` (concurrently, within one deadline).
When a key the rules cannot do without can be obtained neither way, the hook answers 412.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ..protocol.errors import DataUnobtainable
from ..protocol.request import HookRequest
from .client import Fetched, FetchError, FhirClient, bundle_resources, next_link
from .templates import render, token_values


@dataclass(frozen=True)
class PrefetchKey:
    """One prefetch template of a service: what it asks for and how much the rules need it."""

    key: str
    query: str
    label: str  # what a clinician calls it, used when it could not be read
    required: bool = False


@dataclass
class PatientData:
    resources: list[Mapping[str, Any]] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)  # labels of data that could not be read
    fetched: list[str] = field(default_factory=list)  # keys obtained from the FHIR server


ClientFactory = Callable[[HookRequest], FhirClient | None]


def gather(request: HookRequest, keys: Iterable[PrefetchKey], *, client: FhirClient | None,
           executor: Executor, deadline_seconds: float) -> PatientData:
    """Collect the patient's resources for `keys`; raise DataUnobtainable for a missing required key."""
    deadline = time.monotonic() + deadline_seconds
    prefetch = request.prefetch or {}
    values = token_values(request.context)
    data = PatientData()
    failed: list[PrefetchKey] = []
    pending: dict[Future, PrefetchKey] = {}

    for spec in keys:
        query = render(spec.query, values)
        if query is None:
            continue  # the context cannot fill this template (e.g. no encounterId): not applicable
        if spec.key in prefetch:
            sent = prefetch[spec.key]
            if sent is None:
                continue  # known to be empty
            if sent.get("resourceType") != "OperationOutcome":
                data.resources.extend(bundle_resources(sent))
                if next_link(sent) is not None:
                    if client is None:
                        data.unavailable.append(f"{spec.label} (further pages)")
                    else:
                        pending[executor.submit(client.following_pages, sent, deadline)] = spec
                continue
        if client is None:
            failed.append(spec)
        else:
            pending[executor.submit(client.resources, query, deadline)] = spec

    if pending:
        done, not_done = wait(pending, timeout=max(0.0, deadline - time.monotonic()))
        for future in not_done:
            future.cancel()
            _lost(pending[future], prefetch, failed, data)
        for future in done:
            spec = pending[future]
            try:
                fetched: Fetched = future.result()
            except FetchError:
                _lost(spec, prefetch, failed, data)
                continue
            data.resources.extend(fetched.resources)
            data.fetched.append(spec.key)
            if fetched.incomplete:
                data.unavailable.append(f"{spec.label} (partly: {fetched.incomplete})")

    missing_required = [spec for spec in failed if spec.required]
    if missing_required:
        labels = ", ".join(spec.label for spec in missing_required)
        raise DataUnobtainable(
            f"Cannot evaluate the guideline: {labels} neither prefetched nor obtainable from the FHIR server.",
            expression=[f"prefetch.{spec.key}" for spec in missing_required])
    data.unavailable = [spec.label for spec in failed] + data.unavailable
    return data


def _lost(spec: PrefetchKey, prefetch: Mapping[str, Any], failed: list[PrefetchKey],
          data: PatientData) -> None:
    """A fetch that failed: the whole key when nothing was sent, further pages otherwise."""
    if prefetch.get(spec.key) is not None and prefetch[spec.key].get("resourceType") != "OperationOutcome":
        data.unavailable.append(f"{spec.label} (further pages)")
    else:
        failed.append(spec)
