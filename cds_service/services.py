"""The service registry: each CDS service is data (id, hook, title, description, prefetch) plus
one handler. Discovery is generated from this list; routes look services up here.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from collections.abc import Callable, Iterable, Iterator

from .config import Settings
from .fhir.client import FhirClient
from .fhir.data import PrefetchKey, gather
from .guideline import codes
from .guideline.cards import ORDER_TOPICS, CardContext, build_cards
from .guideline.facts import build_facts
from .guideline.orders import (ORDER_HOOK_PATIENT_TOPICS, UNADDRESSED_CRITICAL_TOPICS,
                               assess_orders, has_relevant_draft)
from .guideline.rules import assess, set_aside_future
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
    # The templates with a hospital's local lab codes added (CDS_LOCAL_CODES, section 2).
    prefetch_with: Callable[[frozenset], tuple[PrefetchKey, ...]] | None = None

    def templates(self, local_codes: frozenset = frozenset()) -> tuple[PrefetchKey, ...]:
        if local_codes and self.prefetch_with is not None:
            return self.prefetch_with(local_codes)
        return self.prefetch

    def discovery(self, local_codes: frozenset = frozenset()) -> dict:
        return {"hook": self.hook, "id": self.id, "title": self.title,
                "description": self.description,
                "prefetch": {key.key: key.query for key in self.templates(local_codes)},
                "usageRequirements": "Prefetch recommended; otherwise the service reads the "
                                     "EHR's FHIR server with the access token it is given."}


# --------------------------------------------------------------------------------------------
# Prefetch templates: only CDS Hooks 2.0 tokens and the spec's recommended query subset
# (reads, patient reference and token searches, _sort, _count). Code lists come from codes.py.


def _token_list(*groups: Iterable[codes.Code], local: frozenset = frozenset(),
                kinds: tuple[str, ...] = ()) -> str:
    """system|code tokens of the value sets, then the hospital's local codes of these kinds."""
    tokens = [f"{c.system}|{c.code}" for group in groups for c in group]
    tokens += sorted(f"{system}|{code}" for kind, system, code in local if kind in kinds)
    return ",".join(tokens)


PATIENT = "{{context.patientId}}"


@lru_cache(maxsize=8)
def patient_data(local: frozenset = frozenset()) -> tuple[PrefetchKey, ...]:
    """The patient's data every hook reads; `local`: CDS_LOCAL_CODES added to the lab searches."""
    kidney_codes = _token_list(codes.CREATININE_SERUM, codes.CREATININE_URINE, codes.MG_URINE, codes.EGFR,
                               local=local, kinds=("creatinine_serum", "creatinine_urine", "mg_urine", "egfr"))
    return (
        PrefetchKey("patient", f"Patient/{PATIENT}", "patient record"),
        # All statuses, newest first: the tacrolimus start date needs stopped orders too (section 4).
        PrefetchKey("medications",
                    f"MedicationRequest?patient={PATIENT}&_sort=-authoredon&_count=200",
                    "medication list", required=True),
        # Home medications (section 1): a recipient admitted elsewhere may have tacrolimus only here.
        PrefetchKey("medicationStatements",
                    f"MedicationStatement?patient={PATIENT}&_sort=-effective&_count=100",
                    "home medications (medication statements)"),
        # Magnesium already given since the result (section 3): recent, newest first.
        PrefetchKey("medicationAdministrations",
                    f"MedicationAdministration?patient={PATIENT}&_sort=-effective-time&_count=50",
                    "medication administrations"),
        PrefetchKey("magnesium",
                    f"Observation?patient={PATIENT}&code="
                    f"{_token_list(codes.MG_SERUM, codes.MG_IONIZED, local=local, kinds=('mg_serum',))}"
                    "&_sort=-date&_count=50",
                    "magnesium results", required=True),
        # Kidney function and tacrolimus levels are separate searches: frequent creatinine and
        # eGFR results must not crowd the monthly tacrolimus levels out of a bounded page.
        PrefetchKey("labs",
                    f"Observation?patient={PATIENT}&code="
                    f"{kidney_codes}"
                    "&_sort=-date&_count=100",
                    "kidney function and urine results"),
        PrefetchKey("tacrolimusLevels",
                    f"Observation?patient={PATIENT}&code="
                    f"{_token_list(codes.TACROLIMUS_LEVEL, local=local, kinds=('tacrolimus_level',))}"
                    "&_sort=-date&_count=20",
                    "tacrolimus levels"),
        # Children's doses in mg/kg (section 3).
        PrefetchKey("bodyWeight",
                    f"Observation?patient={PATIENT}&code={_token_list(codes.BODY_WEIGHT)}"
                    "&_sort=-date&_count=5",
                    "body weight"),
        # Symptoms and end-stage kidney disease are active Conditions.
        PrefetchKey("conditions",
                    f"Condition?patient={PATIENT}&clinical-status=active,recurrence,relapse"
                    "&_sort=-recorded-date&_count=100",
                    "active conditions (symptoms, kidney disease)"),
        PrefetchKey("procedures",
                    f"Procedure?patient={PATIENT}&code="
                    f"{_token_list(codes.TRANSPLANT_PROCEDURES, codes.DIALYSIS_PROCEDURES)}"
                    "&_sort=-date&_count=20",
                    "transplant and dialysis procedures"),
        PrefetchKey("encounter", "Encounter/{{context.encounterId}}", "current encounter"),
    )


