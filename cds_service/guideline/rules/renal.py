"""Section 7: kidney function (eGFR, CKD-EPI 2021 from creatinine, dialysis) and children's dosing."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..codes import LabKind
from ..facts import LabResult, PatientFacts, UsableResult
from ..thresholds import Thresholds
from .findings import ChildDosing, RenalFunction
from .severity import latest_usable

ADULT_AGE_YEARS = 18  # section 3: children get weight-based text, never a fixed dose


def latest_egfr(facts: PatientFacts) -> UsableResult | None:
    return latest_usable(facts.usable_labs_of(LabKind.EGFR))


def age_years(facts: PatientFacts, now: datetime) -> int | None:
    """Whole years from Patient.birthDate to now; None when the birth date is unknown."""
    born = facts.birth_date
    today = now.date()
    if born is None or born > today:  # a birth date in the future is a data error: unknown
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def ckd_epi_2021(creatinine_mg_dl: float, age: int, female: bool) -> float:
    """CKD-EPI 2021 creatinine equation (no race term), mL/min/1.73 m2 (section 3)."""
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = creatinine_mg_dl / kappa
    value = 142 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.200 * 0.9938 ** age
    return value * 1.012 if female else value


def renal_function(facts: PatientFacts, now: datetime, thresholds: Thresholds) -> RenalFunction:
    """Section 3: the latest eGFR within renal_function_recent_days; else CKD-EPI 2021 from the
    latest serum creatinine in that window (adults; sex unknown: the lower estimate); else
    unknown."""
    since = now - timedelta(days=thresholds.renal_function_recent_days)
    limit = thresholds.egfr_caution_below
    egfr = latest_usable(r for r in facts.usable_labs_of(LabKind.EGFR) if r.when >= since)
    if egfr is not None:
        if egfr.comparator in (">", ">="):
            impaired = False
        elif egfr.comparator in ("<", "<="):
            impaired = egfr.normalised <= limit  # '< 30' is certainly below 30
        else:
            impaired = egfr.normalised < limit
        return RenalFunction(egfr.normalised, egfr.comparator, egfr, False, impaired)
    creatinine = latest_usable(r for r in facts.usable_labs_of(LabKind.CREATININE_SERUM)
                               if r.when >= since and r.comparator is None)
    age = age_years(facts, now)
    if creatinine is None or age is None or age < ADULT_AGE_YEARS:
        return RenalFunction(None)
    if facts.sex in ("female", "male"):
        value = ckd_epi_2021(creatinine.normalised, age, facts.sex == "female")
    else:
        value = min(ckd_epi_2021(creatinine.normalised, age, True),
                    ckd_epi_2021(creatinine.normalised, age, False))
    return RenalFunction(value, None, creatinine, True, value < limit,
                         sex_unknown=facts.sex is None)


def renal_caution(facts: PatientFacts, thresholds: Thresholds,
                  now: datetime | None = None) -> LabResult | None:
    """The result (eGFR, or the creatinine an estimate came from) behind impaired renal
    function, or None. Without a clock, the latest eGFR of any date (revision 1 readers)."""
    if now is None:
        egfr = latest_egfr(facts)
        if egfr is None:
            return None
        now = egfr.when
    renal = renal_function(facts, now, thresholds)
    return renal.result if renal.impaired else None


def dialysis_reason(facts: PatientFacts, now: datetime, thresholds: Thresholds) -> str | None:
    """Section 3: an active ESRD Condition, or a dialysis Procedure in dialysis_recent_days."""
    if facts.esrd:
        return "end-stage kidney disease on the problem list"
    since = now - timedelta(days=thresholds.dialysis_recent_days)
    recent = [d for d in facts.dialysis_dates if since <= d <= now + timedelta(days=1)]
    if recent:
        return f"dialysis on {max(recent).date().isoformat()}"
    return None


def child_dosing(facts: PatientFacts, now: datetime, thresholds: Thresholds) -> ChildDosing | None:
    """Section 3: under 18 from the birth date (unknown: an adult), with a recent body weight."""
    age = age_years(facts, now)
    if age is None or age >= ADULT_AGE_YEARS:
        return None
    since = now - timedelta(days=thresholds.body_weight_recent_days)
    weight = latest_usable(r for r in facts.usable_labs_of(LabKind.BODY_WEIGHT)
                           if r.when >= since and r.comparator is None)
    return ChildDosing(age, weight)
