# ruff: noqa: E501  (a FHIR resource or an EHR text reads best on one line)
"""Section 7: "Factors worsening magnesium loss ... the most actionable first"; drugs that raise
tacrolimus levels "newest first (a drug started recently without a trough since is the first
thing to say)". Section 1: never a tacrolimus level for stopped or held tacrolimus. Section 4:
"don't show two cards that ask for the same test".

Patients: an adult kidney recipient on oral Prograf (tests/test_independent_patients.py's
`recipient`), Mg 1.2 mEq/L two days ago, furosemide for 100 days, and voriconazole (a strong
CYP3A inhibitor, section 8) started 4 days ago; only the timing of the tacrolimus trough (or the
voriconazole orders) changes. Run in both data modes.
"""

from __future__ import annotations

import re

import pytest

from .test_independent_patients import (
    MODES, run,
    ORAL, at, day, mg, patient, procedure, prograf, recipient, rx, text, the, trough,
)

NO_LEVEL_SINCE = re.compile(r"no tacrolimus level since voriconazole started \((\d{4}-\d{2}-\d{2})\)")


def furosemide() -> dict:
    return rx({"text": "furosemide (LASIX) 40 mg tablet"}, id="mr-furo", days=100, route=ORAL)


def voriconazole(days: float = 4, **kw) -> dict:
    return rx({"text": "voriconazole (VFEND) 200 mg tablet"}, id=kw.pop("id", "mr-vori"), days=days, route=ORAL,
              sig="Take 1 tablet by mouth every 12 hours", **kw)


def troughs_ordered(cards: list[dict]) -> int:
    return sum(1 for c in cards for s in c.get("suggestions") or [] for a in s.get("actions", [])
               if a["type"] == "create" and a["resource"]["resourceType"] == "ServiceRequest"
               and any(x["code"] == "11253-2" for x in a["resource"]["code"].get("coding", [])))


def contributing(cards: list[dict]) -> dict:
    c = the(cards, "mg-contributing", "warning")
    assert "voriconazole" in c["summary"].lower() and "furosemide" in c["summary"].lower(), c["summary"]
    return c


@pytest.mark.parametrize("mode", MODES)
def test_trough_taken_after_the_start_is_not_news(mode, discovery, monkeypatch):
    """Voriconazole started 6 days ago, trough 2 days ago: the level already shows its effect."""
    cards = run(recipient(mg(1.2, "mEq/L", days=2), furosemide(), voriconazole(days=6), level=False)
                + [trough(7.2, days=2)], mode, discovery, monkeypatch)
    c = contributing(cards)
    assert not NO_LEVEL_SINCE.search(text(c)), c["detail"]
    assert troughs_ordered(cards) == 0, "a trough is asked for although one was taken since the start"


@pytest.mark.parametrize("mode", MODES)
def test_trough_before_the_start_is_said_first_with_a_trough(mode, discovery, monkeypatch):
    """The reviewer's patient, from the side of the card: voriconazole leads the summary, the
    detail dates the start, and the card itself asks for the trough (no other card does: the
    trough of 5 days ago is within the 90-day window)."""
    cards = run(recipient(mg(1.2, "mEq/L", days=2), furosemide(), voriconazole(days=4)), mode, discovery, monkeypatch)
    c = contributing(cards)
    s = c["summary"].lower()
    assert s.index("voriconazole") < s.index("furosemide"), c["summary"]
    found = NO_LEVEL_SINCE.search(text(c))
    assert found and found.group(1) == day(4), c["detail"]
    assert "trough" in s.rsplit(":", 1)[-1], f"the action does not ask for the trough: {c['summary']}"
    assert troughs_ordered([c]) == 1 and troughs_ordered(cards) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("hours_before_order", [4.8, -4.8], ids=["same-morning-before-order", "same-evening-after-order"])
def test_trough_the_day_the_drug_started_does_not_show_its_effect(hours_before_order, mode, discovery, monkeypatch):
    """A level drawn the day voriconazole was started (before the first dose, or hours after it)
    cannot show an inhibition that takes days to build; section 6 asks for the trough 2–3 days
    after the start. The card says so and asks for the trough."""
    level_days = 4 + hours_before_order / 24
    cards = run(recipient(mg(1.2, "mEq/L", days=2), furosemide(), voriconazole(days=4), level=False)
                + [trough(7.2, days=level_days)], mode, discovery, monkeypatch)
    c = contributing(cards)
    assert NO_LEVEL_SINCE.search(text(c)), c["detail"]
    assert "the day it started" in text(c), c["detail"]
    assert troughs_ordered(cards) == 1


@pytest.mark.parametrize("mode", MODES)
def test_no_trough_ever_is_said_and_the_trough_is_asked_for_once(mode, discovery, monkeypatch):
    """No tacrolimus level on record: the severity card already carries the trough (section 7),
    so the factors card says there is no level since voriconazole started but orders no second
    trough (section 4: never two cards asking for the same test)."""
    cards = run(recipient(mg(1.2, "mEq/L", days=2), furosemide(), voriconazole(days=4), level=False),
                mode, discovery, monkeypatch)
    c = contributing(cards)
    s = c["summary"].lower()
    assert s.index("voriconazole") < s.index("furosemide"), c["summary"]
    assert NO_LEVEL_SINCE.search(text(c)), c["detail"]
    assert troughs_ordered(cards) == 1 and troughs_ordered([c]) == 0


@pytest.mark.parametrize("mode", MODES)
def test_renewed_voriconazole_taken_through_the_last_trough_is_not_news(mode, discovery, monkeypatch):
    """Voriconazole for 40 days: the first order (completed, its validity ended 2 days ago) was
    running when the trough was taken 10 days ago; the renewal 2 days ago is not a new start."""
    first = voriconazole(days=40, id="mr-vori-1", status="completed",
                         dispenseRequest={"validityPeriod": {"start": at(40), "end": at(2)}})
    cards = run(recipient(mg(1.2, "mEq/L", days=2), furosemide(), first, voriconazole(days=2, id="mr-vori-2"),
                          level=False) + [trough(7.2, days=10)], mode, discovery, monkeypatch)
    c = contributing(cards)
    assert not NO_LEVEL_SINCE.search(text(c)), c["detail"]
    assert troughs_ordered(cards) == 0


@pytest.mark.parametrize("mode", MODES)
def test_held_tacrolimus_gets_no_trough_for_a_new_inhibitor(mode, discovery, monkeypatch):
    """Section 1: never a tacrolimus level for held tacrolimus; the factors are still listed."""
    res = [patient("1968-03-14", "female"), prograf(status="on-hold"), procedure("70536003", "Kidney transplant", 900),
           trough(7.2, days=5), mg(1.2, "mEq/L", days=2), furosemide(), voriconazole(days=4)]
    cards = run(res, mode, discovery, monkeypatch)
    c = contributing(cards)
    assert not NO_LEVEL_SINCE.search(text(c)), c["detail"]
    assert troughs_ordered(cards) == 0
