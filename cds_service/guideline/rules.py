"""The guideline's rules as pure functions: facts + clock + thresholds -> findings.

No Flask, no I/O, no ``datetime.now()``: every function takes ``now`` and ``thresholds``.
Section numbers refer to docs/clinical-rules.md.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Iterable

from .facts import LabResult, MedicationUse, PatientFacts, Symptom
from .thresholds import COMPARISON_TOLERANCE, FEMG_FILTERED_FRACTION, Thresholds

ADULT_AGE_YEARS = 18  # section 3: children get weight-based text, never a fixed dose
FIRST_YEAR_DAYS = 365  # section 7: the tacrolimus-level window is shorter in the first year
# Section 3: a supplement order authored after the result, in any status but these, means
# replacement is under way.
NOT_GIVEN_ORDER_STATUSES = frozenset({"cancelled", "entered-in-error"})


class Severity(enum.Enum):
    """Section 3's classes, most severe first."""

    SEVERE = "severe"
    SYMPTOMATIC = "symptomatic"  # a major symptom (critical)
    SYMPTOMATIC_MINOR = "symptomatic, minor"  # only muscle cramp or tremor (warning)
    MILD_MODERATE = "mild-moderate"
    BELOW_TARGET = "below target"
    AT_TARGET = "at target"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)

    @property
    def is_low(self) -> bool:
        """At or below `low_at_or_below`: the classes that call for supplementation."""
        return self in (Severity.SEVERE, Severity.SYMPTOMATIC, Severity.SYMPTOMATIC_MINOR,
                        Severity.MILD_MODERATE)

    @property
    def is_acute(self) -> bool:
        """Severe or a major symptom: intravenous magnesium (section 3)."""
        return self in (Severity.SEVERE, Severity.SYMPTOMATIC)


# --------------------------------------------------------------------------------------------
# Findings


@dataclass(frozen=True)
class MonitoringInterval:
    days: int
    reason: str  # "routine", "first month after transplant", ...


@dataclass(frozen=True)
class TacrolimusUse:
    """Section 1: how the patient is on tacrolimus."""

    state: str  # "taking", "on-hold", "stopped" (within recently_stopped_days) or "starting"
    stopped_on: datetime | None = None

    @property
    def taking(self) -> bool:
        return self.state == "taking"


@dataclass(frozen=True)
class RenalFunction:
    """Section 3: the eGFR that doses depend on, reported or estimated from creatinine."""

    egfr: float | None  # mL/min/1.73 m2; None: unknown
    comparator: str | None = None
    result: LabResult | None = None  # the eGFR result, or the creatinine it was estimated from
    estimated: bool = False  # CKD-EPI 2021 from `result` (a serum creatinine)
    impaired: bool = False  # below egfr_caution_below
    sex_unknown: bool = False  # the estimate is the lower of the female and male ones

    @property
    def unknown(self) -> bool:
        return self.egfr is None


@dataclass(frozen=True)
class ChildDosing:
    """Section 3: a patient under 18: weight-based text, never a fixed dose."""

    age_years: int
    weight: LabResult | None  # body weight (kg) within body_weight_recent_days


@dataclass(frozen=True)
class GivenSince:
    """Magnesium given or ordered after the result (section 3): no new dose."""

    name: str
    when: datetime
    status: str
    route: str  # "intravenous", "oral" or ""
    dose: str = ""


@dataclass(frozen=True)
class SeverityFinding:
    severity: Severity
    latest: LabResult
    symptoms: tuple[Symptom, ...]
    stale: bool  # older than the monitoring interval: ask for a repeat level
    interval: MonitoringInterval
    renal_caution: LabResult | None  # the eGFR (or creatinine) behind an impaired renal function
    supplements: tuple[MedicationUse, ...] = ()  # active magnesium supplements (already treated)
    # Supplements being ordered right now: drafts (section 6).
    supplement_drafts: tuple[MedicationUse, ...] = ()
    egfr: LabResult | None = None  # the latest eGFR (None: renal function unknown)
    femg_missing: bool = False  # low Mg without an FEMg: the work-up may be suggested (section 7)
    persistent: "PersistentLow | None" = None  # persistence replaces this card (section 7)
    renal: RenalFunction = RenalFunction(None)
    given: tuple[GivenSince, ...] = ()  # magnesium given since this result: no new dose
    child: ChildDosing | None = None
    dialysis: str | None = None  # why the patient counts as on dialysis / ESRD
    trough_missing_days: int | None = None  # no tacrolimus level in this window: suggest one
    tacrolimus: TacrolimusUse = TacrolimusUse("taking")
    femg_workup: bool = False  # suggest urine Mg, urine and serum creatinine (section 7)
    future: tuple[LabResult, ...] = ()  # future-dated results set aside (named on the card)


