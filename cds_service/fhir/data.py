"""CDS Hooks 2.0 prefetch semantics, with the FHIR server as fallback.

For each prefetch key a service declares:
- present with a resource or Bundle: used as sent (further Bundle pages fetched when possible);
- present and null: known to be empty, not fetched;
- absent, or an OperationOutcome: fetched from ``fhirServer`` (concurrently, within one deadline).
When a key the rules cannot do without can be obtained neither way, the hook answers 412.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from collections.abc import Iterable, Mapping
from typing import Any, cast
from urllib.parse import quote

from ..metrics import FHIR_FETCHES
from ..protocol.errors import DataUnobtainable
from ..protocol.request import HookRequest
from .client import Fetched, FetchError, FhirClient, bundle_resources, next_link
from .references import literal_reference, server_base
from .templates import fillable, render, token_values


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

# A MedicationRequest may name its drug only through a Medication resource ("Medication/x"),
# which no prefetch template in the recommended query subset can include: those are read
# afterwards, within the same deadline, up to this many.
MAX_MEDICATION_READS = 20
# A tuple, not a set: a malformed resourceType may be unhashable.
_ORDER_TYPES = ("MedicationRequest", "MedicationStatement", "MedicationAdministration")


def gather(request: HookRequest, keys: Iterable[PrefetchKey], *, client: FhirClient | None,
           executor: Executor, deadline_seconds: float,
           extra: Iterable[Mapping[str, Any]] = ()) -> PatientData:
    """Collect the patient's resources for `keys` (and the Medications that they, or the `extra`
    draft orders, reference); raise DataUnobtainable for a missing required key."""
    deadline = time.monotonic() + deadline_seconds
    prefetch = request.prefetch or {}
    values = token_values(request.context)
    data = PatientData()
    failed: list[PrefetchKey] = []
    pending: dict[Future, PrefetchKey] = {}

    for spec in keys:
        if not fillable(spec.query, values):
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
        else:  # the query is built only when it is sent (fillable: render gives a str)
            query = cast(str, render(spec.query, values))
            pending[executor.submit(client.resources, query, deadline)] = spec

    if pending:
        done, _ = wait(pending, timeout=_time_left(deadline))
        # In the order of the prefetch keys, not of completion: the same request reads its
        # resources and names what is missing in the same order every time.
        for future, spec in pending.items():
            if future not in done:
                future.cancel()
                FHIR_FETCHES.labels(outcome="deadline").inc()
                _lost(spec, prefetch, failed, data)
                continue
            try:
                fetched: Fetched = future.result()
            except FetchError:
                FHIR_FETCHES.labels(outcome="error").inc()
                _lost(spec, prefetch, failed, data)
                continue
            FHIR_FETCHES.labels(outcome="incomplete" if fetched.incomplete else "ok").inc()
            data.resources.extend(fetched.resources)
            if fetched.incomplete:
                data.unavailable.append(f"{spec.label} (partly: {fetched.incomplete})")

    missing_required = [spec for spec in failed if spec.required]
    if missing_required:
        labels = ", ".join(spec.label for spec in missing_required)
        raise DataUnobtainable(
            f"Cannot evaluate the guideline: {labels} neither prefetched nor obtainable from the FHIR server.",
            expression=[f"prefetch.{spec.key}" for spec in missing_required])
    data.unavailable = [spec.label for spec in failed] + data.unavailable
    _read_referenced_medications(data, extra, client, executor, deadline, request.fhir_server)
    return data


def _read_referenced_medications(data: PatientData, extra: Iterable[Mapping[str, Any]],
                                 client: FhirClient | None, executor: Executor,
                                 deadline: float, fhir_server: str | None = None) -> None:
    """Read the Medication resources that medication orders reference but nobody sent.

    A reference is read when it is relative ('Medication/id') or absolute on the hook's own
    fhirServer ('<fhirServer>/Medication/id', compared in one canonical spelling: facts read
    the same references the same way, facts/values.py), always as 'Medication/<id>' through the
    client of that server. A reference to any other server is never fetched: the service must
    not call a URL an EHR record names (SSRF); the cards say the medication details are
    unavailable instead, as for a Medication that could not be read.
    """
    # One walk over the resources: the Medications sent, and the ones orders reference.
    known: set[str] = set()
    referenced: dict[str, None] = {}  # in order of first reference
    elsewhere = 0  # absolute references to another server (or with no fhirServer to compare)
    own_base = server_base(fhir_server)
    for resources, sent in ((data.resources, True), (extra, False)):
        for resource in resources:
            kind = resource.get("resourceType")
            if kind == "Medication":
                medication_id = resource.get("id")
                if sent and isinstance(medication_id, str):  # an id that is a list names nothing
                    known.add(medication_id)
                continue
            if kind not in _ORDER_TYPES:
                continue
            reference = resource.get("medicationReference")
            named = literal_reference(reference, "Medication")
            if named is not None and named[0] in (None, own_base):
                referenced[named[1]] = None
            elif named is not None or _is_url(reference):
                elsewhere += 1  # another server's, or a URL that names no Medication plainly
    if elsewhere:
        data.unavailable.append(f"medication details ({elsewhere} orders name a Medication outside the "
                                "EHR's FHIR server, not read)")
    wanted = [med_id for med_id in referenced if med_id not in known]
    if not wanted:
        return
    if client is None:
        data.unavailable.append(f"medication details ({len(wanted)} orders name a Medication that was not sent)")
        return
    futures = [executor.submit(client.resources, f"Medication/{quote(med_id, safe='')}", deadline)
               for med_id in wanted[:MAX_MEDICATION_READS]]
    done, _ = wait(futures, timeout=_time_left(deadline))
    missing = len(wanted) - len(wanted[:MAX_MEDICATION_READS])
    for future in futures:
        if future in done and future.exception() is None:
            FHIR_FETCHES.labels(outcome="ok").inc()
            data.resources.extend(future.result().resources)
        else:
            FHIR_FETCHES.labels(outcome="error" if future in done else "deadline").inc()
            future.cancel()
            missing += 1
    if missing:
        data.unavailable.append(f"medication details ({missing} referenced Medication could not be read)")


def _time_left(deadline: float) -> float:
    """Seconds until `deadline`, as a wait accepts them (CDS_FHIR_DEADLINE may be any finite
    number; a wait beyond threading.TIMEOUT_MAX raises OverflowError)."""
    return min(max(0.0, deadline - time.monotonic()), threading.TIMEOUT_MAX)


def _is_url(reference: Any) -> bool:
    ref = reference.get("reference") if isinstance(reference, dict) else None
    return isinstance(ref, str) and "://" in ref


def _lost(spec: PrefetchKey, prefetch: Mapping[str, Any], failed: list[PrefetchKey],
          data: PatientData) -> None:
    """A fetch that failed: the whole key when nothing was sent, further pages otherwise."""
    if prefetch.get(spec.key) is not None and prefetch[spec.key].get("resourceType") != "OperationOutcome":
        data.unavailable.append(f"{spec.label} (further pages)")
    else:
        failed.append(spec)
