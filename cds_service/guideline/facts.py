"""Raw FHIR R4 resources -> small frozen facts the rules read (docs/clinical-rules.md sections 1, 2, 4, 5).

Readers are lenient: a resource that lacks what a reader needs yields no fact (or a fact marked
not interpretable) instead of an error, so one odd resource never hides the rest of the record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from . import codes
from .thresholds import MG_UNIT_TO_MEQ_PER_L

Resource = Mapping[str, Any]

USABLE_OBSERVATION_STATUSES = frozenset({"final", "amended", "corrected"})
SHOWN_OBSERVATION_STATUSES = USABLE_OBSERVATION_STATUSES | {"preliminary"}
ACTIVE_MEDICATION_STATUSES = frozenset({"active", "on-hold"})
# Section 1: home medications count when active, intended or on hold.
ACTIVE_STATEMENT_STATUSES = frozenset({"active", "intended", "on-hold"})
ENDED_MEDICATION_STATUSES = frozenset({"stopped", "completed"})
# Section 1: a plan or proposal is not yet a treatment.
TREATMENT_INTENTS = frozenset({"order", "original-order", "reflex-order", "filler-order",
                               "instance-order"})
# Section 3: magnesium given since the result.
GIVEN_ADMINISTRATION_STATUSES = frozenset({"completed", "in-progress"})
ACTIVE_CONDITION_STATUSES = frozenset({"active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})

PLAUSIBLE_YEARS = (1900, 2200)
CREATININE_UMOL_PER_MG_DL = 88.42  # creatinine 113.12 g/mol: 1 mg/dL = 88.42 µmol/L
TACROLIMUS_NMOL_PER_NG = 1.2437  # tacrolimus 804.0 g/mol: 1 ng/mL = 1.2437 nmol/L
# eGFR is reported in mL/min/1.73 m2 everywhere; some labs send it as text ("<15", ">60").
_EGFR_TEXT = re.compile(r"^\s*(<=|>=|<|>)?\s*(\d+(?:\.\d+)?)\s*(?:ml/min(?:/1\.73\s*m(?:2|²))?)?\s*$", re.I)


# --------------------------------------------------------------------------------------------
# Facts


@dataclass(frozen=True)
class LabResult:
    """One laboratory Observation, read leniently."""

    kind: str  # mg_serum, mg_ionized, mg_urine, creatinine_serum, creatinine_urine, egfr, tacrolimus_level
    observation_id: str | None
    when: datetime | None
    status: str
    value: float | None  # as reported, in `unit`
    unit: str  # as reported (UCUM code or text)
    comparator: str | None
    normalised: float | None  # mEq/L for magnesium, mg/dL for creatinine, as reported otherwise
    reference_high: float | None = None
    local_day: str | None = None  # the date as the lab wrote it (its own time zone)
    issued: datetime | None = None  # when the lab released this version (corrections, section 2)

    @property
    def usable(self) -> bool:
        """Final/amended/corrected, dated, with a number in a unit the table knows."""
        return (self.status in USABLE_OBSERVATION_STATUSES and self.when is not None
                and self.normalised is not None)

    @property
    def shown(self) -> str:
        """The value as the lab reported it, e.g. '<0.5 mmol/L'."""
        if self.value is None:
            return "no value"
        unit = self.unit.replace("{1.73_m2}", "1.73 m²")
        return f"{self.comparator or ''}{number(self.value)} {unit}".strip()

    @property
    def day(self) -> str:
        """The result's date as the lab reported it (not shifted to UTC)."""
        if self.local_day:
            return self.local_day
        return self.when.date().isoformat() if self.when else "undated"

    @property
    def unreadable_reason(self) -> str | None:
        if self.status not in SHOWN_OBSERVATION_STATUSES:
            return None  # ignored outright (entered-in-error, cancelled, ...)
        if self.value is None:
            return "no numeric value"
        if self.value <= 0:
            return "value not plausible"
        if self.normalised is None:
            return f"unit '{self.unit or 'none'}' not recognised"
        if self.when is None:
            return "no date"
        return None