@dataclass(frozen=True)
class MonitoringDue:
    interval: MonitoringInterval
    latest: LabResult | None  # None: never measured
    symptoms: tuple[Symptom, ...]


@dataclass(frozen=True)
class SymptomsWithNormalMagnesium:
    latest: LabResult
    symptoms: tuple[Symptom, ...]


@dataclass(frozen=True)
class EgfrRise:
    earlier: LabResult
    latest: LabResult
    fraction: float


@dataclass(frozen=True)
class ContributingFactors:
    latest: LabResult
    wasting_drugs: tuple[MedicationUse, ...]
    raising_drugs: tuple[MedicationUse, ...]
    tacrolimus_level: LabResult | None  # the latest level, high or not
    tacrolimus_high: bool
    egfr_rise: EgfrRise | None
    # Section 7 (revision 2): a missing level is never a factor; kept False for readers of rev. 1.
    tacrolimus_level_missing: bool = False


@dataclass(frozen=True)
class MagnesiumHigh:
    """Section 3: Mg above high_above while a supplement is active (card kind mg-high)."""

    latest: LabResult
    supplements: tuple[MedicationUse, ...]
    renal: RenalFunction


@dataclass(frozen=True)
class PersistentLow:
    results: tuple[LabResult, ...]  # oldest first
    supplement: MedicationUse
    severe: bool
    renal_caution: LabResult | None = None  # eGFR below egfr_caution_below: dose increases with care


@dataclass(frozen=True)
class FemgFinding:
    latest: LabResult
    value: float | None  # percent; None when the four inputs are not all available
    renal_wasting: bool | None
    inputs: tuple[LabResult, ...]


@dataclass(frozen=True)
class ResultsNotUsed:
    """Newer magnesium results that could not be used, when no other card would say so."""

    latest: LabResult | None  # the result the assessment used, if any
    unreadable: tuple[LabResult, ...]
    preliminary: tuple[LabResult, ...]
    future: tuple[LabResult, ...] = ()  # dated in the future: never used (section 2)


Finding = (SeverityFinding | MonitoringDue | SymptomsWithNormalMagnesium | ContributingFactors
           | PersistentLow | FemgFinding | ResultsNotUsed | MagnesiumHigh)


@dataclass(frozen=True)
class Assessment:
    """What the rules found, plus what they could not read (shown on the cards)."""

    on_tacrolimus: bool
    findings: tuple[Finding, ...] = ()
    unreadable: tuple[LabResult, ...] = ()  # magnesium results newer than the one used
    ionized: LabResult | None = None
    preliminary: tuple[LabResult, ...] = ()  # newer preliminary results: shown, not classified
    unavailable: tuple[str, ...] = ()
    starting_tacrolimus: bool = False  # in scope only through a draft order (section 6)
    latest: LabResult | None = None  # the serum magnesium result the rules used
    tacrolimus: TacrolimusUse | None = None  # taking, on hold, recently stopped or starting
    future: tuple[LabResult, ...] = ()  # results dated in the future: named, never used


# --------------------------------------------------------------------------------------------
# Section 1: scope


def _running(m: MedicationUse, now: datetime | None) -> bool:
    """Active (or on hold) and not past its dosage bounds / dispense validity."""
    return m.active and (now is None or m.ended_on is None or m.ended_on >= now)


def taking_tacrolimus(facts: PatientFacts, now: datetime | None = None) -> bool:
    """At least one active/on-hold systemic tacrolimus order or statement (section 1)."""
    return any(m.is_systemic_tacrolimus and _running(m, now) for m in facts.medications)


