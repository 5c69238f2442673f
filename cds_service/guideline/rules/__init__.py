"""The guideline's rules as pure functions: facts + clock + thresholds -> findings.

No Flask, no I/O, no ``datetime.now()``: every function takes ``now`` and ``thresholds``.
Section numbers refer to docs/clinical-rules.md.

One module per part of the guideline:

- ``findings``: Severity and the finding types the rules emit, and the Assessment
- ``severity``: sections 1-3, scope, the latest usable result and its class
- ``monitoring``: sections 4 and 5, the monitoring interval and recent symptoms
- ``renal``: section 7, eGFR, CKD-EPI 2021, dialysis, children's dosing
- ``contributing``: sections 3 and 7, given since, contributing factors, persistence, FEMg
- ``assessment``: ``assess``, every rule applied to one patient

The public names of each module are re-exported here: ``from cds_service.guideline.rules import X``.
"""

from __future__ import annotations

from .assessment import (
    MagnesiumResults,
    assess,
    findings_for,
    magnesium_high,
    magnesium_results,
    severity_findings,
)
from .contributing import (
    FIRST_YEAR_DAYS,
    NOT_GIVEN_ORDER_STATUSES,
    contributing_factors,
    egfr_rise,
    femg,
    given_since,
    persistent_low,
    supplement_start,
    trough_missing,
    trough_window_days,
)
from .findings import (
    Assessment,
    ChildDosing,
    ContributingFactors,
    EgfrRise,
    NoLevelSince,
    FemgFinding,
    Finding,
    GivenSince,
    MagnesiumHigh,
    MonitoringDue,
    MonitoringInterval,
    PersistentLow,
    RenalFunction,
    ResultsNotUsed,
    Severity,
    SeverityFinding,
    SymptomsWithNormalMagnesium,
    TacrolimusUse,
)
from .monitoring import (
    is_older_than,
    monitoring_interval,
    onset_interval,
    recent_symptoms,
    symptom_class,
    tacrolimus_start,
)
from .renal import (
    ADULT_AGE_YEARS,
    age_years,
    child_dosing,
    ckd_epi_2021,
    dialysis_reason,
    latest_egfr,
    renal_caution,
    renal_function,
)
from .severity import (
    best_at_same_time,
    classify,
    is_future,
    latest_usable,
    on_tacrolimus,
    set_aside_future,
    tacrolimus_use,
    taking_tacrolimus,
    usable_by_time,
)

__all__ = [
    "ADULT_AGE_YEARS",
    "Assessment",
    "ChildDosing",
    "ContributingFactors",
    "EgfrRise",
    "NoLevelSince",
    "FIRST_YEAR_DAYS",
    "FemgFinding",
    "Finding",
    "GivenSince",
    "MagnesiumHigh",
    "MagnesiumResults",
    "MonitoringDue",
    "MonitoringInterval",
    "NOT_GIVEN_ORDER_STATUSES",
    "PersistentLow",
    "RenalFunction",
    "ResultsNotUsed",
    "Severity",
    "SeverityFinding",
    "SymptomsWithNormalMagnesium",
    "TacrolimusUse",
    "age_years",
    "assess",
    "best_at_same_time",
    "child_dosing",
    "ckd_epi_2021",
    "classify",
    "contributing_factors",
    "dialysis_reason",
    "egfr_rise",
    "femg",
    "findings_for",
    "given_since",
    "is_future",
    "is_older_than",
    "latest_egfr",
    "latest_usable",
    "magnesium_high",
    "magnesium_results",
    "monitoring_interval",
    "on_tacrolimus",
    "onset_interval",
    "persistent_low",
    "recent_symptoms",
    "renal_caution",
    "renal_function",
    "set_aside_future",
    "severity_findings",
    "supplement_start",
    "symptom_class",
    "tacrolimus_start",
    "tacrolimus_use",
    "taking_tacrolimus",
    "trough_missing",
    "trough_window_days",
    "usable_by_time",
]
