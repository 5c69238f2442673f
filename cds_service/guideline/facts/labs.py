"""Observations -> lab results: the lab kind, the unit, the status and the time (sections 2 and 7)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from .. import codes
from ..codes import LabKind
from ..thresholds import MG_UNIT_TO_MEQ_PER_L
from .model import LabResult
from .values import Resource, clip, concept_text, parse_datetime

CREATININE_UMOL_PER_MG_DL = 88.42  # creatinine 113.12 g/mol: 1 mg/dL = 88.42 µmol/L
TACROLIMUS_NMOL_PER_NG = 1.2437  # tacrolimus 804.0 g/mol: 1 ng/mL = 1.2437 nmol/L
# eGFR is reported in mL/min/1.73 m2 everywhere; some labs send it as text ("<15", ">60").
_EGFR_TEXT = re.compile(r"^\s*(<=|>=|<|>)?\s*(\d+(?:\.\d+)?)\s*(?:ml/min(?:/1\.73\s*m(?:2|²))?)?\s*$", re.I)


def observation_time(obs: Resource) -> tuple[datetime | None, str | None]:
    """effectiveDateTime, else effectivePeriod start/end, else effectiveInstant, else issued;
    with the date as written (YYYY-MM-DD), which is what a clinician expects to read."""
    raw = obs.get("effectiveDateTime")
    when = parse_datetime(raw)  # the common case first: a lab result has one
    if when is None:
        period = obs.get("effectivePeriod")
        if not isinstance(period, dict):
            period = {}
        for raw in (period.get("start"), period.get("end"), obs.get("effectiveInstant"), obs.get("issued")):
            when = parse_datetime(raw)
            if when is not None:
                break
        else:
            return None, None
    if not isinstance(raw, str):
        return when, None
    # The date as written; a partial date ("2026-11") stays partial, not "2026-11-01".
    return when, raw[:10] if len(raw) >= 10 else (raw if len(raw) in (4, 7) else None)


LabCodes = Mapping[tuple[str, str], LabKind]  # (system, code) -> lab kind


def lab_kind(obs: Resource, local_codes: LabCodes | None = None) -> LabKind | None:
    """Section 2: a LOINC-coded result is what its LOINC code says; hospital-local codes are
    recognised like LOINC; text decides only for results with no LOINC coding at all."""
    code = obs.get("code")
    has_loinc = False
    found = code.get("coding") if isinstance(code, dict) else None
    for coding in found if isinstance(found, list) else ():  # hot path: one dict look-up per coding
        if not isinstance(coding, dict):
            continue
        system, value = coding.get("system"), coding.get("code")
        if isinstance(value, str) and isinstance(system, str):
            kind = codes.LAB_KIND_BY_CODE.get((system, value))
            if kind is None and local_codes:
                kind = local_codes.get((system, value))
            if kind:
                return kind
            has_loinc = has_loinc or system == codes.LOINC
    if has_loinc:
        return None  # another LOINC test (blood, RBC, ionized...): never read from its text
    return _lab_kind_from_text(concept_text(code).lower())


# Lab systems often name the test only "Mg", "Mg, serum" or "Serum Mg" ("mg" elsewhere is a unit).
_SHORT_MG_NAME = re.compile(r"^\s*(?:(?:serum|plasma|s|p)[\s-]+)?mg(?:[\s,(-]+(?:serum|plasma|level|total)\)?)?\s*$")


# Specimens other than blood and urine (drains, dialysate, effusions: common after a
# transplant): a text-only result naming one is not a serum or urine result (section 2).
_OTHER_SPECIMEN = re.compile(r"\b(?:fluid|dialysate|drain|peritoneal|pleural|ascit\w*|csf|cerebrospinal|"
                             r"synovial|pericardial|bile|stool|fa?eces|sweat|saliva|amniotic)\b")


def _lab_kind_from_text(text: str) -> LabKind | None:
    """Section 2: codes first; text is the fallback for records that carry only text."""
    if not text or _OTHER_SPECIMEN.search(text):
        return None
    urine = "urine" in text or "urinary" in text
    if "magnesium" in text or _SHORT_MG_NAME.match(text):
        if any(w in text for w in ("rbc", "erythrocyte", "red cell", "red blood")):
            return None
        if urine:
            return LabKind.MG_URINE
        if "ionized" in text or "ionised" in text:
            return LabKind.MG_IONIZED
        return LabKind.MG_SERUM
    if "tacrolimus" in text or "fk506" in text:
        return LabKind.TACROLIMUS_LEVEL
    if "glomerular filtration" in text or "egfr" in text:
        return LabKind.EGFR
    if "creatinine" in text and "clearance" not in text and "ratio" not in text:
        return LabKind.CREATININE_URINE if urine else LabKind.CREATININE_SERUM
    return None


def _unit_keys(quantity: Mapping[str, Any]) -> list[str]:
    """UCUM code first, unit text second (section 2), lower-cased without spaces."""
    code, unit = quantity.get("code"), quantity.get("unit")
    return [value.replace(" ", "").lower() for value in (code, unit)
            if isinstance(value, str) and value.strip()]


def magnesium_meq_per_l(value: float, unit_keys: Iterable[str]) -> float | None:
    """Convert a magnesium value to mEq/L, or None when no unit is recognised."""
    for key in unit_keys:
        factor = MG_UNIT_TO_MEQ_PER_L.get(key)
        if factor is not None:
            return value * factor
    return None


def creatinine_mg_per_dl(value: float, unit_keys: Iterable[str]) -> float | None:
    for key in unit_keys:
        if key == "mg/dl":
            return value
        if key in ("umol/l", "µmol/l", "μmol/l"):
            return value / CREATININE_UMOL_PER_MG_DL
        if key == "mmol/l":  # SI laboratories' urine creatinine
            return value * 1000 / CREATININE_UMOL_PER_MG_DL
    return None


_EGFR_UNITS = frozenset({"ml/min/{1.73_m2}", "ml/min/1.73m2", "ml/min/1.73_m2", "ml/min/1.73m^2",
                         "ml/min", "ml/min/{1.73m2}"})
_TACROLIMUS_UNITS = frozenset({"ng/ml", "ug/l", "µg/l", "mcg/l"})


def _normalise(kind: LabKind, value: float, unit_keys: list[str]) -> float | None:
    if value <= 0:
        return None  # no laboratory value of these analytes is zero or negative
    convert = _CONVERSIONS.get(kind)
    return None if convert is None else convert(value, unit_keys)


def _egfr(value: float, unit_keys: list[str]) -> float | None:
    return value if any(k in _EGFR_UNITS for k in unit_keys) else None


def _tacrolimus_ng_per_ml(value: float, unit_keys: list[str]) -> float | None:
    if any(k in _TACROLIMUS_UNITS for k in unit_keys):
        return value
    if "nmol/l" in unit_keys:
        return value / TACROLIMUS_NMOL_PER_NG
    return None


def _kilograms(value: float, unit_keys: list[str]) -> float | None:
    for key in unit_keys:
        if key == "kg":
            return value
        if key == "g":
            return value / 1000.0
        if key in ("[lb_av]", "lb", "lbs"):
            return value * 0.45359237
    return None


# The unit each kind is compared in, by kind (a dict: ~200 results per hook; section 2).
_CONVERSIONS: Mapping[LabKind, Callable[[float, list[str]], float | None]] = {
    LabKind.MG_SERUM: magnesium_meq_per_l,
    LabKind.MG_IONIZED: magnesium_meq_per_l,
    LabKind.MG_URINE: magnesium_meq_per_l,
    LabKind.CREATININE_SERUM: creatinine_mg_per_dl,
    LabKind.CREATININE_URINE: creatinine_mg_per_dl,
    LabKind.BODY_WEIGHT: _kilograms,
    LabKind.EGFR: _egfr,
    LabKind.TACROLIMUS_LEVEL: _tacrolimus_ng_per_ml,
}


def read_lab(obs: Resource, local_codes: LabCodes | None = None) -> LabResult | None:
    """An Observation of a kind the guideline reads -> LabResult; anything else -> None."""
    kind = lab_kind(obs, local_codes)
    if kind is None:
        return None
    get = obs.get  # hot path: ~200 Observations per hook
    quantity = get("valueQuantity")
    value = comparator = normalised = None
    unit = ""
    text = get("valueString")
    if quantity is None and kind == LabKind.EGFR and isinstance(text, str):
        quantity = _egfr_from_text(text)
    if isinstance(quantity, dict) and not get("dataAbsentReason"):
        raw = quantity.get("value")
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            value = float(raw)
        found = quantity.get("comparator")
        if isinstance(found, str) and found in _COMPARATORS:
            comparator = found
        unit = str(quantity.get("unit") or quantity.get("code") or "")
        if value is not None:
            keys = _unit_keys(quantity)
            normalised = _normalise(kind, value, keys)
            # The UCUM code decides (section 2); a unit text that says another unit would show
            # a number the conversion contradicts ("0.45 mg/dL (0.90 mEq/L)"): show the code.
            if (len(keys) == 2 and keys[0] != keys[1] and normalised is not None
                    and _normalise(kind, value, keys[1:]) not in (None, normalised)):
                unit = str(quantity["code"])
    when, local_day = observation_time(obs)
    observation_id, issued = get("id"), get("issued")
    return LabResult(
        kind=kind,
        observation_id=observation_id if isinstance(observation_id, str) else None,
        when=when,
        status=clip(str(get("status") or "unknown"), 20),
        value=value,
        unit=clip(unit, 20),
        comparator=comparator,
        normalised=normalised,
        reference_high=_reference_high(get("referenceRange")),
        local_day=local_day,
        issued_text=issued if isinstance(issued, str) else None,
    )


_COMPARATORS = frozenset({"<", "<=", ">", ">="})


def _egfr_from_text(text: str) -> dict | None:
    """'<15' -> a quantity with comparator '<' in mL/min/1.73 m2 (the only unit eGFR has)."""
    found = _EGFR_TEXT.match(text)
    if found is None:
        return None
    quantity = {"value": float(found.group(2)), "unit": "mL/min/1.73m2"}
    if found.group(1):
        quantity["comparator"] = found.group(1)
    return quantity


def _reference_high(ranges: Any) -> float | None:
    """The first reference range's high value (an Observation's referenceRange)."""
    if isinstance(ranges, list):
        for entry in ranges:
            high = entry.get("high") if isinstance(entry, dict) else None
            if isinstance(high, dict) and isinstance(high.get("value"), (int, float)):
                return float(high["value"])
    return None


_PLANNED_ORDER_STATUSES = frozenset({"draft", "active", "on-hold"})


def is_magnesium_lab_order(request: Resource, local_codes: LabCodes | None = None) -> bool:
    """A placed or drafted ServiceRequest for a serum magnesium (the monitoring plan)."""
    status = request.get("status")
    if not isinstance(status, str) or status not in _PLANNED_ORDER_STATUSES:
        return False
    return lab_kind({"code": request.get("code")}, local_codes) == LabKind.MG_SERUM