@lru_cache(maxsize=8)
def order_data(local: frozenset = frozenset()) -> tuple[PrefetchKey, ...]:
    """Order hooks also read the serum magnesium orders already placed (is the plan in place?)."""
    return patient_data(local) + (
        PrefetchKey("magnesiumOrders",
                    f"ServiceRequest?patient={PATIENT}&code="
                    f"{_token_list(codes.MG_SERUM, local=local, kinds=('mg_serum',))}"
                    "&status=active,draft,on-hold&_sort=-authored&_count=20",
                    "magnesium lab orders"),
    )


PATIENT_DATA = patient_data()
ORDER_DATA = order_data()


def _evaluate(request: HookRequest, env: HookEnvironment, keys: tuple[PrefetchKey, ...],
              orders: bool) -> list[Card]:
    local = _local_codes(env.settings.local_codes)
    if local:
        keys = (order_data if orders else patient_data)(local)
    drafts = list(_draft_resources(request.context.get("draftOrders")))
    data = gather(request, keys, client=env.client, executor=env.executor,
                  deadline_seconds=env.settings.fhir_deadline, extra=drafts)
    selections = request.context.get("selections") if request.hook == "order-select" else None
    facts = build_facts(
        data.resources, patient_id=request.patient_id, encounter_id=request.encounter_id,
        unavailable=data.unavailable, draft_orders=drafts, selections=selections,
        local_codes=codes.local_kind_map(local) if local else None, fhir_server=request.fhir_server)
    thresholds = env.settings.thresholds
    # Section 2: future-dated results are never used, by any rule (the assessment names them).
    future_free, _ = set_aside_future(facts, env.now, thresholds)
    assessment = assess(facts, env.now, thresholds)
    findings, keep = None, None
    if orders:
        findings = assess_orders(future_free, assessment, env.now, thresholds)
        keep = _order_hook_cards(request.hook, has_relevant_draft(future_free))
        if keep is None:
            return []
    serum_order = next((c for c in codes.MG_SERUM if c.code == env.settings.serum_mg_order_loinc),
                       codes.MG_SERUM_MASS)
    context = CardContext(
        orders=OrderContext(request.patient_id, request.encounter_id, env.now, serum_order,
                            orderables=env.settings.orderable_codes, thresholds=thresholds),
        thresholds=thresholds,
        docs_base_url=env.docs_base_url)
    deletable = frozenset(f"{d.get('resourceType')}/{d.get('id')}" for d in drafts) if orders else None
    return build_cards(assessment, context, findings, keep=keep, deletable=deletable)


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


@lru_cache(maxsize=4)
def _local_codes(text: str) -> frozenset:
    """CDS_LOCAL_CODES, parsed once per value (validated at start-up by the runtime)."""
    return codes.parse_local_codes(text)


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
        prefetch_with=patient_data,
        handler=assess_patient,
    ),
    CdsService(
        id="tacrolimus-magnesium-order-select",
        hook="order-select",
        title="Magnesium on tacrolimus (order selection)",
        description=(f"{GUIDELINE_NAME}: answers only when the selected order is tacrolimus, a "
                     "drug that wastes magnesium or changes tacrolimus levels, a magnesium "
                     "supplement or a magnesium lab, with magnesium severity and monitoring."),
        prefetch=ORDER_DATA,
        prefetch_with=order_data,
        handler=assess_draft_orders,
    ),
    CdsService(
        id="tacrolimus-magnesium-order-sign",
        hook="order-sign",
        title="Magnesium on tacrolimus (order signing)",
        description=(f"{GUIDELINE_NAME}: the order-select checks over every draft order about to "
                     "be signed; with no such order, only a critical low magnesium."),
        prefetch=ORDER_DATA,
        prefetch_with=order_data,
        handler=assess_draft_orders,
    ),
)

SERVICES_BY_ID = {service.id: service for service in SERVICES}