def tacrolimus_use(facts: PatientFacts, now: datetime, thresholds: Thresholds) -> TacrolimusUse | None:
    """Section 1: taking, on hold, stopped within recently_stopped_days, starting (a draft), or
    None (out of scope)."""
    systemic = [m for m in facts.medications if m.is_systemic_tacrolimus]
    running = [m for m in systemic if _running(m, now)]
    if running:
        return TacrolimusUse("on-hold" if all(m.on_hold for m in running) else "taking")
    since = now - timedelta(days=thresholds.recently_stopped_days)
    stops = [when for m in systemic for when in [m.stopped_at(now)]
             if when is not None and since <= when <= now + timedelta(days=1)]
    if stops:
        return TacrolimusUse("stopped", max(stops))
    if any(m.is_systemic_tacrolimus for m in facts.draft_orders):
        return TacrolimusUse("starting")
    return None


def on_tacrolimus(facts: PatientFacts, now: datetime | None = None,
                  thresholds: Thresholds | None = None) -> bool:
    """In scope (sections 1 and 6): taking systemic tacrolimus, on hold, recently stopped (when
    the clock is given), or a draft systemic tacrolimus order being placed."""
    if now is not None and thresholds is not None:
        return tacrolimus_use(facts, now, thresholds) is not None
    return taking_tacrolimus(facts) or any(m.is_systemic_tacrolimus for m in facts.draft_orders)


# --------------------------------------------------------------------------------------------
# Sections 2 and 3: the latest usable result and its class


_STANDING = {"corrected": 1, "amended": 1, "final": 0}


def best_at_same_time(results: Iterable[LabResult]) -> LabResult:
    """Section 2, corrections: at one effective time a corrected/amended result supersedes a
    final one (whatever its id); among equals the later `issued` wins; only true duplicates
    fall back to the lowest value (be conservative)."""
    group = list(results)
    top = max(_STANDING.get(r.status, 0) for r in group)
    group = [r for r in group if _STANDING.get(r.status, 0) == top]
    issued = [r.issued for r in group if r.issued is not None]
    if issued:
        newest = max(issued)
        group = [r for r in group if r.issued == newest]
    return min(group, key=lambda r: r.normalised)


def usable_by_time(results: Iterable[LabResult]) -> list[LabResult]:
    """One usable result per effective time (corrections applied), oldest first."""
    at: dict[datetime, list[LabResult]] = {}
    for r in results:
        if r.usable:
            at.setdefault(r.when, []).append(r)
    return [best_at_same_time(at[when]) for when in sorted(at)]


def latest_usable(results: Iterable[LabResult]) -> LabResult | None:
    """The newest usable result (corrections applied at equal times, section 2)."""
    usable = [r for r in results if r.usable]
    if not usable:
        return None
    newest = max(r.when for r in usable)
    return best_at_same_time(r for r in usable if r.when == newest)


def is_future(result: LabResult, now: datetime, thresholds: Thresholds) -> bool:
    """Section 2: dated later than now + future_tolerance_minutes (clock skew, typing error)."""
    return result.when is not None and result.when > now + timedelta(
        minutes=thresholds.future_tolerance_minutes)


def set_aside_future(facts: PatientFacts, now: datetime,
                     thresholds: Thresholds) -> tuple[PatientFacts, tuple[LabResult, ...]]:
    """The facts without future-dated results (never used for anything), and those results."""
    future = tuple(r for r in facts.labs if is_future(r, now, thresholds))
    if not future:
        return facts, ()
    return replace(facts, labs=tuple(r for r in facts.labs if r not in future)), future


