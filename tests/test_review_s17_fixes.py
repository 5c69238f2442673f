# ruff: noqa: E501  (a FHIR resource reads best on one line)
"""Boundaries of the three s17 review fixes, built from the guideline (docs/clinical-rules.md, revision 2).

1. A magnesium supplement recorded by its RxNorm code only (§3 mg-high, §3 "magnesium already
   given", §7 persistence; §9 "Match codes by system and code").
2. §7 rising kidney function with eGFR results reported as bounds (">60", "<15").
3. §3/§9 dialysis Procedures coded with a SNOMED concept the list does not hold.

Facts-level tests read one resource; patient-level tests run in both data modes of
tests/test_independent_patients.py (the EHR's prefetch, and no prefetch with a mocked FHIR server).
"""

from __future__ import annotations

import pytest

from cds_service.guideline.facts import build_facts, read_administration, read_dialysis_date, read_medication
from cds_service.guideline.rules import egfr_rise
from cds_service.guideline.thresholds import DEFAULT_THRESHOLDS
from cds_service.testing import factories as f

from .test_independent_patients import (
    MODES, run,
    LOINC, ORAL, PID, RXNORM, SNOMED, UCUM, Case, at, call, mg, mgo, mgso4, none_of, obs, recipient, rx,
    serum_mg_lab, statement, text, the,
)

MGO_CODE_ONLY = {"coding": [{"system": RXNORM, "code": "198741"}]}


# ---------------------------------------------------------------------------------------------
# Fix 1: §9 "Match codes by system and code"; suggested product magnesium oxide 400 MG Oral
# Tablet: RxNorm 198741. §8: magnesium oxide is a supplement.


def _admin(concept: dict, *, days: float = 0.2, route: dict | None = None, id: str = "ma-code") -> dict:
    r: dict = {"resourceType": "MedicationAdministration", "id": id, "status": "completed",
               "medicationCodeableConcept": concept, "subject": {"reference": f"Patient/{PID}"},
               "effectiveDateTime": at(days)}
    if route is not None:
        r["dosage"] = {"route": route, "dose": {"value": 400, "unit": "mg", "system": UCUM, "code": "mg"}}
    return r


@pytest.mark.parametrize("resource_type", ["MedicationRequest", "MedicationStatement"])
def test_code_only_magnesium_oxide_is_a_supplement(resource_type):
    """§9: the code alone decides; the card names it as a clinician writes it (§10), not
    "RxNorm 198741"."""
    r = rx(MGO_CODE_ONLY, route=ORAL) if resource_type == "MedicationRequest" else statement(MGO_CODE_ONLY)
    use = read_medication(r, {})
    assert use is not None and use.is_magnesium_supplement
    assert use.name == "magnesium oxide 400 mg oral tablet"
    assert not use.is_tacrolimus and use.wasting_class is None


@pytest.mark.parametrize("concept", [
    {"coding": [{"system": "http://example.org/formulary", "code": "198741"}]},   # same code, other system
    {"coding": [{"system": SNOMED, "code": "198741"}]},
    {"coding": [{"system": RXNORM, "code": "310273"}]},                          # famotidine 20 MG Oral Tablet
    {"coding": [{"system": RXNORM, "code": "1987410"}]},                         # not a prefix match
], ids=["local-system", "snomed-system", "famotidine", "longer-code"])
def test_other_codes_are_not_a_supplement(concept):
    """§9: "Match codes by system and code": 198741 means magnesium oxide only in RxNorm."""
    use = read_medication(rx(concept, route=ORAL), {})
    assert use is not None and not use.is_magnesium_supplement


def test_code_only_magnesium_oxide_through_a_medication_reference():
    """§1: drugs are recognised "through medicationReference to ... a Medication in the data"."""
    med = {"resourceType": "Medication", "id": "med-mgo", "code": MGO_CODE_ONLY}
    r = rx(None, route=ORAL)
    r["medicationReference"] = {"reference": "Medication/med-mgo"}
    use = read_medication(r, {"med-mgo": med})
    assert use is not None and use.is_magnesium_supplement


def test_the_code_wins_over_a_bowel_prep_word_in_the_text():
    """§9: codes are matched first, names are the fallback. RxNorm 198741 is the 400 mg tablet,
    a supplement, whatever words a local text adds."""
    concept = {"coding": [{"system": RXNORM, "code": "198741"}], "text": "magnesium oxide 400 mg tab (pre-prep clinic stock)"}
    assert read_medication(rx(concept, route=ORAL), {}).is_magnesium_supplement


