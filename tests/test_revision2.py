"""docs/clinical-rules.md revision 2 (sections 1-5, 7-9) at its boundaries, with patients built as EHRs send
them: statements, administrations, code-only products, corrected and future-dated results,
children, dialysis, creatinine-only renal function and hospital-local codes. The same patients
replayed through HTTP in both data modes live in fhir_fixtures/ (tests/test_fixtures.py).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest
import responses

from cds_service import create_app
from cds_service.guideline.facts import values as facts_module  # where the date parser lives
from cds_service.guideline.codes import parse_local_codes
from cds_service.guideline.facts import build_facts, parse_datetime, read_lab, read_medication
from cds_service.guideline.rules import (MagnesiumHigh, Severity, SeverityFinding, assess,
                                         ckd_epi_2021, on_tacrolimus, renal_function)
from cds_service.guideline.thresholds import DEFAULT_THRESHOLDS, Thresholds
from cds_service.web import hooks

from cds_service.testing import factories as f
from .conftest import PATIENT_VIEW

NOW = f.NOW
T = DEFAULT_THRESHOLDS
MINUTE = 1 / 1440
UTC = timezone.utc


def facts_of(*resources, **kwargs):
    return build_facts(resources, patient_id=f.PATIENT_ID, encounter_id=None, **kwargs)


def assess_of(*resources, thresholds: Thresholds = T, **kwargs):
    return assess(facts_of(*resources, **kwargs), NOW, thresholds)


def finding(assessment, kind=SeverityFinding):
    found = [x for x in assessment.findings if isinstance(x, kind)]
    assert len(found) <= 1
    return found[0] if found else None


def recipient(*extra):
    """An adult (1970) on tacrolimus for > 1 year, eGFR 55 and trough 8 recent."""
    return [f.patient(), f.tacrolimus(), f.transplant(800),
            f.lab("98979-8", 55, "mL/min/{1.73_m2}", days=3), f.lab("11253-2", 8, "ng/mL", days=3),
            *extra]


# --------------------------------------------------------------------------------------------
# Section 2: every FHIR dateTime form, whatever datetime.fromisoformat accepts on this Python


@pytest.mark.parametrize("text, expected", [
    ("2026", datetime(2026, 1, 1, tzinfo=UTC)),
    ("2026-11", datetime(2026, 11, 1, tzinfo=UTC)),
    ("2026-11-24", datetime(2026, 11, 24, tzinfo=UTC)),
    ("2026-11-24T10:30:00Z", datetime(2026, 11, 24, 10, 30, tzinfo=UTC)),
    ("2026-11-24T10:30:00.1Z", datetime(2026, 11, 24, 10, 30, 0, 100000, tzinfo=UTC)),
    ("2026-11-24T10:30:00.12Z", datetime(2026, 11, 24, 10, 30, 0, 120000, tzinfo=UTC)),
    ("2026-11-24T10:30:00.1234Z", datetime(2026, 11, 24, 10, 30, 0, 123400, tzinfo=UTC)),
    ("2026-11-24T10:30:00.123456789Z", datetime(2026, 11, 24, 10, 30, 0, 123456, tzinfo=UTC)),
    ("2026-11-24T10:30:00+02:00", datetime(2026, 11, 24, 8, 30, tzinfo=UTC)),
    ("2026-11-24T10:30:00.5-05:00", datetime(2026, 11, 24, 15, 30, 0, 500000, tzinfo=UTC)),
    ("2026-11-24T23:59:59.9999999+14:00", datetime(2026, 11, 24, 9, 59, 59, 999999, tzinfo=UTC)),
    ("2026-11-24T10:30:00+0000", datetime(2026, 11, 24, 10, 30, tzinfo=UTC)),
    ("2026-11-24T10:30:00", datetime(2026, 11, 24, 10, 30, tzinfo=UTC)),  # no zone: read as UTC
])
def test_every_fhir_datetime_form_parses(text, expected):
    assert parse_datetime(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "2026-11-31", "2026-11-24T25:00:00Z",
                                  "0001-01-01", "9999-12-31", "2026-11-24T10:30:00.Z", "2026-1-2",
                                  "2026-11-24T10:30:00+25:00", "1" * 100])
def test_impossible_datetimes_are_undated(text):
    assert parse_datetime(text) is None


def test_the_parser_does_not_depend_on_fromisoformat(monkeypatch):
    """Python 3.10's fromisoformat refuses 1-digit fractions; the parser must not rely on it."""
    class StrictDatetime(datetime):
        @classmethod
        def fromisoformat(cls, text):
            raise ValueError("like Python 3.10 on '.1'")

    monkeypatch.setattr(facts_module, "datetime", StrictDatetime)
    assert parse_datetime("2026-11-24T10:30:00.1Z") == datetime(2026, 11, 24, 10, 30, 0, 100000, tzinfo=UTC)


def test_a_one_digit_fraction_result_is_dated_and_used():
    mg = f.magnesium(0.9, "mEq/L", when="2026-11-24T10:30:00.1Z")
    severity = finding(assess_of(*recipient(mg)))
    assert severity.severity is Severity.SEVERE and severity.latest.day == "2026-11-24"