@dataclass(frozen=True)
class MedicationUse:
    """One MedicationRequest/MedicationStatement, with what section 1 and 8 need to know."""

    resource_type: str
    request_id: str | None
    name: str
    status: str
    authored_on: datetime | None
    is_topical: bool
    is_tacrolimus: bool
    wasting_class: str | None  # key of codes.MAGNESIUM_WASTING
    raises_tacrolimus_class: str | None
    lowers_tacrolimus_class: str | None
    is_magnesium_supplement: bool
    ingredient: str | None  # the section 8 ingredient recognised, e.g. "omeprazole"
    intent: str | None = None
    ended_on: datetime | None = None  # dosage bounds / dispense validity / effective period end
    # meta.lastUpdated: a status change to stopped/completed updates it; the best stop date an
    # order without an end date carries (section 1, recently stopped).
    last_updated: datetime | None = None
    route: str = ""  # "oral", "intravenous" or "" (not stated)

    @property
    def is_treatment(self) -> bool:
        """An order (not a plan or proposal) or a statement of use (section 1)."""
        if self.resource_type == "MedicationStatement":
            return True
        return self.intent is None or self.intent in TREATMENT_INTENTS

    @property
    def is_intravenous(self) -> bool:
        """IV route or an injectable form (section 6: no one-click PPI swap)."""
        return self.route == "intravenous"

    @property
    def active(self) -> bool:
        if not self.is_treatment:
            return False
        if self.resource_type == "MedicationStatement":
            return self.status in ACTIVE_STATEMENT_STATUSES
        return self.status in ACTIVE_MEDICATION_STATUSES

    @property
    def on_hold(self) -> bool:
        return self.active and self.status == "on-hold"

    def stopped_at(self, now: datetime) -> datetime | None:
        """When this treatment ended (stopped/completed, or its bounds ran out before now)."""
        if not self.is_treatment:
            return None
        if self.status in ENDED_MEDICATION_STATUSES:
            return self.ended_on or self.last_updated or self.authored_on
        if self.active and self.ended_on is not None and self.ended_on < now:
            return self.ended_on
        return None

    @property
    def is_systemic_tacrolimus(self) -> bool:
        return self.is_tacrolimus and not self.is_topical


@dataclass(frozen=True)
class MagnesiumGiven:
    """A magnesium MedicationAdministration (completed or in progress), section 3."""

    name: str
    when: datetime
    status: str
    dose: str  # e.g. "2 g", "" when not stated
    route: str


@dataclass(frozen=True)
class Symptom:
    name: str
    code: str | None
    when: datetime | None  # onset; recordedDate only when the Condition has no onset (section 5)
    urgent: bool
    major: bool = True  # seizure, tetany, arrhythmia, QT prolongation; cramp and tremor are minor


@dataclass(frozen=True)
class PatientFacts:
    """Everything the rules read about one patient, already normalised."""

    patient_id: str | None
    encounter_id: str | None
    medications: tuple[MedicationUse, ...] = ()
    labs: tuple[LabResult, ...] = ()
    symptoms: tuple[Symptom, ...] = ()
    transplant_dates: tuple[datetime, ...] = ()
    hospitalized: bool = False
    unavailable: tuple[str, ...] = ()  # data that could not be read (e.g. "procedures")
    # Order hooks (section 6): every draft medication order, and those the clinician acts on
    # (order-select's selections; all drafts for order-sign).
    draft_orders: tuple[MedicationUse, ...] = field(default=())
    selected_drafts: tuple[MedicationUse, ...] = field(default=())
    # Serum magnesium lab orders already placed or drafted (the monitoring plan is in place).
    magnesium_lab_orders: int = 0
    # Magnesium lab drafts among the drafts acted on (section 6: a relevant draft).
    selected_magnesium_lab_drafts: int = 0
    # Section 3: who the patient is and what limits the doses.
    birth_date: date | None = None
    sex: str | None = None  # "female", "male" or None (unknown)
    administrations: tuple[MagnesiumGiven, ...] = ()
    esrd: bool = False  # an active end-stage renal disease Condition
    dialysis_dates: tuple[datetime, ...] = ()  # dialysis Procedures

    def labs_of(self, kind: str) -> list[LabResult]:
        return [lab for lab in self.labs if lab.kind == kind]


# --------------------------------------------------------------------------------------------
# Small readers