def test_text_only_bowel_prep_still_is_not_a_supplement():
    """§8: "Bowel preparations are not supplements" (the name fallback is unchanged)."""
    concept = {"text": "sodium picosulfate / magnesium oxide / citric acid (Clenpiq) bowel prep"}
    assert not read_medication(rx(concept, route=ORAL), {}).is_magnesium_supplement


def test_code_only_magnesium_oxide_administration_is_magnesium_given():
    """§3: "a magnesium MedicationAdministration (status completed or in-progress) after the
    result's time ... means replacement is under way"; §9: by code. The route comes from the
    product (an oral tablet) when the administration names none."""
    given = read_administration(_admin(MGO_CODE_ONLY), {})
    assert given is not None
    assert given.name == "magnesium oxide 400 mg oral tablet"
    assert given.route == "oral"


@pytest.mark.parametrize("concept", [
    {"coding": [{"system": RXNORM, "code": "310273"}]},
    {"coding": [{"system": "http://example.org/formulary", "code": "198741"}]},
], ids=["famotidine", "local-system"])
def test_other_code_only_administrations_are_not_magnesium(concept):
    assert read_administration(_admin(concept), {}) is None


@pytest.mark.parametrize("mode", MODES)
def test_code_only_magnesium_oxide_given_since_the_result_means_no_new_dose(mode, discovery, monkeypatch):
    """§3: magnesium given since the result: "no new dose is suggested; the card says what was
    given and when, and suggests the post-replacement recheck"."""
    res = recipient(mg(1.2, "mEq/L", days=0.5), _admin(MGO_CODE_ONLY, days=0.2, route=ORAL))
    c = the(run(res, mode, discovery, monkeypatch), "mg-severity", "warning")
    assert not mgo(c) and not mgso4(c), [s["label"] for s in c.get("suggestions", [])]
    assert "magnesium oxide" in text(c)
    assert serum_mg_lab(c)


@pytest.mark.parametrize("mode", MODES)
def test_code_only_magnesium_oxide_given_before_the_result_does_not_count(mode, discovery, monkeypatch):
    """§3: only magnesium given *after* the result's time means replacement is under way."""
    res = recipient(mg(1.2, "mEq/L", days=0.5), _admin(MGO_CODE_ONLY, days=3, route=ORAL))
    c = the(run(res, mode, discovery, monkeypatch), "mg-severity", "warning")
    assert mgo(c)


@pytest.mark.parametrize("mode", MODES)
def test_code_only_home_magnesium_oxide_at_high_mg(mode, discovery, monkeypatch):
    """§3 mg-high "while a magnesium supplement is active"; §1 MedicationStatement counts as what
    the patient takes. 3.1 mg/dL = 2.55 mEq/L > 2.5."""
    res = recipient(statement(MGO_CODE_ONLY, start_days=60, id="ms-mgo-code"), mg(3.1, "mg/dL", days=1))
    the(run(res, mode, discovery, monkeypatch), "mg-high", "warning")


@pytest.mark.parametrize("mode", MODES)
def test_code_only_magnesium_oxide_at_high_mg_boundary(mode, discovery, monkeypatch):
    """§3: high means Mg > high_above = 2.5 mEq/L: 2.5 itself is not high."""
    res = recipient(rx(MGO_CODE_ONLY, route=ORAL, days=60, id="mr-mgo-code"), mg(2.5, "mEq/L", days=1))
    none_of(run(res, mode, discovery, monkeypatch), "mg-high")


# ---------------------------------------------------------------------------------------------
# Fix 2: §7 "rising kidney function: eGFR up by ≥ 20% (default egfr_rise_fraction = 0.20) within
# 90 days". §2: "A value with a comparator (<, <=) is an upper bound"; a '>' value is a lower
# bound (Epic's ">60"). Only a rise the values make certain counts.

EGFR_UNIT = "mL/min/{1.73_m2}"


def _egfr(value: float, days: float, comparator: str | None = None) -> dict:
    return f.lab("98979-8", value, EGFR_UNIT, days=days, comparator=comparator)


def _rise(*resources):
    return egfr_rise(build_facts(resources, patient_id=f.PATIENT_ID, encounter_id=None), DEFAULT_THRESHOLDS)