# --------------------------------------------------------------------------------------------
# Section 2: future-dated results (future_tolerance_minutes = 60), in each unit


@pytest.mark.parametrize("unit, value", [("mEq/L", 0.9), ("mmol/L", 0.45), ("mg/dL", 1.1)])
@pytest.mark.parametrize("minutes_ahead, used", [(59, True), (60, True), (61, False), (60 * 24 * 3, False)])
def test_future_tolerance_boundary(unit, value, minutes_ahead, used):
    future = f.magnesium(value, unit, code="19123-9" if unit == "mg/dL" else "2601-3",
                         days=-minutes_ahead * MINUTE)
    older = f.magnesium(1.8, days=5, code="2601-3")
    assessment = assess_of(*recipient(older, future))
    severity = finding(assessment)
    if used:
        assert severity is not None and severity.severity is Severity.SEVERE
        assert assessment.future == ()
    else:
        assert severity is None  # the older normal result is the one used
        assert [r.value for r in assessment.future] == [value]


def test_future_results_never_make_a_trend():
    # A future low must not complete a persistence run or count as the latest.
    supplement = f.medication("magnesium oxide 400 mg tablet", days=60)
    assessment = assess_of(*recipient(supplement, f.magnesium(1.2, days=20), f.magnesium(1.8, days=2),
                                      f.magnesium(1.1, days=-20)))
    assert finding(assessment) is None


def test_future_override_from_configuration():
    future = f.magnesium(0.9, days=-90 * MINUTE)
    assert finding(assess_of(*recipient(future))) is None  # 90 min ahead: not used
    lenient = T.with_overrides({"future_tolerance_minutes": "120"})
    assert finding(assess_of(*recipient(future), thresholds=lenient)).severity is Severity.SEVERE


# --------------------------------------------------------------------------------------------
# Section 2: corrections and LOINC-first classification


def test_corrected_result_with_another_id_supersedes_the_final_one():
    when = f.days_ago(1)
    final = f.magnesium(0.45, "mmol/L", when=when, code="2601-3")
    corrected = f.magnesium(0.65, "mmol/L", when=when, code="2601-3", status="corrected")
    for order in ((final, corrected), (corrected, final)):
        severity = finding(assess_of(*recipient(*order)))
        assert severity.severity is Severity.MILD_MODERATE and severity.latest.status == "corrected"


def test_amended_supersedes_final_even_when_final_was_issued_later():
    when = f.days_ago(1)
    final = f.magnesium(1.3, when=when, issued=f.days_ago(0.2))
    amended = f.magnesium(0.9, when=when, status="amended", issued=f.days_ago(0.5))
    assert finding(assess_of(*recipient(final, amended))).severity is Severity.SEVERE


def test_between_equals_the_later_issued_wins_and_true_duplicates_fall_back_to_the_lowest():
    when = f.days_ago(1)
    early = f.magnesium(0.9, when=when, issued=f.days_ago(0.9))
    late = f.magnesium(1.3, when=when, issued=f.days_ago(0.5))
    assert finding(assess_of(*recipient(early, late))).latest.value == 1.3
    duplicates = f.magnesium(0.9, when=when), f.magnesium(1.3, when=when)
    assert finding(assess_of(*recipient(*duplicates))).latest.value == 0.9


@pytest.mark.parametrize("coding, text, kind", [
    ([("http://loinc.org", "2593-3")], "Magnesium [Moles/volume] in Blood", None),  # LOINC not listed
    ([("http://loinc.org", "2601-3")], "Magnesium ionized", "mg_serum"),  # the code decides
    ([("urn:oid:1.2.3", "MG")], "Magnesium, serum", "mg_serum"),  # local code only: text fallback
    ([], "Mg, serum", "mg_serum"),
    ([("http://loinc.org", "77348-1")], "Tacrolimus trough", "tacrolimus_level"),
    ([("http://loinc.org", "88294-4")], "eGFR", "egfr"),
    ([("http://loinc.org", "29463-7")], "Body weight", "body_weight"),
])
def test_loinc_coded_results_are_what_their_code_says(coding, text, kind):
    obs = f.magnesium(1.0, "mmol/L", code=None, text=text)
    if coding:
        obs["code"]["coding"] = [{"system": system, "code": code} for system, code in coding]
    lab = read_lab(obs)
    assert (lab.kind if lab else None) == kind


# --------------------------------------------------------------------------------------------
# Section 2: hospital-local codes (CDS_LOCAL_CODES)

