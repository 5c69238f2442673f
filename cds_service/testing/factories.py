"""Small factories for synthetic FHIR R4 resources and hook requests (no real patient data)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"

PATIENT_ID = "pat-1"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def days_ago(days: float, now: datetime = NOW) -> str:
    return (now - timedelta(days=days)).isoformat()


def patient(patient_id: str = PATIENT_ID, *, birth_date: str | None = "1970-01-01",
            gender: str | None = "female") -> dict:
    resource = {"resourceType": "Patient", "id": patient_id}
    if gender:
        resource["gender"] = gender
    if birth_date:
        resource["birthDate"] = birth_date
    return resource


def magnesium(value: float | None, unit: str = "mEq/L", *, days: float = 1, code: str | None = "19123-9",
              text: str | None = None, status: str = "final", ucum: str | None = "same",
              comparator: str | None = None, when: str | None = None, id: str | None = None,
              **extra: Any) -> dict:
    """A serum magnesium Observation. ucum="same" uses `unit` as the UCUM code; None leaves it out."""
    obs: dict = {"resourceType": "Observation", "id": id or _id("mg"), "status": status,
                 "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                           "code": "laboratory"}]}],
                 "code": {}, "subject": {"reference": f"Patient/{PATIENT_ID}"},
                 "effectiveDateTime": when or days_ago(days)}
    if code:
        obs["code"]["coding"] = [{"system": LOINC, "code": code}]
    if text:
        obs["code"]["text"] = text
    if value is not None:
        quantity: dict = {"value": value, "unit": unit}
        if ucum:
            quantity["system"] = UCUM
            quantity["code"] = unit if ucum == "same" else ucum
        if comparator:
            quantity["comparator"] = comparator
        obs["valueQuantity"] = quantity
    obs.update(extra)
    return obs


def lab(code: str, value: float, unit: str, *, days: float = 1, status: str = "final",
        reference_high: float | None = None, comparator: str | None = None, **extra: Any) -> dict:
    """Any other laboratory Observation (creatinine, eGFR, urine Mg, tacrolimus level)."""
    obs = magnesium(value, unit, days=days, code=code, status=status, comparator=comparator, **extra)
    obs["id"] = _id("lab")
    if reference_high is not None:
        obs["referenceRange"] = [{"high": {"value": reference_high, "unit": unit}}]
    return obs


def medication(text: str | None = None, *, rxnorm: str | None = None, display: str | None = None,
               status: str = "active", days: float = 400, route: str | None = None,
               resource_type: str = "MedicationRequest", id: str | None = None, **extra: Any) -> dict:
    """A MedicationRequest for a drug named by text and/or an RxNorm code."""
    concept: dict = {}
    if rxnorm:
        concept["coding"] = [{"system": RXNORM, "code": rxnorm, **({"display": display} if display else {})}]
    if text:
        concept["text"] = text
    request: dict = {"resourceType": resource_type, "id": id or _id("med"), "status": status,
                     "intent": "order", "medicationCodeableConcept": concept,
                     "subject": {"reference": f"Patient/{PATIENT_ID}"},
                     "authoredOn": days_ago(days)}
    if route:
        request["dosageInstruction"] = [{"route": {"text": route}}]
    request.update(extra)
    return request


def tacrolimus(**kwargs: Any) -> dict:
    kwargs.setdefault("rxnorm", "198377")
    kwargs.setdefault("display", "tacrolimus 1 MG Oral Capsule")
    return medication(**kwargs)


def medication_with_contained(name: str, *, status: str = "active", days: float = 400,
                              form: str | None = None) -> dict:
    """A MedicationRequest whose drug is a contained Medication (medicationReference '#med')."""
    contained = {"resourceType": "Medication", "id": "med", "code": {"text": name}}
    if form:
        contained["form"] = {"text": form}
    return {"resourceType": "MedicationRequest", "id": _id("med"), "status": status,
            "intent": "order", "contained": [contained],
            "medicationReference": {"reference": "#med"},
            "subject": {"reference": f"Patient/{PATIENT_ID}"}, "authoredOn": days_ago(days)}


def condition(text: str | None = None, *, snomed: str | None = None, days: float = 2,
              clinical_status: str = "active", verification: str | None = None) -> dict:
    code: dict = {}
    if snomed:
        code["coding"] = [{"system": SNOMED, "code": snomed}]
    if text:
        code["text"] = text
    resource = {"resourceType": "Condition", "id": _id("cond"),
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                               "code": clinical_status}]},
                "code": code, "subject": {"reference": f"Patient/{PATIENT_ID}"},
                "recordedDate": days_ago(days)}
    if verification:
        resource["verificationStatus"] = {"coding": [{"code": verification}]}
    return resource


def transplant(days: float, *, snomed: str | None = "70536003", text: str | None = None,
               status: str = "completed") -> dict:
    code: dict = {"coding": [{"system": SNOMED, "code": snomed}]} if snomed else {}
    if text:
        code["text"] = text
    return {"resourceType": "Procedure", "id": _id("proc"), "status": status, "code": code,
            "subject": {"reference": f"Patient/{PATIENT_ID}"}, "performedDateTime": days_ago(days)}


def statement(text: str | None = None, *, status: str = "active", days: float = 400,
              **kwargs: Any) -> dict:
    """A MedicationStatement (home medication), as EHRs record what the patient takes."""
    resource = medication(text, resource_type="MedicationStatement", status=status, days=days, **kwargs)
    resource.pop("intent")
    resource["effectivePeriod"] = {"start": resource.pop("authoredOn")}
    resource["dateAsserted"] = resource["effectivePeriod"]["start"]
    return resource


def administration(text: str = "magnesium sulfate 2 g in 50 mL IV", *, days: float = 0.5,
                   status: str = "completed", dose_g: float | None = 2, route: str = "Intravenous",
                   rxnorm: str | None = None) -> dict:
    """A MedicationAdministration (what the nurse charted as given)."""
    concept: dict = {"text": text}
    if rxnorm:
        concept["coding"] = [{"system": RXNORM, "code": rxnorm}]
    resource: dict = {"resourceType": "MedicationAdministration", "id": _id("adm"), "status": status,
                      "medicationCodeableConcept": concept,
                      "subject": {"reference": f"Patient/{PATIENT_ID}"},
                      "effectiveDateTime": days_ago(days)}
    dosage: dict = {"route": {"text": route}}
    if dose_g is not None:
        dosage["dose"] = {"value": dose_g, "unit": "g", "system": UCUM, "code": "g"}
    resource["dosage"] = dosage
    return resource


def weight(kg: float, *, days: float = 3) -> dict:
    """A body weight Observation (LOINC 29463-7), in kg."""
    obs = lab("29463-7", kg, "kg", days=days)
    obs["category"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "vital-signs"}]}]
    return obs


def dialysis(days: float = 3, *, snomed: str | None = "302497006", text: str | None = None,
             status: str = "completed") -> dict:
    """A dialysis Procedure (haemodialysis session)."""
    return transplant(days, snomed=snomed, text=text, status=status)


def esrd(*, snomed: str | None = "46177005", text: str | None = None, days: float = 300) -> dict:
    """An end-stage renal disease Condition on the problem list."""
    resource = condition(text, snomed=snomed, days=days)
    resource["onsetDateTime"] = days_ago(days)
    return resource


def encounter(class_code: str = "IMP", status: str = "in-progress", id: str = "enc-1") -> dict:
    return {"resourceType": "Encounter", "id": id, "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class_code},
            "subject": {"reference": f"Patient/{PATIENT_ID}"}}


def bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"urn:uuid:{r.get('id', 'x')}", "resource": r} for r in resources]}


PREFETCH_KEYS = ("patient", "medications", "medicationStatements", "medicationAdministrations",
                 "magnesium", "labs", "tacrolimusLevels", "bodyWeight", "conditions", "procedures",
                 "encounter")
TACROLIMUS_LEVEL_CODES = {"11253-2", "74096-9", "74097-7", "77348-1"}
BODY_WEIGHT_CODES = {"29463-7"}


MAGNESIUM_CODES = {"19123-9", "2601-3", "73573-8"}
SEARCH_KEY_BY_TYPE = {"MedicationRequest": "medications", "Condition": "conditions",
                      "Procedure": "procedures", "MedicationStatement": "medicationStatements",
                      "MedicationAdministration": "medicationAdministrations"}


def prefetch_key(resource: dict) -> str | None:
    """The search prefetch key whose template an EHR would answer with this resource
    (Observations by their LOINC code; text-only ones with the magnesium results)."""
    rtype = resource["resourceType"]
    if rtype != "Observation":
        return SEARCH_KEY_BY_TYPE.get(rtype)
    codes = {c.get("code") for c in resource.get("code", {}).get("coding", [])}
    if codes & MAGNESIUM_CODES or not codes:
        return "magnesium"
    if codes & BODY_WEIGHT_CODES:
        return "bodyWeight"
    return "tacrolimusLevels" if codes & TACROLIMUS_LEVEL_CODES else "labs"


def prefetch_for(resources: list[dict], patient_id: str = PATIENT_ID) -> dict:
    """Split resources into the services' prefetch keys, as an EHR would fill them."""
    by_key: dict[str, list[dict]] = {k: [] for k in PREFETCH_KEYS}
    encounter_resource = None
    for r in resources:
        key = prefetch_key(r)
        if key is not None:
            by_key[key].append(r)
        elif r["resourceType"] == "Encounter":
            encounter_resource = r
    prefetch: dict = {k: bundle(*v) for k, v in by_key.items() if k not in ("patient", "encounter")}
    given = [r for r in resources if r["resourceType"] == "Patient"]
    prefetch["patient"] = given[0] if given else patient(patient_id)
    if encounter_resource is not None:
        prefetch["encounter"] = encounter_resource
    return prefetch


