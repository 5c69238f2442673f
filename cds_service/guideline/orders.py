"""docs/clinical-rules.md section 6: what the order hooks add, as pure functions over the facts.

The drafts the clinician acts on (order-select's selections, every draft for order-sign) are
checked for: starting systemic tacrolimus, adding a drug that worsens magnesium loss, and adding
a drug that raises or lowers tacrolimus levels. Sections 3-5 and 7 still apply (rules.assess).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .facts import LabResult, MedicationUse, PatientFacts
from .rules import (Assessment, Finding, MonitoringDue, SeverityFinding, classify, is_older_than,
                    latest_egfr, latest_usable)
from .thresholds import Thresholds


@dataclass(frozen=True)
class TacrolimusStart:
    draft: MedicationUse
    latest: LabResult | None  # the latest usable serum Mg
    concern: str | None  # why this is a warning: "low" or "not measured in 30 days"; None: info
    suggest_baseline: bool  # False when another card already asks for a serum Mg
    due_now: bool  # the level is due now (concern, or the early-phase interval has passed)


@dataclass(frozen=True)
class WastingDrugOrdered:
    drafts: tuple[MedicationUse, ...]
    latest: LabResult | None
    tacrolimus_level: LabResult | None
    egfr: LabResult | None  # doses the famotidine offered in place of a PPI


@dataclass(frozen=True)
class InteractingDrugOrdered:
    raising: tuple[MedicationUse, ...]
    lowering: tuple[MedicationUse, ...]
    latest: LabResult | None
    tacrolimus_level: LabResult | None


OrderFinding = TacrolimusStart | WastingDrugOrdered | InteractingDrugOrdered


def assess_orders(facts: PatientFacts, base: Assessment, now: datetime,
                  thresholds: Thresholds) -> tuple[Finding | OrderFinding, ...]:
    """The patient's findings (sections 3-5, 7) with section 6's order findings added.

    A tacrolimus start carries the baseline magnesium order, so it replaces a 'due' card.
    """
    if not base.on_tacrolimus:
        return ()
    latest = base.latest
    level = latest_usable(facts.labs_of("tacrolimus_level"))
    findings: list = list(base.findings)
    if facts.magnesium_lab_orders:
        # A serum Mg is already ordered: asking for it again would be noise (section 4).
        findings = [f for f in findings if not isinstance(f, MonitoringDue)]
    starting = next((d for d in facts.selected_drafts if d.is_systemic_tacrolimus), None)
    if starting is not None and base.starting_tacrolimus:
        due = any(isinstance(f, MonitoringDue) for f in findings)
        start = _tacrolimus_start(facts, starting, latest, now, thresholds,
                                  severity_card=any(isinstance(f, SeverityFinding) for f in findings),
                                  due=due)
        if start is not None:
            findings = [f for f in findings if not isinstance(f, MonitoringDue)]
            findings.append(start)

    wasting = tuple(d for d in facts.selected_drafts if d.wasting_class and not d.is_systemic_tacrolimus)
    if wasting:
        findings.append(WastingDrugOrdered(wasting, latest, level, latest_egfr(facts)))
    raising = tuple(d for d in facts.selected_drafts if d.raises_tacrolimus_class)
    lowering = tuple(d for d in facts.selected_drafts if d.lowers_tacrolimus_class)
    if raising or lowering:
        findings.append(InteractingDrugOrdered(raising, lowering, latest, level))
    return tuple(findings)


def _tacrolimus_start(facts: PatientFacts, draft: MedicationUse, latest: LabResult | None,
                      now: datetime, thresholds: Thresholds, severity_card: bool,
                      due: bool) -> TacrolimusStart | None:
    recent = latest is not None and not is_older_than(latest, thresholds.order_recent_mg_days, now)
    severity = classify(latest.normalised, latest.comparator, False, thresholds) if latest else None
    low = severity is not None and severity.is_low
    if recent and not low and facts.magnesium_lab_orders:
        return None  # a recent normal result and the monitoring plan already in place
    concern = "low" if low else (None if recent else f"not measured in {thresholds.order_recent_mg_days} days")
    return TacrolimusStart(draft, latest, concern, suggest_baseline=not severity_card,
                           due_now=due or concern is not None)