LOCAL = json.dumps({"mg_serum": ["http://lab.example.org/codes|MG-S"],
                    "egfr": ["http://lab.example.org/codes|EGFR"],
                    "tacrolimus_level": ["http://lab.example.org/codes|FK"]})


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[]", "must be a JSON object"),
    ('{"mg_plasma": ["a|b"]}', "unknown lab kind 'mg_plasma'"),
    ('{"mg_serum": "a|b"}', "must be a list"),
    ('{"mg_serum": ["no-pipe"]}', "is not \"system|code\""),
    ('{"mg_serum": ["a|b|c"]}', "is not \"system|code\""),
    ('{"mg_serum": ["http://x|has space"]}', "without spaces"),
    ('{"mg_serum": ["http://x|a,b"]}', "without spaces, commas"),
    ('{"mg_serum": ["http://loinc.org|2601-3"]}', "already a known code"),
    ('{"mg_serum": ["http://x|A"], "egfr": ["http://x|A"]}', "listed under two kinds"),
])
def test_bad_local_codes_stop_the_start_with_a_clear_message(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        create_app({"local_codes": text, "log_level": "WARNING"})


def test_local_codes_parse():
    assert parse_local_codes(LOCAL) == {("mg_serum", "http://lab.example.org/codes", "MG-S"),
                                        ("egfr", "http://lab.example.org/codes", "EGFR"),
                                        ("tacrolimus_level", "http://lab.example.org/codes", "FK")}
    assert parse_local_codes("") == frozenset()


def local_lab(code: str, value: float, unit: str, days: float = 1) -> dict:
    obs = f.magnesium(value, unit, code=None, days=days)
    obs["code"] = {"coding": [{"system": "http://lab.example.org/codes", "code": code}], "text": code}
    return obs


@pytest.fixture
def local_app(monkeypatch):
    monkeypatch.setattr(hooks, "utc_now", lambda: NOW)
    return create_app({"local_codes": LOCAL, "log_level": "WARNING"})


def test_local_codes_are_in_the_discovery_templates(local_app):
    services = local_app.test_client().get("/cds-services").get_json()["services"]
    prefetch = services[0]["prefetch"]
    assert "http://lab.example.org/codes|MG-S" in prefetch["magnesium"]
    assert "http://lab.example.org/codes|EGFR" in prefetch["labs"]
    assert "http://lab.example.org/codes|FK" in prefetch["tacrolimusLevels"]
    assert "http://lab.example.org/codes|MG-S" in services[1]["prefetch"]["magnesiumOrders"]
    default = create_app({"log_level": "WARNING"}).test_client().get("/cds-services").get_json()
    assert "lab.example.org" not in json.dumps(default)


def local_record() -> list[dict]:
    """A recipient whose lab sends only local codes: Mg 0.9 mEq/L, eGFR 20 (renal dose), trough."""
    return [f.tacrolimus(), f.transplant(800), local_lab("MG-S", 0.9, "mEq/L"),
            local_lab("EGFR", 20, "mL/min/{1.73_m2}", days=2), local_lab("FK", 8, "ng/mL", days=2)]


def test_local_codes_are_read_from_prefetch(local_app):
    body = f.hook_request(local_record())
    # An EHR answering the templates files the local results under the keys that ask for them.
    by_code = {"MG-S": "magnesium", "EGFR": "labs", "FK": "tacrolimusLevels"}
    for key in ("magnesium", "labs", "tacrolimusLevels"):
        body["prefetch"][key] = f.bundle(*[r for r in local_record() if r["resourceType"] == "Observation"
                                           and by_code[r["code"]["coding"][0]["code"]] == key])
    cards = local_app.test_client().post(PATIENT_VIEW, json=body).get_json()["cards"]
    severity = next(c for c in cards if c["source"]["topic"]["code"] == "mg-severity")
    assert severity["indicator"] == "critical" and "MgSO4 1 g IV" in severity["summary"]
    assert not any("trough" in s["label"] for s in severity["suggestions"])


def test_local_codes_are_searched_on_the_fhir_server(local_app):
    base = "https://fhir.example.org/r4"
    resources = local_record()
    asked: list[str] = []

    def answer(request):
        asked.append(request.url)
        path, _, query = request.url.partition("?")
        rtype = path.rsplit("/", 1)[-1]
        if rtype == "pat-1":
            return 200, {}, json.dumps(f.patient())
        tokens = set(re.findall(r"code=([^&]*)", query.replace("%7C", "|").replace("%2C", ",")))
        wanted = {t for group in tokens for t in group.split(",")}
        found = [r for r in resources if r["resourceType"] == rtype and (
            rtype != "Observation" or f"{r['code']['coding'][0]['system']}|{r['code']['coding'][0]['code']}" in wanted)]
        if rtype == "Procedure":
            found = [r for r in resources if r["resourceType"] == "Procedure"]
        return 200, {}, json.dumps(f.bundle(*found))

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, re.compile(re.escape(base) + r".*"), callback=answer)
        body = f.hook_request(fhir_server=base, token="t")
        cards = local_app.test_client().post(PATIENT_VIEW, json=body).get_json()["cards"]
    assert any("lab.example.org" in url.replace("%2F", "/").replace("%3A", ":") for url in asked)
    severity = next(c for c in cards if c["source"]["topic"]["code"] == "mg-severity")
    assert severity["indicator"] == "critical" and "MgSO4 1 g IV" in severity["summary"]


# --------------------------------------------------------------------------------------------
# Section 1: scope


