"""FHIR R4 resources the cards suggest (GUIDELINE.md sections 3, 4 and 7).

Built as ``fhir.resources.R4B`` models, so a resource that is not valid FHIR fails here, in the
service, rather than in the EHR that would accept it; serialised once to plain JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest

from . import codes
from .facts import LabResult


@dataclass(frozen=True)
class OrderContext:
    """Who and when the suggested orders are for."""

    patient_id: str
    encounter_id: str | None
    now: datetime
    serum_mg_order: codes.Code = codes.MG_SERUM_MASS


def _references(ctx: OrderContext) -> dict:
    refs = {"subject": {"reference": f"Patient/{ctx.patient_id}"}}
    if ctx.encounter_id:
        refs["encounter"] = {"reference": f"Encounter/{ctx.encounter_id}"}
    return refs


def _dump(model) -> dict:
    return model.model_dump(mode="json", exclude_none=True)


def _reason() -> list[dict]:
    return [{"coding": [codes.HYPOMAGNESEMIA.coding()], "text": "Hypomagnesemia on tacrolimus"}]


def lab_order(ctx: OrderContext, test: codes.Code, *, within_days: float, note: str,
              reason_low_mg: bool = True) -> dict:
    """A draft ServiceRequest for one LOINC-coded lab, due within the given window."""
    start = ctx.now.date()
    end = (ctx.now + timedelta(days=within_days)).date()
    resource = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "108252007",
                                  "display": "Laboratory procedure"}]}],
        "code": {"coding": [test.coding()], "text": test.display},
        **_references(ctx),
        "occurrencePeriod": {"start": start.isoformat(), "end": end.isoformat()},
        "authoredOn": ctx.now.date().isoformat(),
        "note": [{"text": note}],
    }
    if reason_low_mg:
        resource["reasonCode"] = _reason()
    return _dump(ServiceRequest.model_validate(resource))


def _medication_request(ctx: OrderContext, drug: str, text: str, dose_mg: float,
                        route: codes.Code, timing: dict, caution: str | None,
                        reason: list[dict] | None = None) -> dict:
    instruction = text if caution is None else f"{text}. CAUTION: {caution}"
    resource = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": drug},
        **_references(ctx),
        "authoredOn": ctx.now.date().isoformat(),
        "reasonCode": reason or _reason(),
        "dosageInstruction": [{
            "text": instruction,
            "route": {"coding": [route.coding()], "text": route.display},
            "timing": timing,
            "doseAndRate": [{"doseQuantity": {"value": dose_mg, "unit": "mg",
                                              "system": codes.UCUM, "code": "mg"}}],
        }],
    }
    if caution:
        resource["note"] = [{"text": caution}]
    return _dump(MedicationRequest.model_validate(resource))


SPACING = ("take at least 2 hours apart from mycophenolate, quinolones, tetracyclines, "
           "bisphosphonates and levothyroxine")


def oral_magnesium(ctx: OrderContext, caution: str | None, per_day: int = 2) -> dict:
    """Section 3: magnesium oxide 400 mg by mouth twice daily (three times with minor symptoms);
    under the renal caution 400 mg ONCE daily (the tablets are not scored: never half a tablet),
    the structured timing saying what the text says."""
    if caution:
        per_day = 1
        text = ("Magnesium oxide 400 mg (241 mg elemental) by mouth once daily: reduced for renal "
                f"impairment; titrate only with close magnesium checks; {SPACING}")
    else:
        frequency = {1: "once", 2: "twice", 3: "three times"}[per_day]
        titrate = "; titrate to three times daily as tolerated" if per_day < 3 else ""
        text = (f"Magnesium oxide 400 mg (241 mg elemental) by mouth {frequency} daily{titrate}; "
                f"split doses limit diarrhoea; {SPACING}")
    return _medication_request(
        ctx, codes.MAGNESIUM_OXIDE_400_TABLET, text, 400, codes.ORAL_ROUTE,
        {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}}, caution)


def intravenous_magnesium(ctx: OrderContext, caution: str | None, severe_below: float = 1.0) -> dict:
    """Section 3, severe or symptomatic: magnesium sulfate 2 g IV over 1 hour (1 g under the
    renal caution)."""
    if caution:
        text, dose = "Magnesium sulfate 1 g IV over 1 hour: dose halved for renal impairment", 1000
    else:
        # The severe threshold as configured (section 10: no default left behind in prose).
        text, dose = ("Magnesium sulfate 2 g IV over 1 hour (up to 4 g over 4 hours if Mg stays "
                      f"below {severe_below:g} mEq/L or symptoms persist)"), 2000
    text += "; then oral replacement; cardiac monitoring if arrhythmia"
    return _medication_request(
        ctx, codes.MAGNESIUM_SULFATE_IV, text, dose, codes.INTRAVENOUS_ROUTE,
        {"repeat": {"count": 1, "duration": 1, "durationUnit": "h"}}, caution)


def famotidine_instead(ctx: OrderContext, egfr: LabResult | None) -> dict:
    """Section 6: an H2 blocker in place of a PPI (PPIs waste magnesium), dosed to renal
    function as its labelling asks (famotidine is cleared by the kidney)."""
    if egfr is not None and egfr.normalised is not None and egfr.comparator not in (">", ">="):
        if egfr.normalised < 30:
            dose, per_day, why = 10, 1, f"reduced for eGFR {egfr.shown}"
        elif egfr.normalised < 60:
            dose, per_day, why = 20, 1, f"reduced for eGFR {egfr.shown}"
        else:
            dose, per_day, why = 20, 2, None
    else:
        dose, per_day, why = 20, 1, "no eGFR on record: check renal function before increasing"
    frequency = "twice daily" if per_day == 2 else "once daily"
    text = f"Famotidine {dose} mg by mouth {frequency} in place of the proton pump inhibitor"
    if why:
        text += f" ({why})"
    return _medication_request(
        ctx, "famotidine oral tablet", text, dose, codes.ORAL_ROUTE,
        {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}}, None,
        reason=[{"text": "Acid suppression without PPI-related magnesium loss (patient on tacrolimus)"}])
