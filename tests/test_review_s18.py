"""Review of the resource memo's entry arrays, the one-pass body reader and the rules' cached
checks (git diff 9bd23f6..HEAD).

The first four tests failed against the reviewed code (fixed since): each names what the README or a
module docstring promises and the input that breaks it. The others held and are kept as
regression tests: a differential fuzz of odd bodies through one shared memo (sequential and
threaded) against orjson, and the rewritten rules against their previous definitions.
"""

from __future__ import annotations

import random
import sys
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from cds_service.fhir.client import bundle_resources
from cds_service.guideline.codes import LabKind
from cds_service.guideline.facts import LabResult, PatientFacts, is_usable
from cds_service.guideline.rules.assessment import magnesium_results
from cds_service.guideline.rules.severity import (
    best_at_same_time, classify, is_future, latest_usable, set_aside_future, usable_only)
from cds_service.guideline.thresholds import Thresholds
from cds_service.protocol.body import (
    MAX_KEPT_BYTES, ResourceMemo, SharedEntries, Tally, parse_body)

from .test_body import one_bundle, search_body, what_the_service_reads


def _kept_resources(memo: ResourceMemo) -> dict[int, object]:
    """Every resource the memo keeps alive: those it holds by their bytes and those its entry
    arrays hold (by id)."""
    alive: dict[int, object] = {}
    for value in [*memo._current.values(), *memo._previous.values()]:
        if isinstance(value, SharedEntries):
            for entry in value:
                if isinstance(entry.get("resource"), dict):
                    alive[id(entry["resource"])] = entry["resource"]
        else:
            alive[id(value)] = value
    return alive


# --------------------------------------------------------------------------------------------
# Memory bounds (README, Security, "Patient data in memory")


def test_an_outsized_resource_is_never_kept_even_inside_an_entry_array():
    """Found by review, fixed. README: 'resources over 16 KB are never kept'. At the default size (5000) an
    entry array may be up to 640 KB, so a Bundle holding one 64 KB resource is kept whole by its
    entry array, the outsized resource with it (a plain dict shared by every later call)."""
    shared = ResourceMemo(5000, 600)  # the default CDS_RESOURCE_MEMO_SIZE
    big = {"resourceType": "Observation", "id": "big", "note": [{"text": "x" * (4 * MAX_KEPT_BYTES)}]}
    raw = one_bundle(big)
    for _ in range(3):
        assert parse_body(raw, shared).body["prefetch"]["b"]["entry"][0]["resource"] == big
    outsized = [r for r in _kept_resources(shared).values() if len(orjson.dumps(r)) > MAX_KEPT_BYTES]
    assert outsized == []


def test_the_memo_keeps_at_most_its_size_in_resources():
    """Found by review, fixed. README: the memo 'holds at most CDS_RESOURCE_MEMO_SIZE resources'. An entry array
    found again moves to the newer generation and counts as one; its resources stay behind and
    are dropped from the count, but the array keeps them alive: 7 patients of 200 results each
    keep 200 resources alive in a memo of 100 (1000 and 5000 keep 1200 and 6000 likewise)."""
    shared = ResourceMemo(100, 600)

    def record(patient: str) -> bytes:
        return orjson.dumps({"hook": "patient-view", "context": {"patientId": patient}, "prefetch": {
            "b": {"resourceType": "Bundle", "entry": [
                {"resource": {"resourceType": "Observation", "id": f"{patient}-{i}"}} for i in range(200)]}}})

    most = 0
    for i in range(7):
        for _ in range(3):
            parse_body(record(f"p{i}"), shared)
    for _ in range(3):
        for i in range(7):
            parse_body(record(f"p{i}"), shared)
            most = max(most, len(_kept_resources(shared)))
    assert most <= 100