@pytest.mark.parametrize("resource, in_scope", [
    (f.statement("Prograf 1 mg", status="active"), True),
    (f.statement("Prograf 1 mg", status="intended"), True),
    (f.statement("Prograf 1 mg", status="on-hold"), True),
    (f.statement("Prograf 1 mg", status="not-taken"), False),
    (f.statement("Prograf 1 mg", status="entered-in-error"), False),
    (f.tacrolimus(intent="plan"), False),
    (f.tacrolimus(intent="proposal"), False),
    (f.tacrolimus(intent="original-order"), True),
    (f.tacrolimus(intent="instance-order"), True),
    (f.tacrolimus(status="cancelled"), False),
    (f.tacrolimus(status="unknown"), False),
    (f.medication(rxnorm="1664461"), True),  # Envarsus ER tablet, code only
    (f.medication(rxnorm="108513"), True),  # Prograf 1 mg
    (f.medication(rxnorm="1738338"), True),  # injection
    (f.medication("Tacforius 1 mg prolonged-release capsule"), True),
    (f.medication("Adoport 0.5 mg capsule"), True),
    (f.medication("Modigraf 0.2 mg granules"), True),
])
def test_who_is_on_tacrolimus(resource, in_scope):
    assert on_tacrolimus(facts_of(resource), NOW, T) is in_scope


def ended(days_ago: float, status: str = "active", how: str = "bounds") -> dict:
    order = f.tacrolimus(status=status, days=400)
    if how == "bounds":
        order["dosageInstruction"] = [{"timing": {"repeat": {"boundsPeriod": {"end": f.days_ago(days_ago)}}}}]
    elif how == "validity":
        order["dispenseRequest"] = {"validityPeriod": {"end": f.days_ago(days_ago)}}
    return order


@pytest.mark.parametrize("order, in_scope, state", [
    (ended(13.9, "stopped"), True, "stopped"),
    (ended(14.1, "stopped"), False, None),
    (ended(5, "completed"), True, "stopped"),
    (ended(5, "active"), True, "stopped"),  # an active order whose bounds ran out 5 days ago
    (ended(5, "active", how="validity"), True, "stopped"),
    (ended(20, "active", how="validity"), False, None),
    (ended(-10, "active"), True, "taking"),  # bounds end in the future: still taking
    (f.tacrolimus(status="stopped", days=400), False, None),  # stopped, no end date: its order date
    (f.tacrolimus(status="on-hold"), True, "on-hold"),
])
def test_recently_stopped_tacrolimus_keeps_the_patient_in_scope(order, in_scope, state):
    assessment = assess_of(order, f.magnesium(1.2, days=1))
    assert assessment.on_tacrolimus is in_scope
    if in_scope:
        assert assessment.tacrolimus.state == state


def test_stopped_order_without_an_end_date_uses_its_last_update():
    # EHRs often stop an order without an end date; the status change updates meta.lastUpdated.
    order = f.tacrolimus(status="stopped", days=400, meta={"lastUpdated": f.days_ago(3)})
    assert assess_of(order, f.magnesium(1.2, days=1)).tacrolimus.state == "stopped"
    old = f.tacrolimus(status="stopped", days=400, meta={"lastUpdated": f.days_ago(30)})
    assert not assess_of(old, f.magnesium(1.2, days=1)).on_tacrolimus


@pytest.mark.parametrize("name, raises", [
    ("clotrimazole 10 mg troche", True), ("clotrimazole 1% cream", False), ("Prezista 800 mg", True),
    ("darunavir 800 mg tablet", True),
])
def test_section_8_raisers_by_name(name, raises):
    assert bool(read_medication(f.medication(name), {}).raises_tacrolimus_class) is raises


def test_high_magnesium_is_not_called_normal_with_a_symptom():
    supplement = f.medication("magnesium oxide 400 mg tablet", days=30)
    assessment = assess_of(*recipient(supplement, f.magnesium(2.8, days=1), f.condition(snomed="26079004")))
    assert [type(x).__name__ for x in assessment.findings] == ["MagnesiumHigh"]


def test_stopped_statement_counts_within_the_window():
    statement = f.statement("tacrolimus 1 mg capsule", status="stopped")
    statement["effectivePeriod"]["end"] = f.days_ago(3)
    assert assess_of(statement, f.magnesium(1.2, days=1)).tacrolimus.state == "stopped"


def test_recently_stopped_window_is_configurable():
    override = T.with_overrides({"recently_stopped_days": "30"})
    assert assess(facts_of(ended(20, "stopped"), f.magnesium(1.2)), NOW, override).on_tacrolimus


@pytest.mark.parametrize("dosage, topical", [
    ({"text": "1 mg by mouth twice daily; use sunscreen cream"}, False),
    ({"patientInstruction": "Apply sunscreen cream; avoid grapefruit"}, False),
    ({"text": "apply ointment thinly", "route": {"text": "Oral"}}, False),
    ({"route": {"text": "Topical"}}, True),
    ({"route": {"text": "Cutaneous"}}, True),
    ({"route": {"coding": [{"system": f.SNOMED, "code": "6064005"}]}}, True),
])
def test_topical_is_decided_from_route_and_form_never_from_sig_text(dosage, topical):
    order = f.tacrolimus(dosageInstruction=[dosage])
    assert read_medication(order, {}).is_topical is topical


