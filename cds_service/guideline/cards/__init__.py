"""Findings -> CDS Hooks cards (docs/clinical-rules.md section 10).

One card per kind, each with a stable `topic`, a summary of at most 140 characters that starts
with the finding, its number and its date, a short markdown detail with the evidence and what
could not be read, and suggestions that are valid FHIR R4 resources.

One module per card family, plus what they share:

- ``catalogue``: RuleDoc and RULES, every card kind in words (the rule pages are generated from it)
- ``common``: CardContext and the shared card mechanics (fit, links, source, override reasons)
- ``severity``: the severity card and the persistent-low card (sections 3 and 7)
- ``monitoring``: the monitoring-due card (section 4)
- ``supporting``: high magnesium, symptoms, contributing factors, FEMg, results not used
- ``orders``: the order-hook cards (section 6)
- ``build``: ``build_cards``, one builder per finding type, then one order per test

The public names of each module are re-exported here: ``from cds_service.guideline.cards import X``.
"""

from __future__ import annotations

from .catalogue import (
    RULES,
    RuleDoc,
)
from .common import (
    ALREADY_ADDRESSED,
    BENEFIT_OUTWEIGHS,
    CardContext,
    GUIDELINE_LABEL,
    LAB_ELSEWHERE,
    LINK_LABEL,
    NOT_RELEVANT,
    ORDER_TOPICS,
    OVERRIDE_REASONS,
    OVERRIDE_SYSTEM,
    PATIENT_DECLINED,
    SUMMARY_LIMIT,
    TOPIC_SYSTEM,
    TRANSPLANT_TEAM,
    capitalised,
    clinical_name,
    first_fitting,
    fit,
    listing,
    mg_dated,
    mg_text,
    override_reasons,
    short_drug,
)
from .severity import (
    persistent_card,
    renal_text,
    severity_card,
)
from .monitoring import (
    monitoring_card,
)
from .supporting import (
    contributing_card,
    femg_card,
    high_card,
    not_used_card,
    symptoms_card,
)
from .orders import (
    interaction_order_card,
    monitoring_plan,
    tacrolimus_start_card,
    wasting_order_card,
)
from .build import (
    build_cards,
)

__all__ = [
    "ALREADY_ADDRESSED",
    "BENEFIT_OUTWEIGHS",
    "CardContext",
    "GUIDELINE_LABEL",
    "LAB_ELSEWHERE",
    "LINK_LABEL",
    "NOT_RELEVANT",
    "ORDER_TOPICS",
    "OVERRIDE_REASONS",
    "OVERRIDE_SYSTEM",
    "PATIENT_DECLINED",
    "RULES",
    "RuleDoc",
    "SUMMARY_LIMIT",
    "TOPIC_SYSTEM",
    "TRANSPLANT_TEAM",
    "build_cards",
    "capitalised",
    "clinical_name",
    "contributing_card",
    "femg_card",
    "first_fitting",
    "fit",
    "high_card",
    "interaction_order_card",
    "listing",
    "mg_dated",
    "mg_text",
    "monitoring_card",
    "monitoring_plan",
    "not_used_card",
    "override_reasons",
    "persistent_card",
    "renal_text",
    "severity_card",
    "short_drug",
    "symptoms_card",
    "tacrolimus_start_card",
    "wasting_order_card",
]