def number(value: float) -> str:
    """A value as a clinician writes it: '1.0', '0.45', '8', never '1' for 1.0 or '1e+02'."""
    if value == int(value) and abs(value) >= 10:
        return str(int(value))
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def clip(text: str, limit: int) -> str:
    """Text from the EHR, cut to what a card may echo (hostile input must not bloat cards)."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


# FHIR date, dateTime and instant: YYYY, YYYY-MM, YYYY-MM-DD, or a full time with any number of
# fractional-second digits and a zone. Parsed here rather than with datetime.fromisoformat,
# which before Python 3.11 refuses fractions other than 3 or 6 digits (section 2).
_FHIR_DATETIME = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?)?)?)?$")


def parse_datetime(value: Any) -> datetime | None:
    """FHIR date/dateTime/instant (possibly partial) -> aware UTC datetime, or None."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    found = _FHIR_DATETIME.match(value.strip())
    if found is None:
        return None
    year, month, day_, hour, minute, second, fraction, zone = found.groups()
    try:
        tz = timezone.utc
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        parsed = datetime(int(year), int(month or 1), int(day_ or 1), int(hour or 0),
                          int(minute or 0), int(second or 0), micro, tzinfo=tz)
        parsed = parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    # A date outside any clinical record (year 1, year 9999) is a data error, not a date:
    # it would also overflow the interval arithmetic of the rules.
    return parsed if PLAUSIBLE_YEARS[0] <= parsed.year <= PLAUSIBLE_YEARS[1] else None


def codings(concept: Any) -> list[Mapping[str, Any]]:
    if not isinstance(concept, dict):
        return []
    found = concept.get("coding")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def coding_keys(concept: Any) -> set[tuple[str, str]]:
    return {(str(c.get("system", "")), str(c.get("code", ""))) for c in codings(concept)
            if c.get("code") is not None}


def concept_text(concept: Any) -> str:
    """All human-readable text of a CodeableConcept: its text and every coding display."""
    if not isinstance(concept, dict):
        return ""
    parts = [concept.get("text")] + [c.get("display") for c in codings(concept)]
    return " ".join(p for p in parts if isinstance(p, str) and p)


def first_code(concept: Any, system: str | None = None) -> str | None:
    for c in codings(concept):
        if system is None or c.get("system") == system:
            code = c.get("code")
            if isinstance(code, str):
                return code
    return None


def reference_id(reference: Any, resource_type: str) -> str | None:
    """'Patient/123' (or a full URL ending so) -> '123' when it names that type."""
    if not isinstance(reference, dict):
        return None
    ref = reference.get("reference")
    if not isinstance(ref, str):
        return None
    parts = ref.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type:
        return parts[-1]
    if len(parts) >= 4 and parts[-4] == resource_type and parts[-2] == "_history":
        return parts[-3]
    return None


def status_code(value: Any) -> str | None:
    """Condition-style status: a CodeableConcept (R4) or a plain string (STU3)."""
    if isinstance(value, str):
        return value
    return first_code(value)


# --------------------------------------------------------------------------------------------
# Observations


def observation_time(obs: Resource) -> tuple[datetime | None, str | None]:
    """effectiveDateTime, else effectivePeriod start/end, else effectiveInstant, else issued;
    with the date as written (YYYY-MM-DD), which is what a clinician expects to read."""
    period = obs.get("effectivePeriod")
    if not isinstance(period, dict):
        period = {}
    for raw in (obs.get("effectiveDateTime"), period.get("start"), period.get("end"),
                obs.get("effectiveInstant"), obs.get("issued")):
        when = parse_datetime(raw)
        if when is not None:
            return when, raw[:10] if len(raw) >= 10 else None
    return None, None


LabCodes = Mapping[tuple[str, str], str]  # (system, code) -> lab kind


def lab_kind(obs: Resource, local_codes: LabCodes | None = None) -> str | None:
    """Section 2: a LOINC-coded result is what its LOINC code says; hospital-local codes are
    recognised like LOINC; text decides only for results with no LOINC coding at all."""
    code = obs.get("code")
    has_loinc = False
    for coding in codings(code):  # hot path: one dict look-up per coding
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


def _lab_kind_from_text(text: str) -> str | None:
    """Section 2: codes first; text is the fallback for records that carry only text."""
    if not text:
        return None
    urine = "urine" in text or "urinary" in text
    if "magnesium" in text or _SHORT_MG_NAME.match(text):
        if any(w in text for w in ("rbc", "erythrocyte", "red cell", "red blood")):
            return None
        if urine:
            return "mg_urine"
        if "ionized" in text or "ionised" in text:
            return "mg_ionized"
        return "mg_serum"
    if "tacrolimus" in text or "fk506" in text:
        return "tacrolimus_level"
    if "glomerular filtration" in text or "egfr" in text:
        return "egfr"
    if "creatinine" in text and "clearance" not in text and "ratio" not in text:
        return "creatinine_urine" if urine else "creatinine_serum"
    return None


