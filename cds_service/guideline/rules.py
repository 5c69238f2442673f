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


SUPPLEMENT_IN_PROGRESS_DAYS = 2  # an active supplement ordered this recently is still being given


class Severity(enum.Enum):
    """Section 3's classes, most severe first."""

    SEVERE = "severe"
    SYMPTOMATIC = "symptomatic"
    MILD_MODERATE = "mild-moderate"
    BELOW_TARGET = "below target"
    AT_TARGET = "at target"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)

    @property
    def is_low(self) -> bool:
        """At or below `low_at_or_below`: the classes that call for supplementation."""
        return self in (Severity.SEVERE, Severity.SYMPTOMATIC, Severity.MILD_MODERATE)


# --------------------------------------------------------------------------------------------
# Findings


@dataclass(frozen=True)
class MonitoringInterval:
    days: int
    reason: str  # "routine", "first month after transplant", ...


@dataclass(frozen=True)
class SeverityFinding:
    severity: Severity
    latest: LabResult
    symptoms: tuple[Symptom, ...]
    stale: bool  # older than the monitoring interval: ask for a repeat level
    interval: MonitoringInterval
    renal_caution: LabResult | None  # the eGFR below egfr_caution_below, when there is one
    supplements: tuple[MedicationUse, ...] = ()  # active magnesium supplements (already treated)
    # Supplements being ordered right now: drafts (section 6) or active orders of the last
    # SUPPLEMENT_IN_PROGRESS_DAYS (an IV dose given today must not be suggested again).
    supplement_drafts: tuple[MedicationUse, ...] = ()
    egfr: LabResult | None = None  # the latest eGFR (None: renal function unknown)
    femg_missing: bool = False  # low Mg without an FEMg: suggest the urine tests (section 7)
    persistent: bool = False  # the persistence card carries the escalation advice


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
    tacrolimus_level_missing: bool  # none in tacrolimus_level_recent_days
    egfr_rise: EgfrRise | None


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


Finding = (SeverityFinding | MonitoringDue | SymptomsWithNormalMagnesium | ContributingFactors
           | PersistentLow | FemgFinding | ResultsNotUsed)


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


# --------------------------------------------------------------------------------------------
# Section 1: scope


def taking_tacrolimus(facts: PatientFacts) -> bool:
    """At least one active/on-hold systemic tacrolimus order or statement (section 1)."""
    return any(m.is_systemic_tacrolimus and m.active for m in facts.medications)


def on_tacrolimus(facts: PatientFacts) -> bool:
    """Taking systemic tacrolimus, or (order hooks) a draft systemic tacrolimus order being
    placed (sections 1 and 6)."""
    return taking_tacrolimus(facts) or any(m.is_systemic_tacrolimus for m in facts.draft_orders)


# --------------------------------------------------------------------------------------------
# Sections 2 and 3: the latest usable result and its class


def latest_usable(results: Iterable[LabResult]) -> LabResult | None:
    """The newest usable result; at equal times the lowest value counts (be conservative)."""
    usable = [r for r in results if r.usable]
    if not usable:
        return None
    return min(usable, key=lambda r: (-r.when.timestamp(), r.normalised))


def classify(meq_per_l: float, comparator: str | None, symptomatic: bool,
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
                                             "first month after transplant"))
    start = tacrolimus_start(facts) or (now if any(
        m.is_systemic_tacrolimus for m in facts.draft_orders) else None)  # a first order starts now
    if start is not None and start >= early_since:
        candidates.append(MonitoringInterval(thresholds.early_interval_days,
                                             "first month of tacrolimus"))
    if facts.hospitalized:
        candidates.append(MonitoringInterval(thresholds.inpatient_interval_days, "hospitalized"))
    return min(candidates, key=lambda c: c.days)


def tacrolimus_start(facts: PatientFacts) -> datetime | None:
    """The earliest authoredOn among all systemic tacrolimus orders, stopped ones included."""
    dates = [m.authored_on for m in facts.medications
             if m.is_systemic_tacrolimus and m.authored_on is not None
             and m.status not in ("entered-in-error", "draft", "cancelled")]
    return min(dates) if dates else None


def is_older_than(result: LabResult, days: int, now: datetime) -> bool:
    return result.when < now - timedelta(days=days)


# --------------------------------------------------------------------------------------------
# Section 5: symptoms


def recent_symptoms(facts: PatientFacts, now: datetime, thresholds: Thresholds) -> tuple[Symptom, ...]:
    since = now - timedelta(days=thresholds.symptom_window_days)
    return tuple(s for s in facts.symptoms if s.when is not None and since <= s.when <= now + timedelta(days=1))


# --------------------------------------------------------------------------------------------
# Section 7: contributing factors, persistence, FEMg


def latest_egfr(facts: PatientFacts) -> LabResult | None:
    return latest_usable(facts.labs_of("egfr"))


