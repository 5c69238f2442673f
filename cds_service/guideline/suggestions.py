"""FHIR R4 resources the cards suggest (docs/clinical-rules.md sections 3, 4, 6, 7 and 9).

Built as plain JSON data, with keys in the order of the FHIR R4 element definitions (the order
``fhir.resources`` serialises them in). Validation happens in the tests, not on every call:
tests/test_suggestion_shapes.py builds every shape these functions can emit (all fixtures, the
hospital-orderables map, and a grid of every argument: renal caution, doses per day, eGFR bands,
no encounter, each lab) and checks each one with ``fhir.resources.R4B`` AND that the model
serialises it to exactly the same bytes. Validating with the models at run time cost ~0.7 ms per
hook call for two suggestions, 18 % of the service's CPU (bench/README.md, issue 13). A new
field or shape here needs its case in that test.

Every suggested drug and lab carries its text, and its code where one is known: the hospital's
own orderable (``CDS_ORDERABLES``) first, then the verified standard code of section 9. A client
that maps orders by their first coding (the CDS Hooks sandbox does) gets the hospital's code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from . import codes
from .facts import LabResult, number
from .thresholds import DEFAULT_THRESHOLDS, FAMOTIDINE_FULL_DOSE_EGFR, FAMOTIDINE_REDUCED_DOSE_EGFR, Thresholds

# Every product a suggestion can order, by the key CDS_ORDERABLES uses.
MEDICATION_PRODUCTS = {p.key: p for p in (codes.MAGNESIUM_OXIDE_400_TABLET,
                                          codes.FAMOTIDINE_20_TABLET, codes.MAGNESIUM_SULFATE_IV)}
LAB_TEXT = {"serum_mg": "Serum magnesium", "tacrolimus_trough": "Tacrolimus trough level (whole blood)",
            "urine_mg": "Urine magnesium (spot)", "urine_creatinine": "Urine creatinine (spot)",
            "serum_creatinine": "Serum creatinine"}
PRODUCT_KEYS = tuple(MEDICATION_PRODUCTS) + tuple(codes.LAB_ORDER_KEYS)


@lru_cache(maxsize=8)
def parse_orderables(raw: str) -> Mapping[str, codes.Code]:
    """CDS_ORDERABLES (JSON: product key -> {"system", "code", "display"}) -> codes by key.

    Raises ValueError with a message naming the setting and the entry at fault, so a typo stops
    the service at start-up instead of sending an unmappable order.
    """
    if not raw or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise ValueError(f"CDS_ORDERABLES is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ValueError("CDS_ORDERABLES must be a JSON object from product key to "
                         '{"system": ..., "code": ..., "display": ...}')
    parsed = {}
    for key, entry in value.items():
        if key not in PRODUCT_KEYS:
            raise ValueError(f"CDS_ORDERABLES: unknown product key {key!r} "
                             f"(known: {', '.join(PRODUCT_KEYS)})")
        if not isinstance(entry, dict):
            raise ValueError(f"CDS_ORDERABLES[{key!r}] must be an object with system, code and display")
        system, code, display = entry.get("system"), entry.get("code"), entry.get("display")
        if not (isinstance(system, str) and system.strip() and isinstance(code, str) and code.strip()):
            raise ValueError(f"CDS_ORDERABLES[{key!r}] needs a non-empty 'system' and 'code'")
        if display is not None and not isinstance(display, str):
            raise ValueError(f"CDS_ORDERABLES[{key!r}]: 'display' must be text")
        unknown = set(entry) - {"system", "code", "display"}
        if unknown:
            raise ValueError(f"CDS_ORDERABLES[{key!r}]: unknown field(s) {', '.join(sorted(unknown))}")
        parsed[key] = codes.Code(system.strip(), code.strip(), display or "")
    return parsed


@dataclass(frozen=True)
class OrderContext:
    """Who and when the suggested orders are for, and how the hospital codes its orderables."""

    patient_id: str
    encounter_id: str | None
    now: datetime
    serum_mg_order: codes.Code = codes.MG_SERUM_MASS
    orderables: Mapping[str, codes.Code] = field(default_factory=dict)
    thresholds: Thresholds = DEFAULT_THRESHOLDS  # the numbers in force, for the order texts


def _coding(code: codes.Code) -> dict:
    coding = {"system": code.system, "code": code.code}
    if code.display:
        coding["display"] = code.display
    return coding


def _concept(ctx: OrderContext, key: str, text: str, standard: codes.Code | None) -> dict:
    """Text always; the hospital's orderable first, then the standard code."""
    found = [c for c in (ctx.orderables.get(key), standard) if c is not None]
    unique = list({(c.system, c.code): c for c in found}.values())
    if unique:  # coding before text: FHIR's element order
        return {"coding": [_coding(c) for c in unique], "text": text}
    return {"text": text}


def _lab_key(ctx: OrderContext, test: codes.Code) -> str:
    if test in codes.MG_SERUM or test == ctx.serum_mg_order:
        return "serum_mg"
    return next((k for k, c in codes.LAB_ORDER_KEYS.items() if c == test), test.code)


def is_mappable(resource: Mapping) -> bool:
    """A suggested order a client can place: its drug or test has a code in its first coding."""
    concept = resource.get("medicationCodeableConcept") or resource.get("code") or {}
    coding = concept.get("coding") or [{}]
    return bool(concept.get("text")) and bool(coding[0].get("code"))


def _references(ctx: OrderContext) -> dict:
    refs = {"subject": {"reference": f"Patient/{ctx.patient_id}"}}
    if ctx.encounter_id:
        refs["encounter"] = {"reference": f"Encounter/{ctx.encounter_id}"}
    return refs