def _unit_keys(quantity: Mapping[str, Any]) -> list[str]:
    """UCUM code first, unit text second (section 2), lower-cased without spaces."""
    keys = []
    for name in ("code", "unit"):
        value = quantity.get(name)
        if isinstance(value, str) and value.strip():
            keys.append(value.replace(" ", "").lower())
    return keys


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
    return None


_EGFR_UNITS = frozenset({"ml/min/{1.73_m2}", "ml/min/1.73m2", "ml/min/1.73_m2", "ml/min/1.73m^2",
                         "ml/min", "ml/min/{1.73m2}"})
_TACROLIMUS_UNITS = frozenset({"ng/ml", "ug/l", "µg/l", "mcg/l"})


def _normalise(kind: str, value: float, unit_keys: list[str]) -> float | None:
    if value <= 0:
        return None  # no laboratory value of these analytes is zero or negative
    if kind in ("mg_serum", "mg_ionized", "mg_urine"):
        return magnesium_meq_per_l(value, unit_keys)
    if kind in ("creatinine_serum", "creatinine_urine"):
        return creatinine_mg_per_dl(value, unit_keys)
    if kind == "body_weight":
        return _kilograms(value, unit_keys)
    if kind == "egfr":
        return value if any(k in _EGFR_UNITS for k in unit_keys) else None
    if kind == "tacrolimus_level":
        if any(k in _TACROLIMUS_UNITS for k in unit_keys):
            return value
        if "nmol/l" in unit_keys:
            return value / TACROLIMUS_NMOL_PER_NG
        return None
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


def read_lab(obs: Resource, local_codes: LabCodes | None = None) -> LabResult | None:
    """An Observation of a kind the guideline reads -> LabResult; anything else -> None."""
    kind = lab_kind(obs, local_codes)
    if kind is None:
        return None
    quantity = obs.get("valueQuantity")
    value = comparator = None
    unit = ""
    normalised = None
    if quantity is None and kind == "egfr" and isinstance(obs.get("valueString"), str):
        quantity = _egfr_from_text(obs["valueString"])
    if isinstance(quantity, dict) and not obs.get("dataAbsentReason"):
        raw = quantity.get("value")
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            value = float(raw)
        comparator = quantity.get("comparator") if isinstance(quantity.get("comparator"), str) else None
        unit_keys = _unit_keys(quantity)
        unit = str(quantity.get("unit") or quantity.get("code") or "")
        if value is not None:
            normalised = _normalise(kind, value, unit_keys)
    when, local_day = observation_time(obs)
    return LabResult(
        kind=kind,
        observation_id=obs.get("id") if isinstance(obs.get("id"), str) else None,
        when=when,
        status=clip(str(obs.get("status") or "unknown"), 20),
        value=value,
        unit=clip(unit, 20),
        comparator=comparator if comparator in ("<", "<=", ">", ">=") else None,
        normalised=normalised,
        reference_high=_reference_high(obs),
        local_day=local_day,
        issued=parse_datetime(obs.get("issued")),
    )


def _egfr_from_text(text: str) -> dict | None:
    """'<15' -> a quantity with comparator '<' in mL/min/1.73 m2 (the only unit eGFR has)."""
    found = _EGFR_TEXT.match(text)
    if found is None:
        return None
    quantity = {"value": float(found.group(2)), "unit": "mL/min/1.73m2"}
    if found.group(1):
        quantity["comparator"] = found.group(1)
    return quantity


def _reference_high(obs: Resource) -> float | None:
    ranges = obs.get("referenceRange")
    if isinstance(ranges, list):
        for entry in ranges:
            high = entry.get("high") if isinstance(entry, dict) else None
            if isinstance(high, dict) and isinstance(high.get("value"), (int, float)):
                return float(high["value"])
    return None


# --------------------------------------------------------------------------------------------
# Medications