def renal_caution(facts: PatientFacts, thresholds: Thresholds) -> LabResult | None:
    """The latest eGFR when it is below egfr_caution_below (a '<' bound counts; '>' does not)."""
    egfr = latest_egfr(facts)
    if egfr is None or egfr.comparator in (">", ">="):
        return None
    limit = thresholds.egfr_caution_below
    # '< 30' means certainly below 30: an upper bound at the threshold counts.
    below = egfr.normalised <= limit if egfr.comparator in ("<", "<=") else egfr.normalised < limit
    return egfr if below else None


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
    active = [m for m in facts.medications if m.active]
    wasting = tuple(m for m in active if m.wasting_class)
    raising = tuple(m for m in active if m.raises_tacrolimus_class)
    level = latest_usable(facts.labs_of("tacrolimus_level"))
    # A level is only missing for a patient already taking tacrolimus (not one starting it).
    missing = taking_tacrolimus(facts) and (level is None or is_older_than(level, thresholds.tacrolimus_level_recent_days, now))
    high = False
    # Only a recent level says anything about today's exposure; an old one asks for a new level.
    if level is not None and not is_older_than(level, thresholds.tacrolimus_level_recent_days, now) \
            and level.comparator not in ("<", "<="):
        limit = thresholds.tacrolimus_high_above
        high = level.normalised > limit + COMPARISON_TOLERANCE or (
            level.reference_high is not None and level.value > level.reference_high)
    rise = egfr_rise(facts, thresholds)
    if not (wasting or raising or high or missing or rise):
        return None
    return ContributingFactors(latest, wasting, raising, level, high, missing, rise)


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
    lowest_at: dict[datetime, LabResult] = {}
    for r in facts.labs_of("mg_serum"):
        if r.usable and r.when >= started:
            kept = lowest_at.get(r.when)
            if kept is None or r.normalised < kept.normalised:  # section 2: the lowest counts
                lowest_at[r.when] = r
    results = sorted(lowest_at.values(), key=lambda r: r.when)
    run: list[LabResult] = []
    for result in reversed(results):
        if classify(result.normalised, result.comparator, False, thresholds) not in (
                Severity.SEVERE, Severity.MILD_MODERATE):
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


def assess(facts: PatientFacts, now: datetime, thresholds: Thresholds) -> Assessment:
    """Apply sections 1-5 and 7 to one patient's facts."""
    if not on_tacrolimus(facts):
        return Assessment(on_tacrolimus=False, unavailable=facts.unavailable)
    serum = facts.labs_of("mg_serum")
    # A lower bound below target ('> 1.0') cannot be classified: it is reported, not used.
    bounds = [r for r in serum if r.usable and classify(r.normalised, r.comparator, False, thresholds) is None]
    latest = latest_usable(r for r in serum if r not in bounds)

    def newer(r: LabResult) -> bool:
        return latest is None or r.when is None or r.when >= latest.when

    def newest_first(results: Iterable[LabResult]) -> tuple[LabResult, ...]:
        return tuple(sorted(results, key=lambda r: r.when.timestamp() if r.when else 0.0, reverse=True))

    unreadable = newest_first(r for r in serum if (r.unreadable_reason or r in bounds) and newer(r))
    preliminary = newest_first(r for r in serum if r.status == "preliminary" and not r.unreadable_reason
                               and newer(r))
    ionized = latest_usable(facts.labs_of("mg_ionized"))
    interval = monitoring_interval(facts, now, thresholds)
    symptoms = recent_symptoms(facts, now, thresholds)
    findings: list[Finding] = []

    severity = None
    if latest is not None:
        severity = classify(latest.normalised, latest.comparator, bool(symptoms), thresholds)
    stale = latest is None or is_older_than(latest, interval.days, now)

    if severity is not None and severity is not Severity.AT_TARGET:
        recent = now - timedelta(days=SUPPLEMENT_IN_PROGRESS_DAYS)
        active = [m for m in facts.medications if m.is_magnesium_supplement and m.active]
        just_ordered = tuple(m for m in active if m.authored_on is not None and m.authored_on >= recent)
        supplements = tuple(m for m in active if m not in just_ordered)
        drafts = tuple(m for m in facts.draft_orders if m.is_magnesium_supplement) + just_ordered
        fem = femg(facts, latest, thresholds) if severity.is_low else None
        findings.append(SeverityFinding(
            severity, latest, symptoms if severity is not Severity.AT_TARGET else (), stale,
            interval, renal_caution(facts, thresholds), supplements, drafts,
            latest_egfr(facts), femg_missing=fem is not None and fem.value is None))
        if fem is not None and fem.value is not None:
            findings.append(fem)
    elif stale:
        findings.append(MonitoringDue(interval, latest, symptoms))
    if latest is not None and severity is Severity.AT_TARGET and symptoms:
        findings.append(SymptomsWithNormalMagnesium(latest, symptoms))
    if latest is not None and severity is not None and severity.is_low:
        factors = contributing_factors(facts, latest, now, thresholds)
        if factors is not None:
            findings.append(factors)
        persistent = persistent_low(facts, thresholds)
        if persistent is not None:
            findings.append(replace(persistent, renal_caution=renal_caution(facts, thresholds)))
            findings = [replace(x, persistent=True) if isinstance(x, SeverityFinding) else x
                        for x in findings]
    if not findings and (unreadable or preliminary):
        # Never silent: a newer result exists that could not be used (section 2).
        findings.append(ResultsNotUsed(latest, unreadable, preliminary))
    return Assessment(on_tacrolimus=True, findings=tuple(findings), unreadable=unreadable,
                      ionized=ionized, preliminary=preliminary, unavailable=facts.unavailable,
                      starting_tacrolimus=not taking_tacrolimus(facts), latest=latest)