def test_resources_of_an_entry_array_found_again_are_remembered_as_long_as_it():
    """Found by review, fixed (a regression of the memo's use, not of its answers). An entry array found again
    moves to the newer generation, its resources do not: two rotations later they are out of
    the memo while the array is still found. The next search with one new result then parses
    and reads every result again (0 hits, 6 misses; before this change: 5 hits, 1 miss), and
    keeps a second copy of each resource while the old array holds the first."""
    now = [0.0]
    shared = ResourceMemo(1000, 600, clock=lambda: now[0])
    results = [{"resourceType": "Observation", "id": f"mg{i}", "status": "final"} for i in range(5)]
    parse_body(search_body("p1", results, "1"), shared)  # the patient's first call
    parse_body(search_body("p1", results, "2"), shared)  # kept
    now[0] = 300.0
    parse_body(search_body("p1", results, "3"), shared)  # the same entries: found again
    now[0] = 600.0
    parse_body(search_body("p1", results, "4"), shared)  # found again
    now[0] = 900.0
    new = {"resourceType": "Observation", "id": "mg-new", "status": "final"}
    tally = parse_body(search_body("p1", results + [new], "5"), shared).tally
    assert (tally.hits, tally.misses) == (5, 1)


# --------------------------------------------------------------------------------------------
# Concurrency


def _find_all(shared: ResourceMemo, older: list[bytes], go: threading.Event, errors: list) -> None:
    go.wait()
    try:
        for raw in older:  # found again: popped from the older generation
            shared.parsed(raw, Tally())
    except RuntimeError as error:
        errors.append(error)