_TACROLIMUS_CODES = codes.keys((codes.TACROLIMUS, *codes.TACROLIMUS_PRODUCTS))
_TACROLIMUS_PATTERN = codes.name_pattern(codes.TACROLIMUS_NAMES)
_TOPICAL_PATTERN = codes.name_pattern(codes.TOPICAL_WORDS)
_SUPPLEMENT_PATTERN = codes.name_pattern(codes.MAGNESIUM_SUPPLEMENT_NAMES)
_LOCAL_FORM_PATTERN = codes.name_pattern(codes.LOCAL_FORM_WORDS)


class _DrugIndex:
    """Section 8 lists, indexed once: RxNorm ingredient code and whole-word names -> class."""

    def __init__(self, classes: Iterable[codes.DrugClass]):
        self.by_code: dict[str, tuple[str, str]] = {}
        names: dict[str, tuple[str, str]] = {}
        for drug_class in classes:
            for ingredient, rxcui in drug_class.ingredients.items():
                if rxcui:
                    self.by_code[rxcui] = (drug_class.key, ingredient)
                names[ingredient.lower()] = (drug_class.key, ingredient)
            for brand, ingredient in drug_class.brands.items():
                names[brand.lower()] = (drug_class.key, ingredient)
        self.by_name = names
        self.pattern = codes.name_pattern(names)

    def match(self, rxnorm_codes: set[str], text: str) -> tuple[str, str] | None:
        hit = None
        for rxcui in rxnorm_codes:
            hit = self.by_code.get(rxcui)
            if hit:
                break
        if hit is None:
            # Every name in the text: in "nirmatrelvir/ritonavir" the inhibitor is named second.
            found = [self.by_name[m.group(0).lower()] for m in self.pattern.finditer(text)
                     if m.group(0).lower() in self.by_name]
            hit = next((h for h in found if h[1] in codes.BOOSTERS), found[0] if found else None)
        if hit is not None and hit[1] in codes.INTERACTING_INGREDIENT:
            return hit[0], codes.INTERACTING_INGREDIENT[hit[1]]
        return hit


WASTING_INDEX = _DrugIndex(codes.MAGNESIUM_WASTING)
RAISING_INDEX = _DrugIndex(codes.RAISES_TACROLIMUS)
LOWERING_INDEX = _DrugIndex(codes.LOWERS_TACROLIMUS)


def medication_concept(request: Resource, medications: Mapping[str, Resource]) -> tuple[Any, Resource | None]:
    """The medication's CodeableConcept and the Medication resource it came from, if any.

    Resolves medicationReference to a contained Medication ('#id') or to a Medication found
    in the patient data ('Medication/id').
    """
    concept = request.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        return concept, None
    reference = request.get("medicationReference")
    if not isinstance(reference, dict):
        return None, None
    ref = reference.get("reference")
    medication: Resource | None = None
    if isinstance(ref, str) and ref.startswith("#"):
        contained_resources = request.get("contained")
        for contained in contained_resources if isinstance(contained_resources, list) else []:
            if isinstance(contained, dict) and contained.get("id") == ref[1:]:
                medication = contained
                break
    else:
        med_id = reference_id(reference, "Medication")
        if med_id is not None:
            medication = medications.get(med_id)
    if medication is None:
        # An unresolvable reference still often carries a display.
        display = reference.get("display")
        return ({"text": display} if isinstance(display, str) else None), None
    return medication.get("code"), medication


_TOPICAL_ROUTE_PATTERN = codes.name_pattern(codes.TOPICAL_ROUTE_WORDS)
_BOWEL_PREP_PATTERN = codes.name_pattern(codes.BOWEL_PREP_WORDS)
_IV_WORDS = re.compile(r"\b(?:intravenous|IV|infusion|injection|injectable)\b", re.IGNORECASE)
_ORAL_WORDS = re.compile(r"\b(?:oral|by mouth|PO|tablet|capsule)\b", re.IGNORECASE)


def _dosages(request: Resource) -> list[Mapping[str, Any]]:
    dosages = request.get("dosageInstruction")
    if dosages is None:
        dosages = request.get("dosage")
    return [d for d in dosages if isinstance(d, dict)] if isinstance(dosages, list) else []


def _is_topical(request: Resource, name: str, medication: Resource | None) -> bool:
    """Section 1: topical only from the route, the dose form and the product name; never from
    dosageInstruction.text or patientInstruction ("use sunscreen cream" is not a route)."""
    for dosage in _dosages(request):
        route = dosage.get("route")
        if (codes.TOPICAL_ROUTE.system, codes.TOPICAL_ROUTE.code) in coding_keys(route):
            return True
        if _TOPICAL_ROUTE_PATTERN.search(concept_text(route)):
            return True
    form = concept_text(medication.get("form")) if medication is not None else ""
    return bool(_TOPICAL_PATTERN.search(f"{name} {form}"))