def classify(meq_per_l: float, comparator: str | None, symptomatic: bool | str,
             thresholds: Thresholds) -> Severity | None:
    """Section 3's class for a serum Mg in mEq/L, or None when a bound cannot be classified.

    A value reported with '<' or '<=' is an upper bound: '< 1.0' is certainly severe. A value
    reported with '>' or '>=' is a lower bound, classifiable only when it is at target.
    """
    tolerance = COMPARISON_TOLERANCE
    value = meq_per_l
    if comparator in (">", ">="):
        return Severity.AT_TARGET if value >= thresholds.target_above - tolerance else None
    if comparator == "<":
        value -= 2 * tolerance  # strictly below the bound
    if value < thresholds.severe_below - tolerance:
        return Severity.SEVERE
    if value <= thresholds.low_at_or_below + tolerance:
        # `symptomatic`: True or "major" (critical), "minor" (cramp or tremor only: warning).
        if symptomatic == "minor":
            return Severity.SYMPTOMATIC_MINOR
        return Severity.SYMPTOMATIC if symptomatic else Severity.MILD_MODERATE
    if value < thresholds.target_above - tolerance:
        return Severity.BELOW_TARGET
    return Severity.AT_TARGET


# --------------------------------------------------------------------------------------------
# Section 4: monitoring interval


def monitoring_interval(facts: PatientFacts, now: datetime,
                        thresholds: Thresholds) -> MonitoringInterval:
    """The shortest interval that applies: inpatient, early phase, else routine."""
    candidates = [MonitoringInterval(thresholds.routine_interval_days, "routine on tacrolimus")]
    early_since = now - timedelta(days=thresholds.early_phase_days)
    if facts.transplant_dates and max(facts.transplant_dates) >= early_since:
        candidates.append(MonitoringInterval(thresholds.early_interval_days,
                                             f"first {thresholds.early_phase_days} days after transplant"))
    start = tacrolimus_start(facts) or (now if any(
        m.is_systemic_tacrolimus for m in facts.draft_orders) else None)  # a first order starts now
    if start is not None and start >= early_since:
        candidates.append(MonitoringInterval(thresholds.early_interval_days,
                                             f"first {thresholds.early_phase_days} days of tacrolimus"))
    if facts.hospitalized:
        candidates.append(MonitoringInterval(thresholds.inpatient_interval_days, "hospitalized"))
    return min(candidates, key=lambda c: c.days)


def tacrolimus_start(facts: PatientFacts) -> datetime | None:
    """The earliest authoredOn among all systemic tacrolimus orders, stopped and completed ones
    included (a renewal is not a start; section 4). Plans and proposals are not orders."""
    dates = [m.authored_on for m in facts.medications
             if m.is_systemic_tacrolimus and m.authored_on is not None
             and m.resource_type == "MedicationRequest" and m.is_treatment
             and m.status not in ("entered-in-error", "draft", "cancelled", "unknown")]
    return min(dates) if dates else None


def is_older_than(result: LabResult, days: int, now: datetime) -> bool:
    return result.when < now - timedelta(days=days)


# --------------------------------------------------------------------------------------------
# Section 5: symptoms


def recent_symptoms(facts: PatientFacts, now: datetime, thresholds: Thresholds) -> tuple[Symptom, ...]:
    since = now - timedelta(days=thresholds.symptom_window_days)
    return tuple(s for s in facts.symptoms if s.when is not None and since <= s.when <= now + timedelta(days=1))


def symptom_class(symptoms: tuple[Symptom, ...]) -> bool | str:
    """'major' when any symptom is major, 'minor' when only cramp/tremor, False without any."""
    if not symptoms:
        return False
    return "major" if any(s.major for s in symptoms) else "minor"


# --------------------------------------------------------------------------------------------
# Section 7: contributing factors, persistence, FEMg


def latest_egfr(facts: PatientFacts) -> LabResult | None:
    return latest_usable(facts.labs_of("egfr"))


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
    egfr = latest_usable(r for r in facts.labs_of("egfr") if r.usable and r.when >= since)
    if egfr is not None:
        if egfr.comparator in (">", ">="):
            impaired = False
        elif egfr.comparator in ("<", "<="):
            impaired = egfr.normalised <= limit  # '< 30' is certainly below 30
        else:
            impaired = egfr.normalised < limit
        return RenalFunction(egfr.normalised, egfr.comparator, egfr, False, impaired)
    creatinine = latest_usable(r for r in facts.labs_of("creatinine_serum")
                               if r.usable and r.when >= since and r.comparator is None)
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
    weight = latest_usable(r for r in facts.labs_of("body_weight")
                           if r.usable and r.when >= since and r.comparator is None)
    return ChildDosing(age, weight)