# --------------------------------------------------------------------------------------------
# Section 3: magnesium already given since the result


@pytest.mark.parametrize("given, counts", [
    (f.administration(days=0.5), True),
    (f.administration(days=0.5, status="in-progress"), True),
    (f.administration(days=0.5, status="not-done"), False),
    (f.administration(days=0.5, status="entered-in-error"), False),
    (f.administration(days=2), False),  # before the result
    (f.administration("Mag-Ox 400 mg tablet", days=0.5, dose_g=0.4, route="Oral"), True),
    (f.administration("Suprep bowel prep kit", days=0.5), False),  # not a supplement
    (f.medication("magnesium sulfate 2 g IV", status="completed", days=0.5), True),
    (f.medication("magnesium sulfate 2 g IV", status="stopped", days=0.5), True),
    (f.medication("magnesium sulfate 2 g IV", status="draft", days=0.5), True),
    (f.medication("magnesium sulfate 2 g IV", status="cancelled", days=0.5), False),
    (f.medication("magnesium sulfate 2 g IV", status="entered-in-error", days=0.5), False),
    (f.medication("magnesium sulfate 2 g IV", status="completed", days=2), False),  # before
])
def test_magnesium_given_since_the_result_means_no_new_dose(given, counts):
    severity = finding(assess_of(*recipient(f.magnesium(0.9, days=1), given)))
    assert bool(severity.given) is counts


def test_no_dose_card_after_an_administration_in_each_unit(call_hook):
    for value, unit, code in ((0.9, "mEq/L", "2601-3"), (0.45, "mmol/L", "2601-3"), (1.1, "mg/dL", "19123-9")):
        cards = call_hook(f.hook_request(recipient(f.magnesium(value, unit, code=code, days=1),
                                                   f.administration(days=0.5))))
        severity = next(c for c in cards if c["source"]["topic"]["code"] == "mg-severity")
        assert "no new dose" in severity["summary"]
        kinds = [a["resource"]["resourceType"] for s in severity["suggestions"] for a in s["actions"]
                 if a["type"] == "create"]
        assert "MedicationRequest" not in kinds and "ServiceRequest" in kinds


# --------------------------------------------------------------------------------------------
# Section 3: children


def child(birth_date: str, *extra):
    return [f.patient(birth_date=birth_date), f.tacrolimus(), f.transplant(500),
            f.lab("98979-8", 90, "mL/min/{1.73_m2}", days=3), f.lab("11253-2", 8, "ng/mL", days=3), *extra]


@pytest.mark.parametrize("birth_date, is_child", [
    ("2008-11-26", True),   # 18 tomorrow
    ("2008-11-25", False),  # 18 today
    ("2020-05", True),      # partial birth date
    (None, False),          # unknown: an adult, and nothing is said about it
    ("2027-01-01", False),  # in the future: a data error, treated as unknown
])
def test_age_boundary(birth_date, is_child):
    resources = child(birth_date, f.magnesium(0.9, days=1)) if birth_date else \
        [f.patient(birth_date=None)] + child("2000-01-01", f.magnesium(0.9, days=1))[1:]
    severity = finding(assess_of(*resources))
    assert (severity.child is not None) is is_child


@pytest.mark.parametrize("weight, expected", [
    (f.weight(20, days=5), "500–1000 mg for 20 kg"),
    (f.weight(20, days=29.9), "500–1000 mg for 20 kg"),
    (f.weight(20, days=30.1), "no body weight in the last 30 days"),
    (f.lab("29463-7", 44.1, "[lb_av]", days=2), "500–1000 mg for 44.1 [lb_av]"),  # 20.0 kg
    (f.weight(60, days=2), "1500–2000 mg"),  # capped at 2 g
    (None, "no body weight in the last 30 days"),
])
def test_children_get_weight_based_text_never_a_fixed_dose(call_hook, weight, expected):
    extra = [weight] if weight else []
    cards = call_hook(f.hook_request(child("2020-01-01", f.magnesium(0.9, days=1), *extra)))
    severity = next(c for c in cards if c["source"]["topic"]["code"] == "mg-severity")
    assert expected in severity["detail"]
    assert "paediatric nephrology" in severity["detail"]
    kinds = [a["resource"]["resourceType"] for s in severity["suggestions"] for a in s["actions"]
             if a["type"] == "create"]
    assert "MedicationRequest" not in kinds and "ServiceRequest" in kinds


# --------------------------------------------------------------------------------------------
# Section 3: dialysis / ESRD


@pytest.mark.parametrize("extra, on_dialysis", [
    (f.esrd(), True),
    (f.esrd(snomed=None, text="ESRD on haemodialysis"), True),
    (dict(f.esrd(), clinicalStatus={"coding": [{"code": "resolved"}]}), False),  # after transplant
    (f.dialysis(days=29.9), True),
    (f.dialysis(days=30.1), False),
    (f.dialysis(days=3, snomed=None, text="Hemodialysis session"), True),
    (f.dialysis(days=3, status="not-done"), False),
])
def test_dialysis_or_esrd(extra, on_dialysis):
    severity = finding(assess_of(*recipient(f.magnesium(0.9, days=1), extra)))
    assert (severity.dialysis is not None) is on_dialysis