def _route(request: Resource, name: str, medication: Resource | None) -> str:
    """'intravenous', 'oral' or '' from the route, else the dose form and product name."""
    texts = [concept_text(d.get("route")) for d in _dosages(request)]
    texts += [concept_text(medication.get("form")) if medication is not None else "", name]
    for text in texts:
        if _IV_WORDS.search(text):
            return "intravenous"
        if _ORAL_WORDS.search(text):
            return "oral"
    return ""


def _ended_on(request: Resource) -> datetime | None:
    """Dosage bounds end, dispense validity end or (statements) the effective period end."""
    ends = []
    for dosage in _dosages(request):
        timing = dosage.get("timing")
        repeat = timing.get("repeat") if isinstance(timing, dict) else None
        bounds = repeat.get("boundsPeriod") if isinstance(repeat, dict) else None
        if isinstance(bounds, dict):
            ends.append(parse_datetime(bounds.get("end")))
    dispense = request.get("dispenseRequest")
    validity = dispense.get("validityPeriod") if isinstance(dispense, dict) else None
    if isinstance(validity, dict):
        ends.append(parse_datetime(validity.get("end")))
    period = request.get("effectivePeriod")
    if isinstance(period, dict):
        ends.append(parse_datetime(period.get("end")))
    found = [e for e in ends if e is not None]
    return max(found) if found else None


def is_supplement_name(name: str) -> bool:
    """A magnesium supplement by name, bowel preparations excluded (section 8)."""
    if not _SUPPLEMENT_PATTERN.search(name) or _BOWEL_PREP_PATTERN.search(name):
        return False
    # Magnesium citrate as a liquid is the laxative / bowel preparation.
    return not (re.search(r"\bmagnesium citrate\b", name, re.I) and re.search(r"\bsolution\b", name, re.I))


def read_medication(request: Resource, medications: Mapping[str, Resource]) -> MedicationUse | None:
    """A MedicationRequest/MedicationStatement -> MedicationUse, or None when no drug is named."""
    concept, medication = medication_concept(request, medications)
    name = concept_text(concept)
    keys = coding_keys(concept)
    if not name and not keys:
        return None
    rxnorm = {code for system, code in keys if system == codes.RXNORM}
    is_topical = _is_topical(request, name, medication)
    is_tacrolimus = bool(keys & _TACROLIMUS_CODES) or bool(_TACROLIMUS_PATTERN.search(name))
    wasting = WASTING_INDEX.match(rxnorm, name)
    raising = RAISING_INDEX.match(rxnorm, name)
    lowering = LOWERING_INDEX.match(rxnorm, name)
    # A shampoo, vaginal or ear form acts locally like a cream (section 6), for these lists only.
    local = is_topical or bool(_LOCAL_FORM_PATTERN.search(name))
    supplement = is_supplement_name(name)
    status = str(request.get("status") or "unknown")
    intent = request.get("intent") if isinstance(request.get("intent"), str) else None
    authored = parse_datetime(request.get("authoredOn")) or _effective_start(request) or parse_datetime(
        request.get("dateAsserted"))
    display = name or next((f"RxNorm {code}" for code in sorted(rxnorm)), "unnamed medication")
    return MedicationUse(
        resource_type=str(request.get("resourceType")),
        request_id=request.get("id") if isinstance(request.get("id"), str) else None,
        name=clip(_short_name(concept, display), 80),
        status=clip(status, 20),
        authored_on=authored,
        is_topical=is_topical,
        is_tacrolimus=is_tacrolimus,
        # Topical and ophthalmic forms (e.g. cyclosporine eye drops) do not act systemically.
        wasting_class=None if (wasting is None or local) else wasting[0],
        raises_tacrolimus_class=None if (raising is None or local) else raising[0],
        lowers_tacrolimus_class=None if (lowering is None or local) else lowering[0],
        is_magnesium_supplement=supplement,
        ingredient=(wasting or raising or lowering or (None, None))[1],
        intent=clip(intent, 20) if intent else None,
        ended_on=_ended_on(request),
        route=_route(request, name, medication),
        last_updated=parse_datetime(request["meta"].get("lastUpdated"))
        if isinstance(request.get("meta"), dict) else None,
    )