@pytest.mark.parametrize("earlier, earlier_cmp, latest, latest_cmp, least_rise", [
    (45, None, 60, ">", 1 / 3),        # the review's case: 45 -> ">60" is at least 33 %
    (50, None, 60, ">", 0.20),         # a '>' bound exactly 20 % above: counts
    (50, None, 60, ">=", 0.20),
    (50, None, 59.95, ">", None),      # a bound 19.9 % above: the rise may be smaller
    (50, None, 60, None, 0.20),        # exact values, exactly 20 % (unchanged)
    (50, None, 59.95, None, None),     # exact values, 19.9 % (unchanged)
    (45, None, 60, "<", None),         # a later upper bound is never a rise
    (45, None, 60, "<=", None),
    (50, "<", 60, None, 0.20),         # earlier "<50" then 60: at least 20 %
    (50, "<=", 60, None, 0.20),
    (50, "<", 59.95, None, None),      # earlier "<50" then 59.95: only 19.9 % certain
    (15, "<", 45, None, 2.0),          # "<15" then 45
    (50, "<", 60, ">", 0.20),          # both bounds, exactly 20 % apart
    (50, ">", 75, None, None),         # earlier ">50" may have been 70: no certain rise
    (50, ">", 75, ">", None),
], ids=lambda v: repr(v))
def test_egfr_rise_with_bounds(earlier, earlier_cmp, latest, latest_cmp, least_rise):
    rise = _rise(_egfr(earlier, 60, earlier_cmp), _egfr(latest, 3, latest_cmp))
    if least_rise is None:
        assert rise is None, rise
    else:
        assert rise is not None and rise.fraction == pytest.approx(least_rise)
        assert rise.at_least == (earlier_cmp is not None or latest_cmp is not None)


@pytest.mark.parametrize("earlier_days, counted", [(92.9, True), (93.1, False)])
def test_egfr_rise_to_a_bound_within_90_days(earlier_days, counted):
    """§7 "within 90 days" of the latest (3 days ago): 89.9 days before it counts, 90.1 do not."""
    assert (_rise(_egfr(45, earlier_days), _egfr(60, 3, ">")) is not None) is counted


def test_the_latest_egfr_decides_even_when_it_is_a_bound():
    """An exact rise 40 -> 50 is no longer "rising kidney function" once the latest eGFR is
    "<15"; and a latest ">45" does not show a rise of 20 % over 40 (it shows 12.5 %)."""
    assert _rise(_egfr(40, 80), _egfr(50, 40), _egfr(15, 3, "<")) is None
    assert _rise(_egfr(40, 80), _egfr(50, 40), _egfr(45, 3, ">")) is None
    assert _rise(_egfr(40, 80), _egfr(50, 40), _egfr(48, 3, ">")).fraction == pytest.approx(0.20)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bound, counted", [(54, True), (53.9, False)])
def test_egfr_rise_to_a_lower_bound_makes_the_contributing_card(bound, counted, mode, discovery, monkeypatch):
    """§7: with Mg 1.2 mEq/L (low), eGFR 45 then ">54" (at least 20 %) is a contributing factor;
    ">53.9" (at least 19.8 %) is not, and nothing else applies: no card."""
    res = recipient(mg(1.2, "mEq/L", days=1), _obs_egfr(45, 60), _obs_egfr(bound, 3, ">"), renal=False)
    cards = run(res, mode, discovery, monkeypatch)
    if not counted:
        none_of(cards, "mg-contributing")
        return
    c = the(cards, "mg-contributing", "warning")
    assert "≥ 20%" in c["summary"], c["summary"]
    assert "at least 20%" in text(c) and ">54" in c["detail"], c["detail"]


@pytest.mark.parametrize("mode", MODES)
def test_egfr_falling_to_an_upper_bound_makes_no_contributing_card(mode, discovery, monkeypatch):
    """§7: 45 then "<60" is not a rise (the value may be anywhere below 60)."""
    res = recipient(mg(1.2, "mEq/L", days=1), _obs_egfr(45, 60), _obs_egfr(60, 3, "<"), renal=False)
    none_of(run(res, mode, discovery, monkeypatch), "mg-contributing")


def _obs_egfr(value: float, days: float, comparator: str | None = None) -> dict:
    return obs([(LOINC, "98979-8", "eGFR CKD-EPI 2021")], value, "mL/min/1.73m2", EGFR_UNIT, days=days, text="eGFR",
               comparator=comparator)


