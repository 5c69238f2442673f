"""Every finding becomes a card and every card kind has a rule page: what CONTRIBUTING.md's
checklist for a new rule asks, checked (docs/clinical-rules.md section 10).

The card kinds are listed here as the guideline's section 10 names them, not read from the code,
so a card kind dropped from the code (or one added without its page) fails here.
"""

from __future__ import annotations

from typing import get_args

import pytest

from cds_service import services
from cds_service.guideline.cards import RULES, build
from cds_service.guideline.orders import OrderFinding
from cds_service.guideline.rules import Finding, PersistentLow
from cds_service.ruledocs import REFERENCES, RULE_REFERENCES
from tests.test_fixtures import ENDPOINTS, SCENARIOS, load_request

# Section 10: "stable codes: mg-severity, mg-monitoring, ... mg-order-interaction".
SECTION_10_CARD_KINDS = (
    "mg-severity", "mg-monitoring", "mg-symptoms", "mg-contributing", "mg-persistent", "mg-femg",
    "mg-high", "mg-not-used", "mg-order-tacrolimus", "mg-order-wasting", "mg-order-interaction",
)
FINDING_TYPES = frozenset(get_args(Finding)) | frozenset(get_args(OrderFinding))


def test_every_finding_type_has_a_card_builder():
    assert set(build._BUILDERS) == FINDING_TYPES, set(build._BUILDERS) ^ FINDING_TYPES


@pytest.mark.parametrize("topic", SECTION_10_CARD_KINDS)
def test_every_card_kind_of_section_10_has_a_rule_page_with_references(client, topic):
    assert topic in RULES
    assert RULE_REFERENCES.get(topic) and set(RULE_REFERENCES[topic]) <= set(REFERENCES)
    page = client.get(f"/docs/rules/{topic}")
    assert page.status_code == 200
    assert RULES[topic].title in page.get_data(as_text=True)


def test_no_rule_page_without_a_card_kind_of_section_10():
    assert set(RULES) == set(SECTION_10_CARD_KINDS)
    assert set(RULE_REFERENCES) == set(SECTION_10_CARD_KINDS)


def test_every_finding_type_reaches_a_card_with_a_rule_page(monkeypatch, call_hook):
    """Through the hooks, over every synthetic scenario: each finding type occurs, and the card
    its builder makes has a topic with a rule page (a builder with a wrong topic fails here).
    Persistence (section 7) travels inside the severity finding, whose card it replaces."""
    topics_of: dict[type, set[str]] = {}
    real = services.build_cards

    def recording(assessment, ctx, findings=None, **kwargs):
        for finding in assessment.findings if findings is None else findings:
            kind = PersistentLow if getattr(finding, "persistent", None) is not None else type(finding)
            for card in real(assessment, ctx, [finding]):
                topics_of.setdefault(kind, set()).add(card.topic or "")
        return real(assessment, ctx, findings, **kwargs)

    monkeypatch.setattr(services, "build_cards", recording)
    for scenario in SCENARIOS:
        call_hook(load_request(scenario), ENDPOINTS[scenario["hook"]])
    assert set(topics_of) == FINDING_TYPES, FINDING_TYPES - set(topics_of)
    for kind, topics in topics_of.items():
        assert topics and topics <= set(RULES), (kind.__name__, topics)
    assert set().union(*topics_of.values()) == set(SECTION_10_CARD_KINDS)
