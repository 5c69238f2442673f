"""The service registry: each CDS service is data (id, hook, title, description, prefetch) plus
one handler. Discovery is generated from this list; routes look services up here.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Iterator

from .config import Settings
from .fhir.client import FhirClient
from .fhir.data import PrefetchKey, gather
from .guideline import codes
from .guideline.cards import ORDER_TOPICS, CardContext, build_cards
from .guideline.facts import build_facts
from .guideline.orders import (ORDER_HOOK_PATIENT_TOPICS, UNADDRESSED_CRITICAL_TOPICS,
                               assess_orders, has_relevant_draft)
from .guideline.rules import assess
from .guideline.suggestions import OrderContext
from .protocol.request import HookRequest
from .protocol.response import Card


@dataclass(frozen=True)
class HookEnvironment:
    """What a handler needs besides the request: settings, clock, executor, FHIR client."""

    settings: Settings
    now: datetime
    executor: Executor
    docs_base_url: str
    client: FhirClient | None


Handler = Callable[[HookRequest, HookEnvironment], list[Card]]


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str
    prefetch: tuple[PrefetchKey, ...]
    handler: Handler

    def discovery(self) -> dict:
        return {"hook": self.hook, "id": self.id, "title": self.title,
                "description": self.description,
                "prefetch": {key.key: key.query for key in self.prefetch},
                "usageRequirements": "Prefetch recommended; otherwise the service reads the "
                                     "EHR's FHIR server with the access token it is given."}


# --------------------------------------------------------------------------------------------
# Prefetch templates: only CDS Hooks 2.0 tokens and the spec's recommended query subset
# (reads, patient reference and token searches, _sort, _count). Code lists come from codes.py.


def _token_list(*groups: Iterable[codes.Code]) -> str:
    return ",".join(f"{c.system}|{c.code}" for group in groups for c in group)


PATIENT = "{{context.patientId}}"
PATIENT_DATA = (
    PrefetchKey("patient", f"Patient/{PATIENT}", "patient record"),
    # All statuses, newest first: the tacrolimus start date needs stopped orders too (section 4).
    PrefetchKey("medications",
                f"MedicationRequest?patient={PATIENT}&_sort=-authoredon&_count=200",
                "medication list", required=True),
    PrefetchKey("magnesium",
                f"Observation?patient={PATIENT}&code={_token_list(codes.MG_SERUM, codes.MG_IONIZED)}"
                "&_sort=-date&_count=50",
                "magnesium results", required=True),
    # Kidney function and tacrolimus levels are separate searches: frequent creatinine and
    # eGFR results must not crowd the monthly tacrolimus levels out of a bounded page.
    PrefetchKey("labs",
                f"Observation?patient={PATIENT}&code="
                f"{_token_list(codes.CREATININE_SERUM, codes.CREATININE_URINE, codes.MG_URINE, codes.EGFR)}"
                "&_sort=-date&_count=100",
                "kidney function and urine results"),
    PrefetchKey("tacrolimusLevels",
                f"Observation?patient={PATIENT}&code={_token_list(codes.TACROLIMUS_LEVEL)}"
                "&_sort=-date&_count=20",
                "tacrolimus levels"),
    PrefetchKey("conditions",
                f"Condition?patient={PATIENT}&clinical-status=active,recurrence,relapse"
                "&_sort=-recorded-date&_count=100",
                "active conditions (symptoms)"),
    PrefetchKey("procedures",
                f"Procedure?patient={PATIENT}&code={_token_list(codes.TRANSPLANT_PROCEDURES)}"
                "&_sort=-date&_count=20",
                "transplant procedures"),
    PrefetchKey("encounter", "Encounter/{{context.encounterId}}", "current encounter"),
)


# Order hooks also read the serum magnesium orders already placed (is the monitoring plan in place?).
ORDER_DATA = PATIENT_DATA + (
    PrefetchKey("magnesiumOrders",
                f"ServiceRequest?patient={PATIENT}&code={_token_list(codes.MG_SERUM)}"
                "&status=active,draft,on-hold&_sort=-authored&_count=20",
                "magnesium lab orders"),
)


def _evaluate(request: HookRequest, env: HookEnvironment, keys: tuple[PrefetchKey, ...],
              orders: bool) -> list[Card]:
    drafts = list(_draft_resources(request.context.get("draftOrders")))
    data = gather(request, keys, client=env.client, executor=env.executor,
                  deadline_seconds=env.settings.fhir_deadline, extra=drafts)
    selections = request.context.get("selections") if request.hook == "order-select" else None
    facts = build_facts(
        data.resources, patient_id=request.patient_id, encounter_id=request.encounter_id,
        unavailable=data.unavailable, draft_orders=drafts, selections=selections)
    thresholds = env.settings.thresholds
    assessment = assess(facts, env.now, thresholds)
    findings, keep = None, None
    if orders:
        findings = assess_orders(facts, assessment, env.now, thresholds)
        keep = _order_hook_cards(request.hook, has_relevant_draft(facts))
        if keep is None:
            return []
    serum_order = next((c for c in codes.MG_SERUM if c.code == env.settings.serum_mg_order_loinc),
                       codes.MG_SERUM_MASS)
    context = CardContext(
        orders=OrderContext(request.patient_id, request.encounter_id, env.now, serum_order,
                            orderables=env.settings.orderable_codes, thresholds=thresholds),
        thresholds=thresholds,
        docs_base_url=env.docs_base_url)
    return build_cards(assessment, context, findings, keep=keep)


def _order_hook_cards(hook: str, relevant: bool) -> Callable[[Card], bool] | None:
    """Section 6: which cards an order hook answers (None: none at all).

    With a relevant draft: the order cards and the severity/monitoring cards. Without one,
    order-select is silent (the patient's magnesium is patient-view's job) and order-sign keeps
    only a critical severity, the one thing that must not be signed past.
    """
    if relevant:
        return lambda card: card.topic in ORDER_HOOK_PATIENT_TOPICS or card.topic in ORDER_TOPICS
    if hook == "order-sign":
        return lambda card: card.topic in UNADDRESSED_CRITICAL_TOPICS and card.indicator == "critical"
    return None


def assess_patient(request: HookRequest, env: HookEnvironment) -> list[Card]:
    """patient-view: sections 1-5 and 7 for the patient of the request."""
    return _evaluate(request, env, PATIENT_DATA, orders=False)


def assess_draft_orders(request: HookRequest, env: HookEnvironment) -> list[Card]:
    """order-select / order-sign: section 6 for the drafts acted on, plus sections 3-5 and 7."""
    return _evaluate(request, env, ORDER_DATA, orders=True)


def _draft_resources(bundle: object) -> Iterator[dict]:
    """The resources of a draftOrders Bundle; anything malformed is skipped, never an error."""
    if not isinstance(bundle, dict) or not isinstance(bundle.get("entry"), list):
        return
    for entry in bundle["entry"]:
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            yield entry["resource"]


GUIDELINE_NAME = "Magnesium monitoring and supplementation for patients on tacrolimus"

SERVICES = (
    CdsService(
        id="tacrolimus-magnesium-patient-view",
        hook="patient-view",
        title="Magnesium on tacrolimus",
        description=(f"{GUIDELINE_NAME}: monitoring reminders, severity-graded supplementation "
                     "advice, contributing drugs and escalation when low magnesium persists."),
        prefetch=PATIENT_DATA,
        handler=assess_patient,
    ),
    CdsService(
        id="tacrolimus-magnesium-order-select",
        hook="order-select",
        title="Magnesium on tacrolimus (order selection)",
        description=(f"{GUIDELINE_NAME}: when tacrolimus is started, or a drug that wastes "
                     "magnesium or changes tacrolimus levels is selected, plus magnesium severity "
                     "and monitoring."),
        prefetch=ORDER_DATA,
        handler=assess_draft_orders,
    ),
    CdsService(
        id="tacrolimus-magnesium-order-sign",
        hook="order-sign",
        title="Magnesium on tacrolimus (order signing)",
        description=(f"{GUIDELINE_NAME}: the order-select checks over every draft order about to "
                     "be signed."),
        prefetch=ORDER_DATA,
        handler=assess_draft_orders,
    ),
)

SERVICES_BY_ID = {service.id: service for service in SERVICES}
