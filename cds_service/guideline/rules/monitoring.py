"""Sections 4 and 5: the monitoring interval and recent symptoms."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..facts import LabResult, PatientFacts, Symptom
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
