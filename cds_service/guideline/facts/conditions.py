"""Conditions, procedures, the patient and the encounter -> symptoms, dialysis, transplant date,
age and sex, and whether the patient is in hospital (sections 1, 5 and 7).
"""

from __future__ import annotations

import calendar
from datetime import date, datetime
from typing import Any

from .. import codes
from .model import AgeAtOnset, Symptom
from .values import Resource, clip, coding_keys, codings, concept_text, first_code, parse_datetime, status_code

ACTIVE_CONDITION_STATUSES = frozenset({"active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})


_SYMPTOM_CODES = {c.code: c for c in codes.SYMPTOMS}
_SYMPTOM_PATTERN = codes.name_pattern(codes.SYMPTOM_WORDS)
_URGENT_PATTERN = codes.name_pattern(codes.URGENT_SYMPTOM_WORDS)
_MINOR_PATTERN = codes.name_pattern(codes.MINOR_SYMPTOM_WORDS)
_MAJOR_WORDS = codes.name_pattern(("seizure", "seizures", "convulsion", "convulsions", "tetany", "arrhythmia",
                                   "tachycardia", "torsade", "torsades", "fibrillation", "QT"))
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
    # fibrillation re-recorded last week is not a new symptom). An onset given as an age is kept
    # as such: the rules place it with the birth date, and fall back to the recorded date only
    # when they cannot (onsetString is free text and is not read).
    onset_age = _onset_age(condition) if onset is None else None
    when = onset if onset is not None else parse_datetime(condition.get("recordedDate"))
    for c in codings(code):
        code_value = c.get("code")
        if c.get("system") == codes.SNOMED and isinstance(code_value, str) and code_value in _SYMPTOM_CODES:
            known = _SYMPTOM_CODES[code_value]
            return Symptom(known.display, known.code, when, known.code in codes.URGENT_SYMPTOMS,
                           major=known.code not in codes.MINOR_SYMPTOMS, onset_age=onset_age)
    text = concept_text(code)
    found = _SYMPTOM_PATTERN.search(text)
    if found is None:
        return None
    major = bool(_MAJOR_WORDS.search(text)) or not _MINOR_PATTERN.search(text)
    return Symptom(clip(_condition_name(code) or text, 60), None, when, bool(_URGENT_PATTERN.search(text)),
                   major=major, onset_age=onset_age)


def _condition_name(concept: Any) -> str | None:
    """What a clinician reads: the concept's text, else its first display (all of them joined
    repeat the name: 'Long QT syndrome Long QT syndrome')."""
    if not isinstance(concept, dict):
        return None
    if isinstance(concept.get("text"), str) and concept["text"].strip():
        return concept["text"].strip()
    return next((c["display"] for c in codings(concept) if isinstance(c.get("display"), str) and c["display"]), None)


def _onset_age(condition: Resource) -> AgeAtOnset | None:
    """Condition.onsetAge or onsetRange (FHIR Ages) -> the age at onset, or None when there is
    none or it cannot be read. A side that cannot be read is left open: wider, never narrower,
    than what the EHR recorded (section 5 must not dismiss a symptom that may be recent)."""
    age = condition.get("onsetAge")
    if isinstance(age, dict):
        read = _age(age)
        if read is None:
            return None
        comparator = age.get("comparator")
        if comparator in ("<", "<="):
            return AgeAtOnset(None, read)
        if comparator in (">", ">="):
            return AgeAtOnset(read, None)
        return AgeAtOnset(read, read)
    ages = condition.get("onsetRange")
    if isinstance(ages, dict):
        low, high = _age(ages.get("low")), _age(ages.get("high"))
        return AgeAtOnset(low, high) if low is not None or high is not None else None
    return None


def _age(quantity: Any) -> tuple[float, str] | None:
    """A FHIR Age -> (value, 'a' | 'mo' | 'wk' | 'd'); UCUM code first, unit text second."""
    if not isinstance(quantity, dict):
        return None
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e6:
        return None
    for field in ("code", "unit"):
        text = quantity.get(field)
        if isinstance(text, str) and text.strip():
            unit = codes.AGE_UNITS.get(text.strip().lower())
            if unit is not None:
                return float(value), unit
    return None


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
    # Section 9 lists one dialysis code (302497006 hemodialysis) and names "dialysis" as the
    # fallback "where a record has no usable coding": a SNOMED concept the list does not hold
    # (71192002 peritoneal dialysis) is not a usable coding here, so its name decides. A
    # procedure coded as something else whose name does not say dialysis stays out.
    if not coding_keys(code) & _DIALYSIS_CODES and not _DIALYSIS_PATTERN.search(concept_text(code)):
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


def last_birth_day(patient: Resource) -> date | None:
    """The last day a (possibly partial) Patient.birthDate allows: '1968' -> 1968-12-31,
    '1968-03' -> 1968-03-31, a full date itself; None when there is none to read."""
    born = parse_datetime(patient.get("birthDate"))
    if born is None:
        return None
    text = str(patient.get("birthDate")).strip()
    if len(text) == 4:
        return date(born.year, 12, 31)
    if len(text) == 7:
        return date(born.year, born.month, calendar.monthrange(born.year, born.month)[1])
    return born.date()


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