def read_administration(administration: Resource,
                        medications: Mapping[str, Resource]) -> MagnesiumGiven | None:
    """A completed or in-progress magnesium MedicationAdministration (section 3)."""
    if administration.get("status") not in GIVEN_ADMINISTRATION_STATUSES:
        return None
    concept, medication = medication_concept(administration, medications)
    name = concept_text(concept)
    if not is_supplement_name(name):
        return None
    period = administration.get("effectivePeriod")
    when = parse_datetime(administration.get("effectiveDateTime")) or (
        parse_datetime(period.get("start")) if isinstance(period, dict) else None)
    if when is None:
        return None
    dosage = administration.get("dosage")
    dose = ""
    route = ""
    if isinstance(dosage, dict):
        quantity = dosage.get("dose")
        if isinstance(quantity, dict) and isinstance(quantity.get("value"), (int, float)) \
                and not isinstance(quantity.get("value"), bool):
            dose = f"{float(quantity['value']):g} {clip(str(quantity.get('unit') or quantity.get('code') or ''), 10)}".strip()
        route_text = concept_text(dosage.get("route"))
        route = "intravenous" if _IV_WORDS.search(route_text) else ("oral" if _ORAL_WORDS.search(route_text) else "")
    if not route:
        route = _route({}, name, medication)
    return MagnesiumGiven(clip(_short_name(concept, name), 80), when,
                          str(administration.get("status")), dose, route)


def _short_name(concept: Any, fallback: str) -> str:
    """The concept's text, else its first display: what a clinician would read."""
    if isinstance(concept, dict):
        if isinstance(concept.get("text"), str) and concept["text"]:
            return concept["text"]
        for c in codings(concept):
            if isinstance(c.get("display"), str) and c["display"]:
                return c["display"]
    return fallback


def _effective_start(statement: Resource) -> datetime | None:
    period = statement.get("effectivePeriod")
    if isinstance(period, dict):
        return parse_datetime(period.get("start"))
    return parse_datetime(statement.get("effectiveDateTime"))


# --------------------------------------------------------------------------------------------
# Conditions, procedures, encounter

_SYMPTOM_CODES = {c.code: c for c in codes.SYMPTOMS}
_SYMPTOM_PATTERN = codes.name_pattern(codes.SYMPTOM_WORDS)
_URGENT_PATTERN = codes.name_pattern(codes.URGENT_SYMPTOM_WORDS)
_MINOR_PATTERN = codes.name_pattern(codes.MINOR_SYMPTOM_WORDS)
_MAJOR_WORDS = codes.name_pattern(("seizure", "seizures", "tetany", "arrhythmia", "tachycardia",
                                   "torsade", "torsades", "fibrillation", "QT"))
_DIALYSIS_PATTERN = codes.name_pattern(codes.DIALYSIS_WORDS)
_ESRD_CODES = codes.keys(codes.ESRD_CONDITIONS)
_DIALYSIS_CODES = codes.keys(codes.DIALYSIS_PROCEDURES)
_TRANSPLANT_CODES = codes.keys(codes.TRANSPLANT_PROCEDURES)
_TRANSPLANT_PATTERN = codes.name_pattern(codes.TRANSPLANT_WORDS)
_ORGAN_PATTERN = codes.name_pattern(codes.TRANSPLANT_ORGAN_WORDS)
_NOT_A_TRANSPLANT_PATTERN = codes.name_pattern(codes.NOT_A_TRANSPLANT_WORDS)


