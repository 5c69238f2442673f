"""The fast paths of the fact readers (issue 13) give exactly the answers of the general ones.

parse_datetime builds the common forms with datetime.fromisoformat or directly in UTC; the
general path (the regex's groups, by hand) stays the reference: same value, same UTC tzinfo,
same None, over every date in the fixtures and generated edge cases.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from datetime import timezone
from pathlib import Path

import pytest

from cds_service.guideline.facts import values

FIXTURES = Path(__file__).resolve().parent.parent / "fhir_fixtures" / "requests"
_DATE_LIKE = re.compile(r"^\s*\d{4}")


def reference(value):
    """parse_datetime as it was: the regex, then the groups by hand."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    found = values._FHIR_DATETIME.match(value.strip())
    return None if found is None else values._parse_matched(*found.groups())


def strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)
    elif isinstance(node, str):
        yield node


def fixture_dates() -> set[str]:
    found = set()
    for path in FIXTURES.glob("*.json"):
        found |= {s for s in strings(json.loads(path.read_text("utf-8"))) if _DATE_LIKE.match(s)}
    return found


def edge_cases() -> list[str]:
    dates = ["2026-11-20", "2024-02-29", "2023-02-29", "2026-13-01", "2026-00-10", "2026-11-31",
             "0000-01-01", "0001-01-01", "1899-12-31", "1900-01-01", "2200-12-31", "2201-01-01",
             "9999-12-31", "2026", "2026-11", "٢٠٢٦-١١-٢٠"]
    times = ["", "T08:15", "T08:15:00", " 08:15:00", "T24:00:00", "T23:59:60", "T08:60:00",
             "T00:00:00", "T23:59:59", "T08:15:00.1", "T08:15:00.123", "T08:15:00.123456",
             "T08:15:00.1234567", "T08:15:00.123456789", "T08:15:00.", "T8:15:00"]
    zones = ["", "Z", "+00:00", "-00:00", "+01:00", "-05:30", "+14:00", "-12:00", "+0100",
             "+01:60", "+23:59", "+24:00", "-99:99", " Z", " +01:00", "+01:00:30", "z"]
    out = [d + t + z for d, t, z in itertools.product(dates, times, zones)]
    out += ["", " ", "2026-11-20 ", " 2026-11-20T08:15:00Z\n", "2026-11-20T08:15:00Z" + "0" * 50,
            "2026-11-20t08:15:00Z", "2026-11-20T08:15:00ZZ", "2026-11-20T08:15:00+01", "20261120",
            "2026-W47-5", "2026-324", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
    rng = random.Random(13)
    alphabet = "0123456789-:T.+Z "
    for _ in range(3000):
        base = list(rng.choice(out) or "2026-11-20T08:15:00Z")
        for _ in range(rng.randint(1, 3)):
            base[rng.randrange(len(base))] = rng.choice(alphabet)
        out.append("".join(base))
    return out


@pytest.mark.parametrize("source", ["fixtures", "edge cases"])
def test_parse_datetime_gives_the_general_paths_answer(source):
    cases = sorted(fixture_dates()) if source == "fixtures" else edge_cases()
    assert len(cases) > 20
    parsed_some = 0
    for value in cases:
        fast, slow = values.parse_datetime(value), reference(value)
        assert fast == slow, value
        if slow is not None:
            parsed_some += 1
            assert fast.tzinfo is timezone.utc and slow.tzinfo is timezone.utc, value
            assert (fast.year, fast.month, fast.day, fast.hour, fast.minute, fast.second,
                    fast.microsecond) == (slow.year, slow.month, slow.day, slow.hour, slow.minute,
                                          slow.second, slow.microsecond), value
    assert parsed_some > 10


def test_the_reference_can_fail():
    assert reference("2026-11-20T08:15:00+01:00") != reference("2026-11-20T08:15:00Z")
    assert values.parse_datetime("2026-11-20T08:15:00+01:00").hour == 7


def _fixture_records():
    from cds_service.fhir.client import bundle_resources

    for path in sorted(FIXTURES.glob("*.json")):
        request = json.loads(path.read_text("utf-8"))
        resources = [r for v in (request.get("prefetch") or {}).values() if isinstance(v, dict)
                     for r in bundle_resources(v)]
        context = request.get("context", {})
        drafts = (context.get("draftOrders") or {}).get("entry", [])
        yield path.name, resources, context, [e["resource"] for e in drafts if "resource" in e]


def test_remembered_drug_classification_changes_no_fact():
    """Facts of every fixture read with empty caches equal those read with caches warmed by
    every other fixture (the same concept in another record: a cream, an eye drop, a shampoo)."""
    from cds_service.guideline.facts import build_facts, medications

    def facts(resources, context, drafts):
        return build_facts(resources, patient_id=context.get("patientId"),
                           encounter_id=context.get("encounterId"), draft_orders=drafts)

    records = list(_fixture_records())
    assert len(records) > 50
    cold = {}
    for name, resources, context, drafts in records:
        medications._DRUG_CACHE.clear()
        cold[name] = facts(resources, context, drafts)
    for name, resources, context, drafts in records:  # caches now hold every fixture's concepts
        assert facts(resources, context, drafts) == cold[name], name
    assert medications._DRUG_CACHE


def test_the_subject_shortcut_agrees_with_reading_the_reference():
    """PatientRecord matches 'Patient/<id>' without splitting it; for every patient id (those
    holding '/' included) and reference form the answer is the general rule's."""
    from cds_service.guideline.facts.patient import PatientRecord

    ids = ["p1", "x/", "1/_history/2", "Patient/1", "a/b", "-", "Patient"]
    references = [None, {}, {"reference": 7}] + [
        {"reference": r} for pid in ids for r in (
            f"Patient/{pid}", f"https://ehr.example/fhir/Patient/{pid}", f"Patient/{pid}/_history/3",
            f"Group/{pid}", pid, f"Patient/{pid}/")]
    for patient_id in ids:
        record = PatientRecord(patient_id)
        for reference in references:
            resource = {"resourceType": "Observation"} if reference is None else {
                "resourceType": "Observation", "subject": reference}
            found = values.reference_id(reference, "Patient")
            assert record._is_about_patient(resource) == (found is None or found == patient_id), (
                patient_id, reference)


def _random_results(rng: random.Random, count: int):
    from datetime import datetime, timedelta

    from cds_service.guideline.codes import LabKind
    from cds_service.guideline.facts import LabResult

    base = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
    for i in range(count):
        yield LabResult(
            kind=rng.choice([LabKind.MG_SERUM, LabKind.EGFR]), observation_id=f"o{i}",
            when=rng.choice([None, base + timedelta(hours=rng.randint(-48, 48))]),
            status=rng.choice(["final", "amended", "corrected", "preliminary", "entered-in-error"]),
            value=1.0, unit="mEq/L", comparator=rng.choice([None, "<", ">="]),
            normalised=rng.choice([None, 0.9, 1.2, 1.5]),
            issued_text=rng.choice([None, "2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z"]))


def test_latest_usable_and_the_kinds_usable_results_agree_with_their_definitions():
    """latest_usable in one pass = the usable results, the newest time, the best result at it;
    PatientFacts.usable_labs_of = the usable ones of a kind, in order, as a new list each time."""
    from cds_service.guideline.codes import LabKind
    from cds_service.guideline.facts import PatientFacts, usable_only
    from cds_service.guideline.rules.severity import best_at_same_time, latest_usable

    def reference_latest(results):
        usable = usable_only(results)
        if not usable:
            return None
        newest = max(r.when for r in usable)
        return best_at_same_time([r for r in usable if r.when == newest])

    rng = random.Random(13)
    for _ in range(2000):
        results = list(_random_results(rng, rng.randint(0, 8)))
        assert latest_usable(results) is reference_latest(results)
        facts = PatientFacts(patient_id="p1", encounter_id=None, labs=tuple(results))
        for kind in (LabKind.MG_SERUM, LabKind.EGFR, LabKind.MG_IONIZED):
            mine = facts.usable_labs_of(kind)
            assert mine == [r for r in results if r.kind == kind and r.usable]
            mine.clear()
            assert facts.usable_labs_of(kind) == [r for r in results if r.kind == kind and r.usable]


def test_setting_aside_future_results_without_a_walk_agrees_with_the_walk():
    from datetime import datetime, timedelta

    from cds_service.guideline.facts import PatientFacts
    from cds_service.guideline.rules.severity import is_future, set_aside_future
    from cds_service.guideline.thresholds import Thresholds

    rng = random.Random(7)
    thresholds = Thresholds()
    for _ in range(2000):
        results = tuple(_random_results(rng, rng.randint(0, 6)))
        facts = PatientFacts(patient_id="p1", encounter_id=None, labs=results)
        now = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc) + timedelta(minutes=rng.randint(-3000, 3000))
        kept, future = set_aside_future(facts, now, thresholds)
        assert future == tuple(r for r in results if is_future(r, now, thresholds))
        assert kept.labs == tuple(r for r in results if not is_future(r, now, thresholds))
        assert (kept is facts) == (not future)


def test_cached_values_are_computed_once_per_object_and_follow_no_replaced_copy():
    """facts/model.py `cached` (cached_property without its 3.11 lock): one computation per
    object, the value stored on it; a dataclasses.replace copy computes its own."""
    from dataclasses import replace
    from datetime import datetime

    from cds_service.guideline.codes import LabKind
    from cds_service.guideline.facts import LabResult

    result = LabResult(kind=LabKind.MG_SERUM, observation_id="o1", when=datetime(2026, 12, 1, tzinfo=timezone.utc),
                       status="final", value=0.6, unit="mmol/L", comparator="<", normalised=1.2)
    assert result.shown == "<0.6 mmol/L" and result.__dict__["shown"] == "<0.6 mmol/L"
    assert replace(result, value=0.7).shown == "<0.7 mmol/L" and result.shown == "<0.6 mmol/L"
    assert type(LabResult.__dict__["shown"]).__name__ == "cached"
