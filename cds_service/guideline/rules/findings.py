"""What the rules find: the severity classes, one frozen dataclass per finding, and the Assessment."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from ..facts import LabResult, MedicationUse, Symptom, UsableResult


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
    result: UsableResult | None = None  # the eGFR result, or the creatinine it was estimated from
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
    weight: UsableResult | None  # body weight (kg) within body_weight_recent_days


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
    latest: UsableResult
    symptoms: tuple[Symptom, ...]
    stale: bool  # older than the monitoring interval: ask for a repeat level
    interval: MonitoringInterval
    renal_caution: UsableResult | None  # the eGFR (or creatinine) behind an impaired renal function
    supplements: tuple[MedicationUse, ...] = ()  # active magnesium supplements (already treated)
    # Supplements being ordered right now: drafts (section 6).
    supplement_drafts: tuple[MedicationUse, ...] = ()
    egfr: UsableResult | None = None  # the latest eGFR (None: renal function unknown)
    femg_missing: bool = False  # low Mg without an FEMg: the work-up may be suggested (section 7)
    persistent: PersistentLow | None = None  # persistence replaces this card (section 7)
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
    latest: UsableResult | None  # None: never measured
    symptoms: tuple[Symptom, ...]


@dataclass(frozen=True)
class SymptomsWithNormalMagnesium:
    latest: UsableResult
    symptoms: tuple[Symptom, ...]


@dataclass(frozen=True)
class EgfrRise:
    earlier: UsableResult
    latest: UsableResult
    fraction: float  # the least rise the values allow when one of them is a bound

    @property
    def at_least(self) -> bool:
        """The rise is a lower bound: the latest is reported as '>N' or the earlier as '<N'."""
        return self.latest.comparator is not None or self.earlier.comparator is not None


@dataclass(frozen=True)
class NoLevelSince:
    """Section 7: a drug that raises tacrolimus levels, started with no tacrolimus level since."""

    drug: MedicationUse
    started: datetime
    # The latest level was taken the day the drug started: before its effect could show.
    level_same_day: bool = False


@dataclass(frozen=True)
class ContributingFactors:
    latest: UsableResult
    wasting_drugs: tuple[MedicationUse, ...]
    raising_drugs: tuple[MedicationUse, ...]  # those without a level since their start first
    tacrolimus_level: UsableResult | None  # the latest level, high or not
    tacrolimus_high: bool
    egfr_rise: EgfrRise | None
    # Section 7 (revision 2): a missing level is never a factor; kept False for readers of rev. 1.
    tacrolimus_level_missing: bool = False
    # Section 7: "a drug started recently without a trough since is the first thing to say".
    no_level_since: tuple[NoLevelSince, ...] = ()
    suggest_trough: bool = False  # no other card of this answer suggests a trough already


@dataclass(frozen=True)
class MagnesiumHigh:
    """Section 3: Mg above high_above while a supplement is active (card kind mg-high)."""

    latest: UsableResult
    supplements: tuple[MedicationUse, ...]
    renal: RenalFunction


@dataclass(frozen=True)
class PersistentLow:
    results: tuple[UsableResult, ...]  # oldest first
    supplement: MedicationUse
    severe: bool
    renal_caution: UsableResult | None = None  # eGFR below egfr_caution_below: dose increases with care


@dataclass(frozen=True)
class FemgFinding:
    latest: UsableResult
    value: float | None  # percent; None when the four inputs are not all available
    renal_wasting: bool | None
    inputs: tuple[UsableResult, ...]


@dataclass(frozen=True)
class ResultsNotUsed:
    """Newer magnesium results that could not be used, when no other card would say so."""

    latest: UsableResult | None  # the result the assessment used, if any
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
    ionized: UsableResult | None = None
    preliminary: tuple[LabResult, ...] = ()  # newer preliminary results: shown, not classified
    unavailable: tuple[str, ...] = ()
    starting_tacrolimus: bool = False  # in scope only through a draft order (section 6)
    latest: UsableResult | None = None  # the serum magnesium result the rules used
    tacrolimus: TacrolimusUse | None = None  # taking, on hold, recently stopped or starting
    future: tuple[LabResult, ...] = ()  # results dated in the future: named, never used
