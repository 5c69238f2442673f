"""Findings -> the list of cards: one builder per finding type, sorted by urgency, one order per test."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from ...protocol.response import INDICATOR_ORDER, Card, Suggestion
from ..orders import InteractingDrugOrdered, OrderFinding, TacrolimusStart, WastingDrugOrdered
from ..rules import (
    Assessment,
    ContributingFactors,
    FemgFinding,
    Finding,
    MagnesiumHigh,
    MonitoringDue,
    PersistentLow,
    ResultsNotUsed,
    SeverityFinding,
    SymptomsWithNormalMagnesium,
)
from .common import CardContext, override_reasons
from .monitoring import monitoring_card
from .orders import interaction_order_card, tacrolimus_start_card, wasting_order_card
from .severity import persistent_card, severity_card
from .supporting import contributing_card, femg_card, high_card, not_used_card, symptoms_card

_BUILDERS: dict[type, Callable] = {
    SeverityFinding: severity_card,
    MonitoringDue: monitoring_card,
    SymptomsWithNormalMagnesium: symptoms_card,
    ContributingFactors: contributing_card,
    PersistentLow: persistent_card,
    FemgFinding: femg_card,
    ResultsNotUsed: not_used_card,
    MagnesiumHigh: high_card,
    TacrolimusStart: tacrolimus_start_card,
    WastingDrugOrdered: wasting_order_card,
    InteractingDrugOrdered: interaction_order_card,
}


def build_cards(assessment: Assessment, ctx: CardContext,
                findings: Iterable[Finding | OrderFinding] | None = None,
                keep: Callable[[Card], bool] | None = None,
                deletable: frozenset[str] | None = None) -> list[Card]:
    """One card per finding (the rules emit at most one finding per kind); `findings` defaults
    to the assessment's own (the order hooks pass theirs, section 6), `keep` picks the cards
    an order hook answers (before the test de-duplication, so a dropped card takes no test away)
    and `deletable` (order hooks) the resources a delete may name: the drafts being placed."""
    chosen = assessment.findings if findings is None else findings
    cards = [_BUILDERS[type(f)](f, assessment, ctx) for f in chosen]
    if keep is not None:
        cards = [c for c in cards if keep(c)]
    if deletable is not None:
        cards = [_deletes_only_of(c, deletable) for c in cards]
    return _one_order_per_test(sorted(cards, key=lambda c: INDICATOR_ORDER[c.indicator]))


def _deletes_only_of(card: Card, deletable: frozenset[str]) -> Card:
    """In an order hook a delete may only remove a draft being placed: a client that keeps one
    draft (the CDS Hooks sandbox) applies any delete to it, so stopping an active order from
    there would empty the order being written. Such suggestions stay on patient-view."""
    kept = tuple(s for s in card.suggestions
                 if all(a.type != "delete" or a.resourceId in deletable for a in s.actions))
    if len(kept) == len(card.suggestions):
        return card
    return replace(card, suggestions=kept, selectionBehavior="any" if kept else None,
                   overrideReasons=override_reasons(card.topic or "", kept))


def _lab_codes(suggestion: Suggestion) -> frozenset[str] | None:
    """The LOINC codes a lab-only suggestion orders, or None for any other suggestion."""
    found = set()
    for action in suggestion.actions:
        resource = action.resource or {}
        if action.type != "create" or resource.get("resourceType") != "ServiceRequest":
            return None
        found |= {c["code"] for c in resource["code"]["coding"]}
    return frozenset(found) or None


def _one_order_per_test(cards: list[Card]) -> list[Card]:
    """Section 4: two cards must not ask for the same test. The most urgent card keeps it."""
    ordered: set[str] = set()
    kept = []
    for card in cards:
        suggestions = []
        for suggestion in card.suggestions:
            tests = _lab_codes(suggestion)
            if tests is not None and tests <= ordered:
                continue
            ordered |= tests or set()
            suggestions.append(suggestion)
        if len(suggestions) != len(card.suggestions):
            card = replace(card, suggestions=tuple(suggestions),
                           selectionBehavior="any" if suggestions else None,
                           overrideReasons=override_reasons(card.topic or "", tuple(suggestions)))
        kept.append(card)
    return kept
