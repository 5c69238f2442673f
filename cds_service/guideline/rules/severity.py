"""Sections 1-3: scope (is the patient taking tacrolimus), the latest usable result and its class."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from ..facts import LabResult, MedicationUse, PatientFacts, UsableResult, is_usable, usable_only
from ..thresholds import COMPARISON_TOLERANCE, Thresholds
from .findings import Severity, TacrolimusUse


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


def best_at_same_time(results: Iterable[UsableResult]) -> UsableResult:
    """Section 2, corrections: at one effective time a corrected/amended result supersedes a
    final one (whatever its id); among equals the later `issued` wins; only true duplicates
    fall back to the lowest value (be conservative)."""
    group = list(results)
    if len(group) == 1:
        return group[0]  # the usual case: one result at a time
    top = max(_STANDING.get(r.status, 0) for r in group)
    group = [r for r in group if _STANDING.get(r.status, 0) == top]
    issued = [r.issued for r in group if r.issued is not None]
    if issued:
        newest = max(issued)
        group = [r for r in group if r.issued == newest]
    return min(group, key=lambda r: r.normalised)


def usable_by_time(results: Iterable[LabResult]) -> list[UsableResult]:
    """One usable result per effective time (corrections applied), oldest first."""
    at: dict[datetime, list[UsableResult]] = {}
    for r in usable_only(results):
        at.setdefault(r.when, []).append(r)
    return [best_at_same_time(at[when]) for when in sorted(at)]


def latest_usable(results: Iterable[LabResult]) -> UsableResult | None:
    """The newest usable result (corrections applied at equal times, section 2)."""
    newest: datetime | None = None
    at_newest: list[UsableResult] = []
    for r in results:  # one pass: the rules ask this about ten times a call
        if not is_usable(r):
            continue
        if newest is None or r.when > newest:
            newest, at_newest = r.when, [r]
        elif r.when == newest:
            at_newest.append(r)
    return best_at_same_time(at_newest) if at_newest else None


def is_future(result: LabResult, now: datetime, thresholds: Thresholds) -> bool:
    """Section 2: dated later than now + future_tolerance_minutes (clock skew, typing error)."""
    return _dated_after(result, _future_from(now, thresholds))


def _future_from(now: datetime, thresholds: Thresholds) -> datetime:
    return now + timedelta(minutes=thresholds.future_tolerance_minutes)


def _dated_after(result: LabResult, moment: datetime) -> bool:
    return result.when is not None and result.when > moment


def set_aside_future(facts: PatientFacts, now: datetime,
                     thresholds: Thresholds) -> tuple[PatientFacts, tuple[LabResult, ...]]:
    """The facts without future-dated results (never used for anything), and those results."""
    latest = _future_from(now, thresholds)  # once per call, not per result
    if facts.latest_lab_time is None or facts.latest_lab_time <= latest:
        return facts, ()  # the usual case, known without a walk (kept facts keep their latest time)
    future = tuple(r for r in facts.labs if _dated_after(r, latest))
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
