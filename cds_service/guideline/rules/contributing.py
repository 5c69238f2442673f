"""Sections 3 and 7: magnesium given since the result, contributing factors, persistence, FEMg."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from ..codes import LabKind
from ..facts import NEVER_TAKEN_STATUSES, MedicationUse, PatientFacts, UsableResult, is_usable
from ..thresholds import COMPARISON_TOLERANCE, FEMG_FILTERED_FRACTION, Thresholds
from .findings import (
    ContributingFactors,
    EgfrRise,
    FemgFinding,
    GivenSince,
    NoLevelSince,
    PersistentLow,
    Severity,
    TacrolimusUse,
)
from .monitoring import is_older_than, tacrolimus_start
from .severity import classify, latest_usable, usable_by_time

FIRST_YEAR_DAYS = 365  # section 7: the tacrolimus-level window is shorter in the first year
# Section 3: a supplement order authored after the result, in any status but these, means
# replacement is under way.
NOT_GIVEN_ORDER_STATUSES = frozenset({"cancelled", "entered-in-error"})


def given_since(facts: PatientFacts, result: UsableResult) -> tuple[GivenSince, ...]:
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


# Section 7, eGFR reported as a bound (Epic's ">60", Cerner's "<15"): a lower bound can only
# raise the latest value, an upper bound can only lower an earlier one.
LOWER_BOUNDS = frozenset({">", ">="})
UPPER_BOUNDS = frozenset({"<", "<="})


def egfr_rise(facts: PatientFacts, thresholds: Thresholds) -> EgfrRise | None:
    """Latest eGFR up by >= egfr_rise_fraction over the lowest in the window before it.

    Only a rise that is certain counts: the latest may be exact or a lower bound (">60" after 45
    is a rise of at least 33 %), an earlier one exact or an upper bound ("<15" before 45); the
    fraction is then the least rise the values allow. A latest upper bound ("<15") is never a
    rise, and an earlier lower bound (">60") cannot be the start of one."""
    latest = latest_usable(r for r in facts.labs_of(LabKind.EGFR)
                           if r.comparator is None or r.comparator in LOWER_BOUNDS | UPPER_BOUNDS)
    if latest is None or latest.comparator in UPPER_BOUNDS:
        return None
    since = latest.when - timedelta(days=thresholds.egfr_rise_window_days)
    earlier = [r for r in facts.labs_of(LabKind.EGFR)
               if is_usable(r) and (r.comparator is None or r.comparator in UPPER_BOUNDS)
               and since <= r.when < latest.when and r.normalised > 0]
    if not earlier:
        return None
    lowest = min(earlier, key=lambda r: r.normalised)
    fraction = (latest.normalised - lowest.normalised) / lowest.normalised
    if fraction >= thresholds.egfr_rise_fraction - COMPARISON_TOLERANCE:
        return EgfrRise(lowest, latest, fraction)
    return None


def _newest_first(drugs: Iterable[MedicationUse]) -> list[MedicationUse]:
    return sorted(drugs, key=lambda m: m.authored_on.timestamp() if m.authored_on else 0.0, reverse=True)


def no_level_since(facts: PatientFacts, drug: MedicationUse,
                   level: UsableResult | None) -> NoLevelSince | None:
    """Section 7: `drug` (raising tacrolimus levels) was started with no tacrolimus level since.

    A level reflects the drug when an order of the same ingredient was running when it was
    taken, from an earlier day: an order renewed after the level does not make the level old
    news, and a level drawn the day the drug started (before the first dose, usually, and before
    a CYP3A inhibition builds up; section 6 asks for the trough 2-3 days after the start) does
    not show its effect. The start said is the first order of the drug since that level (the
    first one on record when there is no level at all)."""
    key = drug.ingredient or drug.name
    course = [m for m in facts.medications
              if (m.ingredient or m.name) == key and m.raises_tacrolimus_class and m.is_treatment
              and m.status not in NEVER_TAKEN_STATUSES and m.authored_on is not None]
    if drug.authored_on is None or not course:
        return None
    if level is None:
        return NoLevelSince(drug, min(m.authored_on for m in course if m.authored_on is not None))
    on_the_day = level.day

    def reflected(m: MedicationUse) -> bool:
        assert m.authored_on is not None
        ended = m.stopped_at(level.when)
        return m.authored_on.date().isoformat() < on_the_day and (ended is None or ended >= level.when)
    if any(reflected(m) for m in course):
        return None
    since = [m.authored_on for m in course if m.authored_on is not None
             and m.authored_on.date().isoformat() >= on_the_day]
    started = min(since) if since else drug.authored_on
    return NoLevelSince(drug, started, level_same_day=started.date().isoformat() == on_the_day)


def contributing_factors(facts: PatientFacts, latest: UsableResult, now: datetime,
                         thresholds: Thresholds, use: TacrolimusUse | None = None,
                         trough_suggested: bool = False) -> ContributingFactors | None:
    """Section 7: what worsens magnesium loss, the most actionable first. A missing tacrolimus
    level is not a factor (the severity card asks for one instead); a drug raising tacrolimus
    levels started with no level since is said first, with a trough when none is suggested yet
    (`trough_suggested`). Never for stopped or held tacrolimus (`use`; section 1)."""
    active = [m for m in facts.medications if m.active]
    wasting = tuple(m for m in active if m.wasting_class)
    level = latest_usable(facts.usable_labs_of(LabKind.TACROLIMUS_LEVEL))
    raising_newest = _newest_first(m for m in active if m.raises_tacrolimus_class)  # section 7
    taking = use is not None and use.taking
    unknown_effect = tuple(found for m in raising_newest if taking
                           for found in [no_level_since(facts, m, level)] if found is not None)
    said_first = {id(u.drug) for u in unknown_effect}
    raising = tuple(u.drug for u in unknown_effect) + tuple(
        m for m in raising_newest if id(m) not in said_first)
    window = trough_window_days(facts, now, thresholds)
    high = False
    # Only a recent level says anything about today's exposure.
    if level is not None and not is_older_than(level, window, now) \
            and level.comparator not in ("<", "<="):
        limit = thresholds.tacrolimus_high_above
        high = level.normalised > limit + COMPARISON_TOLERANCE or (
            level.reference_high is not None and level.value is not None and level.value > level.reference_high)
    rise = egfr_rise(facts, thresholds)
    if not (wasting or raising or high or rise):
        return None
    return ContributingFactors(latest, wasting, raising, level, high, rise,
                               no_level_since=unknown_effect,
                               suggest_trough=bool(unknown_effect) and not trough_suggested)


def trough_missing(facts: PatientFacts, use: TacrolimusUse, now: datetime,
                   thresholds: Thresholds) -> int | None:
    """The window (days) without a tacrolimus level, when one should be suggested; never for
    stopped, held or starting tacrolimus (section 7)."""
    if not use.taking:
        return None
    window = trough_window_days(facts, now, thresholds)
    level = latest_usable(facts.usable_labs_of(LabKind.TACROLIMUS_LEVEL))
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
    results = usable_by_time(r for r in facts.usable_labs_of(LabKind.MG_SERUM) if r.when >= started)
    run: list[UsableResult] = []
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


def femg(facts: PatientFacts, latest: UsableResult, thresholds: Thresholds) -> FemgFinding:
    """FEMg (%) = (U_Mg x S_Cr) / (0.7 x S_Mg x U_Cr) x 100 from results within the window."""
    window = timedelta(hours=thresholds.femg_window_hours)

    def near(kind: LabKind) -> UsableResult | None:
        close = [r for r in facts.usable_labs_of(kind) if r.comparator is None
                 and abs(r.when - latest.when) <= window]
        return min(close, key=lambda r: abs(r.when - latest.when)) if close else None

    urine_mg, serum_cr = near(LabKind.MG_URINE), near(LabKind.CREATININE_SERUM)
    urine_cr = near(LabKind.CREATININE_URINE)
    if latest.comparator is not None or urine_mg is None or serum_cr is None or urine_cr is None:
        return FemgFinding(latest, None, None, ())
    times = [r.when for r in (latest, urine_mg, serum_cr, urine_cr)]
    if max(times) - min(times) > window:  # "within 24 hours of each other" (section 7)
        return FemgFinding(latest, None, None, ())
    # Usable results are positive (facts refuse values <= 0), so the division is safe.
    value = (urine_mg.normalised * serum_cr.normalised) / (
        FEMG_FILTERED_FRACTION * latest.normalised * urine_cr.normalised) * 100.0
    return FemgFinding(latest, value, value > thresholds.femg_renal_wasting_above,
                       (latest, serum_cr, urine_mg, urine_cr))