# ---------------------------------------------------------------------------------------------
# Fix 3: §3 "Dialysis or end-stage kidney disease (an active ESRD Condition, or a dialysis
# Procedure in the last 30 days; codes in section 9)"; §9 "Dialysis / ESRD: ... 302497006
# (hemodialysis, Procedure); names 'dialysis', 'ESRD', 'end-stage renal/kidney disease' as
# fallback" and "Match codes by system and code; fall back to display/text where a record has no
# usable coding". 71192002 (peritoneal dialysis) is now listed (VSAC "Dialysis Services").


def _procedure(codings: list[tuple[str, str, str | None]], text: str | None, days: float = 3,
               status: str = "completed") -> dict:
    code: dict = {"coding": [{"system": s, "code": c, **({"display": d} if d else {})} for s, c, d in codings]}
    if text:
        code["text"] = text
    return {"resourceType": "Procedure", "id": "proc-x", "status": status, "code": code,
            "subject": {"reference": f"Patient/{PID}"}, "performedDateTime": at(days)}


@pytest.mark.parametrize("resource, dialysis", [
    (_procedure([(SNOMED, "302497006", "Hemodialysis")], None), True),
    (_procedure([(SNOMED, "71192002", None)], None), True),                      # listed code, no name
    (_procedure([(SNOMED, "71192002", "Peritoneal dialysis")], "Peritoneal dialysis"), True),
    # a SNOMED concept the list does not hold, named as dialysis: the name decides
    (_procedure([(SNOMED, "238318009", "Continuous ambulatory peritoneal dialysis")], None), True),
    (_procedure([("http://www.ama-assn.org/go/cpt", "90945", None)], "Dialysis procedure other than hemodialysis"), True),
    (_procedure([], "Haemodialysis session"), True),                             # code-less (unchanged)
    # coded as something else, no dialysis in the name: out
    (_procedure([(SNOMED, "80146002", "Appendectomy")], "Appendectomy"), False),
    (_procedure([(SNOMED, "238318009", None)], None), False),                    # unlisted code, no name
    (_procedure([(SNOMED, "70536003", "Transplantation of kidney")], None), False),
    (_procedure([(SNOMED, "71192002", "Peritoneal dialysis")], None, status="not-done"), False),
], ids=["hd-code", "pd-code-only", "pd-coded-named", "unlisted-snomed-named", "cpt-named", "text-only",
        "other-procedure", "unlisted-code-only", "transplant", "not-done"])
def test_dialysis_procedure_by_code_then_name(resource, dialysis):
    assert (read_dialysis_date(resource) is not None) is dialysis


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("days, dialysis", [(29.9, True), (30.1, False)])
def test_peritoneal_dialysis_within_30_days(days, dialysis, mode, discovery, monkeypatch):
    """§3: a dialysis Procedure "in the last 30 days": no one-click supplementation orders,
    discuss replacement with nephrology; older: the usual oral magnesium suggestion."""
    pd = _procedure([(SNOMED, "71192002", "Peritoneal dialysis")], "Peritoneal dialysis", days=days)
    c = the(run(recipient(mg(1.2, "mEq/L", days=1), pd), mode, discovery, monkeypatch), "mg-severity", "warning")
    if dialysis:
        assert not mgo(c) and not mgso4(c)
        assert "nephrology" in text(c) and "dialysate" in text(c)
        assert serum_mg_lab(c), "lab rechecks are still suggested on dialysis"
    else:
        assert mgo(c)


def _add_capd(prefetch: dict) -> None:
    """An EHR's own prefetch that returns every recent Procedure (not only the listed codes)."""
    capd = _procedure([(SNOMED, "238318009", "Continuous ambulatory peritoneal dialysis")], "CAPD exchange", days=2)
    prefetch["procedures"]["entry"].append({"fullUrl": "Procedure/proc-x", "resource": capd})


def test_unlisted_dialysis_code_named_dialysis_in_the_ehr_prefetch(discovery, monkeypatch):
    """§9 name fallback: a CAPD Procedure coded with a SNOMED concept the list does not hold
    still means dialysis when the EHR sends it."""
    case = Case("s17-capd", recipient(mg(1.2, "mEq/L", days=1)), lambda c, m: None, prefetch_extra=_add_capd)
    c = the(call(case, "prefetch", discovery, monkeypatch), "mg-severity", "warning")
    assert not mgo(c) and not mgso4(c)
    assert "nephrology" in text(c)