def test_dialysis_patient_gets_no_supplement_order_no_femg_but_a_recheck(call_hook):
    cards = call_hook(f.hook_request(recipient(f.magnesium(1.2, days=1), f.esrd())))
    severity = next(c for c in cards if c["source"]["topic"]["code"] == "mg-severity")
    labels = [s["label"] for s in severity["suggestions"]]
    assert labels and all("serum magnesium" in label.lower() or "trough" in label for label in labels)
    assert "nephrology" in severity["detail"] and "FEMg" not in " ".join(labels)


# --------------------------------------------------------------------------------------------
# Section 3: renal function, reported or estimated (CKD-EPI 2021)


@pytest.mark.parametrize("creatinine, age, female, expected", [
    # Worked by hand from the published equation (Inker et al., NEJM 2021; NIDDK page):
    (1.0, 50, True, 68.6),    # 142 x (1.0/0.7)^-1.200 x 0.9938^50 x 1.012
    (1.0, 60, False, 86.2),   # 142 x (1.0/0.9)^-1.200 x 0.9938^60
    (0.6, 40, True, 116.3),   # below kappa: 142 x (0.6/0.7)^-0.241 x 0.9938^40 x 1.012
    (0.7, 40, False, 119.5),  # below kappa: 142 x (0.7/0.9)^-0.302 x 0.9938^40
    (0.7, 40, True, 112.1),   # exactly kappa (female): 142 x 0.9938^40 x 1.012
    (5.8, 56, True, 8.0),     # the creatinine of 5.8 mg/dL
    (5.8, 56, False, 10.7),
])
def test_ckd_epi_2021_worked_values(creatinine, age, female, expected):
    assert ckd_epi_2021(creatinine, age, female) == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize("patient, creatinine, expected_egfr, impaired", [
    (f.patient(gender="female", birth_date="1970-01-01"), f.lab("2160-0", 5.8, "mg/dL", days=2), 8, True),
    (f.patient(gender="male", birth_date="1970-01-01"), f.lab("2160-0", 5.8, "mg/dL", days=2), 10, True),
    (f.patient(gender=None, birth_date="1970-01-01"), f.lab("2160-0", 5.8, "mg/dL", days=2), 8, True),
    (f.patient(gender="female", birth_date="1970-01-01"), f.lab("14682-9", 513, "umol/L", days=2), 8, True),
    (f.patient(gender="female", birth_date="1970-01-01"), f.lab("2160-0", 1.0, "mg/dL", days=2), 66, False),
    (f.patient(gender="female", birth_date="1970-01-01"), f.lab("2160-0", 5.8, "mg/dL", days=91), None, False),
    (f.patient(gender="female", birth_date=None), f.lab("2160-0", 5.8, "mg/dL", days=2), None, False),
    (f.patient(gender="female", birth_date="2015-01-01"), f.lab("2160-0", 5.8, "mg/dL", days=2), None, False),
])
def test_renal_function_estimated_from_creatinine(patient, creatinine, expected_egfr, impaired):
    renal = renal_function(facts_of(patient, creatinine), NOW, T)
    if expected_egfr is None:
        assert renal.unknown
    else:
        assert renal.estimated and round(renal.egfr) == pytest.approx(expected_egfr, abs=1)
    assert renal.impaired is impaired


@pytest.mark.parametrize("code", ["98979-8", "98980-6", "62238-1", "33914-3", "48642-3", "48643-1",
                                  "69405-9", "50044-7", "50210-4", "77147-7", "88293-6", "88294-4",
                                  "94677-2"])
def test_every_egfr_code_gives_the_renal_caution(code):
    resources = [f.patient(), f.tacrolimus(), f.lab(code, 20, "mL/min/{1.73_m2}", days=2),
                 f.magnesium(1.2, days=1)]
    severity = finding(assess_of(*resources))
    assert severity.renal.impaired and not severity.renal.estimated


def test_reported_egfr_wins_over_creatinine_and_old_egfr_does_not_count():
    resources = [f.patient(), f.tacrolimus(), f.lab("98979-8", 45, "mL/min/{1.73_m2}", days=2),
                 f.lab("2160-0", 5.8, "mg/dL", days=1), f.magnesium(1.2, days=1)]
    assert not finding(assess_of(*resources)).renal.impaired
    old = [f.patient(), f.tacrolimus(), f.lab("98979-8", 20, "mL/min/{1.73_m2}", days=91), f.magnesium(1.2, days=1)]
    assert finding(assess_of(*old)).renal.unknown


@pytest.mark.parametrize("mg, unit, code", [(1.2, "mEq/L", "2601-3"), (0.6, "mmol/L", "2601-3"),
                                            (1.5, "mg/dL", "19123-9")])
