"""Property tests: unit conversion, severity monotonicity, and "lower is never milder" end to end."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cds_service.guideline.cards import CardContext, build_cards
from cds_service.guideline.facts import build_facts, magnesium_meq_per_l, read_lab
from cds_service.guideline.rules import Severity, assess, classify
from cds_service.guideline.suggestions import OrderContext
from cds_service.guideline.thresholds import DEFAULT_THRESHOLDS
from cds_service.protocol.response import INDICATOR_ORDER

from . import factories as f

T = DEFAULT_THRESHOLDS
values = st.floats(min_value=0.0, max_value=50.0, allow_nan=False, allow_infinity=False)


def random_case(draw_unit: str, flips: list[bool]) -> str:
    return "".join(c.upper() if flip else c.lower() for c, flip in zip(draw_unit, flips))


# --------------------------------------------------------------------------------------------
# Section 2: conversions


@given(values)
def test_mmol_per_l_is_twice_meq_per_l(value):
    assert magnesium_meq_per_l(value, ["mmol/l"]) == pytest.approx(2 * magnesium_meq_per_l(value, ["meq/l"]))


@given(values)
def test_mg_per_dl_is_ten_times_mg_per_l(value):
    assert magnesium_meq_per_l(value, ["mg/dl"]) == pytest.approx(magnesium_meq_per_l(value * 10, ["mg/l"]),
                                                                    rel=1e-12, abs=1e-12)


@given(values)
def test_mg_per_dl_round_trips_through_molar_mass(value):
    mmol = value * 10 / 24.305  # mg/dL -> mg/L -> mmol/L
    assert magnesium_meq_per_l(value, ["mg/dl"]) == pytest.approx(magnesium_meq_per_l(mmol, ["mmol/l"]),
                                                                    rel=1e-12, abs=1e-12)


@given(values, st.sampled_from(["mEq/L", "mmol/L", "mg/dL", "mg/L"]), st.lists(st.booleans(), min_size=6, max_size=6),
       st.booleans())
def test_unit_case_and_source_do_not_change_the_result(value, unit, flips, ucum):
    canonical = read_lab(f.magnesium(value, unit)).normalised
    other = read_lab(f.magnesium(value, random_case(unit, flips), ucum="same" if ucum else None)).normalised
    assert other == canonical


# --------------------------------------------------------------------------------------------
# Section 3: classification is monotone


mg_meq = st.floats(min_value=0.0, max_value=5.0, allow_nan=False)


@given(mg_meq, mg_meq, st.booleans())
def test_lower_magnesium_is_never_milder(a, b, symptomatic):
    low, high = sorted((a, b))
    assert classify(low, None, symptomatic, T).rank <= classify(high, None, symptomatic, T).rank


@given(mg_meq)
def test_a_symptom_never_makes_the_class_milder(value):
    assert classify(value, None, True, T).rank <= classify(value, None, False, T).rank


@given(mg_meq)
def test_an_upper_bound_is_never_milder_than_the_same_exact_value(value):
    assert classify(value, "<", False, T).rank <= classify(value, None, False, T).rank


# --------------------------------------------------------------------------------------------
# End to end through assess() and the cards: lowering any one result never gives a milder card


NO_CARD = len(INDICATOR_ORDER)


def worst_card(resources: list[dict]) -> int:
    """0 critical, 1 warning, 2 info, 3 no card."""
    facts = build_facts(resources, patient_id=f.PATIENT_ID, encounter_id=None)
    assessment = assess(facts, f.NOW, T)
    ctx = CardContext(OrderContext(f.PATIENT_ID, None, f.NOW), T, "https://cds.example.org/docs/rules")
    # The high-magnesium card (section 3, revision 2) is about the other direction: lowering a
    # result may rightly remove it, so the monotonicity is about the low side only.
    return min((INDICATOR_ORDER[c.indicator] for c in build_cards(assessment, ctx)
                if c.source.topic.code != "mg-high"), default=NO_CARD)


def worst_severity(resources: list[dict]) -> int:
    facts = build_facts(resources, patient_id=f.PATIENT_ID, encounter_id=None)
    classes = [finding.severity for finding in assess(facts, f.NOW, T).findings
               if hasattr(finding, "severity")]
    return min((s.rank for s in classes), default=Severity.AT_TARGET.rank)


result = st.tuples(st.floats(min_value=0.1, max_value=3.0, allow_nan=False),
                   st.sampled_from(["mEq/L", "mmol/L", "mg/dL"]),
                   st.integers(min_value=0, max_value=90))  # days ago
context = st.sampled_from([
    [],
    [f.condition(snomed="26079004", days=3)],
    [f.medication("magnesium oxide 400 mg", days=120)],
    [f.medication("omeprazole 20 mg"), f.lab("11253-2", 8.0, "ng/mL", days=5)],
    [f.encounter("IMP")],
    [f.transplant(20)],
])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(result, min_size=1, max_size=5), st.data(), context)
def test_lowering_one_result_never_gives_a_milder_card(results, data, extra):
    index = data.draw(st.integers(min_value=0, max_value=len(results) - 1))
    factor = data.draw(st.floats(min_value=0.1, max_value=0.99))
    lowered = list(results)
    value, unit, days = lowered[index]
    lowered[index] = (value * factor, unit, days)
    assume(value * factor > 0)

    def resources(rows):
        mg = [f.magnesium(round(v, 6), u, days=d + 0.5, id=f"mg-{i}") for i, (v, u, d) in enumerate(rows)]
        return [f.tacrolimus(id="tac-1"), *mg, *extra]

    before, after = resources(results), resources(lowered)
    assert worst_severity(after) <= worst_severity(before)
    assert worst_card(after) <= worst_card(before)