def given_since(facts: PatientFacts, result: LabResult) -> tuple[GivenSince, ...]:
    """Section 3: magnesium administered (completed / in progress) or a supplement ordered (any
    status but cancelled / entered-in-error) after the result: replacement is under way."""
    given = [GivenSince(a.name, a.when, a.status, a.route, a.dose)
             for a in facts.administrations if a.when > result.when]
    given += [GivenSince(m.name, m.authored_on, m.status, m.route)
              for m in facts.medications
              if m.is_magnesium_supplement and m.resource_type == "MedicationRequest"
              and m.authored_on is not None and m.authored_on > result.when
              and m.status not in NOT_GIVEN_ORDER_STATUSES]
    return tuple(sorted(given, key=lambda g: g.when, reverse=True))


def trough_window_days(facts: PatientFacts, now: datetime, thresholds: Thresholds) -> int:
    """Section 7: tacrolimus_level_recent_days in the first year after transplant or tacrolimus
    start, tacrolimus_level_recent_days_late after."""
    starts = list(facts.transplant_dates)
    start = tacrolimus_start(facts)
    if start is not None:
        starts.append(start)
    first_year = any(s >= now - timedelta(days=FIRST_YEAR_DAYS) for s in starts)
    return (thresholds.tacrolimus_level_recent_days if first_year
            else thresholds.tacrolimus_level_recent_days_late)


def egfr_rise(facts: PatientFacts, thresholds: Thresholds) -> EgfrRise | None:
    """Latest eGFR up by >= egfr_rise_fraction over the lowest in the window before it."""
    exact = [r for r in facts.labs_of("egfr") if r.usable and r.comparator is None]
    latest = latest_usable(exact)
    if latest is None:
        return None
    since = latest.when - timedelta(days=thresholds.egfr_rise_window_days)
    earlier = [r for r in exact if since <= r.when < latest.when and r.normalised > 0]
    if not earlier:
        return None
    lowest = min(earlier, key=lambda r: r.normalised)
    fraction = (latest.normalised - lowest.normalised) / lowest.normalised
    if fraction >= thresholds.egfr_rise_fraction - COMPARISON_TOLERANCE:
        return EgfrRise(lowest, latest, fraction)
    return None


def contributing_factors(facts: PatientFacts, latest: LabResult, now: datetime,
                         thresholds: Thresholds) -> ContributingFactors | None:
    """Section 7: what worsens magnesium loss. A missing tacrolimus level is not a factor (the
    severity card asks for one instead)."""
    active = [m for m in facts.medications if m.active]
    wasting = tuple(m for m in active if m.wasting_class)
    raising = tuple(sorted((m for m in active if m.raises_tacrolimus_class),
                           key=lambda m: m.authored_on.timestamp() if m.authored_on else 0.0,
                           reverse=True))  # newest first (section 7)
    level = latest_usable(facts.labs_of("tacrolimus_level"))
    window = trough_window_days(facts, now, thresholds)
    high = False
    # Only a recent level says anything about today's exposure.
    if level is not None and not is_older_than(level, window, now) \
            and level.comparator not in ("<", "<="):
        limit = thresholds.tacrolimus_high_above
        high = level.normalised > limit + COMPARISON_TOLERANCE or (
            level.reference_high is not None and level.value > level.reference_high)
    rise = egfr_rise(facts, thresholds)
    if not (wasting or raising or high or rise):
        return None
    return ContributingFactors(latest, wasting, raising, level, high, rise)


def trough_missing(facts: PatientFacts, use: TacrolimusUse, now: datetime,
                   thresholds: Thresholds) -> int | None:
    """The window (days) without a tacrolimus level, when one should be suggested; never for
    stopped, held or starting tacrolimus (section 7)."""
    if not use.taking:
        return None
    window = trough_window_days(facts, now, thresholds)
    level = latest_usable(facts.labs_of("tacrolimus_level"))
    return window if level is None or is_older_than(level, window, now) else None


def supplement_start(facts: PatientFacts) -> tuple[MedicationUse, datetime] | None:
    """The earliest start of an active magnesium supplement order."""
    started = [(m, m.authored_on) for m in facts.medications
               if m.is_magnesium_supplement and m.active and m.authored_on is not None]
    return min(started, key=lambda pair: pair[1]) if started else None