def _reason() -> list[dict]:
    return [{"coding": [codes.HYPOMAGNESEMIA.coding()], "text": "Hypomagnesemia on tacrolimus"}]


def lab_order(ctx: OrderContext, test: codes.Code, *, within_days: float, note: str,
              reason_low_mg: bool = True, starting_in_days: float = 0) -> dict:
    """A draft ServiceRequest for one LOINC-coded lab, due within the given window."""
    start = (ctx.now + timedelta(days=starting_in_days)).date()
    end = (ctx.now + timedelta(days=within_days)).date()
    key = _lab_key(ctx, test)
    resource = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "108252007",
                                  "display": "Laboratory procedure"}]}],
        "code": _concept(ctx, key, LAB_TEXT.get(key, test.display), test),
        **_references(ctx),
        "occurrencePeriod": {"start": start.isoformat(), "end": end.isoformat()},
        "authoredOn": ctx.now.date().isoformat(),
    }
    if reason_low_mg:
        resource["reasonCode"] = _reason()
    resource["note"] = [{"text": note}]  # after reasonCode: FHIR's element order
    return resource


def _medication_request(ctx: OrderContext, product: codes.Product, text: str, dose_mg: float,
                        route: codes.Code, timing: dict, caution: str | None,
                        reason: list[dict] | None = None) -> dict:
    instruction = text if caution is None else f"{text}. CAUTION: {caution}"
    resource = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": _concept(ctx, product.key, product.text, product.code),
        **_references(ctx),
        "authoredOn": ctx.now.date().isoformat(),
        "reasonCode": reason or _reason(),
    }
    if caution:
        resource["note"] = [{"text": caution}]  # before dosageInstruction: FHIR's element order
    resource["dosageInstruction"] = [{
        "text": instruction,
        "timing": timing,
        "route": {"coding": [route.coding()], "text": route.display},
        "doseAndRate": [{"doseQuantity": {"value": dose_mg, "unit": "mg",
                                          "system": codes.UCUM, "code": "mg"}}],
    }]
    return resource


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


def intravenous_magnesium(ctx: OrderContext, caution: str | None, severe_below: float | None = None) -> dict:
    """Section 3, severe or symptomatic: magnesium sulfate 2 g IV over 1 hour (1 g under the
    renal caution)."""
    if severe_below is None:
        severe_below = ctx.thresholds.severe_below
    product = codes.MAGNESIUM_SULFATE_IV
    if caution:
        product = codes.MAGNESIUM_SULFATE_IV_HALVED
        text, dose = "Magnesium sulfate 1 g IV over 1 hour: dose halved for renal impairment", 1000
    else:
        # The severe threshold as configured (section 10: no default left behind in prose).
        text, dose = ("Magnesium sulfate 2 g IV over 1 hour (up to 4 g over 4 hours if Mg stays "
                      f"below {number(severe_below)} mEq/L or symptoms persist)"), 2000
    text += "; then oral replacement; cardiac monitoring if arrhythmia"
    return _medication_request(
        ctx, product, text, dose, codes.INTRAVENOUS_ROUTE,
        {"repeat": {"count": 1, "duration": 1, "durationUnit": "h"}}, caution)


def famotidine_instead(ctx: OrderContext, egfr: LabResult | None) -> dict:
    """Section 6: an H2 blocker in place of an oral PPI (PPIs waste magnesium), dosed to renal
    function as its labelling asks (famotidine is cleared by the kidney). Every dose is a whole
    20 mg tablet, the coded product: below 30 mL/min the label's 20 mg every other day."""
    per_day, per_days, why = _famotidine_dose(egfr)
    frequency = {(2, 1): "twice daily", (1, 1): "once daily", (1, 2): "every other day"}[(per_day, per_days)]
    text = f"Famotidine 20 mg by mouth {frequency} in place of the proton pump inhibitor"
    if why:
        text += f" ({why})"
    return _medication_request(
        ctx, codes.FAMOTIDINE_20_TABLET, text, 20, codes.ORAL_ROUTE,
        {"repeat": {"frequency": per_day, "period": per_days, "periodUnit": "d"}}, None,
        reason=[{"text": "Acid suppression without PPI-related magnesium loss (patient on tacrolimus)"}])


def _famotidine_dose(egfr: LabResult | None) -> tuple[int, int, str | None]:
    """(tablets per period, period in days, why) for the eGFR on record.

    A reported bound is dosed for the lowest eGFR it admits (be conservative): '>60' is at
    least 60, normal renal function (full dose, the eGFR named); '>25' might be 26 (the dose
    below 30, said to be a bound); '<15' or '<60' might be anything lower (20 mg every other
    day; '<60' said to be a bound).
    """
    if egfr is None or egfr.normalised is None:
        return 1, 1, "no eGFR on record: check renal function before increasing"
    value, comparator = egfr.normalised, egfr.comparator
    if comparator in ("<", "<="):
        # Only an upper bound: certainly below 30 when the bound is, else possibly far lower.
        certain = value <= FAMOTIDINE_REDUCED_DOSE_EGFR if comparator == "<" else value < FAMOTIDINE_REDUCED_DOSE_EGFR
        return 1, 2, (f"reduced for eGFR {egfr.shown}" if certain else
                      f"reduced: eGFR {egfr.shown} is only an upper bound; check renal function "
                      "before increasing")
    bound = comparator in (">", ">=")
    if value >= FAMOTIDINE_FULL_DOSE_EGFR:
        return 2, 1, f"full dose for eGFR {egfr.shown}" if bound else None
    why = (f"reduced: eGFR {egfr.shown} is only a lower bound; check renal function before increasing"
           if bound else f"reduced for eGFR {egfr.shown}")
    return (1, 2, why) if value < FAMOTIDINE_REDUCED_DOSE_EGFR else (1, 1, why)