def read_symptom(condition: Resource) -> Symptom | None:
    """An active, not refuted Condition coded (or named) as a section 5 symptom."""
    clinical = status_code(condition.get("clinicalStatus"))
    if clinical is not None and clinical not in ACTIVE_CONDITION_STATUSES:
        return None
    if status_code(condition.get("verificationStatus")) in EXCLUDED_VERIFICATION:
        return None
    code = condition.get("code")
    onset_period = condition.get("onsetPeriod")
    onset = parse_datetime(condition.get("onsetDateTime")) or (
        parse_datetime(onset_period.get("start")) if isinstance(onset_period, dict) else None)
    # Section 5: the onset decides; recordedDate only when there is no onset (a chronic atrial
    # fibrillation re-recorded last week is not a new symptom).
    when = onset if onset is not None else parse_datetime(condition.get("recordedDate"))
    for c in codings(code):
        code_value = c.get("code")
        if c.get("system") == codes.SNOMED and isinstance(code_value, str) and code_value in _SYMPTOM_CODES:
            known = _SYMPTOM_CODES[code_value]
            return Symptom(known.display, known.code, when, known.code in codes.URGENT_SYMPTOMS,
                           major=known.code not in codes.MINOR_SYMPTOMS)
    text = concept_text(code)
    found = _SYMPTOM_PATTERN.search(text)
    if found is None:
        return None
    major = bool(_MAJOR_WORDS.search(text)) or not _MINOR_PATTERN.search(text)
    return Symptom(clip(text, 60), None, when, bool(_URGENT_PATTERN.search(text)), major=major)


def is_esrd(condition: Resource) -> bool:
    """An active end-stage renal disease (or dialysis-dependence) Condition (section 3)."""
    clinical = status_code(condition.get("clinicalStatus"))
    if clinical is not None and clinical not in ACTIVE_CONDITION_STATUSES:
        return False
    if status_code(condition.get("verificationStatus")) in EXCLUDED_VERIFICATION:
        return False
    code = condition.get("code")
    if coding_keys(code) & _ESRD_CODES:
        return True
    return not any(s == codes.SNOMED for s, _ in coding_keys(code)) and bool(
        _DIALYSIS_PATTERN.search(concept_text(code)))


def read_dialysis_date(procedure: Resource) -> datetime | None:
    """A dialysis Procedure (completed or in progress) -> when it was performed (section 3)."""
    if procedure.get("status") not in ("completed", "in-progress"):
        return None
    code = procedure.get("code")
    keys = coding_keys(code)
    if not keys & _DIALYSIS_CODES:
        if any(system == codes.SNOMED for system, _ in keys) or not _DIALYSIS_PATTERN.search(concept_text(code)):
            return None
    return _performed(procedure)


def _performed(procedure: Resource) -> datetime | None:
    when = parse_datetime(procedure.get("performedDateTime"))
    period = procedure.get("performedPeriod")
    if when is None and isinstance(period, dict):
        when = parse_datetime(period.get("start")) or parse_datetime(period.get("end"))
    return when


def read_patient(patient: Resource) -> tuple[date | None, str | None]:
    """Patient.birthDate (a partial date counts from its first day) and gender."""
    born = parse_datetime(patient.get("birthDate"))
    gender = patient.get("gender")
    return (born.date() if born else None,
            gender if gender in ("female", "male") else None)


def read_transplant_date(procedure: Resource) -> datetime | None:
    """A completed solid-organ transplant Procedure -> when it was performed."""
    if procedure.get("status") != "completed":
        return None
    code = procedure.get("code")
    keys = coding_keys(code)
    if not keys & _TRANSPLANT_CODES:
        # Names are the fallback only where no SNOMED coding says what the procedure was
        # (section 9), and a biopsy or evaluation of a transplant is not a transplant.
        text = concept_text(code)
        if (any(system == codes.SNOMED for system, _ in keys)
                or not (_TRANSPLANT_PATTERN.search(text) and _ORGAN_PATTERN.search(text))
                or _NOT_A_TRANSPLANT_PATTERN.search(text)):
            return None
    return _performed(procedure)


def is_hospitalized(encounter: Resource) -> bool:
    """An in-progress inpatient/acute/emergency encounter (section 4)."""
    if encounter.get("status") != "in-progress":
        return False
    enc_class = encounter.get("class")
    classes = enc_class if isinstance(enc_class, list) else [enc_class]
    for item in classes:
        if isinstance(item, dict):
            code = item.get("code") or first_code(item)
            if isinstance(code, str) and code in codes.INPATIENT_CLASSES:
                return True
    return False


# --------------------------------------------------------------------------------------------
# The whole patient


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


_PLANNED_ORDER_STATUSES = frozenset({"draft", "active", "on-hold"})


def is_magnesium_lab_order(request: Resource, local_codes: LabCodes | None = None) -> bool:
    """A placed or drafted ServiceRequest for a serum magnesium (the monitoring plan)."""
    status = request.get("status")
    if not isinstance(status, str) or status not in _PLANNED_ORDER_STATUSES:
        return False
    return lab_kind({"code": request.get("code")}, local_codes) == "mg_serum"
