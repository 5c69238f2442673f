"""The benchmark's two-year record is a patient the service really evaluates (no timing here:
the figures live in bench/README.md)."""

from __future__ import annotations

from bench import record

from cds_service.testing import factories as f


def test_two_year_record_is_a_full_prefetch_the_hook_answers(call_hook):
    resources = record.two_year_record(f.NOW)
    prefetch = record.prefetch_for(resources)
    counts = record.counts(prefetch)
    assert counts["magnesium"] >= 100 and counts["medications"] >= 20
    assert counts["labs"] + counts["tacrolimusLevels"] >= 50
    cards = call_hook(record.hook_request(prefetch=prefetch))
    topics = [c["source"]["topic"]["code"] for c in cards]
    # Low despite magnesium oxide for ten weeks: the persistence card replaces the severity card
    # (section 7, revision 2: one card per result); omeprazole is the contributing factor.
    assert topics[0] == "mg-persistent" and "mg-severity" not in topics and "mg-contributing" in topics


def test_plain_record_is_the_same_patient_without_decoration(call_hook):
    """The 84 KiB record: same resources, same cards, about a third of the bytes."""
    import json

    decorated = record.prefetch_for(record.two_year_record(f.NOW))
    plain = record.prefetch_for(record.plain_record(f.NOW), decorated=False)
    assert record.counts(plain) == record.counts(decorated)
    size = len(json.dumps(plain, separators=(",", ":")))
    assert size < len(json.dumps(decorated, separators=(",", ":"))) / 2.5
    assert _same_cards(call_hook(record.hook_request(prefetch=plain)),
                       call_hook(record.hook_request(prefetch=decorated)))


def _same_cards(a: list[dict], b: list[dict]) -> bool:
    """Cards equal but for their random uuids."""
    def strip(cards):
        return [{k: v for k, v in c.items() if k != "uuid"} | {"suggestions": [
            {k: v for k, v in s.items() if k != "uuid"} for s in c.get("suggestions", [])]}
            for c in cards]
    return strip(a) == strip(b)


def test_sized_records_reach_the_requested_size_and_are_evaluated(call_hook):
    for n in (30, 1000):
        resources = record.sized_record(n, f.NOW)
        assert len(resources) == n
        assert call_hook(record.hook_request(prefetch=record.prefetch_for(resources, decorated=False)))


def test_floor_app_parses_the_body_and_answers_a_fixed_card():
    from bench import floor_app

    client = floor_app.create_app().test_client()
    answer = client.post("/cds-services/x", data=b'{"hook":"patient-view"}',
                         content_type="application/json")
    assert answer.status_code == 200 and len(answer.get_json()["cards"]) == 1


def test_bench_is_self_contained():
    """The bench runs from a checkout without the test suite: no module imports tests/."""
    import ast
    from pathlib import Path

    for path in (Path(__file__).resolve().parent.parent / "bench").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "tests" or n.startswith("tests.") for n in names), path
