"""Section 5: a symptom's onset given as an age (Condition.onsetAge / onsetRange).

GUIDELINE §5: "Active Conditions ... whose **onset** is in the last 14 days; `recordedDate`
decides only when the Condition has no onset (a chronic atrial fibrillation with onset in 2019,
re-recorded last week, is not a new symptom)." FHIR R4 Condition.onset[x] may be an Age (a
Quantity in UCUM time units: a, mo, wk, d) or a Range of Ages; EHR problem lists send it for
"since childhood"-style histories ("seizures since age 30"). An age in whole units names a span:
an onset "at 57 years" is any day from the 57th birthday to the day before the 58th. The service
counts the symptom as recent when that span can reach the last 14 days (a major symptom that
may be new is not dismissed), and falls back to the recorded date when no birth date is known.

The clock is pinned at 2026-11-25T12:00Z, so the window starts 2026-11-11T12:00Z: an onset on
2026-11-11 (14 days ago) can be inside it, one on 2026-11-10 (15 days ago) cannot.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from cds_service.guideline.facts import AgeAtOnset, PatientFacts, build_facts, read_symptom
from cds_service.guideline.rules import recent_symptoms
from cds_service.guideline.thresholds import DEFAULT_THRESHOLDS

from .test_independent_patients import (
    MODES, run,
    NOW, PID, condition, expect_oral_mgo, expect_severe_adult_iv, mg, recipient, the,
)

UCUM = "http://unitsofmeasure.org"
assert NOW == datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)  # the dates below count from it


def age(value: float, code: str, unit: str | None = None, **extra: object) -> dict:
    """A FHIR Age as EHRs send it: UCUM system and code, a human unit."""
    return {"value": value, "unit": unit or code, "system": UCUM, "code": code, **extra}


def seizure(recorded_days: float = 2, **onset: object) -> dict:
    c = condition("91175000", "Seizure", onset_days=None, recorded_days=recorded_days)
    c.update(onset)
    return c


def is_recent(resource: dict, born: date | None, now: datetime = NOW) -> bool:
    """Read the Condition as the service does, then ask the section 5 rule."""
    symptom = read_symptom(resource)
    assert symptom is not None
    facts = PatientFacts(patient_id="p", encounter_id=None, symptoms=(symptom,), birth_date=born)
    return recent_symptoms(facts, now, DEFAULT_THRESHOLDS) == (symptom,)


# --------------------------------------------------------------------------------------------
# The reader keeps the age (the Condition alone cannot place it: the birth date is the patient's)


def test_onset_age_is_kept_with_the_recorded_date_as_fallback():
    c = seizure(recorded_days=2, onsetAge=age(30, "a", "years"))
    s = read_symptom(c)
    assert s is not None and s.onset_age == AgeAtOnset((30.0, "a"), (30.0, "a"))
    assert s.when == datetime.fromisoformat(c["recordedDate"])


@pytest.mark.parametrize("quantity, expected", [
    ({"value": 30, "unit": "years"}, (30.0, "a")),  # no UCUM code: the unit text
    ({"value": 6, "unit": "Months"}, (6.0, "mo")),
    ({"value": 3, "system": UCUM, "code": "wk", "unit": "weeks"}, (3.0, "wk")),
    ({"value": 10, "system": UCUM, "code": "d", "unit": "days"}, (10.0, "d")),
    ({"value": 30, "system": UCUM, "code": "a", "unit": "yr"}, (30.0, "a")),
])
def test_age_units_ucum_code_first_then_unit_text(quantity, expected):
    assert read_symptom(seizure(onsetAge=quantity)).onset_age == AgeAtOnset(expected, expected)


@pytest.mark.parametrize("quantity", [
    {"value": 30},  # no unit: 30 what?
    {"value": 5, "system": UCUM, "code": "h", "unit": "hours"},  # a newborn's age in hours: not read
    {"value": "30", "unit": "a"},  # not a number
    {"value": -1, "unit": "a"},
    {"value": True, "unit": "a"},
])
def test_unreadable_age_is_no_onset(quantity):
    assert read_symptom(seizure(onsetAge=quantity)).onset_age is None


def test_onset_string_is_not_read_recorded_date_decides():
    """onsetString is free text ("childhood"): not read; the recorded date decides."""
    assert is_recent(seizure(recorded_days=2, onsetString="since childhood"), date(1968, 3, 14))
    assert not is_recent(seizure(recorded_days=20, onsetString="last week"), date(1968, 3, 14))


def test_onset_date_time_still_decides_over_everything():
    c = seizure(recorded_days=2, onsetDateTime="2019-05-01")
    assert read_symptom(c).onset_age is None and not is_recent(c, date(1968, 3, 14))


# --------------------------------------------------------------------------------------------
# The reviewer's patient and the conservative side


def test_seizure_since_age_30_recorded_two_days_ago_is_not_recent():
    """The reviewer's case: born 1968-03-14, onset at 30 (1998-1999), re-recorded 2 days ago."""
    assert not is_recent(seizure(recorded_days=2, onsetAge=age(30, "a", "years")), date(1968, 3, 14))