def persistent_low(facts: PatientFacts, thresholds: Thresholds) -> PersistentLow | None:
    """>= persistent_min_results low results spanning >= persistent_min_span_days, all after
    an active supplement was started, and none normal in between (the low run reaches the latest)."""
    supplement = supplement_start(facts)
    if supplement is None:
        return None
    medication, started = supplement
    # One result per time, corrections applied (section 2).
    results = usable_by_time(r for r in facts.labs_of("mg_serum") if r.usable and r.when >= started)
    run: list[LabResult] = []
    for result in reversed(results):
        if classify(result.normalised, result.comparator, False, thresholds) not in (
                Severity.SEVERE, Severity.MILD_MODERATE) or result.comparator in (">", ">="):
            break
        run.append(result)
    run.reverse()
    if len(run) < thresholds.persistent_min_results:
        return None
    if run[-1].when - run[0].when < timedelta(days=thresholds.persistent_min_span_days):
        return None
    severe = classify(run[-1].normalised, run[-1].comparator, False, thresholds) is Severity.SEVERE
    return PersistentLow(tuple(run), medication, severe)


def femg(facts: PatientFacts, latest: LabResult, thresholds: Thresholds) -> FemgFinding:
    """FEMg (%) = (U_Mg x S_Cr) / (0.7 x S_Mg x U_Cr) x 100 from results within the window."""
    window = timedelta(hours=thresholds.femg_window_hours)

    def near(kind: str) -> LabResult | None:
        close = [r for r in facts.labs_of(kind) if r.usable and r.comparator is None
                 and abs(r.when - latest.when) <= window]
        return min(close, key=lambda r: abs(r.when - latest.when)) if close else None

    urine_mg, serum_cr, urine_cr = near("mg_urine"), near("creatinine_serum"), near("creatinine_urine")
    if latest.comparator is not None or None in (urine_mg, serum_cr, urine_cr):
        return FemgFinding(latest, None, None, ())
    times = [r.when for r in (latest, urine_mg, serum_cr, urine_cr)]
    if max(times) - min(times) > window:  # "within 24 hours of each other" (section 7)
        return FemgFinding(latest, None, None, ())
    # Usable results are positive (facts refuse values <= 0), so the division is safe.
    value = (urine_mg.normalised * serum_cr.normalised) / (
        FEMG_FILTERED_FRACTION * latest.normalised * urine_cr.normalised) * 100.0
    return FemgFinding(latest, value, value > thresholds.femg_renal_wasting_above,
                       (latest, serum_cr, urine_mg, urine_cr))


# --------------------------------------------------------------------------------------------
# The whole assessment


def magnesium_high(facts: PatientFacts, latest: LabResult, now: datetime,
                   thresholds: Thresholds) -> MagnesiumHigh | None:
    """Section 3: Mg above high_above while a magnesium supplement is active."""
    if latest.comparator in ("<", "<="):
        return None
    if latest.normalised <= thresholds.high_above + COMPARISON_TOLERANCE:
        return None
    supplements = tuple(m for m in facts.medications if m.is_magnesium_supplement and m.active)
    if not supplements:
        return None
    return MagnesiumHigh(latest, supplements, renal_function(facts, now, thresholds))