def hook_request(resources: list[dict] | None = None, *, hook: str = "patient-view",
                 prefetch: dict | None = None, encounter_id: str | None = None,
                 fhir_server: str | None = None, token: str | None = None, **context: Any) -> dict:
    """A CDS Hooks request; prefetch built from `resources` unless given."""
    ctx: dict = {"userId": "Practitioner/example", "patientId": PATIENT_ID}
    if encounter_id:
        ctx["encounterId"] = encounter_id
    if hook in ("order-select", "order-sign"):
        ctx.setdefault("draftOrders", {"resourceType": "Bundle", "entry": []})
        if hook == "order-select":
            ctx.setdefault("selections", [])
    ctx.update(context)
    body: dict = {"hook": hook, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "context": ctx}
    if prefetch is not None:
        body["prefetch"] = prefetch
    elif resources is not None:
        body["prefetch"] = prefetch_for(resources)
    if fhir_server:
        body["fhirServer"] = fhir_server
        if token:
            body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer",
                                         "expires_in": 300, "scope": "patient/*.read",
                                         "subject": "cds-service"}
    return body


def draft(resource: dict) -> dict:
    """The same order as a draft being placed (order-select / order-sign draftOrders)."""
    return {**resource, "status": "draft", "authoredOn": NOW.isoformat()}


def serum_mg_order(status: str = "active") -> dict:
    return {"resourceType": "ServiceRequest", "id": _id("sr"), "status": status, "intent": "order",
            "code": {"coding": [{"system": LOINC, "code": "19123-9"}]},
            "subject": {"reference": f"Patient/{PATIENT_ID}"}}


def order_request(history: list[dict], drafts: list[dict], *, hook: str = "order-select",
                  selected: list[dict] | None = None, **kwargs: Any) -> dict:
    """An order hook request: `drafts` in draftOrders, `selected` (default: all) in selections."""
    context: dict = {"draftOrders": {"resourceType": "Bundle", "type": "collection",
                                     "entry": [{"resource": d} for d in drafts]}}
    if hook == "order-select":
        chosen = drafts if selected is None else selected
        context["selections"] = [f"{d['resourceType']}/{d['id']}" for d in chosen]
    body = hook_request(history, hook=hook, **context, **kwargs)
    if history is not None and "prefetch" in body:
        body["prefetch"]["magnesiumOrders"] = bundle(*[r for r in history if r["resourceType"] == "ServiceRequest"])
    return body
