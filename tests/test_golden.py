"""Every fixture request gets the same response bytes as recorded in tests/golden/.

The golden files pin what the service answers (clock pinned, uuids seeded: see bench/golden.py),
so a change made for speed can prove it changed nothing. A clinical change changes them on
purpose: regenerate with `.venv/bin/python -m bench.golden` and review `git diff tests/golden`.
"""

from __future__ import annotations

import json
import re

import pytest

from bench import golden

MANIFEST = json.loads(golden.MANIFEST.read_text("utf-8")) if golden.MANIFEST.exists() else {}
HOW = (f"If the change is intended (e.g. new clinical wording), regenerate the golden files with "
       f"`{golden.REGENERATE}` and review `git diff tests/golden`.")
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


# The same bytes however the prefetched resources were read: the resource memo shared by all
# cases (the default), every request sent three times (the memo starts at a patient's second
# call, so the third call finds every resource already read, protocol/body.py), and the memo
# turned off.
MODES = {"memo": ({}, 1), "memo, third call": ({}, 3), "no memo": ({"resource_memo_size": 0}, 1)}


@pytest.fixture(scope="module", params=sorted(MODES))
def answers(request) -> dict[str, tuple[int, bytes]]:
    settings, calls = MODES[request.param]
    return {case["name"]: (status, body) for case, status, body in golden.responses(settings, calls)}


def test_every_fixture_request_has_a_golden_response(answers):
    fixtures = {p.stem for p in golden.REQUESTS.glob("*.json")}
    assert fixtures and fixtures <= set(MANIFEST), (
        f"no golden response for {sorted(fixtures - set(MANIFEST))}. {HOW}")
    assert set(answers) == set(MANIFEST), (
        f"golden cases changed: new {sorted(set(answers) - set(MANIFEST))}, "
        f"gone {sorted(set(MANIFEST) - set(answers))}. {HOW}")


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_response_is_byte_identical_to_the_golden_file(answers, name):
    if name not in answers:
        pytest.fail(f"golden case {name} is no longer produced. {HOW}")
    status, body = answers[name]
    expected = (golden.GOLDEN / f"{name}.json").read_bytes()
    assert status == MANIFEST[name]["status"], (
        f"{name}: status {status}, golden {MANIFEST[name]['status']}. {HOW}")
    if body != expected:
        only_uuids = _UUID.sub(b"<uuid>", body) == _UUID.sub(b"<uuid>", expected)
        where = next(i for i, (a, b) in enumerate(zip(body + b"\0", expected + b"\0", strict=False)) if a != b)
        pytest.fail(
            f"{name}: response differs from tests/golden/{name}.json at byte {where}"
            + (" (only in uuid values: cards or suggestions are now built in another order)"
               if only_uuids else "")
            + f":\n  got      {body[max(0, where - 60):where + 60]!r}"
            + f"\n  expected {expected[max(0, where - 60):where + 60]!r}\n{HOW}")


def test_pinning_is_undone_after_each_request():
    """The golden harness pins the clock and the uuids in its own process only."""
    import uuid

    from cds_service.protocol import response
    from cds_service.web import hooks

    before = (hooks.utc_now, uuid.uuid4, response._generator)
    with golden.pinned(golden._when(golden.DEFAULT_NOW)):
        assert hooks.utc_now() == golden._when(golden.DEFAULT_NOW)
        assert response._generator is not before[2]
    assert (hooks.utc_now, uuid.uuid4, response._generator) == before
