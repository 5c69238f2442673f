"""Review 6 (s17): TIME. Patients whose answer depends on how the service reads times: offsets
near midnight, the future tolerance boundary, corrections written with different offsets, the
monitoring interval boundary, dosage bounds / dispense validity that ended, 18th birthdays and a
DST change in a -04:00/-05:00 zone. Built from the clinical rules (revision 2), not the code.
"now" is pinned to 2026-11-25T12:00Z (NOW)."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from .test_independent_patients import (
    MODES,
    NOW,
    egfr,
    mg,
    mgo,
    mgo_order,
    patient,
    procedure,
    prograf,
    recipient,
    run,
    statement,
    text,
    the,
    topics,
    trough,
)

TROUGH = {"11253-2", "74096-9", "74097-7", "77348-1"}


def mg_at(value: float, when: str, *, status: str = "final", issued: str | None = None, **kw) -> dict:
    w = {"effectiveDateTime": when}
    if issued:
        w["issued"] = issued
    return mg(value, "mEq/L", when=w, status=status, **kw)


def iso(delta: timedelta) -> str:
    return (NOW + delta).isoformat()


def trough_labs(cards: list[dict]) -> list[str]:
    out = []
    for c in cards:
        for s in c.get("suggestions") or []:
            for a in s.get("actions", []):
                r = a.get("resource") or {}
                if a["type"] == "create" and r.get("resourceType") == "ServiceRequest":
                    out += [cd["code"] for cd in r["code"].get("coding", []) if cd["code"] in TROUGH]
    return out


# --------------------------------------------------------------------------------------------
# Lab's own date near midnight

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("when,local", [("2026-11-23T23:30:00-05:00", "2026-11-23"),   # 11-24 04:30Z
                                        ("2026-11-24T00:30:00+09:00", "2026-11-24")])  # 11-23 15:30Z
def test_summary_date_is_the_labs_own_date(mode, when, local, discovery, monkeypatch):
    """Section 10: summary is "the finding, its number and date"; the date of a result is the
    date the lab wrote (its own offset), not the UTC date the instant happens to fall on."""
    cards = run(recipient(mg_at(0.9, when)), mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "critical")
    assert local in c["summary"], c["summary"]


# --------------------------------------------------------------------------------------------
# Latest result by instant, not by written date

@pytest.mark.parametrize("mode", MODES)
def test_latest_by_instant_local_day_earlier(mode, discovery, monkeypatch):
    """Section 3: severity from "the latest usable serum result". 0.9 at 2026-11-23T22:00-05:00
    (= 11-24 03:00Z) is later than 1.8 at 2026-11-24T01:00Z although its written date is earlier."""
    res = recipient(mg_at(1.8, "2026-11-24T01:00:00Z"), mg_at(0.9, "2026-11-23T22:00:00-05:00"))
    cards = run(res, mode, discovery, monkeypatch)
    the(cards, "mg-severity", "critical")


@pytest.mark.parametrize("mode", MODES)
def test_latest_by_instant_local_day_later(mode, discovery, monkeypatch):
    """Section 3: "the latest usable serum result". 0.9 at 2026-11-24T08:00+09:00 (= 11-23 23:00Z)
    is earlier than 1.8 at 2026-11-23T23:30Z: the latest is at target, no severity card."""
    res = recipient(mg_at(0.9, "2026-11-24T08:00:00+09:00"), mg_at(1.8, "2026-11-23T23:30:00Z"))
    cards = run(res, mode, discovery, monkeypatch)
    assert "mg-severity" not in topics(cards), [c["summary"] for c in cards]


# --------------------------------------------------------------------------------------------
# Corrections at the same instant with different offsets; DST fall-back hour

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("final,corrected,severe", [(0.8, 1.8, False), (1.8, 0.8, True)])
def test_correction_same_instant_other_offset(mode, final, corrected, severe, discovery, monkeypatch):
    """Section 2: "at the same effective time, a corrected or amended result supersedes a final
    one (even with another id)". 10:00Z and 05:00-05:00 are the same time."""
    res = recipient(mg_at(final, "2026-11-24T10:00:00Z", issued="2026-11-24T11:00:00Z"),
                    mg_at(corrected, "2026-11-24T05:00:00-05:00", status="corrected",
                          issued="2026-11-24T07:30:00-05:00"))
    cards = run(res, mode, discovery, monkeypatch)
    if severe:
        the(cards, "mg-severity", "critical")
    else:
        assert "mg-severity" not in topics(cards), [c["summary"] for c in cards]


