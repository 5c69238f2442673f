"""Prometheus metrics (prometheus-client). Under gunicorn every worker writes its values to
PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py sets it before any worker starts) and /metrics adds
them up; in a single process the default registry is used. Labels never carry patient data."""

from __future__ import annotations

import os

from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess)

HOOK_CALLS = Counter("cds_hook_calls_total", "Hook calls answered, by service and HTTP status",
                     ["service", "status"])
HOOK_SECONDS = Histogram("cds_hook_duration_seconds", "Time to answer a hook call", ["service"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0))
CARDS = Counter("cds_cards_total", "Cards evaluated, by kind, indicator and whether silent mode held them back",
                ["kind", "indicator", "silent"])
FEEDBACK = Counter("cds_feedback_items_total", "Feedback items received, by outcome", ["outcome"])
FHIR_FETCHES = Counter("cds_fhir_fetches_total",
                       "FHIR server queries made when prefetch was missing, by outcome", ["outcome"])
AUTH_FAILURES = Counter("cds_auth_failures_total", "Refused authentications, by the check that failed",
                        ["check"])
PREFETCH_RESOURCES = Counter("cds_prefetch_resources_total",
                             "Prefetched resources (Bundle entries and single resources), by whether an "
                             "earlier call had sent the same resource (memo hit) or it was parsed and read "
                             "(miss)", ["memo"])
FETCHED_RESOURCES = Counter("cds_fetched_resources_total",
                            "Resources a FHIR server answered with when prefetch was missing, for calls that "
                            "use the resource memo, by whether it already held the same resource (hit) or "
                            "it was parsed and read (miss)", ["memo"])
CARDS_NOT_RECORDED = Counter("cds_cards_not_recorded_total",
                             "Cards issued but not written to the state store (queue full or database down)")


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, summed over worker processes under gunicorn."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