def test_a_rotation_racing_a_lookup_never_fails_the_call():
    """Found by review, fixed (there before this change; entries() adds a second unlocked pop). A full rotation
    counts the older generation's unused entries by iterating `_previous.values()` under the
    lock, while other threads pop from `_previous` (parsed(), entries()) without it: the
    iteration raises 'dictionary changed size during iteration', which parse_body does not
    catch (a 500 for that call). Forced here with a short switch interval."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    errors: list[BaseException] = []
    try:
        for _ in range(10):
            n = 20000
            shared = ResourceMemo(2 * n, 600)
            older = [b'{"id":"a%d"}' % i for i in range(n)]
            for raw in older:
                shared.parsed(raw, Tally())
            for i in range(n):  # the newer generation fills: `older` is now the older one
                shared.parsed(b'{"id":"b%d"}' % i, Tally())
            go = threading.Event()
            thread = threading.Thread(target=_find_all, args=(shared, older, go, errors))
            thread.start()
            go.set()
            try:
                shared.parsed(b'{"id":"c"}', Tally())  # the newer generation is full: a rotation
            except RuntimeError as error:
                errors.append(error)
            thread.join()
            if errors:
                break
    finally:
        sys.setswitchinterval(interval)
    assert errors == []


# --------------------------------------------------------------------------------------------
# What the memo returns is what orjson reads (held)


def _ordered(value):
    """Equality that also sees the order of members (duplicates keep the first place)."""
    if isinstance(value, dict):
        return ("object", [(k, _ordered(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("array", [_ordered(v) for v in value])
    return (type(value).__name__, value)


def _space(rng: random.Random) -> str:
    return rng.choice(["", "", "", " ", "\n ", "\t"])


def _name(rng: random.Random, name: str) -> str:
    if name and rng.random() < 0.15:  # one character escaped
        i = rng.randrange(len(name))
        return '"' + name[:i] + f"\\u{ord(name[i]):04x}" + name[i + 1:] + '"'
    return orjson.dumps(name).decode()


def _text(rng: random.Random, value) -> str:
    """JSON text of `value` with random white space, escaped names and strings, and duplicate
    members (an earlier one with another value: the last counts)."""
    if isinstance(value, dict):
        members = []
        for name, member in value.items():
            if rng.random() < 0.1:
                members.append(_name(rng, name) + ":" + _text(rng, rng.choice([1, "z", None, [], {}])))
            members.append(_name(rng, name) + _space(rng) + ":" + _space(rng) + _text(rng, member))
        return "{" + _space(rng) + ("," + _space(rng)).join(members) + _space(rng) + "}"
    if isinstance(value, list):
        return "[" + _space(rng) + ("," + _space(rng)).join(_text(rng, v) for v in value) + _space(rng) + "]"
    if isinstance(value, str) and value and rng.random() < 0.1:
        return '"' + "".join(f"\\u{ord(c):04x}" if rng.random() < 0.3 else c for c in value) + '"'
    return orjson.dumps(value).decode()


_RESOURCES = [
    {"resourceType": "Observation", "id": f"o{i}", "status": status, "valueQuantity": {"value": i / 10}}
    for i in range(6) for status in ("final", "preliminary")
] + [{"resourceType": "Patient", "id": "p", "gender": g} for g in ("male", "female")] + [
    {}, {"id": "x"}, {"resourceType": 7}, {"resourceType": ["Bundle"]}, {"resourceType": "Bundle", "entry": []},
    {"resourceType": "Bundle"}, {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient"}}]},
    {"resourceType": "Bund\u00e9"}, {"resourceType": "Observation", "note": "\u00e9\U0001F600\u0000\u2028"},
]


def _entry(rng: random.Random):
    if rng.random() < 0.05:
        return rng.choice([7, None, "x", [], [{"resource": {}}]])
    entry: dict = {}
    if rng.random() < 0.3:
        entry["fullUrl"] = f"urn:{rng.randrange(3)}"
    if rng.random() < 0.9:
        entry["resource"] = rng.choice(_RESOURCES) if rng.random() < 0.9 else rng.choice(
            [None, "x", [], [_RESOURCES[0]], 3, {"a": [1, {"b": 2}]}])
    if rng.random() < 0.4:
        entry["search"] = rng.choice([{"mode": "match"}, {"mode": "outcome"}, {"mode": "include", "score": 1},
                                      "x", None])
    return entry


def _prefetch_value(rng: random.Random):
    if rng.random() < 0.05:
        return None
    if rng.random() < 0.25:
        return rng.choice(_RESOURCES)
    bundle: dict = {"resourceType": rng.choice(["Bundle"] * 8 + ["Patient"])}
    if rng.random() < 0.3:
        bundle["id"] = str(rng.randrange(100))
    if rng.random() < 0.9:
        bundle["entry"] = (rng.choice([{}, "no", 3, None, {"resource": _RESOURCES[0]}]) if rng.random() < 0.1
                           else [_entry(rng) for _ in range(rng.randrange(5))])
    if rng.random() < 0.3:
        bundle["link"] = [{"relation": "self", "url": "u"}]
    if rng.random() < 0.2:
        bundle["meta"] = {"x": 1}
    return bundle


def _odd_bodies(rng: random.Random, count: int) -> list[bytes]:
    return [_text(rng, {"hook": "patient-view", "hookInstance": "h", "context": {"patientId": "p1"},
                        "prefetch": {k: _prefetch_value(rng) for k in rng.sample(["a", "b", "c", "patient"],
                                                                                 rng.randrange(1, 4))}}).encode()
            for _ in range(count)]


def _expected(raw: bytes):
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "refused"
    resources = [_ordered(bundle_resources(v)) for v in parsed["prefetch"].values() if isinstance(v, dict)]
    return _ordered(what_the_service_reads(parsed)), resources


def _read(raw: bytes, shared: ResourceMemo):
    try:
        parsed = parse_body(raw, shared).body
    except orjson.JSONDecodeError:
        return "refused"
    resources = [_ordered(bundle_resources(v)) for v in parsed["prefetch"].values() if isinstance(v, dict)]
    return _ordered(what_the_service_reads(parsed)), resources


def _memo_holds_what_its_bytes_say(shared: ResourceMemo) -> None:
    for raw, value in {**shared._previous, **shared._current}.items():
        if isinstance(value, SharedEntries):
            assert _ordered(list(value)) == _ordered(
                [{k: v for k, v in entry.items() if k in ("resource", "search")} for entry in orjson.loads(raw)])
            assert value.resources is None or _ordered(value.resources) == _ordered(
                bundle_resources({"resourceType": "Bundle", "entry": orjson.loads(raw)}))
        else:
            assert _ordered(dict(value)) == _ordered(orjson.loads(raw))


@pytest.mark.parametrize("seed", range(12))
def test_odd_bodies_through_one_shared_memo_read_as_orjson_reads_them(seed):
    """Escaped names and strings, duplicate members at every level, white space, entries and
    resources of every shape: every call, cold or warm, through a memo that rotates (sizes 6
    and 20) or not, reads what orjson reads, member order included; the memo holds exactly what
    its keys say."""
    rng = random.Random(seed)
    shared = ResourceMemo(rng.choice([6, 20, 1000]), 600)
    shared.called_before("p1")
    bodies = _odd_bodies(rng, 40)
    for _ in range(300):
        raw = rng.choice(bodies)
        assert _read(raw, shared) == _expected(raw), raw
    _memo_holds_what_its_bytes_say(shared)


def test_threads_sharing_a_rotating_memo_each_read_their_own_body():
    """Four threads, one memo of 8 (rotating all the time), odd bodies: every answer is exactly
    orjson's for the body sent (a race may compute twice, never answer with another's data)."""
    rng = random.Random(5)
    bodies = [(raw, _expected(raw)) for raw in _odd_bodies(rng, 150)]
    shared = ResourceMemo(8, 600)
    shared.called_before("p1")
    wrong: list[bytes] = []
    failed: list[BaseException] = []

    def worker(seed: int) -> None:
        choose = random.Random(seed)
        for _ in range(600):
            raw, expected = choose.choice(bodies)
            try:
                if _read(raw, shared) != expected:
                    wrong.append(raw)
            except Exception as error:
                failed.append(error)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == [] and failed == []
    _memo_holds_what_its_bytes_say(shared)


WARM_ODD_BODIES = [
    # A Bundle named with an escape, and resource types that are not strings.
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":"Bund\\u006ce",'
    b'"entry":[{"resource":{"resourceType":"Observation","id":"o1"}}]}}}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":["Bundle"],'
    b'"entry":[{"resource":{"resourceType":"Observation","id":"o1"}}]}}}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":null,"entry":[]}}}',
    # Escaped member names that are the names the service reads.
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resource\\u0054ype":"Bundle",'
    b'"\\u0065ntry":[{"res\\u006furce":{"resourceType":"Observation","id":"o1"},"se\\u0061rch":{"mode":"outcome"}}]}}}',
    # Duplicates: prefetch keys, Bundle members, entry members, resource members.
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":"Bundle","entry":'
    b'[{"resource":{"resourceType":"Observation","id":"o1"},"resource":{"resourceType":"Observation","id":"o2"}}],'
    b'"entry":[{"resource":{"resourceType":"Observation","id":"o3","id":"o4"}}]},"b":{"resourceType":"Bundle","entry":'
    b'[{"resource":{"resourceType":"Observation","id":"o5"},"search":{"mode":"outcome"},"search":{"mode":"match"}}]}}}',
    # entry of every other shape; resource an array.
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"a":{"resourceType":"Bundle","entry":null},'
    b'"b":{"resourceType":"Bundle","entry":{"resource":{"resourceType":"Patient"}}},"c":{"resourceType":"Bundle","entry":7},'
    b'"d":{"resourceType":"Bundle","entry":[]},"e":{"resourceType":"Bundle","entry":[{"resource":[{"resourceType":"Patient"}]}]}}}',
    # Unicode and white space, and an empty object as a resource.
    '{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"p":{"resourceType":"Patient",'
    '"name":[{"text":"Zoë 😀"}],"\u00e9":1},'
    '"b":{"resourceType":"Bundle","entry":[ {} , { "resource" : { } } ]}}}'.encode(),
    # Out-of-range numbers and NaN in what the service reads: orjson's error every time.
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":"Bundle",'
    b'"link":[{"relation":"next","url":1e400}],"entry":[]}}}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"p":{"resourceType":"Patient","x":1e400}}}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"p":{"resourceType":"Patient","x":NaN}}}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":"Bundle",'
    b'"entry":[{"resource":{"resourceType":"Patient"}},{"resource":{"v":-1e400}}]}}}',
    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"p":{"resourceType":"Patient","\\ud800":1}}}',
]


@pytest.mark.parametrize("raw", WARM_ODD_BODIES, ids=range(len(WARM_ODD_BODIES)))
def test_odd_bodies_read_as_orjson_reads_them_cold_and_warm(raw):
    shared = ResourceMemo(1000, 600)
    expected = _expected(raw)
    for _ in range(4):  # plain, then kept, then found
        assert _read(raw, shared) == expected
    _memo_holds_what_its_bytes_say(shared)


def test_a_resource_or_an_array_near_the_depth_limit_fails_as_orjson_fails():
    """JSON nested deeper than orjson allows is refused on the memo's path too (the resource is
    parsed alone there, two to five levels shallower than in the body)."""
    for depth in (1015, 1019, 1021, 1023, 1030):
        resource = b'{"resourceType":"Observation","x":' + b"[" * depth + b"]" * depth + b"}"
        for raw in (b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"b":{"resourceType":"Bundle",'
                    b'"entry":[{"resource":' + resource + b"}]}}}",
                    b'{"hook":"patient-view","context":{"patientId":"p1"},"prefetch":{"p":' + resource + b"}}"):
            shared = ResourceMemo(100, 600)
            shared.called_before("p1")
            try:
                orjson.loads(raw)
            except orjson.JSONDecodeError:
                with pytest.raises(orjson.JSONDecodeError):
                    parse_body(raw, shared)
                continue
            parse_body(raw, shared)


def test_the_shared_entries_resources_list_is_each_callers_own():
    """bundle_resources of a shared entry array gives a new list each time; changing it changes
    neither the array, nor the cached list, nor what the next call reads."""
    results = [{"resourceType": "Observation", "id": f"mg{i}"} for i in range(3)]
    shared = ResourceMemo(1000, 600)
    for _ in range(2):
        parse_body(search_body("p1", results, "1"), shared)
    bundle = parse_body(search_body("p1", results, "2"), shared).body["prefetch"]["mg"]
    assert type(bundle["entry"]) is SharedEntries
    mine = bundle_resources(bundle)
    mine.append({"resourceType": "Observation", "id": "not-sent"})
    mine.reverse()
    again = parse_body(search_body("p1", results, "3"), shared).body["prefetch"]["mg"]
    assert bundle_resources(again) == results and len(again["entry"]) == 3


# --------------------------------------------------------------------------------------------
# The rules' rewritten checks are their previous definitions (held)

_BASE = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


def _results(rng: random.Random, count: int) -> list[LabResult]:
    out = []
    for i in range(count):
        when = rng.choice([None, _BASE + timedelta(hours=rng.randint(-6, 6)),
                           (_BASE + timedelta(hours=1)).astimezone(timezone(timedelta(hours=1)))])  # = _BASE + 1h
        out.append(LabResult(
            kind=rng.choice([LabKind.MG_SERUM, LabKind.MG_SERUM, LabKind.EGFR, LabKind.TACROLIMUS_LEVEL]),
            observation_id=f"o{i}", when=when,
            status=rng.choice(["final", "amended", "corrected", "preliminary", "entered-in-error", "registered"]),
            value=rng.choice([None, -1.0, 0.0, 1.0]), unit=rng.choice(["mEq/L", ""]),
            comparator=rng.choice([None, "<", "<=", ">", ">=", "=>", ""]),
            normalised=rng.choice([None, 0.9, 1.2, 1.39, 1.4, 1.41, 1.5, 2.5]),
            issued_text=rng.choice([None, "2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z"])))
    return out


def _previous_magnesium_results(facts, future_labs, thresholds):
    """assessment.magnesium_results as of 9bd23f6."""
    from cds_service.guideline.rules.assessment import MagnesiumResults, _newest_first

    def old_latest_usable(results):
        usable = usable_only(results)
        if not usable:
            return None
        newest = max(r.when for r in usable)
        return best_at_same_time(r for r in usable if r.when == newest)

    future = _newest_first(r for r in future_labs if r.kind == LabKind.MG_SERUM)
    serum = facts.labs_of(LabKind.MG_SERUM)
    bounds = [r for r in serum if is_usable(r) and classify(r.normalised, r.comparator, False, thresholds) is None]
    latest = old_latest_usable(r for r in serum if r not in bounds)

    def newer(r):
        return latest is None or r.when is None or r.when >= latest.when

    superseded = set()
    if latest is not None:
        superseded = {id(r) for r in serum if r.when == latest.when and r is not latest}
    unreadable = _newest_first(r for r in serum if (r.unreadable_reason or r in bounds) and newer(r)
                               and id(r) not in superseded)
    preliminary = _newest_first(r for r in serum if r.status == "preliminary" and not r.unreadable_reason
                                and newer(r))
    return MagnesiumResults(latest, unreadable, preliminary, future)


def test_magnesium_results_and_the_kinds_usable_results_are_their_previous_definitions():
    thresholds = Thresholds()
    rng = random.Random(29)
    for _ in range(3000):
        results = _results(rng, rng.randint(0, 7))
        facts = PatientFacts(patient_id="p1", encounter_id=None, labs=tuple(results))
        future = _results(rng, rng.randint(0, 2))
        new, old = magnesium_results(facts, future, thresholds), _previous_magnesium_results(facts, future, thresholds)
        assert new.latest is old.latest
        assert [id(r) for r in new.unreadable] == [id(r) for r in old.unreadable]
        assert [id(r) for r in new.preliminary] == [id(r) for r in old.preliminary]
        for kind in (LabKind.MG_SERUM, LabKind.EGFR, LabKind.TACROLIMUS_LEVEL, LabKind.BODY_WEIGHT):
            assert [id(r) for r in facts.usable_labs_of(kind)] == [
                id(r) for r in facts.labs_of(kind) if is_usable(r)]
            assert latest_usable(facts.usable_labs_of(kind)) is latest_usable(facts.labs_of(kind))


def test_cached_checks_never_follow_facts_into_a_replaced_copy():
    """set_aside_future and any dataclasses.replace build new facts: the cached latest time and
    usable results of the original (kept facts are reused across calls) never carry over."""
    thresholds = Thresholds()
    now = _BASE
    tolerance = timedelta(minutes=thresholds.future_tolerance_minutes)

    def mg(when, value=1.2, status="final"):
        return LabResult(kind=LabKind.MG_SERUM, observation_id=str(when), when=when, status=status, value=value,
                         unit="mEq/L", comparator=None, normalised=value)

    past, edge, future = mg(now - timedelta(days=1)), mg(now + tolerance), mg(now + tolerance + timedelta(seconds=1))
    facts = PatientFacts(patient_id="p1", encounter_id=None, labs=(past, edge, future))
    assert facts.latest_lab_time == future.when and facts.usable_labs_of(LabKind.MG_SERUM) == [past, edge, future]
    kept, set_aside = set_aside_future(facts, now, thresholds)
    assert set_aside == (future,) and kept.labs == (past, edge)  # exactly at the tolerance: not future
    assert not is_future(edge, now, thresholds)
    assert kept.latest_lab_time == edge.when and kept.usable_labs_of(LabKind.MG_SERUM) == [past, edge]
    assert set_aside_future(kept, now, thresholds) == (kept, ())
    emptied = replace(facts, labs=())
    assert emptied.latest_lab_time is None and emptied.usable_labs_of(LabKind.MG_SERUM) == []
    assert set_aside_future(emptied, now, thresholds) == (emptied, ())
    # The same instant in another offset is the same time (equal results, one newest group).
    same = mg((now - timedelta(days=1)).astimezone(timezone(timedelta(hours=5))), value=1.0, status="corrected")
    both = PatientFacts(patient_id="p1", encounter_id=None, labs=(past, same))
    assert latest_usable(both.usable_labs_of(LabKind.MG_SERUM)) is same  # corrected supersedes final
    shown = past.shown
    assert replace(past, value=2.0, normalised=2.0).shown != shown and past.shown == shown