@pytest.mark.parametrize("mode", MODES)
def test_dst_fall_back_hour_is_two_instants(mode, discovery, monkeypatch):
    """Section 2/3: a correction supersedes only "at the same effective time"; 01:30-04:00 (EDT,
    05:30Z) and 01:30-05:00 (EST, 06:30Z) on 2026-11-01 are an hour apart. The later one (final,
    1.8) is the latest usable result: no severity card."""
    res = recipient(mg_at(0.8, "2026-11-01T01:30:00-04:00", status="corrected"),
                    mg_at(1.8, "2026-11-01T01:30:00-05:00"))
    cards = run(res, mode, discovery, monkeypatch)
    assert "mg-severity" not in topics(cards), [c["summary"] for c in cards]


# --------------------------------------------------------------------------------------------
# Future tolerance (now + 60 min)

@pytest.mark.parametrize("mode", MODES)
def test_result_59_minutes_ahead_is_used(mode, discovery, monkeypatch):
    """Section 2: only results "later than now + future_tolerance_minutes = 60" are not used.
    +59 min, written in -05:00, is used."""
    when = (NOW + timedelta(minutes=59)).astimezone(timezone(timedelta(hours=-5))).isoformat()
    cards = run(recipient(mg(1.8, "mEq/L", days=20), mg_at(0.8, when)), mode, discovery, monkeypatch)
    the(cards, "mg-severity", "critical")
    assert "future" not in " ".join(text(c) for c in cards)


@pytest.mark.parametrize("mode", MODES)
def test_result_61_minutes_ahead_is_named_not_used(mode, discovery, monkeypatch):
    """Section 2: "effective time later than now + 60 ... never used for severity ... and named on
    the card that is shown". +61 min written in +09:00."""
    when = (NOW + timedelta(minutes=61)).astimezone(timezone(timedelta(hours=9))).isoformat()
    cards = run(recipient(mg(1.2, "mEq/L", days=20), mg_at(0.8, when)), mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "warning")
    assert "future" in " ".join(text(x) for x in cards), [x["summary"] for x in cards]
    assert c


# --------------------------------------------------------------------------------------------
# Monitoring interval boundary with offsets (routine 42 days)

@pytest.mark.parametrize("mode", MODES)
def test_routine_interval_41d23h_not_due(mode, discovery, monkeypatch):
    """Section 4: due "when no usable result exists within the interval" (42 days). A result
    41 days 23 h ago (2026-10-14T08:00-05:00 = 13:00Z) is within it."""
    cards = run(recipient(mg_at(1.8, "2026-10-14T08:00:00-05:00")), mode, discovery, monkeypatch)
    assert "mg-monitoring" not in topics(cards), [c["summary"] for c in cards]


@pytest.mark.parametrize("mode", MODES)
def test_routine_interval_42d1h_due(mode, discovery, monkeypatch):
    """Section 4: a result 42 days 1 h ago (2026-10-14T20:00+09:00 = 11:00Z) is outside the 42-day
    interval: "Serum magnesium due" warning."""
    cards = run(recipient(mg_at(1.8, "2026-10-14T20:00:00+09:00")), mode, discovery, monkeypatch)
    the(cards, "mg-monitoring", "warning")


# --------------------------------------------------------------------------------------------
# Dosage bounds / dispense validity (section 1)

def prograf_bounded(end: str, kind: str) -> dict:
    r = prograf()
    if kind == "bounds":
        r["dosageInstruction"][0]["timing"] = {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d",
                                                          "boundsPeriod": {"start": "2024-09-01", "end": end}}}
    else:
        r["dispenseRequest"] = {"validityPeriod": {"start": "2026-05-01", "end": end}}
    return r


def base(*extra: dict) -> list[dict]:
    return [patient(), procedure("70536003", "Kidney transplant", 900), egfr(58), *extra]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["bounds", "validity"])
def test_order_ended_yesterday_is_recently_stopped(mode, kind, discovery, monkeypatch):
    """Section 1: an order "whose dosage bounds / dispense validity ended, within the last 14
    days keeps the patient in scope ... Cards say 'tacrolimus stopped on DATE' ... and never
    suggest a tacrolimus level for stopped or held tacrolimus"."""
    res = base(prograf_bounded("2026-11-24", kind), mg(0.9, "mEq/L", days=1))
    cards = run(res, mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "critical")
    assert "stopped" in text(c), c["summary"] + c.get("detail", "")
    assert not trough_labs(cards)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["bounds", "validity"])
def test_order_ended_20_days_ago_is_out_of_scope(mode, kind, discovery, monkeypatch):
    """Section 1: dosage bounds / dispense validity that ended more than 14 days ago: not on
    tacrolimus; "Patients not on tacrolimus get no cards"."""
    res = base(prograf_bounded("2026-11-05", kind), mg(0.9, "mEq/L", days=1))
    cards = run(res, mode, discovery, monkeypatch)
    assert cards == [], [c["summary"] for c in cards]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["bounds", "validity"])
