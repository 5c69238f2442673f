"""Sections 4 and 5: the monitoring interval and recent symptoms."""

from __future__ import annotations

import calendar
import math
from datetime import date, datetime, timedelta, timezone

from ..facts import NEVER_TAKEN_STATUSES, PatientFacts, Symptom, UsableResult
from ..thresholds import Thresholds
from .findings import MonitoringInterval


def monitoring_interval(facts: PatientFacts, now: datetime,
                        thresholds: Thresholds) -> MonitoringInterval:
    """The shortest interval that applies: inpatient, early phase, else routine."""
    candidates = [MonitoringInterval(thresholds.routine_interval_days, "routine on tacrolimus")]
    early_since = now - timedelta(days=thresholds.early_phase_days)
    if facts.transplant_dates and max(facts.transplant_dates) >= early_since:
        candidates.append(MonitoringInterval(thresholds.early_interval_days,
                                             f"first {thresholds.early_phase_days} days after transplant"))
    # Section 4: "a new tacrolimus order ... with no earlier one, starts it now".
    start = tacrolimus_start(facts) or (now if is_first_tacrolimus_order(facts) else None)
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


def has_earlier_tacrolimus(facts: PatientFacts) -> bool:
    """An earlier systemic tacrolimus order or statement of use on record, whatever its status
    or age (sections 4 and 6: a renewal or a resumption, not a start); the drafts being placed
    are not earlier orders.

    Section 4 defines the start as the earliest order "stopped and completed ones included" and
    puts no age limit on it: an order stopped five years ago makes a new one a renewal by that
    definition (the monitoring interval then follows the transplant date or the routine one)."""
    placed = {m.request_id for m in facts.draft_orders if m.request_id is not None}
    return any(m.is_systemic_tacrolimus and m.is_treatment and m.status not in NEVER_TAKEN_STATUSES
               and not (m.resource_type == "MedicationRequest" and m.request_id in placed)
               for m in facts.medications)


def is_first_tacrolimus_order(facts: PatientFacts) -> bool:
    """A systemic tacrolimus draft with no earlier tacrolimus on record: it starts tacrolimus now
    (sections 4 and 6)."""
    return (any(m.is_systemic_tacrolimus for m in facts.draft_orders)
            and not has_earlier_tacrolimus(facts))


def is_older_than(result: UsableResult, days: int, now: datetime) -> bool:
    return result.when < now - timedelta(days=days)


# --------------------------------------------------------------------------------------------
# Section 5: symptoms


def recent_symptoms(facts: PatientFacts, now: datetime, thresholds: Thresholds) -> tuple[Symptom, ...]:
    since = now - timedelta(days=thresholds.symptom_window_days)
    until = now + timedelta(days=1)  # a clock a little ahead of ours

    def recent(symptom: Symptom) -> bool:
        interval = onset_interval(symptom, facts.birth_date, facts.birth_date_last)
        if interval is not None:
            start, end = interval
            return start <= until and (end is None or end > since)
        return symptom.when is not None and since <= symptom.when <= until
    return tuple(s for s in facts.symptoms if recent(s))


def onset_interval(symptom: Symptom, born: date | None,
                   born_last: date | None = None) -> tuple[datetime, datetime | None] | None:
    """Where an onset given as an age (onsetAge/onsetRange) places the onset: [start, end), end
    None when open; None when there is no such age or no birth date to count it from.

    Section 5 lets the onset decide, and an age is an onset: "seizures since age 30" in a
    58-year-old is not new, however recently it was recorded. An age in whole units is a span,
    not a day: onset at 30 years is any day from the 30th birthday to the day before the 31st
    (birth + age <= onset < birth + age + 1 unit), and a range runs from its low age to its high
    age + 1 unit. The symptom is recent when that span can reach the window: a major symptom that
    may have begun in the last 14 days must not be dismissed (an onset at 58 years in a
    58-year-old counts). For the same reason a side the EHR left open stays open, and a partial
    birth date ('1968') counts the start from its first day and the end from its last
    (`born_last`). Without a birth date the age cannot be placed: the caller falls back to the
    recorded date, as for a Condition with no onset (the recorded date stands in for "today")."""
    age = symptom.onset_age
    if age is None or born is None:
        return None
    try:
        start = _plus(born, age.low[0], age.low[1], later=False) if age.low else born
    except (OverflowError, ValueError):
        return None  # an age no one reaches (beyond year 9999): not an onset that can be placed
    try:
        last = max(born, born_last or born)
        end = _plus(last, age.high[0] + 1, age.high[1], later=True) if age.high else None
    except (OverflowError, ValueError):
        end = None
    return _midnight(start), _midnight(end) if end is not None else None


_DAYS_PER_UNIT = {"a": 365.25, "mo": 30.4375, "wk": 7.0, "d": 1.0}


def _plus(born: date, value: float, unit: str, *, later: bool) -> date:
    """The day a person born on `born` reaches `value` units ('a', 'mo', 'wk', 'd') of age.

    Whole years and months by the calendar; born on a day the month reached lacks (29 February,
    the 31st), the birthday is that month's last day or the next day, as customs differ. A
    fraction of a unit ("6.5 years") in days, rounded to a whole day. `later` says which end of
    the span this is: each uncertainty is resolved to widen the span, never to narrow it."""
    whole = math.floor(value)
    extra = (value - whole) * _DAYS_PER_UNIT[unit]
    extra_days = math.ceil(extra) if later else math.floor(extra)
    if unit in ("d", "wk"):
        return born + timedelta(days=whole * int(_DAYS_PER_UNIT[unit]) + extra_days)
    months = born.month - 1 + (whole * 12 if unit == "a" else whole)
    year, month = born.year + months // 12, months % 12 + 1
    last = calendar.monthrange(year, month)[1]
    if born.day <= last:
        return date(year, month, born.day) + timedelta(days=extra_days)
    return date(year, month, last) + timedelta(days=(1 if later else 0) + extra_days)


def _midnight(day: date) -> datetime:
    # The start of the day in UTC, as a date-only onsetDateTime is read (facts/values.py).
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def symptom_class(symptoms: tuple[Symptom, ...]) -> bool | str:
    """'major' when any symptom is major, 'minor' when only cramp/tremor, False without any."""
    if not symptoms:
        return False
    return "major" if any(s.major for s in symptoms) else "minor"
