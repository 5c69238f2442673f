"""docs/clinical-rules.md section 6: what the order hooks add, as pure functions over the facts.

The order hooks answer about the orders being placed. A draft is relevant when it is systemic
tacrolimus, a drug of section 8 (magnesium-wasting, or changing tacrolimus levels), a magnesium
supplement or a magnesium lab order; order-select looks only at the drafts in `selections`,
order-sign at every draft. With a relevant draft the answer holds the order findings below and
the patient's severity and monitoring findings (sections 3-4); without one, order-select answers
nothing and order-sign only a critical severity no magnesium draft addresses (the services filter
the cards, see `ORDER_HOOK_PATIENT_TOPICS`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from . import codes
from .codes import LabKind
from .facts import LabResult, MedicationUse, PatientFacts, UsableResult
from .rules import (
    Assessment,
    Finding,
    MagnesiumHigh,
    MonitoringDue,
    Severity,
    SeverityFinding,
    child_dosing,
    classify,
    is_older_than,
    latest_egfr,
    latest_usable,
    renal_function,
)
from .thresholds import COMPARISON_TOLERANCE, Thresholds

# The patient-level cards an order hook repeats next to its order cards (sections 3-4; the
# persistence card takes the severity card's place, section 7).
ORDER_HOOK_PATIENT_TOPICS = frozenset({"mg-severity", "mg-persistent", "mg-monitoring", "mg-high"})
# Without a relevant draft, order-sign keeps only these, and only when critical.
UNADDRESSED_CRITICAL_TOPICS = frozenset({"mg-severity", "mg-persistent"})


class InteractionStrength(enum.Enum):
    """Section 6's three strengths of advice for a drug that changes tacrolimus levels."""

    BOOSTER = "booster"  # ritonavir, cobicistat: critical, hold or sharply reduce tacrolimus
    STRONG = "strong"  # other strong CYP3A inhibitors: dose reduction usually needed
    OTHER = "other"  # other inhibitors and the inducers: trough and Mg within about a week


@dataclass(frozen=True)
class TacrolimusStart:
    draft: MedicationUse
    latest: UsableResult | None  # the latest usable serum Mg
    concern: str | None  # why this is a warning: "low" or "not measured in 30 days"; None: info
    suggest_baseline: bool  # False when another card already asks for a serum Mg, or one is ordered
    due_now: bool  # the level is due now (concern, or the early-phase interval has passed)
    # A serum Mg is already ordered (placed or being signed): the card still gives the plan,
    # says so, and orders no second one (section 4: never two orders for the same test).
    mg_ordered: bool = False


@dataclass(frozen=True)
class WastingDrugOrdered:
    drafts: tuple[MedicationUse, ...]
    latest: UsableResult | None
    tacrolimus_level: LabResult | None
    egfr: LabResult | None  # doses the famotidine offered in place of a PPI
    concern: str | None  # "low", "below target", "not measured": warning; None (at target): info
    # A serum Mg is already ordered (placed or being signed): the card says so, orders no second.
    mg_ordered: bool = False
    # Section 3, children: no fixed-dose medication suggestion (the famotidine swap included).
    child_age: int | None = None


@dataclass(frozen=True)
class InteractingDrugOrdered:
    raising: tuple[MedicationUse, ...]
    lowering: tuple[MedicationUse, ...]
    latest: UsableResult | None
    tacrolimus_level: LabResult | None
    strength: InteractionStrength = InteractionStrength.OTHER
    interacting: tuple[str, ...] = ()  # the ingredients that decide the strength, strongest first
    # Section 1: "on-hold" or "stopped" tacrolimus never gets a trough suggestion.
    tacrolimus_state: str = "taking"
    tacrolimus_stopped_on: datetime | None = None
    mg_ordered: bool = False  # as WastingDrugOrdered.mg_ordered


OrderFinding = TacrolimusStart | WastingDrugOrdered | InteractingDrugOrdered


def interaction_strength(draft: MedicationUse) -> InteractionStrength:
    """Section 6: boosters, then the strong CYP3A inhibitors, then everything else."""
    if draft.raises_tacrolimus_class and draft.ingredient in codes.BOOSTERS:
        return InteractionStrength.BOOSTER
    if draft.raises_tacrolimus_class and draft.ingredient in codes.STRONG_CYP3A_INHIBITORS:
        return InteractionStrength.STRONG
    return InteractionStrength.OTHER


def relevant_drafts(facts: PatientFacts) -> tuple[MedicationUse, ...]:
    """The acted-on medication drafts section 6 speaks about."""
    return tuple(d for d in facts.selected_drafts
                 if d.is_systemic_tacrolimus or d.wasting_class or d.raises_tacrolimus_class
                 or d.lowers_tacrolimus_class or d.is_magnesium_supplement)


def has_relevant_draft(facts: PatientFacts) -> bool:
    return bool(relevant_drafts(facts)) or facts.selected_magnesium_lab_drafts > 0


