"""rules.py as pure functions: facts + clock + thresholds -> findings (docs/clinical-rules.md sections 1-5, 7).

Every test builds facts from small synthetic FHIR resources and passes the clock in (factories.NOW).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from cds_service.guideline.facts import build_facts
from cds_service.guideline.rules import (Assessment, ContributingFactors, FemgFinding, MonitoringDue,
                                         PersistentLow, ResultsNotUsed, Severity, SeverityFinding,
                                         SymptomsWithNormalMagnesium, assess, classify,
                                         renal_caution,
                                         tacrolimus_start)
from cds_service.guideline.thresholds import DEFAULT_THRESHOLDS

from cds_service.testing import factories as f

NOW = f.NOW
T = DEFAULT_THRESHOLDS
HOUR = 1 / 24
EGFR_UNIT = "mL/min/{1.73_m2}"


def facts_of(*resources, encounter_id=None):
    return build_facts(resources, patient_id=f.PATIENT_ID, encounter_id=encounter_id)


def run(*resources, encounter_id=None, now=NOW) -> Assessment:
    """assess() for a patient on tacrolimus (unless the resources say otherwise)."""
    return assess(facts_of(*resources, encounter_id=encounter_id), now, T)


def on_tac(*resources, **kwargs) -> Assessment:
    return run(f.tacrolimus(), *resources, **kwargs)


def one(assessment: Assessment, kind: type):
    if kind is PersistentLow:  # revision 2: persistence travels on (and replaces) the severity card
        severity = one(assessment, SeverityFinding)
        return severity.persistent if severity else None
    found = [x for x in assessment.findings if isinstance(x, kind)]
    assert len(found) <= 1, found
    return found[0] if found else None


def severity_of(assessment: Assessment) -> Severity:
    finding = one(assessment, SeverityFinding)
    return finding.severity if finding else Severity.AT_TARGET


def tremor(days=2):
    return f.condition(snomed="26079004", days=days)


def seizure(days=2):
    return f.condition(snomed="91175000", days=days)


# --------------------------------------------------------------------------------------------
# Section 3: severity of the latest usable serum result


SEVERE, SYMPTOMATIC, MILD, BELOW, AT = (Severity.SEVERE, Severity.SYMPTOMATIC, Severity.MILD_MODERATE,
                                         Severity.BELOW_TARGET, Severity.AT_TARGET)
MINOR = Severity.SYMPTOMATIC_MINOR


@pytest.mark.parametrize("value, unit, comparator, symptom, expected", [
    # mEq/L: severe < 1.0 <= mild-moderate <= 1.4 < below target < 1.5 <= at target
    (0.2, "mEq/L", None, False, SEVERE),
    (0.99, "mEq/L", None, False, SEVERE),
    (1.0, "mEq/L", None, False, MILD),
    (1.4, "mEq/L", None, False, MILD),
    (1.41, "mEq/L", None, False, BELOW),
    (1.49, "mEq/L", None, False, BELOW),
    (1.5, "mEq/L", None, False, AT),
    (2.2, "mEq/L", None, False, AT),
    # symptomatic: <= 1.4 with a symptom in the last 14 days (severe stays severe); a major
    # symptom (seizure) is critical, a minor one only (tremor) a warning with oral at TID
    (0.99, "mEq/L", None, "major", SEVERE),
    (1.0, "mEq/L", None, "major", SYMPTOMATIC),
    (1.4, "mEq/L", None, "major", SYMPTOMATIC),
    (1.41, "mEq/L", None, "major", BELOW),
    (1.5, "mEq/L", None, "major", AT),
    (0.99, "mEq/L", None, "minor", SEVERE),
    (1.0, "mEq/L", None, "minor", MINOR),
    (1.4, "mEq/L", None, "minor", MINOR),
    (1.41, "mEq/L", None, "minor", BELOW),
    # mmol/L x 2: boundaries 0.5 / 0.7 / 0.75
    (0.49, "mmol/L", None, False, SEVERE),
    (0.5, "mmol/L", None, False, MILD),
    (0.70, "mmol/L", None, False, MILD),      # exactly 1.40 mEq/L with the 1e-9 tolerance
    (0.70, "mmol/L", None, "major", SYMPTOMATIC),
    (0.70, "mmol/L", None, "minor", MINOR),
    (0.49, "mmol/L", None, "minor", SEVERE),
    (1.216, "mg/dL", None, "minor", MINOR),
    (1.215, "mg/dL", None, "major", SEVERE),
    (1.701, "mg/dL", None, "major", SYMPTOMATIC),
    (0.705, "mmol/L", None, False, BELOW),
    (0.749, "mmol/L", None, False, BELOW),
    (0.75, "mmol/L", None, False, AT),
    # mg/dL x 0.82288: 1.0 = 1.2153, 1.4 = 1.7014, 1.5 = 1.8229 mg/dL
    (1.215, "mg/dL", None, False, SEVERE),
    (1.216, "mg/dL", None, False, MILD),
    (1.701, "mg/dL", None, False, MILD),
    (1.702, "mg/dL", None, False, BELOW),
    (1.822, "mg/dL", None, False, BELOW),
    (1.823, "mg/dL", None, False, AT),
    # mg/L x 0.082288
    (12.1, "mg/L", None, False, SEVERE),
    (17.0, "mg/L", None, False, MILD),
    (18.3, "mg/L", None, False, AT),
    # comparators: '<' is an upper bound (certainly below it), '>' a lower bound
    ("<", 0.5, "mmol/L", False, SEVERE),
    ("<", 1.0, "mEq/L", False, SEVERE),
    ("<=", 1.0, "mEq/L", False, MILD),
    ("<", 1.45, "mEq/L", False, BELOW),
    (">", 1.5, "mEq/L", False, AT),
    (">", 0.8, "mmol/L", False, AT),
], ids=lambda v: str(v))
def test_severity_table(value, unit, comparator, symptom, expected):
    if isinstance(value, str):  # comparator rows are written "<", value, unit
        value, unit, comparator = unit, comparator, value
    resources = [f.magnesium(value, unit, comparator=comparator, days=2)]
    if symptom:
        resources.append(tremor() if symptom == "minor" else seizure())
    assessment = on_tac(*resources)
    assert severity_of(assessment) is expected
    severity = one(assessment, SeverityFinding)
    if expected is AT:
        assert severity is None
    else:
        assert severity.latest.value == value
        assert severity.stale is False
        # A recent symptom travels with every card below target (it names it); only at or
        # below 1.4 does it change the class (symptomatic).
        assert bool(severity.symptoms) is bool(symptom)


@pytest.mark.parametrize("meq_per_l, expected", [
    # conversions land a hair off the thresholds: within 1e-9 they count as the threshold itself
    (1.0 - 5e-10, MILD),
    (1.0 - 5e-9, SEVERE),
    (1.4 + 5e-10, MILD),
    (1.4 + 5e-9, BELOW),
    (1.5 - 5e-10, AT),
    (1.5 - 5e-9, BELOW),
    (0.35 * 4, MILD),         # 1.4 computed, not typed
])
def test_comparison_tolerance(meq_per_l, expected):
    assert classify(meq_per_l, None, False, T) is expected


def test_lower_bound_below_target_cannot_be_classified():
    assessment = on_tac(f.magnesium(1.0, comparator=">", days=2))
    assert one(assessment, SeverityFinding) is None
    assert [r.value for r in assessment.unreadable] == [1.0]


def test_several_results_at_the_same_time_the_lowest_counts():
    when = f.days_ago(2)
    assessment = on_tac(f.magnesium(1.8, when=when), f.magnesium(0.6, "mmol/L", when=when),
                        f.magnesium(1.45, when=when))
    assert severity_of(assessment) is MILD
    assert one(assessment, SeverityFinding).latest.value == 0.6


def test_newest_result_wins_even_when_older_ones_are_lower():
    assessment = on_tac(f.magnesium(0.7, days=10), f.magnesium(1.45, days=1))
    assert severity_of(assessment) is BELOW


def test_newest_low_result_wins_over_an_older_normal_one():
    assessment = on_tac(f.magnesium(1.9, days=10), f.magnesium(0.9, days=1))
    assert severity_of(assessment) is SEVERE


def test_preliminary_result_is_ignored_for_classification_but_shown():
    assessment = on_tac(f.magnesium(1.8, days=5), f.magnesium(0.5, days=1, status="preliminary"))
    assert severity_of(assessment) is AT
    assert [r.value for r in assessment.preliminary] == [0.5]
    shown = one(assessment, ResultsNotUsed)
    assert shown is not None and shown.latest.value == 1.8 and shown.preliminary[0].value == 0.5


def test_lower_bound_falls_back_to_the_older_usable_result():
    assessment = on_tac(f.magnesium(1.2, days=5), f.magnesium(1.0, comparator=">", days=1))
    assert severity_of(assessment) is MILD
    assert [r.value for r in assessment.unreadable] == [1.0]


def test_unreadable_newer_result_is_never_silent_when_no_other_card_applies():
    assessment = on_tac(f.magnesium(1.8, days=5), f.magnesium(0.4, "furlongs", days=1))
    shown = one(assessment, ResultsNotUsed)
    assert shown is not None and [r.value for r in shown.unreadable] == [0.4]


def test_older_preliminary_result_is_not_shown():
    assessment = on_tac(f.magnesium(0.5, days=5, status="preliminary"), f.magnesium(1.8, days=1))
    assert assessment.preliminary == () and assessment.findings == ()


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled"])
def test_ignored_statuses_never_count(status):
    assessment = on_tac(f.magnesium(0.5, days=1, status=status))
    due = one(assessment, MonitoringDue)
    assert due is not None and due.latest is None
    assert assessment.unreadable == ()


def test_unreadable_newer_result_is_reported_and_the_older_usable_one_used():
    assessment = on_tac(f.magnesium(1.2, days=5), f.magnesium(0.4, "furlongs", days=1))
    assert severity_of(assessment) is MILD
    assert [r.value for r in assessment.unreadable] == [0.4]


def test_unreadable_older_result_is_not_reported():
    assessment = on_tac(f.magnesium(0.4, "furlongs", days=10), f.magnesium(1.2, days=5))
    assert assessment.unreadable == ()


def test_ionized_magnesium_is_kept_but_never_classified():
    assessment = on_tac(f.magnesium(0.3, "mmol/L", code="73573-8", days=1))
    assert assessment.ionized is not None and assessment.ionized.value == 0.3
    assert one(assessment, SeverityFinding) is None
    assert one(assessment, MonitoringDue).latest is None


@pytest.mark.parametrize("medications", [
    [],
    [f.medication("tacrolimus 0.1% ointment")],
    [f.medication("Protopic 0.03%", route="topical")],
    [f.tacrolimus(status="stopped")],
    [f.tacrolimus(status="completed")],
    [f.tacrolimus(status="entered-in-error")],
    [f.medication("cyclosporine 100 mg")],
], ids=["none", "ointment", "Protopic", "stopped", "completed", "entered-in-error", "other-CNI"])
def test_patient_not_on_systemic_tacrolimus_gets_no_findings(medications):
    assessment = run(*medications, f.magnesium(0.3, days=1), tremor())
    assert assessment.on_tacrolimus is False
    assert assessment.findings == ()


def test_on_hold_tacrolimus_still_counts():
    assessment = run(f.tacrolimus(status="on-hold"), f.magnesium(0.8, days=1))
    assert severity_of(assessment) is SEVERE


# --------------------------------------------------------------------------------------------
# Section 4: monitoring interval (shortest wins); never measured is due


JUST_OVER = 1 * HOUR


@pytest.mark.parametrize("mg_days_ago, context, due_interval", [
    # routine: 42 days
    (42, [], None),
    (42 + JUST_OVER, [], 42),
    (41, [], None),
    # first month after transplant: 7 days
    (7, [f.transplant(30)], None),
    (7 + JUST_OVER, [f.transplant(30)], 7),
    (7 + JUST_OVER, [f.transplant(31)], None),
    (7 + JUST_OVER, [f.transplant(400), f.transplant(20)], 7),     # the latest transplant counts
    (7 + JUST_OVER, [f.transplant(20, status="in-progress")], None),
    # hospitalized (in-progress inpatient/acute/emergency): 3 days
    (3, [f.encounter("IMP")], None),
    (3 + JUST_OVER, [f.encounter("IMP")], 3),
    (3 + JUST_OVER, [f.encounter("EMER")], 3),
    (3 + JUST_OVER, [f.encounter("IMP", status="finished")], None),
    (3 + JUST_OVER, [f.encounter("AMB")], None),
    (3 + JUST_OVER, [f.encounter("IMP"), f.transplant(10)], 3),    # the shortest wins
    # never measured
    (None, [], 42),
    (None, [f.encounter("IMP")], 3),
], ids=lambda v: str(v))
def test_monitoring_interval_table(mg_days_ago, context, due_interval):
    resources = list(context)
    if mg_days_ago is not None:
        resources.append(f.magnesium(1.8, days=mg_days_ago))
    assessment = on_tac(*resources)
    due = one(assessment, MonitoringDue)
    if due_interval is None:
        assert due is None
        assert assessment.findings == ()
    else:
        assert due.interval.days == due_interval
        assert (due.latest is None) is (mg_days_ago is None)


@pytest.mark.parametrize("orders, start_days_ago, early", [
    # a renewal 10 days ago is not a start when older (stopped, completed) orders exist
    ([f.tacrolimus(days=10)], 10, True),
    ([f.tacrolimus(days=10), f.tacrolimus(days=200, status="stopped")], 200, False),
    ([f.tacrolimus(days=10), f.tacrolimus(days=200, status="completed")], 200, False),
    ([f.tacrolimus(days=10), f.medication("Prograf 1 mg", days=60, status="stopped")], 60, False),
    # orders that never were: not a start
    ([f.tacrolimus(days=10), f.tacrolimus(days=200, status="entered-in-error")], 10, True),
    ([f.tacrolimus(days=10), f.tacrolimus(days=200, status="cancelled")], 10, True),
    # topical tacrolimus is not tacrolimus for this purpose
    ([f.tacrolimus(days=10), f.medication("tacrolimus 0.1% ointment", days=200)], 10, True),
    # the first month after the start: 30 days, not 31
    ([f.tacrolimus(days=30)], 30, True),
    ([f.tacrolimus(days=31)], 31, False),
], ids=lambda v: str(v) if not isinstance(v, list) else None)
def test_tacrolimus_start_is_the_earliest_order(orders, start_days_ago, early):
    patient = facts_of(*orders)
    assert tacrolimus_start(patient) == NOW - timedelta(days=start_days_ago)
    due = one(run(*orders, f.magnesium(1.8, days=8)), MonitoringDue)
    assert (due is not None and due.interval.days == 7) is early


def test_stale_severity_result_is_marked_and_no_separate_monitoring_finding():
    assessment = on_tac(f.magnesium(1.2, days=43))
    finding = one(assessment, SeverityFinding)
    assert finding.stale and finding.interval.days == 42
    assert one(assessment, MonitoringDue) is None


def test_stale_depends_on_the_interval_that_applies():
    assessment = on_tac(f.magnesium(1.2, days=4), f.encounter("IMP"))
    finding = one(assessment, SeverityFinding)
    assert finding.stale and finding.interval.days == 3


def test_the_clock_is_passed_in():
    mg = f.magnesium(1.8, days=10)
    assert one(on_tac(mg), MonitoringDue) is None
    assert one(on_tac(mg, now=NOW + timedelta(days=40)), MonitoringDue).interval.days == 42


# --------------------------------------------------------------------------------------------
# Section 5: symptoms in the last 14 days


@pytest.mark.parametrize("symptom, mg, expected_severity, normal_mg_card", [
    (tremor(days=14), 1.2, MINOR, False),
    (tremor(days=15), 1.2, MILD, False),
    (seizure(days=14), 1.2, SYMPTOMATIC, False),
    (seizure(days=15), 1.2, MILD, False),
    (f.condition("muscle cramps", days=3), 1.2, MINOR, False),
    (f.condition("Tetany", days=3), 1.2, SYMPTOMATIC, False),
    (f.condition(snomed="26079004", days=3, clinical_status="resolved"), 1.2, MILD, False),
    (f.condition(snomed="26079004", days=3, verification="refuted"), 1.2, MILD, False),
    (tremor(days=3), 1.45, BELOW, False),    # below target with a symptom: its info card says so, never symptomatic
    (tremor(days=3), 1.9, AT, True),
    (tremor(days=15), 1.9, AT, False),
], ids=lambda v: str(v) if not isinstance(v, dict) else None)
def test_symptoms_window(symptom, mg, expected_severity, normal_mg_card):
    assessment = on_tac(symptom, f.magnesium(mg, days=1))
    assert severity_of(assessment) is expected_severity
    assert (one(assessment, SymptomsWithNormalMagnesium) is not None) is normal_mg_card
    if expected_severity is BELOW:  # one card, not two: the below-target card carries the symptom
        assert one(assessment, SeverityFinding).symptoms


# --------------------------------------------------------------------------------------------
# Section 7: contributing factors (only when the latest Mg is low)


RECENT_LEVEL = f.lab("11253-2", 8.0, "ng/mL", days=5)


@pytest.mark.parametrize("extra, expected", [
    ([], None),
    # magnesium-wasting drugs: active only
    ([f.medication("omeprazole 20 mg", id="ppi-1")], {"wasting": ["ppi-1"]}),
    ([f.medication("furosemide 40 mg", id="loop-1", status="on-hold")], {"wasting": ["loop-1"]}),
    ([f.medication("omeprazole 20 mg", status="stopped")], None),
    ([f.medication("omeprazole 20 mg", status="completed")], None),
    ([f.medication("omeprazole 0.1% cream")], None),
    # drugs that raise tacrolimus levels
    ([f.medication("fluconazole 200 mg", id="azole-1")], {"raising": ["azole-1"]}),
    ([f.medication("azithromycin 250 mg")], None),
    # tacrolimus level above 15 ng/mL or above its own reference range
    ([f.lab("11253-2", 15.0, "ng/mL", days=1)], None),
    ([f.lab("11253-2", 15.1, "ng/mL", days=1)], {"high": True}),
    ([f.lab("11253-2", 12.0, "ng/mL", days=1, reference_high=10.0)], {"high": True}),
    ([f.lab("11253-2", 9.0, "ng/mL", days=1, reference_high=10.0)], None),
    ([f.lab("11253-2", 20.0, "ng/mL", days=1, comparator="<")], None),
])
def test_contributing_factors_table(extra, expected):
    assessment = on_tac(RECENT_LEVEL, f.magnesium(1.2, days=1), *extra)
    factors = one(assessment, ContributingFactors)
    if expected is None:
        assert factors is None
        return
    assert [m.request_id for m in factors.wasting_drugs] == expected.get("wasting", [])
    assert [m.request_id for m in factors.raising_drugs] == expected.get("raising", [])
    assert factors.tacrolimus_high is expected.get("high", False)
    assert factors.tacrolimus_level_missing is False
    assert factors.egfr_rise is None


@pytest.mark.parametrize("transplant_days, level_days_ago, missing", [
    # first year after the transplant: 30 days
    (200, None, 30),
    (200, 31, 30),
    (200, 30 + HOUR, 30),
    (200, 29, None),
    # after the first year: tacrolimus_level_recent_days_late = 90
    (800, 31, None),
    (800, 89, None),
    (800, 90 + HOUR, 90),
    (800, None, 90),
])
def test_missing_tacrolimus_level_is_a_trough_on_the_severity_finding(transplant_days, level_days_ago, missing):
    extra = [] if level_days_ago is None else [f.lab("11253-2", 8.0, "ng/mL", days=level_days_ago)]
    tacrolimus = f.tacrolimus(days=transplant_days)
    assessment = run(tacrolimus, f.transplant(transplant_days), f.magnesium(1.2, days=1), *extra)
    assert one(assessment, ContributingFactors) is None  # never a factor by itself (section 7)
    assert one(assessment, SeverityFinding).trough_missing_days == missing


@pytest.mark.parametrize("status", ["stopped", "on-hold"])
def test_no_trough_suggested_for_stopped_or_held_tacrolimus(status):
    stopped = f.tacrolimus(status=status, days=400)
    if status == "stopped":
        stopped["dosageInstruction"] = [{"timing": {"repeat": {"boundsPeriod": {"end": f.days_ago(5)}}}}]
    finding = one(run(stopped, f.magnesium(1.2, days=1)), SeverityFinding)
    assert finding is not None and finding.trough_missing_days is None


@pytest.mark.parametrize("earlier, earlier_days_ago, latest, rise", [
    (50, 60, 60, 0.20),       # exactly 20 %: counts
    (50, 60, 59.5, None),     # 19 %: does not
    (50, 60, 75, 0.50),
    (50, 89, 60, 0.20),       # within 90 days of the latest
    (50, 95, 60, None),       # too long ago
    (60, 60, 50, None),       # falling
])
def test_egfr_rise(earlier, earlier_days_ago, latest, rise):
    assessment = on_tac(RECENT_LEVEL, f.magnesium(1.2, days=1),
                        f.lab("98979-8", earlier, EGFR_UNIT, days=earlier_days_ago),
                        f.lab("98979-8", latest, EGFR_UNIT, days=2))
    factors = one(assessment, ContributingFactors)
    if rise is None:
        assert factors is None
    else:
        assert factors.egfr_rise.fraction == pytest.approx(rise)
        assert factors.egfr_rise.earlier.value == earlier


@pytest.mark.parametrize("mg", [1.45, 1.8])
def test_no_contributing_factors_when_mg_is_not_low(mg):
    assessment = on_tac(f.magnesium(mg, days=1), f.medication("omeprazole 20 mg"),
                        f.lab("11253-2", 25.0, "ng/mL", days=1))
    assert one(assessment, ContributingFactors) is None
    assert one(assessment, FemgFinding) is None
    assert one(assessment, PersistentLow) is None


# --------------------------------------------------------------------------------------------
# Section 7: persistent hypomagnesemia despite supplementation


@pytest.mark.parametrize("supplement, results, persistent", [
    # two low results spanning 14 days after the supplement started
    (f.medication("magnesium oxide 400 mg", days=30), [(1.2, 20), (1.3, 6)], True),
    (f.medication("magnesium oxide 400 mg", days=30), [(1.2, 20), (1.3, 7)], False),   # 13 days
    (f.medication("magnesium oxide 400 mg", days=30), [(1.2, 20), (1.3, 13), (1.1, 6)], True),
    (f.medication("magnesium oxide 400 mg", days=30), [(1.3, 6)], False),               # one result
    # a result before the supplement started does not count
    (f.medication("magnesium oxide 400 mg", days=10), [(1.2, 20), (1.3, 1)], False),
    (f.medication("magnesium oxide 400 mg", days=21), [(1.2, 20), (1.3, 6)], True),
    # a normal (or merely below-target) result in between breaks the run
    (f.medication("magnesium oxide 400 mg", days=30), [(1.2, 25), (1.8, 10), (1.3, 1)], False),
    (f.medication("magnesium oxide 400 mg", days=30), [(1.2, 25), (1.45, 10), (1.3, 1)], False),
    (f.medication("magnesium oxide 400 mg", days=30), [(1.8, 28), (1.2, 25), (1.3, 1)], True),
    # the supplement must be an active order
    (f.medication("magnesium oxide 400 mg", days=30, status="stopped"), [(1.2, 20), (1.3, 6)], False),
    (f.medication("Slow-Mag 64 mg", days=30), [(1.2, 20), (1.3, 6)], True),
    (None, [(1.2, 20), (1.3, 6)], False),
], ids=lambda v: str(v) if not isinstance(v, dict) else None)
def test_persistent_low_despite_supplement(supplement, results, persistent):
    resources = [f.magnesium(value, days=days) for value, days in results]
    if supplement is not None:
        resources.append(supplement)
    finding = one(on_tac(RECENT_LEVEL, *resources), PersistentLow)
    assert (finding is not None) is persistent
    if persistent:
        assert finding.results[-1].value == results[-1][0]
        assert finding.severe is False


def test_persistent_low_is_severe_when_the_latest_is_severe():
    finding = one(on_tac(f.medication("magnesium oxide 400 mg", days=30),
                         f.magnesium(1.2, days=20), f.magnesium(0.8, days=2)), PersistentLow)
    assert finding.severe is True
    assert [r.value for r in finding.results] == [1.2, 0.8]


def test_preliminary_results_do_not_make_a_run():
    finding = one(on_tac(f.medication("magnesium oxide 400 mg", days=30),
                         f.magnesium(1.2, days=20, status="preliminary"), f.magnesium(1.3, days=2)),
                  PersistentLow)
    assert finding is None


# --------------------------------------------------------------------------------------------
# Section 7: FEMg = (U_Mg x S_Cr) / (0.7 x S_Mg x U_Cr) x 100


def femg_inputs(*, serum_mg=1.5, serum_cr=(1.2, "mg/dL"), urine_mg=8.0, urine_cr=60.0,
                urine_hours_apart=2.0):
    """Serum Mg (mg/dL) 1 day ago; creatinine the same day; urine samples some hours earlier."""
    urine_days = 1 + urine_hours_apart * HOUR
    return [f.magnesium(serum_mg, "mg/dL", days=1),
            f.lab("2160-0" if serum_cr[1] == "mg/dL" else "14682-9", serum_cr[0], serum_cr[1], days=1),
            f.lab("19124-7", urine_mg, "mg/dL", days=urine_days),
            f.lab("2161-8", urine_cr, "mg/dL", days=urine_days)]


@pytest.mark.parametrize("inputs, expected_percent, renal", [
    # (8.0 x 1.2) / (0.7 x 1.5 x 60) x 100 = 9.6 / 63 x 100 = 15.238 %
    (femg_inputs(), 15.238095, True),
    # (0.8 x 1.2) / (0.7 x 1.5 x 60) x 100 = 1.5238 %: extrarenal loss
    (femg_inputs(urine_mg=0.8), 1.5238095, False),
    # serum creatinine in umol/L: 106.104 umol/L = 1.2 mg/dL, same answer
    (femg_inputs(serum_cr=(106.104, "umol/L")), 15.238095, True),
    # (2.0 x 1.0) / (0.7 x 1.2 x 100) x 100 = 2.381 %: just above 2 %
    (femg_inputs(serum_mg=1.2, serum_cr=(1.0, "mg/dL"), urine_mg=2.0, urine_cr=100.0), 2.3809524, True),
    # (1.6 x 1.0) / (0.7 x 1.2 x 100) x 100 = 1.905 %: just below
    (femg_inputs(serum_mg=1.2, serum_cr=(1.0, "mg/dL"), urine_mg=1.6, urine_cr=100.0), 1.9047619, False),
    # inputs within 24 hours count; more than 24 hours apart they do not
    (femg_inputs(urine_hours_apart=24), 15.238095, True),
    (femg_inputs(urine_hours_apart=25), None, None),
    (femg_inputs(urine_hours_apart=-25), None, None),
], ids=["renal", "extrarenal", "umol-creatinine", "just-above-2", "just-below-2", "24h", "25h-before", "25h-after"])
def test_femg(inputs, expected_percent, renal):
    assessment = on_tac(RECENT_LEVEL, *inputs)
    finding = one(assessment, FemgFinding)
    if expected_percent is None:  # not computable: the severity card carries the work-up
        assert finding is None and one(assessment, SeverityFinding).femg_missing
    else:
        assert finding.value == pytest.approx(expected_percent, rel=1e-6)
        assert finding.renal_wasting is renal
        assert [r.kind for r in finding.inputs] == ["mg_serum", "creatinine_serum", "mg_urine",
                                                    "creatinine_urine"]


@pytest.mark.parametrize("missing", ["2160-0", "19124-7", "2161-8"])
def test_femg_needs_all_four_inputs(missing):
    inputs = [r for r in femg_inputs() if r["code"]["coding"][0]["code"] != missing]
    assessment = on_tac(RECENT_LEVEL, *inputs)
    assert one(assessment, FemgFinding) is None and one(assessment, SeverityFinding).femg_missing


# --------------------------------------------------------------------------------------------
# Section 3: renal caution below eGFR 30


@pytest.mark.parametrize("egfr, comparator, caution", [
    (29, None, True),
    (29.9, None, True),
    (30, None, False),
    (45, None, False),
    (30, "<", True),      # an upper bound below the threshold counts
    (15, ">", False),     # a lower bound does not
])
def test_renal_caution(egfr, comparator, caution):
    resources = [f.magnesium(1.2, days=1), f.lab("98979-8", egfr, EGFR_UNIT, days=2, comparator=comparator)]
    finding = one(on_tac(*resources), SeverityFinding)
    assert (finding.renal_caution is not None) is caution
    assert (renal_caution(facts_of(*resources), T) is not None) is caution


def test_renal_caution_uses_the_latest_egfr():
    finding = one(on_tac(f.magnesium(1.2, days=1), f.lab("98979-8", 20, EGFR_UNIT, days=30),
                         f.lab("98979-8", 45, EGFR_UNIT, days=2)), SeverityFinding)
    assert finding.renal_caution is None


# --------------------------------------------------------------------------------------------
# Review fixes: recency, windows and text fallbacks


def test_old_high_tacrolimus_level_is_not_called_high_but_asks_for_a_new_level():
    old_high = f.lab("11253-2", 22, "ng/mL", days=45)
    # First year after transplant: a 45-day-old level is outside the 30-day window.
    assessment = run(f.tacrolimus(days=200), f.transplant(200), f.magnesium(1.2, days=1), old_high)
    assert one(assessment, ContributingFactors) is None  # says nothing about today
    assert one(assessment, SeverityFinding).trough_missing_days == 30  # a new level is asked for
    # Later (90-day window) the same level is recent enough to count as high.
    assert one(on_tac(f.magnesium(1.2, days=1), old_high), ContributingFactors).tacrolimus_high


def test_femg_inputs_must_lie_within_24_hours_of_each_other():
    # Each input is within 24 h of the serum Mg, but urine Mg and urine creatinine are 40 h apart.
    mg = f.magnesium(1.2, days=2)
    inputs = [f.lab("2160-0", 1.0, "mg/dL", days=2), f.lab("19124-7", 5.0, "mg/dL", days=2 + 20 * HOUR),
              f.lab("2161-8", 100.0, "mg/dL", days=2 - 20 * HOUR)]
    assessment = on_tac(mg, *inputs)
    assert one(assessment, FemgFinding) is None and one(assessment, SeverityFinding).femg_missing


@pytest.mark.parametrize("procedure, counts", [
    (dict(snomed=None, text="Kidney transplant"), True),
    (dict(snomed=None, text="Living donor kidney transplant"), True),
    (dict(snomed=None, text="Renal transplant biopsy"), False),
    (dict(snomed="1234567", text="Kidney transplant"), False),  # a SNOMED coding says what it was
    (dict(snomed=None, text="Hair transplant"), False),
])
def test_transplant_text_fallback(procedure, counts):
    interval = run(f.tacrolimus(), f.transplant(10, **procedure), f.magnesium(1.8, days=9))
    assert (one(interval, MonitoringDue) is not None) is counts


def test_result_day_is_the_labs_own_date_not_utc():
    late_evening = f.magnesium(1.2, when="2026-11-20T23:30:00-05:00")
    finding = one(on_tac(late_evening), SeverityFinding)
    assert finding.latest.day == "2026-11-20"


def test_active_supplement_is_carried_on_the_severity_finding():
    supplement = f.medication("magnesium oxide 400 mg tablet", days=20)
    finding = one(on_tac(supplement, f.magnesium(1.2, days=1)), SeverityFinding)
    assert [m.name for m in finding.supplements] == ["magnesium oxide 400 mg tablet"]


def test_same_time_duplicate_does_not_hide_persistence():
    supplement = f.medication("magnesium oxide 400 mg tablet", days=60)
    when = f.days_ago(1)
    assessment = on_tac(supplement, f.magnesium(1.2, days=40), f.magnesium(1.2, when=when),
                        f.magnesium(1.6, when=when))
    assert one(assessment, PersistentLow) is not None


@pytest.mark.parametrize("value", [0, -1.0])
def test_zero_or_negative_magnesium_is_not_interpretable(value):
    assessment = on_tac(f.magnesium(value, days=1))
    assert one(assessment, SeverityFinding) is None
    assert [r.unreadable_reason for r in assessment.unreadable] == ["value not plausible"]


def test_egfr_reported_as_at_most_30_carries_the_caution():
    assert renal_caution(facts_of(f.lab("98979-8", 30, EGFR_UNIT, comparator="<=", days=1)), T) is not None
