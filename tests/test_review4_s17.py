"""Review 4 (s17): the CDS Hooks 2.0 feedback endpoint and the analytics figures it feeds.

Each test names the CDS Hooks 2.0 specification section (https://cds-hooks.hl7.org/2.0/) it
relies on. Malformed feedback must be a clear JSON 4xx (OperationOutcome), never stored silently
and never a 5xx, and the figures must count cards, not feedback messages."""

from __future__ import annotations

import pytest

from cds_service import create_app
from cds_service.testing import factories as f
from cds_service.web import hooks

from .conftest import PATIENT_VIEW

FEEDBACK = PATIENT_VIEW + "/feedback"


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch):
    monkeypatch.setattr(hooks, "utc_now", lambda: f.NOW)


def make_app(url: str):
    return create_app({"log_level": "WARNING", "database_url": url})


@pytest.fixture
def state_url(tmp_path) -> str:
    """A state database of this test alone (the figures must not see other tests' cards)."""
    return f"sqlite:///{tmp_path / 'state.sqlite3'}"


def severe_with_ppi() -> dict:
    """On tacrolimus, Mg 0.4 mmol/L yesterday (severe), on omeprazole: severity + contributing cards."""
    return f.hook_request([f.patient(), f.tacrolimus(), f.medication("omeprazole 20 mg capsule", id="ppi-1"),
                           f.magnesium(0.4, "mmol/L", code="2601-3", days=1)])


def issued_cards(app) -> list[dict]:
    cards = app.test_client().post(PATIENT_VIEW, json=severe_with_ppi()).get_json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards][:2] == ["mg-severity", "mg-contributing"]
    return cards


def post_feedback(app, *items: dict):
    return app.test_client().post(FEEDBACK, json={"feedback": list(items)})


def assert_clear_400(response) -> None:
    assert response.status_code == 400, (response.status_code, response.get_data(as_text=True))
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_accepted_feedback_without_accepted_suggestions_is_refused(state_url):
    """CDS Hooks 2.0 §Feedback, request fields: "acceptedSuggestions | CONDITIONAL | array | An
    array of json objects identifying one or more of the user's AcceptedSuggestions. Required for
    accepted outcomes." An `accepted` item without it is malformed; it is stored and counted as an
    acceptance today (200, stored 1)."""
    app = make_app(state_url)
    card = issued_cards(app)[0]
    item = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-25T12:05:00Z"}
    assert_clear_400(post_feedback(app, item))


def test_override_reason_that_is_not_a_coding_is_refused(state_url):
    """CDS Hooks 2.0 §Feedback, OverrideReason: "reason | CONDITIONAL | Coding | The Coding object
    representing the override reason selected by the end user." A string (or a number) there is
    not a Coding: the item is malformed. Today it is stored (200) and the analytics count it as
    "(none given)", silently losing the reason the EHR meant to send."""
    app = make_app(state_url)
    card = issued_cards(app)[0]
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-25T12:05:00Z",
            "overrideReason": {"reason": "already-addressed"}}
    assert_clear_400(post_feedback(app, item))


def test_accepted_suggestion_id_must_be_a_string(state_url):
    """CDS Hooks 2.0 §Feedback, AcceptedSuggestion: "id | REQUIRED | string | The
    card.suggestion.uuid from the CDS Hooks response." `{"id": 5}` is malformed; today it is
    stored (200) with the id silently dropped, so an acceptance is recorded with no suggestion."""
    app = make_app(state_url)
    card = issued_cards(app)[0]
    item = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-25T12:05:00Z",
            "acceptedSuggestions": [{"id": 5}]}
    assert_clear_400(post_feedback(app, item))


def test_acceptance_rate_counts_each_card_once(state_url):
    """CDS Hooks 2.0 §Feedback: "card | REQUIRED | string | The card.uuid from the CDS Hooks
    response. Uniquely identifies the card." The analytics give, per card kind, the cards
    accepted and overridden and "the acceptance rate (accepted ÷ answered)" (README, Learning from
    use): a figure about cards. An EHR that re-sends an acceptance with a new outcomeTimestamp
    (e.g. stamped at each retry, or one message per accepted suggestion) makes one card count as
    two acceptances: one severity card issued shows accepted 2, and with a second card overridden
    the rate is 0.6667 instead of 0.5."""
    app = make_app(state_url)
    first = issued_cards(app)[0]
    second = issued_cards(app)[0]
    suggestion = [{"id": first["suggestions"][0]["uuid"]}]
    answers = [
        {"card": first["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-25T12:05:00Z",
         "acceptedSuggestions": suggestion},
        {"card": first["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-25T12:05:07Z",
         "acceptedSuggestions": suggestion},
        {"card": second["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-25T12:06:00Z",
         "overrideReason": {"reason": {"system": "urn:tacrolimus-magnesium-cds:override-reason",
                                       "code": "already-addressed"}}},
    ]
    assert post_feedback(app, *answers).status_code == 200
    kinds = {row["kind"]: row for row in app.test_client().get("/analytics.json").get_json()["kinds"]}
    severity = kinds["mg-severity"]
    assert severity["issued"] == 2
    assert (severity["accepted"], severity["overridden"], severity["acceptanceRate"]) == (1, 1, 0.5)


@pytest.mark.parametrize("field", ["card", "code"])
def test_a_nul_character_in_feedback_is_a_400_on_every_database(database_url, field):
    """CDS Hooks 2.0 §Feedback: the card id and the override reason Coding are strings sent by the
    EHR; house rule: bad input gets a clear JSON error with the right status, never a 5xx. On
    PostgreSQL a text value holding NUL (U+0000) cannot be stored, so the insert fails and the
    service answers 503 "send it again later": a retrying EHR re-sends the same poison item for
    ever. It must be refused as 400, the same on SQLite (which stores it today: 200) as on
    PostgreSQL, since no card or override code of this service holds a NUL."""
    app = make_app(database_url)
    card = issued_cards(app)[0]
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-25T12:05:00Z",
            "overrideReason": {"reason": {"system": "urn:tacrolimus-magnesium-cds:override-reason",
                                          "code": "already-addressed"}}}
    if field == "card":
        item["card"] = card["uuid"] + "\u0000"
    else:
        item["overrideReason"]["reason"]["code"] = "already\u0000addressed"
    response = post_feedback(app, item)
    assert response.status_code == 400, (response.status_code, response.get_data(as_text=True))
    assert response.get_json()["resourceType"] == "OperationOutcome"
