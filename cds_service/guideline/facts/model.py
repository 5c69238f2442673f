"""The facts the rules read: small frozen dataclasses holding only what the guideline uses."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeGuard, TypeVar, overload

from ..codes import LabKind
from .values import number, parse_datetime

T = TypeVar("T")

USABLE_OBSERVATION_STATUSES = frozenset({"final", "amended", "corrected"})
SHOWN_OBSERVATION_STATUSES = USABLE_OBSERVATION_STATUSES | {"preliminary"}
ACTIVE_MEDICATION_STATUSES = frozenset({"active", "on-hold"})
# Section 1: home medications count when active, intended or on hold.
ACTIVE_STATEMENT_STATUSES = frozenset({"active", "intended", "on-hold"})
ENDED_MEDICATION_STATUSES = frozenset({"stopped", "completed"})
# Records that never were a course of the drug (sections 1 and 4): `draft` outside draftOrders
# was never signed, `unknown` never counts, a statement `not-taken` says it was not taken.
NEVER_TAKEN_STATUSES = frozenset({"entered-in-error", "cancelled", "draft", "unknown", "not-taken"})
# Section 1: a plan or proposal is not yet a treatment.
TREATMENT_INTENTS = frozenset({"order", "original-order", "reflex-order", "filler-order",
                               "instance-order"})


class cached(Generic[T]):  # noqa: N801 - used as a decorator, like cached_property
    """functools.cached_property without its lock: Python 3.11 holds one lock per property for
    every instance, which the threads of a worker wait on when they read new facts at the same
    time. Two threads may compute the same value; both store it (the facts never change)."""

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> cached[T]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> T | cached[T]:
        if instance is None:
            return self
        value = self.func(instance)
        instance.__dict__[self.name] = value  # found there from now on (not a data descriptor)
        return value


@dataclass(frozen=True)
class LabResult:
    """One laboratory Observation, read leniently."""

    kind: LabKind
    observation_id: str | None
    when: datetime | None
    status: str
    value: float | None  # as reported, in `unit`
    unit: str  # as reported (UCUM code or text)
    comparator: str | None
    normalised: float | None  # mEq/L for magnesium, mg/dL for creatinine, as reported otherwise
    reference_high: float | None = None
    local_day: str | None = None  # the date as the lab wrote it (its own time zone)
    # `issued` as sent: read only when results share a time (section 2), so parsed on demand.
    issued_text: str | None = None
    # Final/amended/corrected, dated, with a number in a unit the table knows: derived from the
    # fields above once (the rules ask it of every result several times per call).
    usable: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "usable", self.status in USABLE_OBSERVATION_STATUSES
                           and self.when is not None and self.normalised is not None)

    @property
    def issued(self) -> datetime | None:
        """When the lab released this version (corrections, section 2)."""
        return parse_datetime(self.issued_text)

    @cached  # asked of the same result by several cards, and again for kept facts
    def shown(self) -> str:
        """The value as the lab reported it, e.g. '<0.5 mmol/L'."""
        if self.value is None:
            return "no value"
        unit = self.unit.replace("{1.73_m2}", "1.73 m²")
        return f"{self.comparator or ''}{number(self.value)} {unit}".strip()

    @property
    def day(self) -> str:
        """The result's date as the lab reported it (not shifted to UTC)."""
        if self.local_day:
            return self.local_day
        return self.when.date().isoformat() if self.when else "undated"

    @property
    def unreadable_reason(self) -> str | None:
        if self.status not in SHOWN_OBSERVATION_STATUSES:
            return None  # ignored outright (entered-in-error, cancelled, ...)
        if self.value is None:
            return "no numeric value"
        if self.value <= 0:
            return "value not plausible"
        if self.normalised is None:
            return f"unit '{self.unit or 'none'}' not recognised"
        if self.when is None:
            return "no date"
        return None



if TYPE_CHECKING:
    class UsableResult(LabResult):
        """A LabResult known to be usable: dated, with a value in the unit the rules compare."""

        when: datetime
        normalised: float
else:
    UsableResult = LabResult  # at run time a usable result is a LabResult like any other


def is_usable(result: LabResult) -> TypeGuard[UsableResult]:
    """``result.usable`` in a form the type checker follows: ``when`` and ``normalised`` are set."""
    return result.usable


def usable_only(results: Iterable[LabResult]) -> list[UsableResult]:
    """The usable results, in their order."""
    return [r for r in results if is_usable(r)]