def test_renal_oral_dose_is_400_mg_once_daily_in_text_and_structure(call_hook, mg, unit, code):
    cards = call_hook(f.hook_request([f.patient(), f.tacrolimus(), f.lab("2160-0", 5.8, "mg/dL", days=2),
                                      f.magnesium(mg, unit, code=code, days=1)]))
    severity = next(c for c in cards if c["source"]["topic"]["code"] == "mg-severity")
    [order] = [a["resource"] for s in severity["suggestions"] for a in s["actions"]
               if a["type"] == "create" and a["resource"]["resourceType"] == "MedicationRequest"]
    dosage = order["dosageInstruction"][0]
    assert "400 mg (241 mg elemental) by mouth once daily" in dosage["text"]
    assert dosage["timing"]["repeat"]["frequency"] == 1
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 400
    assert "half" not in json.dumps(order).lower()  # never half a tablet, in any field
    assert "estimated eGFR 8" in severity["detail"] and "creatinine 5.8 mg/dL" in severity["detail"]


# --------------------------------------------------------------------------------------------
# Section 3: high magnesium on a supplement (mg-high), in each unit


@pytest.mark.parametrize("value, unit, code, high", [
    (2.5, "mEq/L", "2601-3", False), (2.51, "mEq/L", "2601-3", True),
    (1.25, "mmol/L", "2601-3", False), (1.26, "mmol/L", "2601-3", True),
    (3.03, "mg/dL", "19123-9", False),  # 2.493 mEq/L
    (3.06, "mg/dL", "19123-9", True),   # 2.518 mEq/L
])
def test_high_magnesium_on_a_supplement(value, unit, code, high):
    supplement = f.medication("magnesium oxide 400 mg tablet", days=30, id="mgox-1")
    assessment = assess_of(*recipient(supplement, f.magnesium(value, unit, code=code, days=1)))
    assert (finding(assessment, MagnesiumHigh) is not None) is high


def test_high_magnesium_card_suggests_stopping_the_supplement_not_recommended(call_hook):
    supplement = f.medication("magnesium oxide 400 mg tablet", days=30, id="mgox-1")
    cards = call_hook(f.hook_request(recipient(supplement, f.magnesium(3.0, days=1))))
    [card] = cards
    assert card["source"]["topic"]["code"] == "mg-high" and card["indicator"] == "warning"
    stop = next(s for s in card["suggestions"] if s["actions"][0]["type"] == "delete")
    assert stop["isRecommended"] is False
    assert stop["actions"][0]["resourceId"] == "MedicationRequest/mgox-1"
    assert any("serum magnesium" in s["label"].lower() for s in card["suggestions"])


def test_high_magnesium_threshold_is_configurable():
    supplement = f.medication("magnesium oxide 400 mg tablet", days=30)
    stricter = T.with_overrides({"high_above": "2.2"})
    assessment = assess(facts_of(*recipient(supplement, f.magnesium(2.3, days=1))), NOW, stricter)
    assert finding(assessment, MagnesiumHigh) is not None


# --------------------------------------------------------------------------------------------
# Section 8: bowel preparations are not supplements


@pytest.mark.parametrize("name, supplement", [
    ("magnesium oxide 400 MG Oral Tablet", True),
    ("magnesium citrate 100 mg tablet", True),
    ("magnesium glycinate 120 mg capsule", True),
    ("Suprep Bowel Prep Kit", False),
    ("sodium sulfate, potassium sulfate and magnesium sulfate oral solution", False),
    ("magnesium citrate 1.745 g/30 mL oral solution", False),
    ("sodium picosulfate, magnesium oxide and citric acid (Prepopik)", False),
])
def test_bowel_preparations_are_not_supplements(name, supplement):
    assert read_medication(f.medication(name), {}).is_magnesium_supplement is supplement


@pytest.mark.parametrize("rxnorm, ingredient", [
    ("5487", "hydrochlorothiazide"), ("2409", "chlorthalidone"), ("62349", "ethacrynate"),
    ("2555", "cisplatin"), ("40048", "carboplatin"), ("318341", "cetuximab"), ("263034", "panitumumab"),
    ("3008", "cyclosporine"),
])
def test_section_9_wasting_ingredient_codes(rxnorm, ingredient):
    use = read_medication(f.medication(rxnorm=rxnorm), {})
    assert use.wasting_class and use.ingredient == ingredient


def test_nirmatrelvir_code_is_a_tacrolimus_raiser():
    assert read_medication(f.medication(rxnorm="2587892"), {}).raises_tacrolimus_class == "protease_inhibitor"


# --------------------------------------------------------------------------------------------
# Rule pages say what revision 2 added, with the values in force


def test_mg_high_rule_page_prints_the_threshold_in_force(monkeypatch):
    page = create_app({"log_level": "WARNING"}).test_client().get("/docs/rules/mg-high").get_data(as_text=True)
    assert "above 2.5 mEq/L" in page and "eGFR below 30 mL/min/1.73 m²" in page  # numbers as written
    monkeypatch.setenv("CDS_GUIDELINE_HIGH_ABOVE", "2.2")
    page = create_app({"log_level": "WARNING"}).test_client().get("/docs/rules/mg-high").get_data(as_text=True)
    in_force = re.sub(r'<td class="default">.*?</td>', "", page)  # the defaults column may say 2.5
    assert "above 2.2 mEq/L" in page and "2.5" not in in_force