def assess_orders(facts: PatientFacts, base: Assessment, now: datetime,
                  thresholds: Thresholds) -> tuple[Finding | OrderFinding, ...]:
    """The patient's findings (sections 3-5, 7) with section 6's order findings added.

    A tacrolimus start carries the baseline magnesium order, so it replaces a 'due' card.
    The cards of an order hook are then narrowed to ORDER_HOOK_PATIENT_TOPICS plus these.
    """
    if not base.on_tacrolimus:
        return ()
    latest = base.latest
    level = latest_usable(facts.usable_labs_of(LabKind.TACROLIMUS_LEVEL))
    findings: list = list(base.findings)
    if facts.magnesium_lab_orders:
        # A serum Mg is already ordered: asking for it again would be noise (section 4).
        findings = [f for f in findings if not isinstance(f, MonitoringDue)]
    drafts = relevant_drafts(facts)
    starting = next((d for d in drafts if d.is_systemic_tacrolimus), None)
    if starting is not None and base.starting_tacrolimus:
        due = any(isinstance(f, MonitoringDue) for f in findings)
        start = _tacrolimus_start(facts, starting, latest, now, thresholds,
                                  severity_card=any(isinstance(f, SeverityFinding) for f in findings),
                                  due=due)
        if start is not None:
            findings = [f for f in findings if not isinstance(f, MonitoringDue)]
            findings.append(start)

    supplements = tuple(d for d in drafts if d.is_magnesium_supplement)
    if supplements and latest is not None and latest.comparator not in ("<", "<=") \
            and latest.normalised > thresholds.high_above + COMPARISON_TOLERANCE:
        # Section 3's high-magnesium card, for magnesium being ordered too (not only taken).
        high = next((f for f in findings if isinstance(f, MagnesiumHigh)), None)
        findings = [f for f in findings if not isinstance(f, MagnesiumHigh)]
        findings.append(MagnesiumHigh(latest, supplements + (high.supplements if high else ()),
                                      high.renal if high else renal_function(facts, now, thresholds)))

    wasting = tuple(d for d in drafts if d.wasting_class and not d.is_systemic_tacrolimus)
    if wasting:
        child = child_dosing(facts, now, thresholds)
        findings.append(WastingDrugOrdered(wasting, latest, level, latest_egfr(facts),
                                           _wasting_concern(latest, now, thresholds),
                                           mg_ordered=facts.magnesium_lab_orders > 0,
                                           child_age=child.age_years if child else None))
    raising = tuple(d for d in drafts if d.raises_tacrolimus_class)
    lowering = tuple(d for d in drafts if d.lowers_tacrolimus_class)
    if raising or lowering:
        ranked = sorted(raising + lowering, key=lambda d: list(InteractionStrength).index(
            interaction_strength(d)))
        strength = interaction_strength(ranked[0])
        interacting = tuple(dict.fromkeys(d.ingredient or d.name for d in ranked))
        use = base.tacrolimus
        findings.append(InteractingDrugOrdered(raising, lowering, latest, level, strength,
                                               interacting, use.state if use else "taking",
                                               use.stopped_on if use else None,
                                               mg_ordered=facts.magnesium_lab_orders > 0))
    return tuple(findings)


def _wasting_concern(latest: UsableResult | None, now: datetime, thresholds: Thresholds) -> str | None:
    """Section 6: warning when Mg is low or unmeasured within the routine interval; info when
    the latest Mg is at target (a wasting drug's effect on Mg is a long-term one). A result
    between the low and target thresholds is not at target: warning."""
    if latest is None or is_older_than(latest, thresholds.routine_interval_days, now):
        return "not measured"
    severity = classify(latest.normalised, latest.comparator, False, thresholds)
    if severity is None:
        return "not measured"
    if severity.is_low:
        return "low"
    return None if severity is Severity.AT_TARGET else "below target"


def _tacrolimus_start(facts: PatientFacts, draft: MedicationUse, latest: UsableResult | None,
                      now: datetime, thresholds: Thresholds, severity_card: bool,
                      due: bool) -> TacrolimusStart | None:
    recent = latest is not None and not is_older_than(latest, thresholds.order_recent_mg_days, now)
    severity = classify(latest.normalised, latest.comparator, False, thresholds) if latest else None
    low = severity is not None and severity.is_low
    ordered = facts.magnesium_lab_orders > 0
    if recent and not low and ordered:
        # Section 6 as issue 4 specified it: a recent normal result and a serum Mg order in
        # place leave nothing to say (golden answer order-start-plan-in-place: no cards).
        return None
    concern = "low" if low else (None if recent else f"not measured in {thresholds.order_recent_mg_days} days")
    # A serum Mg already ordered: the card still gives the plan, and says so; its own order
    # would duplicate that one (section 4).
    return TacrolimusStart(draft, latest, concern, suggest_baseline=not severity_card and not ordered,
                           due_now=due or concern is not None, mg_ordered=ordered)
