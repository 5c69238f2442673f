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