def test_onset_at_the_current_age_may_be_recent():
    """A 58-year-old (born 1968-03-14) with onset "at 58 years": any day since 2026-03-14,
    the last 14 days included, even though it was recorded 30 days ago."""
    assert is_recent(seizure(recorded_days=30, onsetAge=age(58, "a", "years")), date(1968, 3, 14))


def test_onset_age_beyond_the_patients_age_is_not_recent():
    """Onset "at 60" in a 58-year-old has not happened: no symptom in the window (the record is
    wrong, but an onset cannot be in the future)."""
    assert not is_recent(seizure(recorded_days=2, onsetAge=age(60, "a")), date(1968, 3, 14))


@pytest.mark.parametrize("recorded, recent", [(2, True), (20, False)])
def test_without_birth_date_the_recorded_date_decides(recorded, recent):
    """No birth date: the age cannot be placed, so the recorded date decides as for a Condition
    with no onset (recorded 2 days ago: recent; 20 days ago: not)."""
    assert is_recent(seizure(recorded_days=recorded, onsetAge=age(30, "a")), None) is recent


# --------------------------------------------------------------------------------------------
# Boundaries at 14 days, one unit at a time. Each pair differs by one day of birth date: the
# latest possible onset day is 2026-11-11 (14 days before NOW: in the window) or 2026-11-10
# (15 days: outside it).


@pytest.mark.parametrize("value, unit, born, recent", [
    # 57 years: onset before the 58th birthday. Born 1968-11-12: up to 2026-11-11.
    (57, "a", date(1968, 11, 12), True),
    (57, "a", date(1968, 11, 11), False),
    # 11 months: before the first birthday. Born 2025-11-12: up to 2026-11-11.
    (11, "mo", date(2025, 11, 12), True),
    (11, "mo", date(2025, 11, 11), False),
    # 10 weeks: before day 77 of life. Born 2026-08-27 (+77 days = 2026-11-12): up to 2026-11-11.
    (10, "wk", date(2026, 8, 27), True),
    (10, "wk", date(2026, 8, 26), False),
    # 100 days: the 100th day of life only. Born 2026-08-03 (+100 days = 2026-11-11).
    (100, "d", date(2026, 8, 3), True),
    (100, "d", date(2026, 8, 2), False),
], ids=["a-14d", "a-15d", "mo-14d", "mo-15d", "wk-14d", "wk-15d", "d-14d", "d-15d"])
def test_boundary_at_14_days_in_each_unit(value, unit, born, recent):
    # Recorded 40 days ago: the recorded date alone would never count.
    assert is_recent(seizure(recorded_days=40, onsetAge=age(value, unit)), born) is recent


def test_born_on_29_february_the_span_is_not_cut_short():
    """Born 1968-02-29, onset at 57: the 58th birthday is 28 February or 1 March 2026 by custom;
    the span runs to the later one. Checked on 2026-03-14 (window from 2026-02-28 12:00)."""
    now = datetime(2026, 3, 14, 12, 0, tzinfo=timezone.utc)
    assert is_recent(seizure(recorded_days=40, onsetAge=age(57, "a")), date(1968, 2, 29), now)