def assess(facts: PatientFacts, now: datetime, thresholds: Thresholds) -> Assessment:
    """Apply sections 1-5 and 7 to one patient's facts."""
    use = tacrolimus_use(facts, now, thresholds)
    if use is None:
        return Assessment(on_tacrolimus=False, unavailable=facts.unavailable)
    facts, future_labs = set_aside_future(facts, now, thresholds)
    future = tuple(sorted((r for r in future_labs if r.kind == "mg_serum"),
                          key=lambda r: r.when, reverse=True))
    serum = facts.labs_of("mg_serum")
    # A lower bound below target ('> 1.0') cannot be classified: it is reported, not used.
    bounds = [r for r in serum if r.usable and classify(r.normalised, r.comparator, False, thresholds) is None]
    latest = latest_usable(r for r in serum if r not in bounds)

    def newer(r: LabResult) -> bool:
        return latest is None or r.when is None or r.when >= latest.when

    def newest_first(results: Iterable[LabResult]) -> tuple[LabResult, ...]:
        return tuple(sorted(results, key=lambda r: r.when.timestamp() if r.when else 0.0, reverse=True))

    superseded = set()
    if latest is not None:  # same time, lower standing: corrected away, not "could not be read"
        superseded = {id(r) for r in serum if r.when == latest.when and r is not latest}
    unreadable = newest_first(r for r in serum if (r.unreadable_reason or r in bounds) and newer(r)
                              and id(r) not in superseded)
    preliminary = newest_first(r for r in serum if r.status == "preliminary" and not r.unreadable_reason
                               and newer(r))
    ionized = latest_usable(facts.labs_of("mg_ionized"))
    interval = monitoring_interval(facts, now, thresholds)
    symptoms = recent_symptoms(facts, now, thresholds)
    findings: list[Finding] = []

    severity = None
    if latest is not None:
        severity = classify(latest.normalised, latest.comparator, symptom_class(symptoms), thresholds)
    stale = latest is None or is_older_than(latest, interval.days, now)
    high = magnesium_high(facts, latest, now, thresholds) if latest is not None else None

    if severity is not None and severity is not Severity.AT_TARGET:
        active = tuple(m for m in facts.medications if m.is_magnesium_supplement and m.active)
        given = given_since(facts, latest)
        given_orders = {(g.name, g.when) for g in given}
        supplements = tuple(m for m in active if (m.name, m.authored_on) not in given_orders)
        drafts = tuple(m for m in facts.draft_orders if m.is_magnesium_supplement)
        dialysis = dialysis_reason(facts, now, thresholds)
        renal = renal_function(facts, now, thresholds)
        fem = femg(facts, latest, thresholds) if severity.is_low else None
        persistent = persistent_low(facts, thresholds) if severity.is_low else None
        if persistent is not None:
            persistent = replace(persistent, renal_caution=renal.result if renal.impaired else None,
                                 severe=severity.is_acute)
        femg_missing = fem is not None and fem.value is None
        # Section 7: the work-up only where it can be interpreted: on the persistent card, or
        # with no supplement active, being ordered, given or about to be suggested; never on
        # dialysis.
        supplement_coming = severity.is_low  # a low result always gets replacement advice
        workup = femg_missing and dialysis is None and (
            persistent is not None or not (active or drafts or given or supplement_coming))
        findings.append(SeverityFinding(
            severity, latest, symptoms, stale, interval,
            renal.result if renal.impaired else None, supplements, drafts,
            latest_egfr(facts), femg_missing=femg_missing, persistent=persistent, renal=renal,
            given=given, child=child_dosing(facts, now, thresholds), dialysis=dialysis,
            trough_missing_days=trough_missing(facts, use, now, thresholds) if severity.is_low else None,
            tacrolimus=use, femg_workup=workup, future=future))
        if fem is not None and fem.value is not None:
            findings.append(fem)
    elif high is not None:
        findings.append(high)
    elif stale:
        findings.append(MonitoringDue(interval, latest, symptoms))
    if latest is not None and severity is Severity.AT_TARGET and symptoms and high is None:
        findings.append(SymptomsWithNormalMagnesium(latest, symptoms))
    if latest is not None and severity is not None and severity.is_low:
        factors = contributing_factors(facts, latest, now, thresholds)
        if factors is not None:
            findings.append(factors)
    if not findings and (unreadable or preliminary or future):
        # Never silent: a newer result exists that could not be used (section 2).
        findings.append(ResultsNotUsed(latest, unreadable, preliminary, future))
    return Assessment(on_tacrolimus=True, findings=tuple(findings), unreadable=unreadable,
                      ionized=ionized, preliminary=preliminary, unavailable=facts.unavailable,
                      # A restart after a recent stop is a start too (section 6: "no active tacrolimus").
                      starting_tacrolimus=use.state == "starting" or (
                          use.state == "stopped" and any(m.is_systemic_tacrolimus for m in facts.draft_orders)),
                      latest=latest,
                      tacrolimus=use, future=future)