def test_order_ending_tomorrow_is_active(mode, kind, discovery, monkeypatch):
    """Section 1: an active order whose bounds end tomorrow is current tacrolimus (no 'stopped')."""
    res = base(prograf_bounded("2026-11-26", kind), trough(7.2), mg(0.9, "mEq/L", days=1))
    cards = run(res, mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "critical")
    assert "stopped" not in text(c), c["summary"]


@pytest.mark.parametrize("mode", MODES)
def test_statement_completed_20_days_ago_out_of_scope(mode, discovery, monkeypatch):
    """Section 1: "stopped and completed count only within the recently-stopped window" (14 d)."""
    res = base(statement({"text": "tacrolimus 1 mg capsule"}, status="completed", start_days=400, end_days=20),
               mg(0.9, "mEq/L", days=1))
    res = [r for r in res if r["resourceType"] != "MedicationRequest"]
    cards = run(res, mode, discovery, monkeypatch)
    assert cards == [], [c["summary"] for c in cards]


# --------------------------------------------------------------------------------------------
# 18th birthday

@pytest.mark.parametrize("mode", MODES)
def test_18th_birthday_today_is_adult(mode, discovery, monkeypatch):
    """Section 3: children are "under 18 from Patient.birthDate"; born 2008-11-25 is 18 today:
    the adult oral regimen (magnesium oxide) is offered."""
    cards = run(recipient(mg(1.2, "mEq/L", days=1), birth="2008-11-25"), mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "warning")
    assert mgo(c), "no adult oral magnesium for an 18-year-old"


@pytest.mark.parametrize("mode", MODES)
def test_18th_birthday_tomorrow_is_child(mode, discovery, monkeypatch):
    """Section 3: "Children (under 18 from Patient.birthDate): no fixed-dose medication
    suggestions"; born 2008-11-26 is 17 today."""
    cards = run(recipient(mg(1.2, "mEq/L", days=1), birth="2008-11-26"), mode, discovery, monkeypatch)
    c = the(cards, "mg-severity", "warning")
    assert not mgo(c), "fixed adult dose for a 17-year-old"


# --------------------------------------------------------------------------------------------
# Early phase from a tacrolimus start written in a -04:00 zone before the DST change

@pytest.mark.parametrize("mode", MODES)
def test_early_phase_start_before_dst_change(mode, discovery, monkeypatch):
    """Section 4: first month after tacrolimus start (early_phase_days = 30): 7-day interval.
    Started 2026-10-27T09:00-04:00 (EDT, 29 days ago); last Mg 8 days ago: due."""
    first = prograf()
    first["authoredOn"] = "2026-10-27T09:00:00-04:00"
    res = [patient(), egfr(58), trough(7.2), first, mg(1.8, "mEq/L", days=8)]
    cards = run(res, mode, discovery, monkeypatch)
    the(cards, "mg-monitoring", "warning")


@pytest.mark.parametrize("mode", MODES)
def test_result_exactly_60_minutes_ahead_is_used(mode, discovery, monkeypatch):
    """Section 2: not used only when "later than now + 60"; exactly +60 (13:00Z as 08:00-05:00)."""
    res = recipient(mg(1.8, "mEq/L", days=20), mg_at(0.8, "2026-11-25T08:00:00-05:00"))
    cards = run(res, mode, discovery, monkeypatch)
    the(cards, "mg-severity", "critical")


@pytest.mark.parametrize("mode", MODES)
def test_statement_with_effective_end_in_past_not_active(mode, discovery, monkeypatch):
    """Section 1: a home-medication statement whose period ended 20 days ago is outside the
    14-day recently-stopped window, whatever status was left on it: no cards."""
    res = [patient(), procedure("70536003", "Kidney transplant", 900), egfr(58), mg(0.9, "mEq/L", days=1),
           statement({"text": "tacrolimus 1 mg capsule"}, status="active", start_days=400, end_days=20)]
    cards = run(res, mode, discovery, monkeypatch)
    assert cards == [], [c["summary"] for c in cards]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("first,persistent", [("2026-11-10T20:00:00+09:00", True),     # 11-10 11:00Z: 14 d 1 h
                                              ("2026-11-10T08:00:00-05:00", False)])   # 11-10 13:00Z: 13 d 23 h
def test_persistence_span_boundary_with_offsets(mode, first, persistent, discovery, monkeypatch):
    """Section 7: persistent = "at least 2 results <= 1.4 mEq/L spanning >= 14 days", after the
    supplement started. Latest 2026-11-24T12:00Z."""
    res = recipient(mgo_order(days=60), mg_at(1.2, first), mg_at(1.2, "2026-11-24T12:00:00Z"))
    cards = run(res, mode, discovery, monkeypatch)
    assert ("mg-persistent" in topics(cards)) == persistent, [c["summary"] for c in cards]