def test_severity_rule_page_names_the_revision_2_settings():
    page = create_app({"log_level": "WARNING"}).test_client().get("/docs/rules/mg-severity").get_data(as_text=True)
    for text in ("60 minutes in the future", "within 14 days keeps the patient in scope",
                 "90 days (later)", "25–50 mg/kg", "once daily", "CKD-EPI 2021", "nephrology"):
        assert text in page, text


def test_only_a_future_result_is_due_and_named_not_never_measured(call_hook):
    cards = call_hook(f.hook_request(recipient(f.magnesium(0.5, days=-2))))
    [card] = cards
    assert card["source"]["topic"]["code"] == "mg-monitoring"
    assert "is dated in the future" in card["summary"] and "never measured" not in card["summary"]
    assert "in the future, was not used" in card["detail"]


def test_hospital_severe_threshold_appears_in_the_iv_dosage_text(monkeypatch):
    monkeypatch.setattr(hooks, "utc_now", lambda: NOW)
    monkeypatch.setenv("CDS_GUIDELINE_SEVERE_BELOW", "1.2")
    app = create_app({"log_level": "WARNING"})
    request = f.hook_request(recipient(f.magnesium(1.1, days=1)))
    cards = app.test_client().post(PATIENT_VIEW, json=request).get_json()["cards"]
    severity = next(c for c in cards if c["source"]["topic"]["code"] == "mg-severity")
    text = json.dumps(severity)
    assert "below 1.2 mEq/L" in text and "below 1.0 mEq/L" not in text and "below 1 mEq/L" not in text


def test_severe_with_a_seizure_names_it_and_is_urgent(call_hook):
    cards = call_hook(f.hook_request(recipient(f.magnesium(0.8, days=1), f.condition(snomed="91175000", days=1))))
    severity = next(c for c in cards if c["source"]["topic"]["code"] == "mg-severity")
    assert severity["summary"].startswith("Severe low magnesium with seizure: Mg 0.8 mEq/L")
    assert "**Urgent**" in severity["detail"] and "tacrolimus toxicity" in severity["detail"]


@pytest.mark.parametrize("unit, code, haemolysed, corrected", [
    ("mEq/L", "2601-3", 0.9, 1.3), ("mmol/L", "2601-3", 0.45, 0.65), ("mg/dL", "19123-9", 1.1, 1.6),
])
def test_correction_supersedes_in_each_unit(unit, code, haemolysed, corrected):
    when = f.days_ago(1)
    final = f.magnesium(haemolysed, unit, code=code, when=when)
    fixed = f.magnesium(corrected, unit, code=code, when=when, status="corrected")
    severity = finding(assess_of(*recipient(final, fixed)))
    assert severity.severity is Severity.MILD_MODERATE and severity.latest.value == corrected


@pytest.mark.parametrize("odd", [
    {"resourceType": "Patient", "id": "pat-1", "birthDate": 19700101, "gender": ["female"]},
    {"resourceType": "Patient", "id": "pat-1", "birthDate": "2030-01-01"},  # born in the future
    {"resourceType": "MedicationAdministration", "id": "a", "status": "completed",
     "medicationCodeableConcept": {"text": "magnesium sulfate"}, "effectiveDateTime": "2026-11-25T00:00:00Z",
     "dosage": {"dose": {"value": True}, "route": "IV"}},
    {"resourceType": "MedicationAdministration", "id": "b", "status": "completed",
     "medicationCodeableConcept": {"text": "magnesium sulfate"}, "effectivePeriod": "yesterday",
     "dosage": []},
    {"resourceType": "MedicationRequest", "id": "c", "status": "stopped", "intent": 7,
     "medicationCodeableConcept": {"text": "tacrolimus 1 mg"}, "meta": {"lastUpdated": ["x"]},
     "dispenseRequest": {"validityPeriod": "soon"}, "dosageInstruction": [{"timing": {"repeat": []}}]},
    {"resourceType": "MedicationStatement", "id": "d", "status": "active",
     "medicationCodeableConcept": {"text": "Prograf"}, "effectivePeriod": {"end": 5}},
    {"resourceType": "Condition", "id": "e", "code": {"text": "ESRD"}, "clinicalStatus": 3},
    {"resourceType": "Procedure", "id": "g", "status": "completed", "code": {"text": "dialysis"},
     "performedPeriod": {"start": "not a date"}},
    {"resourceType": "Observation", "id": "h", "status": "final",
     "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
     "valueQuantity": {"value": 20, "unit": "stone"}, "effectiveDateTime": "2026-11-24"},
])
def test_odd_values_in_the_new_resources_never_500(client, odd):
    resources = recipient(f.magnesium(0.9, days=1))
    body = f.hook_request(resources)
    if odd["resourceType"] == "Patient":
        body["prefetch"]["patient"] = odd
    else:
        key = f.prefetch_key(odd) or "medications"
        body["prefetch"].setdefault(key, f.bundle())["entry"].append({"resource": odd})
    response = client.post(PATIENT_VIEW, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
