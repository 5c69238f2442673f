# ruff: noqa: E501  (a FHIR resource or an EHR text reads best on one line)
"""Sections 4 and 6 read together: a tacrolimus draft is a *start* only "with no earlier one".

§4: "Tacrolimus start: the earliest authoredOn among all of the patient's systemic tacrolimus
orders, stopped and completed ones included (a renewal is not a start ...); a new tacrolimus order
in order-select, with no earlier one, starts it now. Without a transplant procedure or an earlier
order on record, the routine interval applies."
§6: "A tacrolimus renewal for a patient already on it gets no 'starting' card."
§1: `cancelled` and `entered-in-error` never count.

Patients are Epic/Cerner-shaped FHIR R4 records, run in both data modes (prefetch, and a FHIR
server mocked with ``responses``) through tests/test_independent_patients.py's checks.
"""

from __future__ import annotations

import pytest

from .test_independent_patients import MODES, run, at, draft, mg, none_of, patient, prograf, rxcode, statement, text, the


def prograf_draft(id: str = "d-prograf") -> dict:
    return draft(rxcode("198377", "tacrolimus 1 MG Oral Capsule", "tacrolimus (PROGRAF) 1 mg capsule"), id=id,
                 sig="Take 3 capsules by mouth every 12 hours")


def select(resources, mode, discovery, monkeypatch) -> list[dict]:
    return run(resources, mode, discovery, monkeypatch, hook="order-select", drafts=[prograf_draft()])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", ["entered-in-error", "cancelled"])
def test_an_earlier_order_that_never_was_does_not_make_a_renewal(status, mode, discovery, monkeypatch):
    """An order entered in error, or cancelled before it was taken, is no earlier tacrolimus: the
    new order starts it (no transplant on record, so it is the start that sets the plan)."""
    earlier = prograf(status=status, days=30, id="mr-prograf-void")
    cards = select([patient(), earlier, mg(1.8, "mEq/L", days=3)], mode, discovery, monkeypatch)
    c = the(cards, "mg-order-tacrolimus", "info")
    assert "first month" in text(c) or "weekly" in text(c), c["detail"]


@pytest.mark.parametrize("mode", MODES)
def test_order_stopped_five_years_ago_makes_the_new_one_a_renewal(mode, discovery, monkeypatch):
    """By §4's definition the start is the earliest order, whatever its age: a Prograf order
    stopped five years ago makes today's a renewal, not a start (no 'starting' card). With no
    transplant on record and a Mg 20 days ago, the routine 42-day interval applies: nothing is due."""
    old = prograf(status="stopped", days=5 * 365 + 200, id="mr-prograf-2021",
                  dispenseRequest={"validityPeriod": {"start": at(5 * 365 + 200), "end": at(5 * 365)}})
    cards = select([patient(), old, mg(1.8, "mEq/L", days=20)], mode, discovery, monkeypatch)
    none_of(cards, "mg-order-tacrolimus", "mg-monitoring")


@pytest.mark.parametrize("mode", MODES)
def test_first_order_ever_with_the_same_mg_is_due_weekly(mode, discovery, monkeypatch):
    """The counterpart of the test above: with no earlier order, the draft starts tacrolimus now
    and gets the starting card (the 20-day-old Mg is not a baseline for a first-month plan)."""
    cards = select([patient(), mg(1.8, "mEq/L", days=20)], mode, discovery, monkeypatch)
    the(cards, "mg-order-tacrolimus")


@pytest.mark.parametrize("mode", MODES)
def test_home_medication_stopped_two_years_ago_is_a_resumption(mode, discovery, monkeypatch):
    """§1: a MedicationStatement records tacrolimus use; a stopped one is earlier use, so a new
    order resumes tacrolimus rather than starting it."""
    home = statement({"text": "Prograf 1 mg capsule"}, status="stopped", start_days=1500, end_days=730)
    cards = select([patient(), home, mg(1.8, "mEq/L", days=10)], mode, discovery, monkeypatch)
    none_of(cards, "mg-order-tacrolimus")


@pytest.mark.parametrize("mode", MODES)
def test_statement_not_taken_is_no_earlier_use(mode, discovery, monkeypatch):
    """A statement `not-taken` says the drug was not taken: the new order is a start."""
    home = statement({"text": "Prograf 1 mg capsule"}, status="not-taken", start_days=100)
    cards = select([patient(), home, mg(1.8, "mEq/L", days=3)], mode, discovery, monkeypatch)
    the(cards, "mg-order-tacrolimus")


@pytest.mark.parametrize("mode", MODES)
def test_the_draft_itself_stored_on_the_server_is_not_an_earlier_order(mode, discovery, monkeypatch):
    """Some EHRs expose the order being placed through their FHIR API (status draft): it is the
    order being placed, not an earlier one."""
    d = prograf_draft("d-prograf")
    cards = run([patient(), d, mg(1.8, "mEq/L", days=3)], mode, discovery, monkeypatch,
                hook="order-select", drafts=[d])
    the(cards, "mg-order-tacrolimus")


@pytest.mark.parametrize("mode", MODES)
def test_renewal_after_a_recent_stop_still_shows_the_low_mg(mode, discovery, monkeypatch):
    """A renewal gets no starting card, but the order hook still shows the patient's low Mg
    (§6: "With a relevant draft: ... the severity/monitoring cards of sections 3–4"); the patient
    is in scope through the order completed 3 days ago (§1)."""
    expired = prograf(status="completed", days=400, id="mr-prograf-expired",
                      dispenseRequest={"validityPeriod": {"start": at(400), "end": at(3)}})
    cards = select([patient(), expired, mg(1.2, "mEq/L", days=2)], mode, discovery, monkeypatch)
    none_of(cards, "mg-order-tacrolimus")
    the(cards, "mg-severity", "warning")
