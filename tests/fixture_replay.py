"""Replay every scenario of fhir_fixtures/ through an app built with a given configuration
(full prefetch), for tests that look at every card the service can emit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from cds_service import create_app
from cds_service.web import hooks

from cds_service.testing import factories

FIXTURES = Path(__file__).resolve().parent.parent / "fhir_fixtures"
SCENARIOS = json.loads((FIXTURES / "scenarios.json").read_text("utf-8"))
ENDPOINTS = {"patient-view": "/cds-services/tacrolimus-magnesium-patient-view",
             "order-select": "/cds-services/tacrolimus-magnesium-order-select",
             "order-sign": "/cds-services/tacrolimus-magnesium-order-sign"}


def load_request(scenario: Mapping[str, Any]) -> dict:
    return json.loads((FIXTURES / "requests" / scenario["request"]).read_text("utf-8"))


def replay(monkeypatch, config: Mapping[str, Any] | None = None) -> dict[str, list[dict]]:
    """Scenario name -> the cards the service answers, with `config` applied."""
    monkeypatch.setattr(hooks, "utc_now", lambda: factories.NOW)
    client = create_app({"log_level": "WARNING", **(config or {})}).test_client()
    answers = {}
    for scenario in SCENARIOS:
        response = client.post(ENDPOINTS[scenario["hook"]], json=load_request(scenario))
        assert response.status_code == 200, (scenario["name"], response.get_data(as_text=True))
        answers[scenario["name"]] = response.get_json()["cards"]
    return answers


def all_cards(answers: Mapping[str, list[dict]]) -> list[tuple[str, dict]]:
    return [(name, card) for name, cards in answers.items() for card in cards]