@pytest.mark.parametrize("value, recent", [(57.5, True), (56.5, False)])
def test_fractional_age(value, recent):
    """Born 1968-11-12. Onset at 57.5 years: from about 2026-05-12 to 2027-05-12, now included.
    At 56.5 years: from about 2025-05-12 to about 2026-05-12, over months before the window."""
    assert is_recent(seizure(recorded_days=40, onsetAge=age(value, "a")), date(1968, 11, 12)) is recent


@pytest.mark.parametrize("birth, recent", [("1968", True), ("1968-11", True), ("1968-03-14", False),
                                           ("1968-10", False)])
def test_partial_birth_date_counts_to_its_last_day(birth, recent):
    """Born "1968" (a year-only birthDate): onset at 57 may be as late as the day before
    2026-12-31, so now. Born "1968-11": up to 2026-11-29, in the window. Born "1968-10": up to
    2026-10-30, not. A full date 1968-03-14: up to 2026-03-13, not."""
    facts = build_facts([{"resourceType": "Patient", "id": PID, "birthDate": birth},
                         seizure(recorded_days=40, onsetAge=age(57, "a"))], patient_id=PID, encounter_id=None)
    assert len(facts.symptoms) == 1
    assert (recent_symptoms(facts, NOW, DEFAULT_THRESHOLDS) == facts.symptoms) is recent


# --------------------------------------------------------------------------------------------
# onsetRange and comparators


@pytest.mark.parametrize("ages, recent", [
    ({"low": age(30, "a"), "high": age(35, "a")}, False),  # 1998-2004
    ({"low": age(50, "a"), "high": age(58, "a")}, True),  # up to the 59th birthday: now included
    ({"high": age(40, "a")}, False),  # before 41
    ({"low": age(55, "a")}, True),  # 55 or later: may be now
    ({"low": age(60, "a")}, False),  # not reached yet
    ({"low": {"value": 30}, "high": {"value": 35}}, True),  # no units at all: recorded date (2 days)
], ids=["30-35", "50-58", "up-to-40", "from-55", "from-60", "no-units"])
def test_onset_range(ages, recent):
    assert is_recent(seizure(recorded_days=2, onsetRange=ages), date(1968, 3, 14)) is recent


@pytest.mark.parametrize("comparator, value, recent", [("<", 1, False), (">", 50, True), (">=", 60, False)])
def test_onset_age_comparator(comparator, value, recent):
    """'<1 a' is infancy, '>50 a' may be now (open), '>=60 a' has not happened for a 58-year-old."""
    c = seizure(recorded_days=2, onsetAge=age(value, "a", comparator=comparator))
    assert is_recent(c, date(1968, 3, 14)) is recent


# --------------------------------------------------------------------------------------------
# Through the hook, in both data modes (the EHR's prefetch; no prefetch, FHIR server reads)


@pytest.mark.parametrize("mode", MODES)
def test_hook_onset_at_current_age_is_symptomatic_major(mode, discovery, monkeypatch):
    """§3: "Mg ≤ 1.4 and a major symptom ... in the last 14 days: critical". A seizure with onset
    "at 58 years" in a 58-year-old, recorded a month ago, may be new: Mg 1.3 mEq/L is critical."""
    cards = run(recipient(mg(1.3, "mEq/L", days=1), seizure(recorded_days=30, onsetAge=age(58, "a", "years"))),
                mode, discovery, monkeypatch)
    expect_severe_adult_iv(the(cards, "mg-severity", "critical"))


@pytest.mark.parametrize("mode", MODES)
def test_hook_onset_range_in_youth_is_not_a_new_symptom(mode, discovery, monkeypatch):
    """Tremor since age 20-25 in a 58-year-old, re-recorded yesterday: Mg 1.3 mEq/L stays
    mild-moderate without symptoms (oral magnesium twice daily), not the minor-symptom TID."""
    tremor = condition("26079004", "Tremor", onset_days=None, recorded_days=1)
    tremor["onsetRange"] = {"low": age(20, "a", "years"), "high": age(25, "a", "years")}
    c = the(run(recipient(mg(1.3, "mEq/L", days=1), tremor), mode, discovery, monkeypatch), "mg-severity", "warning")
    expect_oral_mgo(c, per_day_expected=2)
