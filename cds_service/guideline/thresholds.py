"""Every number of the clinical guideline, named as there, in one place (docs/clinical-rules.md).

A hospital overrides any of them with an environment variable ``CDS_GUIDELINE_<NAME>``
(for example ``CDS_GUIDELINE_SEVERE_BELOW=1.0``); see ``cds_service.config``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    """Guideline defaults (sections 3, 4, 5 and 7 of docs/clinical-rules.md)."""

    # Section 3: severity of the latest usable serum magnesium, in mEq/L.
    severe_below: float = 1.0
    low_at_or_below: float = 1.4
    target_above: float = 1.5
    # Section 3: high magnesium while a supplement is active (mg-high card), in mEq/L.
    high_above: float = 2.5
    # Section 3: renal impairment caution on every supplementation suggestion.
    egfr_caution_below: float = 30.0
    # Section 3: eGFR / creatinine older than this is not used for the renal caution.
    renal_function_recent_days: int = 90
    # Section 3: a body weight this recent gives children's doses in mg.
    body_weight_recent_days: int = 30
    # Section 3: a dialysis Procedure this recent means the patient is on dialysis.
    dialysis_recent_days: int = 30
    # Section 1: tacrolimus stopped this recently keeps the patient in scope.
    recently_stopped_days: int = 14
    # Section 2: results dated later than now + this are clock skew or typing errors.
    future_tolerance_minutes: int = 60
    # Section 4: monitoring intervals, in days.
    routine_interval_days: int = 42
    early_interval_days: int = 7
    early_phase_days: int = 30
    inpatient_interval_days: int = 3
    # Section 5: a symptom counts when recorded or with onset this recently.
    symptom_window_days: int = 14
    # Section 6: "Mg low or unmeasured in 30 days" makes the tacrolimus-start card a warning.
    order_recent_mg_days: int = 30
    # Section 7: contributing factors.
    tacrolimus_high_above: float = 15.0  # ng/mL, whole blood
    tacrolimus_level_recent_days: int = 30  # first year after transplant or tacrolimus start
    tacrolimus_level_recent_days_late: int = 90  # after the first year
    egfr_rise_fraction: float = 0.20
    egfr_rise_window_days: int = 90
    # Section 7: persistent hypomagnesemia despite supplementation.
    persistent_min_results: int = 2
    persistent_min_span_days: int = 14
    # Section 7: FEMg inputs must lie within this many hours of each other; > 2 % is renal wasting.
    femg_window_hours: int = 24
    femg_renal_wasting_above: float = 2.0

    def with_overrides(self, overrides: Mapping[str, str]) -> Thresholds:
        """A copy with values parsed from strings (configuration); unknown names raise KeyError."""
        types = {f.name: f.type for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, raw in overrides.items():
            if name not in types:
                raise KeyError(name)
            changes[name] = int(raw) if types[name] in (int, "int") else float(raw)
        return replace(self, **changes)


DEFAULT_THRESHOLDS = Thresholds()

# Comparisons after unit conversion use this tolerance, so 0.70 mmol/L is exactly 1.40 mEq/L.
COMPARISON_TOLERANCE = 1e-9

# Section 2: conversion factors to mEq/L, keyed by the lower-cased UCUM code or unit text.
# Magnesium: 24.305 g/mol, valence 2.
MAGNESIUM_MOLAR_MASS = 24.305
MG_UNIT_TO_MEQ_PER_L: Mapping[str, float] = {
    "meq/l": 1.0,
    "mmol/l": 2.0,
    "mg/dl": 10.0 / MAGNESIUM_MOLAR_MASS * 2.0,
    "mg/l": 2.0 / MAGNESIUM_MOLAR_MASS,
}

# The FEMg formula's filtered fraction of serum magnesium (section 7).
FEMG_FILTERED_FRACTION = 0.7

# The unit of each threshold above, for the settings' error messages and the rule pages.
THRESHOLD_UNITS: Mapping[str, str] = {
    "severe_below": "mEq/L",
    "low_at_or_below": "mEq/L",
    "target_above": "mEq/L",
    "egfr_caution_below": "mL/min/1.73 m²",
    "routine_interval_days": "days",
    "early_interval_days": "days",
    "early_phase_days": "days",
    "inpatient_interval_days": "days",
    "symptom_window_days": "days",
    "order_recent_mg_days": "days",
    "tacrolimus_high_above": "ng/mL",
    "tacrolimus_level_recent_days": "days",
    "egfr_rise_fraction": "fraction of the earlier eGFR",
    "egfr_rise_window_days": "days",
    "persistent_min_results": "results",
    "persistent_min_span_days": "days",
    "femg_window_hours": "hours",
    "femg_renal_wasting_above": "%",
    # Thresholds the clinical and orders branches add (revision 2 of the guideline); listed
    # ahead so the merge needs no edit here.
    "high_above": "mEq/L",
    "renal_function_recent_days": "days",
    "body_weight_recent_days": "days",
    "dialysis_recent_days": "days",
    "recently_stopped_days": "days",
    "future_tolerance_minutes": "minutes",
    "tacrolimus_level_recent_days_late": "days",
}

# Famotidine's own labelling (not the guideline): renal dose steps by creatinine clearance,
# mL/min, applied to the famotidine offered in place of a PPI (section 6).
FAMOTIDINE_FULL_DOSE_EGFR = 60.0
FAMOTIDINE_REDUCED_DOSE_EGFR = 30.0
