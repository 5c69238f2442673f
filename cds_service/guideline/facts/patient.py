"""Every resource of the patient's data -> PatientFacts, one step per resource kind."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from ..codes import LabKind
from .conditions import (is_esrd, is_hospitalized, last_birth_day, read_dialysis_date, read_patient, read_symptom,
                         read_transplant_date)
from .labs import LabCodes, is_magnesium_lab_order, lab_kind, read_lab
from .medications import read_administration, read_medication
from .model import MedicationUse, PatientFacts
from ...fhir.references import server_base
from .values import Resource, medication_key, reference_id

T = TypeVar("T")
# Section 4: a lab order drafted in an order hook that answers the monitoring card.
_MAGNESIUM_LAB_KINDS = (LabKind.MG_SERUM, LabKind.MG_URINE, LabKind.MG_IONIZED)


@dataclass
class PatientRecord:
    """The patient's resources by type, de-duplicated by id (the same Observation arriving
    under two prefetch keys counts once), in the order they arrived."""

    patient_id: str | None
    by_type: dict[str, dict[str, Resource]] = field(default_factory=dict)
    anonymous: dict[str, list[Resource]] = field(default_factory=dict)

    @classmethod
    def of(cls, resources: Iterable[Resource], patient_id: str | None) -> PatientRecord:
        record = cls(patient_id)
        for resource in resources:
            rtype = resource.get("resourceType")
            if not isinstance(rtype, str):
                continue
            rid = resource.get("id")
            if isinstance(rid, str):
                record.by_type.setdefault(rtype, {})[rid] = resource
            else:
                record.anonymous.setdefault(rtype, []).append(resource)
        return record

    def of_type(self, rtype: str) -> list[Resource]:
        return list(self.by_type.get(rtype, {}).values()) + self.anonymous.get(rtype, [])

    def about_patient(self, *rtypes: str) -> list[Resource]:
        """The resources of these types whose subject (or patient) is this patient or not stated."""
        return [r for rtype in rtypes for r in self.of_type(rtype) if self._is_about_patient(r)]

    def _is_about_patient(self, resource: Resource) -> bool:
        if self.patient_id is None:
            return True
        reference = resource.get("subject") or resource.get("patient")
        if (isinstance(reference, dict) and reference.get("reference") == f"Patient/{self.patient_id}"
                and "/" not in self.patient_id):
            return True  # the common form, without splitting the reference
        found = reference_id(reference, "Patient")
        return found is None or found == self.patient_id


def _each(read: Callable[[Resource], T | None], resources: Iterable[Resource],
          remember: Hashable = None) -> tuple[T, ...]:
    """What a reader makes of each resource, skipping those it cannot read.

    A resource shared between calls that sent the same bytes (protocol/body.py) keeps what the
    reader made of it under `remember`, which names the reader and every argument it reads
    besides the resource (None: the reader also reads other resources, nothing is kept). The
    facts are frozen, so one reading serves every call.
    """
    facts = []
    for resource in resources:
        readings = (None if remember is None or type(resource) is dict  # a plain dict: not shared
                    else getattr(resource, "readings", None))
        if readings is None:
            fact = read(resource)
        elif remember in readings:
            fact = readings[remember]
        else:
            fact = readings[remember] = read(resource)
        if fact is not None:
            facts.append(fact)
    return tuple(facts)


def _reads_only_itself(request: Resource) -> bool:
    """A medication order or statement whose drug is named in the resource itself (a concept or
    a contained Medication), so that reading it needs no other resource."""
    if isinstance(request.get("medicationCodeableConcept"), dict):
        return True
    reference = request.get("medicationReference")
    return isinstance(reference, dict) and str(reference.get("reference", "")).startswith("#")


def _medications(record: PatientRecord, medication_index: dict[str, Resource]) -> tuple[MedicationUse, ...]:
    """Section 1: the patient's medication orders and statements (kept for calls that send the
    same order again when the order names its drug itself)."""
    orders = record.about_patient("MedicationRequest", "MedicationStatement")
    own = [r for r in orders if _reads_only_itself(r)]
    if len(own) < len(orders):  # keep the order of arrival: read all of them the same way
        return _each(lambda r: read_medication(r, medication_index), orders)
    return _each(lambda r: read_medication(r, {}), own, remember="medication")


def _medication_index(record: PatientRecord, draft_orders: list[Resource],
                      fhir_server: str | None) -> dict[str, Resource]:
    """Medication resources by id, the drafts' own (contained in the order hook) included, and
    by their absolute URL on the hook's FHIR server (section 1: a reference may be absolute).
    Every Medication here was sent by the EHR or read from that server (fhir/data.py)."""
    index = {**record.by_type.get("Medication", {}),
             **{r["id"]: r for r in draft_orders
                if r.get("resourceType") == "Medication" and isinstance(r.get("id"), str)}}
    base = server_base(fhir_server)
    if base is not None and index:
        index.update({medication_key(base, med_id): m for med_id, m in list(index.items())})
    return index


def _draft_medications(draft_orders: list[Resource],
                       medication_index: dict[str, Resource]) -> tuple[MedicationUse, ...]:
    """Section 6: the MedicationRequests being ordered (draft, or active once signed)."""
    requests = [r for r in draft_orders if r.get("resourceType") == "MedicationRequest"
                and r.get("status") in ("draft", "active", None)]
    return _each(lambda r: read_medication(r, medication_index), requests)


def _is_selected(selected: set[str] | None, reference: str) -> bool:
    return selected is None or reference in selected


def _magnesium_lab_orders(record: PatientRecord, draft_orders: list[Resource],
                          local_codes: LabCodes | None) -> int:
    """Section 4: serum magnesium orders placed or being placed (the monitoring plan)."""
    drafted = [d for d in draft_orders if d.get("resourceType") == "ServiceRequest"]
    return sum(1 for r in record.of_type("ServiceRequest") + drafted if is_magnesium_lab_order(r, local_codes))


def _selected_lab_drafts(draft_orders: list[Resource], selected: set[str] | None,
                         local_codes: LabCodes | None) -> int:
    """Magnesium lab orders among the drafts acted on (an order hook's selections)."""
    return sum(1 for d in draft_orders if d.get("resourceType") == "ServiceRequest"
               and _is_selected(selected, f"ServiceRequest/{d.get('id')}")
               and lab_kind({"code": d.get("code")}, local_codes) in _MAGNESIUM_LAB_KINDS)


def _hospitalized(record: PatientRecord, encounter_id: str | None) -> bool:
    """The hook's encounter (any encounter when none is named) is an inpatient one."""
    encounters = record.of_type("Encounter")
    if encounter_id is not None:
        encounters = [e for e in encounters if e.get("id") == encounter_id]
    return any(is_hospitalized(e) for e in encounters)


def build_facts(resources: Iterable[Resource], *, patient_id: str | None,
                encounter_id: str | None, unavailable: Iterable[str] = (),
                draft_orders: Iterable[Resource] = (),
                selections: Iterable[str] | None = None,
                local_codes: LabCodes | None = None,
                fhir_server: str | None = None) -> PatientFacts:
    """Every resource of the patient's data (any prefetch key) -> PatientFacts.

    Resources are de-duplicated by type and id, so the same Observation arriving under two
    prefetch keys counts once. Resources about another patient are ignored. `draft_orders` are
    the order hooks' drafts; `selections` names the ones acted on (None: all of them).
    `fhir_server` is the hook's: a medication reference to it may be absolute.
    """
    drafts_given: list[Resource] = [r for r in draft_orders if isinstance(r, dict)]
    resources = tuple(resources)
    inputs = (patient_id, encounter_id, tuple(unavailable),
              frozenset(local_codes.items()) if local_codes else None, fhir_server)
    if drafts_given or not resources:
        return _build(resources, inputs, drafts_given, selections, local_codes)
    # Facts built from exactly these shared resources (the same objects, so the same bytes:
    # protocol/body.py) and these arguments are the same facts: the last call's are kept on its
    # first resource (the Patient), with weak references to the others (nothing is kept alive
    # for them) and replaced at each call. Order hooks' drafts are new at each call: never kept.
    first = resources[0]
    readings = None if type(first) is dict else getattr(first, "readings", None)
    if readings is None:
        return _build(resources, inputs, drafts_given, selections, local_codes)
    kept = readings.get(_FACTS)
    if (kept is not None and kept[0] == inputs and len(kept[1]) == len(resources)
            and all(ref() is resource for ref, resource in zip(kept[1], resources, strict=True))):
        return kept[2]
    facts = _build(resources, inputs, drafts_given, selections, local_codes)
    if len(resources) <= MAX_KEPT_FACTS_RESOURCES and all(
            type(r) is not dict and getattr(r, "readings", None) is not None for r in resources):
        _keep(first, readings, (inputs, tuple(map(weakref.ref, resources)), facts))
    else:
        readings.pop(_FACTS, None)
    return facts


_FACTS = ("patient facts",)  # the key of build_facts' result among a shared resource's readings
# Memory bound: the facts of at most MAX_KEPT_FACTS calls (the most recent patients) are kept
# per process, each of a record of at most MAX_KEPT_FACTS_RESOURCES resources: the facts are
# not in the memo's count (a record of shared resources may be read into new facts for every
# patient), so they have a bound of their own (~15 MB at worst, ~2 MB for typical records).
MAX_KEPT_FACTS = 64
MAX_KEPT_FACTS_RESOURCES = 1000
_kept_owners: OrderedDict[int, weakref.ref] = OrderedDict()  # id(first resource) -> it, oldest first
_kept_lock = threading.Lock()


def _keep(first: Resource, readings: dict, kept: tuple) -> None:
    """Keep `kept` on `first`, and drop the oldest kept facts beyond MAX_KEPT_FACTS."""
    readings[_FACTS] = kept
    with _kept_lock:
        _kept_owners.pop(id(first), None)
        _kept_owners[id(first)] = weakref.ref(first)
        while len(_kept_owners) > MAX_KEPT_FACTS:
            owner = _kept_owners.popitem(last=False)[1]()
            if owner is not None:
                getattr(owner, "readings", {}).pop(_FACTS, None)


def _build(resources: tuple[Resource, ...], inputs: tuple, drafts_given: list[Resource],
           selections: Iterable[str] | None, local_codes: LabCodes | None) -> PatientFacts:
    patient_id, encounter_id, unavailable, _, fhir_server = inputs
    record = PatientRecord.of(resources, patient_id)
    medication_index = _medication_index(record, drafts_given, fhir_server)
    conditions = record.about_patient("Condition")
    procedures = record.about_patient("Procedure")
    patients = [p for p in record.of_type("Patient") if patient_id is None or p.get("id") == patient_id]
    birth_date, sex = read_patient(patients[0]) if patients else (None, None)
    birth_date_last = last_birth_day(patients[0]) if patients else None
    drafts = _draft_medications(drafts_given, medication_index)
    selected = set(selections) if selections is not None else None
    return PatientFacts(
        patient_id=patient_id,
        encounter_id=encounter_id,
        medications=_medications(record, medication_index),
        labs=_each(lambda r: read_lab(r, local_codes), record.about_patient("Observation"),
                   remember=("lab", frozenset(local_codes.items()) if local_codes else None)),
        symptoms=_each(read_symptom, conditions, remember="symptom"),
        transplant_dates=_each(read_transplant_date, procedures, remember="transplant date"),
        hospitalized=_hospitalized(record, encounter_id),
        unavailable=tuple(unavailable),
        draft_orders=drafts,
        selected_drafts=tuple(d for d in drafts if _is_selected(selected, f"{d.resource_type}/{d.request_id}")),
        magnesium_lab_orders=_magnesium_lab_orders(record, drafts_given, local_codes),
        selected_magnesium_lab_drafts=_selected_lab_drafts(drafts_given, selected, local_codes),
        birth_date=birth_date,
        birth_date_last=birth_date_last,
        sex=sex,
        administrations=_each(lambda r: read_administration(r, medication_index),
                              record.about_patient("MedicationAdministration")),
        esrd=any(is_esrd(c) for c in conditions),
        dialysis_dates=_each(read_dialysis_date, procedures, remember="dialysis date"),
    )