@dataclass(frozen=True)
class MedicationUse:
    """One MedicationRequest/MedicationStatement, with what section 1 and 8 need to know."""

    resource_type: str
    request_id: str | None
    name: str
    status: str
    authored_on: datetime | None
    is_topical: bool
    is_tacrolimus: bool
    wasting_class: str | None  # key of codes.MAGNESIUM_WASTING
    raises_tacrolimus_class: str | None
    lowers_tacrolimus_class: str | None
    is_magnesium_supplement: bool
    ingredient: str | None  # the section 8 ingredient recognised, e.g. "omeprazole"
    intent: str | None = None
    ended_on: datetime | None = None  # dosage bounds / dispense validity / effective period end
    # meta.lastUpdated: a status change to stopped/completed updates it; the best stop date an
    # order without an end date carries (section 1, recently stopped).
    last_updated: datetime | None = None
    route: str = ""  # "oral", "intravenous" or "" (not stated)

    @property
    def is_treatment(self) -> bool:
        """An order (not a plan or proposal) or a statement of use (section 1)."""
        if self.resource_type == "MedicationStatement":
            return True
        return self.intent is None or self.intent in TREATMENT_INTENTS

    @property
    def is_intravenous(self) -> bool:
        """IV route or an injectable form (section 6: no one-click PPI swap)."""
        return self.route == "intravenous"

    @property
    def active(self) -> bool:
        if not self.is_treatment:
            return False
        if self.resource_type == "MedicationStatement":
            return self.status in ACTIVE_STATEMENT_STATUSES
        return self.status in ACTIVE_MEDICATION_STATUSES

    @property
    def on_hold(self) -> bool:
        return self.active and self.status == "on-hold"

    def stopped_at(self, now: datetime) -> datetime | None:
        """When this treatment ended (stopped/completed, or its bounds ran out before now)."""
        if not self.is_treatment:
            return None
        if self.status in ENDED_MEDICATION_STATUSES:
            return self.ended_on or self.last_updated or self.authored_on
        if self.active and self.ended_on is not None and self.ended_on < now:
            return self.ended_on
        return None

    @property
    def is_systemic_tacrolimus(self) -> bool:
        return self.is_tacrolimus and not self.is_topical


@dataclass(frozen=True)
class MagnesiumGiven:
    """A magnesium MedicationAdministration (completed or in progress), section 3."""

    name: str
    when: datetime
    status: str
    dose: str  # e.g. "2 g", "" when not stated
    route: str


@dataclass(frozen=True)
class AgeAtOnset:
    """Condition.onsetAge, or onsetRange's low and high (section 5): the patient's age when the
    symptom began, each side as (value, UCUM unit 'a', 'mo', 'wk' or 'd'); None: open on that
    side. Placing it in time needs the birth date, which is the patient's, not the Condition's:
    the rules do it (rules/monitoring.py), so that this fact stays one resource's reading."""

    low: tuple[float, str] | None
    high: tuple[float, str] | None


@dataclass(frozen=True)
class Symptom:
    name: str
    code: str | None
    # The onset (dateTime or period start); recordedDate when the Condition has no onset, or
    # when its onset is an age (`onset_age`) that the patient's birth date cannot place.
    when: datetime | None
    urgent: bool
    major: bool = True  # seizure, tetany, arrhythmia, QT prolongation; cramp and tremor are minor
    onset_age: AgeAtOnset | None = None  # onsetAge/onsetRange: decides over `when` (section 5)


@dataclass(frozen=True)
class PatientFacts:
    """Everything the rules read about one patient, already normalised."""

    patient_id: str | None
    encounter_id: str | None
    medications: tuple[MedicationUse, ...] = ()
    labs: tuple[LabResult, ...] = ()
    symptoms: tuple[Symptom, ...] = ()
    transplant_dates: tuple[datetime, ...] = ()
    hospitalized: bool = False
    unavailable: tuple[str, ...] = ()  # data that could not be read (e.g. "procedures")
    # Order hooks (section 6): every draft medication order, and those the clinician acts on
    # (order-select's selections; all drafts for order-sign).
    draft_orders: tuple[MedicationUse, ...] = field(default=())
    selected_drafts: tuple[MedicationUse, ...] = field(default=())
    # Serum magnesium lab orders already placed or drafted (the monitoring plan is in place).
    magnesium_lab_orders: int = 0
    # Magnesium lab drafts among the drafts acted on (section 6: a relevant draft).
    selected_magnesium_lab_drafts: int = 0
    # Section 3: who the patient is and what limits the doses.
    birth_date: date | None = None
    # The last day a partial birthDate allows ('1968' -> 1968-12-31); birth_date's day when it
    # is a full date. Section 5 places an onset age between the two (rules/monitoring.py).
    birth_date_last: date | None = None
    sex: str | None = None  # "female", "male" or None (unknown)
    administrations: tuple[MagnesiumGiven, ...] = ()
    esrd: bool = False  # an active end-stage renal disease Condition
    dialysis_dates: tuple[datetime, ...] = ()  # dialysis Procedures

    def labs_of(self, kind: LabKind) -> list[LabResult]:
        """The results of one kind, in their order (a new list: the caller may change it)."""
        return list(self._labs_by_kind.get(kind, ()))

    def usable_labs_of(self, kind: LabKind) -> list[UsableResult]:
        """The usable results of one kind, in their order (a new list)."""
        return list(self._usable_by_kind.get(kind, ()))

    @cached
    def latest_lab_time(self) -> datetime | None:
        """The latest time of any result (whether any is in the future is asked twice a call)."""
        return max((lab.when for lab in self.labs if lab.when is not None), default=None)

    @cached
    def _usable_by_kind(self) -> dict[LabKind, list[UsableResult]]:
        return {kind: usable_only(labs) for kind, labs in self._labs_by_kind.items()}

    @cached
    def _labs_by_kind(self) -> dict[LabKind, list[LabResult]]:
        """The results grouped once (the rules ask for a kind about ten times per call)."""
        grouped: dict[LabKind, list[LabResult]] = {}
        for lab in self.labs:
            grouped.setdefault(lab.kind, []).append(lab)
        return grouped
