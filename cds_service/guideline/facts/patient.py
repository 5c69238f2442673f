"""Every resource of the patient's data -> PatientFacts, one step per resource kind."""

from __future__ import annotations

from typing import Iterable

from .conditions import is_esrd, is_hospitalized, read_dialysis_date, read_patient, read_symptom, read_transplant_date
from .labs import LabCodes, is_magnesium_lab_order, lab_kind, read_lab
from .medications import read_administration, read_medication
from .model import PatientFacts
from .values import Resource, reference_id


def build_facts(resources: Iterable[Resource], *, patient_id: str | None,
                encounter_id: str | None, unavailable: Iterable[str] = (),
                draft_orders: Iterable[Resource] = (),
                selections: Iterable[str] | None = None,
                local_codes: LabCodes | None = None) -> PatientFacts:
    """Every resource of the patient's data (any prefetch key) -> PatientFacts.

    Resources are de-duplicated by type and id, so the same Observation arriving under two
    prefetch keys counts once. Resources about another patient are ignored. `draft_orders` are
    the order hooks' drafts; `selections` names the ones acted on (None: all of them).
    """
    draft_orders = [r for r in draft_orders if isinstance(r, dict)]
    by_type: dict[str, dict[str, Resource]] = {}
    anonymous: dict[str, list[Resource]] = {}
    for resource in resources:
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            continue
        rid = resource.get("id")
        if isinstance(rid, str):
            by_type.setdefault(rtype, {})[rid] = resource
        else:
            anonymous.setdefault(rtype, []).append(resource)

    def of_type(rtype: str) -> list[Resource]:
        return list(by_type.get(rtype, {}).values()) + anonymous.get(rtype, [])

    def about_patient(resource: Resource) -> bool:
        subject = resource.get("subject") or resource.get("patient")
        found = reference_id(subject, "Patient")
        return patient_id is None or found is None or found == patient_id

    medication_index = {**by_type.get("Medication", {}),
                        **{r["id"]: r for r in draft_orders
                           if r.get("resourceType") == "Medication" and isinstance(r.get("id"), str)}}
    medications = tuple(
        use for resource in of_type("MedicationRequest") + of_type("MedicationStatement")
        if about_patient(resource)
        for use in [read_medication(resource, medication_index)] if use is not None)
    labs = tuple(
        lab for obs in of_type("Observation") if about_patient(obs)
        for lab in [read_lab(obs, local_codes)] if lab is not None)
    administrations = tuple(
        given for resource in of_type("MedicationAdministration") if about_patient(resource)
        for given in [read_administration(resource, medication_index)] if given is not None)
    conditions = [c for c in of_type("Condition") if about_patient(c)]
    procedures = [p for p in of_type("Procedure") if about_patient(p)]
    patients = [p for p in of_type("Patient") if patient_id is None or p.get("id") == patient_id]
    birth_date, sex = read_patient(patients[0]) if patients else (None, None)
    symptoms = tuple(
        s for condition in conditions for s in [read_symptom(condition)] if s is not None)
    transplants = tuple(
        when for procedure in procedures
        for when in [read_transplant_date(procedure)] if when is not None)
    dialysis = tuple(when for procedure in procedures
                     for when in [read_dialysis_date(procedure)] if when is not None)
    encounters = of_type("Encounter")
    if encounter_id is not None:
        encounters = [e for e in encounters if e.get("id") == encounter_id]
    drafts = tuple(
        use for resource in draft_orders
        if resource.get("resourceType") == "MedicationRequest"
        and resource.get("status") in ("draft", "active", None)
        for use in [read_medication(resource, medication_index)] if use is not None)
    selected = set(selections) if selections is not None else None
    selected_drafts = tuple(d for d in drafts if selected is None
                            or f"{d.resource_type}/{d.request_id}" in selected)
    lab_orders = sum(1 for r in of_type("ServiceRequest") + [
        d for d in draft_orders if d.get("resourceType") == "ServiceRequest"]
        if is_magnesium_lab_order(r, local_codes))
    selected_lab_drafts = sum(
        1 for d in draft_orders if d.get("resourceType") == "ServiceRequest"
        and (selected is None or f"ServiceRequest/{d.get('id')}" in selected)
        and lab_kind({"code": d.get("code")}, local_codes) in ("mg_serum", "mg_urine", "mg_ionized"))
    return PatientFacts(
        patient_id=patient_id,
        encounter_id=encounter_id,
        medications=medications,
        labs=labs,
        symptoms=symptoms,
        transplant_dates=transplants,
        hospitalized=any(is_hospitalized(e) for e in encounters),
        unavailable=tuple(unavailable),
        draft_orders=drafts,
        selected_drafts=selected_drafts,
        magnesium_lab_orders=lab_orders,
        selected_magnesium_lab_drafts=selected_lab_drafts,
        birth_date=birth_date,
        sex=sex,
        administrations=administrations,
        esrd=any(is_esrd(c) for c in conditions),
        dialysis_dates=dialysis,
    )
