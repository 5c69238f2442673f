"""Golden responses: the exact bytes the service answers to every fixture request.

    .venv/bin/python -m bench.golden            # regenerate tests/golden/ (then review git diff)
    .venv/bin/python -m bench.golden --check    # compare only; exit 1 on a difference

Optimisations must leave every response byte-identical; tests/test_golden.py compares the
service's answers with the files written here. A clinical change (new wording, a new card)
changes the answers on purpose: regenerate with the command above and review the diff.

What is pinned, in this process only (production keeps its clock and its randomness):
- the clock: `cds_service.web.hooks.utc_now` returns the scenario's `now` (scenarios.json);
- card and suggestion uuids: the module generator of `cds_service.protocol.response` is replaced
  by `random.Random(SEED)` and `uuid.uuid4` by a seeded version, re-seeded before each request, so
  each answer depends on its own request only;
- settings: CDS_* environment variables are hidden while the app is built.

Requests: every file in fhir_fixtures/requests (to the service whose hook it names), the bench's
two-year record (decorated and plain) at the pinned clock, and a few invalid requests whose
OperationOutcome answers the request parsing must keep.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from collections.abc import Iterator

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench import record

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = ROOT / "fhir_fixtures" / "requests"
SCENARIOS = ROOT / "fhir_fixtures" / "scenarios.json"
GOLDEN = ROOT / "tests" / "golden"
MANIFEST = GOLDEN / "MANIFEST.json"
DEFAULT_NOW = "2026-11-25T12:00:00Z"
SEED = 13
REGENERATE = ".venv/bin/python -m bench.golden"


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@contextlib.contextmanager
def pinned(now: datetime) -> Iterator[None]:
    """Clock and uuids pinned (see the module docstring); everything restored on exit."""
    from cds_service.protocol import response
    from cds_service.web import hooks

    saved_now, saved_uuid4 = hooks.utc_now, uuid.uuid4
    saved_generator = getattr(response, "_generator", None)
    rng = random.Random(SEED)
    hooks.utc_now = lambda: now
    if saved_generator is not None:
        response._generator = rng
    uuid.uuid4 = lambda: uuid.UUID(int=rng.getrandbits(128), version=4)
    try:
        yield
    finally:
        hooks.utc_now, uuid.uuid4 = saved_now, saved_uuid4
        if saved_generator is not None:
            response._generator = saved_generator


@contextlib.contextmanager
def _no_cds_environment() -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("CDS_")}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)


def _cases() -> list[dict]:
    """name, endpoint hook (or service path), body bytes, content type, now."""
    scenarios = json.loads(SCENARIOS.read_text("utf-8")) if SCENARIOS.exists() else []
    now_by_request = {s["request"]: s.get("now", DEFAULT_NOW) for s in scenarios}
    cases = []
    for path in sorted(REQUESTS.glob("*.json")):
        raw = path.read_bytes()
        cases.append({"name": path.stem, "hook": json.loads(raw)["hook"], "body": raw,
                      "source": f"fhir_fixtures/requests/{path.name}",
                      "now": now_by_request.get(path.name, DEFAULT_NOW)})
    now = _when(DEFAULT_NOW)
    for name, decorated in (("bench-two-year", True), ("bench-two-year-plain", False)):
        resources = record.two_year_record(now) if decorated else record.plain_record(now)
        prefetch = record.prefetch_for(resources, decorated=decorated)
        if decorated:  # the Bundles' meta.lastUpdated and ids vary by run; the answer must not
            for bundle in prefetch.values():
                if bundle.get("resourceType") == "Bundle":
                    bundle["id"], bundle["meta"]["lastUpdated"] = "search", DEFAULT_NOW
        body = json.dumps(record.hook_request(prefetch=prefetch), separators=(",", ":")).encode()
        cases.append({"name": f"{name}.patient-view", "hook": "patient-view", "body": body,
                      "source": f"bench.record ({'decorated' if decorated else 'plain'}) at {DEFAULT_NOW}",
                      "now": DEFAULT_NOW})
    base = json.loads((REQUESTS / "severe.patient-view.json").read_bytes())
    invalid = {
        "invalid-not-json": b'{"hook": "patient-view",',
        "invalid-not-an-object": b'["patient-view"]',
        "invalid-missing-patient": json.dumps({**base, "context": {"userId": "Practitioner/1"}}).encode(),
        "invalid-wrong-hook": json.dumps({**base, "hook": "order-sign"}).encode(),
        "invalid-prefetch-not-an-object": json.dumps({**base, "prefetch": []}).encode(),
        "invalid-hook-instance-type": json.dumps({**base, "hookInstance": 7}).encode(),
    }
    for name, body in invalid.items():
        cases.append({"name": f"{name}.patient-view", "hook": "patient-view", "body": body,
                      "source": "bench.golden (invalid request)", "now": DEFAULT_NOW})
    return cases


def responses(settings: dict | None = None, calls: int = 1) -> Iterator[tuple[dict, int, bytes]]:
    """(case, status, response bytes) for every golden case, from one app (with `settings`
    overridden); with `calls` > 1 each request is sent that many times and the last answer
    counts (the later calls find every prefetched resource in the resource memo)."""
    from cds_service import create_app

    # The state store goes to a temporary directory, never the checkout's default file, and the
    # cards answered here are not recorded (they are not real use).
    state_dir = tempfile.mkdtemp(prefix="cds-golden-state-")
    atexit.register(shutil.rmtree, state_dir, True)
    with _no_cds_environment():
        app = create_app({"log_level": "WARNING", "record_cards": False,
                          "state_db": os.path.join(state_dir, "state.sqlite3"), **(settings or {})})
    client = app.test_client()
    services = {s["hook"]: s["id"] for s in client.get("/cds-services").get_json()["services"]}
    for case in _cases():
        for _ in range(calls):
            with pinned(_when(case["now"])):
                answer = client.post(f"/cds-services/{services[case['hook']]}", data=case["body"],
                                     content_type="application/json")
        yield case, answer.status_code, answer.get_data()


def write() -> int:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for old in GOLDEN.glob("*.json"):
        old.unlink()
    manifest = {}
    for case, status, body in responses():
        (GOLDEN / f"{case['name']}.json").write_bytes(body)
        manifest[case["name"]] = {"status": status, "request": case["source"], "now": case["now"],
                                  "sha256": hashlib.sha256(body).hexdigest()}
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")
    print(f"wrote {len(manifest)} golden responses to {GOLDEN.relative_to(ROOT)}/ "
          "(review with git diff)")
    return 0


def check() -> int:
    manifest = json.loads(MANIFEST.read_text("utf-8"))
    differ = [case["name"] for case, status, body in responses()
              if manifest.get(case["name"], {}).get("status") != status
              or (GOLDEN / f"{case['name']}.json").read_bytes() != body]
    print(f"{len(differ)} of {len(manifest)} responses differ" + (": " + ", ".join(differ) if differ else ""))
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare with tests/golden only")
    args = p.parse_args(argv)
    return check() if args.check else write()


if __name__ == "__main__":
    sys.exit(main())
