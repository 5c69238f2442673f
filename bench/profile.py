"""Where the hook's time goes, in-process (no HTTP server), with the two-year record.

    python -m bench.profile                 # stage timings + pyinstrument tree (if installed)
    python -m bench.profile --calls 500 --no-tree

Every figure is the median CPU time of one call (`time.process_time`), not wall time: on
the shared machine, wall time mostly measures waiting for a core. Stage timings call the
service's own steps one by one (the same calls as web/hooks.py and
services.assess_patient make); they import service internals, so a stage that no longer
exists is reported as skipped rather than failing. The whole-request figures go through
Flask's test client (routing, before/after-request hooks, logging, response), not gunicorn.
pyinstrument and py-spy are not project dependencies: pip install pyinstrument into the venv.
"""

from __future__ import annotations

import argparse
import json

import orjson
import logging
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench import record

HOOK_PATH = "/cds-services/tacrolimus-magnesium-patient-view"


def per_call_ms(fn, calls: int) -> float:
    """Median CPU time of one call (process CPU time, so waiting for a core on a shared machine
    does not count; this process runs one thread)."""
    fn()  # warm
    samples = []
    for _ in range(calls):
        t = time.process_time()
        fn()
        samples.append(time.process_time() - t)
    return statistics.median(samples) * 1000


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - one measurement after another, read top to bottom
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--no-tree", action="store_true")
    p.add_argument("--default-gc", action="store_true",
                   help="keep CPython's GC settings (default: as a gunicorn worker, "
                        "cds_service.serving: heap frozen, young threshold raised)")
    p.add_argument("--plain", action="store_true", help="the 84 KiB plain record")
    p.add_argument("--quiet-logs", action="store_true",
                   help="silence the service's JSON logs (to see what logging costs)")
    args = p.parse_args(argv)
    os.environ.setdefault("CDS_LOG_LEVEL", "INFO")
    import tempfile

    import atexit
    import shutil

    state_dir = tempfile.mkdtemp(prefix="cds-profile-")  # the state store, never the checkout's
    atexit.register(shutil.rmtree, state_dir, True)
    os.environ.setdefault("CDS_DATABASE_URL", f"sqlite:///{state_dir}/state.sqlite3")

    from cds_service import create_app

    app = create_app()
    app_without_store = create_app({"record_cards": False})
    # Logs to stderr would dominate a terminal; send them to /dev/null but keep the formatting work.
    devnull = open(os.devnull, "w")
    for h in logging.getLogger().handlers + [h for n in logging.root.manager.loggerDict
                                             for h in getattr(logging.getLogger(n), "handlers", [])]:
        if isinstance(h, logging.StreamHandler):
            h.setStream(devnull)
    if args.quiet_logs:
        logging.disable(logging.CRITICAL)
    client = app.test_client()

    prefetch = (record.prefetch_for(record.plain_record(), decorated=False) if args.plain
                else record.prefetch_for(record.two_year_record()))
    body_obj = record.hook_request(prefetch=prefetch)
    raw = json.dumps(body_obj, separators=(",", ":")).encode()
    print(f"body {len(raw) / 1024:.0f} KiB, prefetch {record.counts(prefetch)}, {args.calls} calls each\n")

    def hook():
        r = client.post(HOOK_PATH, data=raw, content_type="application/json")
        assert r.status_code == 200, r.status_code

    def discovery():
        r = client.get("/cds-services")
        assert r.status_code == 200

    if not args.default_gc:
        from cds_service import serving

        hook()  # the first call imports what the cards need, as the worker's post_request sees
        serving.post_worker_init(worker=None)
        print(f"GC as in a gunicorn worker (cds_service.serving): threshold {__import__('gc').get_threshold()}, "
              f"{__import__('gc').get_freeze_count()} objects frozen\n")
    # The resource memo (protocol/body.py): the same record again (the default case here), a
    # record never seen (the memo emptied before each call) and the memo turned off.
    app_without_memo = create_app({"resource_memo_size": 0})
    memo = app.extensions["cds"].resource_memo
    memo_off_client = app_without_memo.test_client()

    def hook_new_record():
        for held in (memo._current, memo._previous, memo._patients, memo._patients_before):
            held.clear()
        hook()

    def hook_without_memo():
        r = memo_off_client.post(HOOK_PATH, data=raw, content_type="application/json")
        assert r.status_code == 200, r.status_code

    hook_without_memo()
    whole = per_call_ms(hook, args.calls)
    new_record = per_call_ms(hook_new_record, args.calls)
    whole_without_memo = per_call_ms(hook_without_memo, args.calls)
    floor = per_call_ms(discovery, args.calls)
    print(f"{'whole hook request (Flask test client)':<52} {whole:7.3f} ms   (the same record again)")
    print(f"{'  the first call for a patient (memo emptied)':<52} {new_record:7.3f} ms")
    print(f"{'  resource memo off (CDS_RESOURCE_MEMO_SIZE=0)':<52} {whole_without_memo:7.3f} ms")
    print(f"{'discovery request (Flask test client)':<52} {floor:7.3f} ms\n")

    # The cost of recording cards issued: the same hook with and without the state store,
    # in alternating blocks so that the machine's noise hits both.
    bare_client = app_without_store.test_client()

    def hook_without_store():
        r = bare_client.post(HOOK_PATH, data=raw, content_type="application/json")
        assert r.status_code == 200, r.status_code

    blocks = 6
    with_store = []
    without_store = []
    for _ in range(blocks):
        with_store.append(per_call_ms(hook, max(1, args.calls // blocks)))
        without_store.append(per_call_ms(hook_without_store, max(1, args.calls // blocks)))
    app.extensions["cds"].recorder.flush()
    w, wo = statistics.median(with_store), statistics.median(without_store)
    print(f"{'hook with the state store (record_cards on)':<52} {w:7.3f} ms")
    print(f"{'hook without (record_cards off)':<52} {wo:7.3f} ms   "
          f"difference {1000 * (w - wo):+.0f} µs, ×{w / wo:.3f} (medians of {blocks} alternating blocks: "
          + ", ".join(f"{a / b:.3f}" for a, b in zip(with_store, without_store, strict=True)) + ")")
    from cds_service.protocol.response import Card, Coding, Source
    from cds_service.web.hooks import record_cards

    cards = [Card("summary", "warning", Source("label", topic=Coding("urn:x", f"mg-kind-{i}")))
             for i in range(4)]
    with app.test_request_context():
        now = datetime.now(timezone.utc)
        enqueue = per_call_ms(lambda: record_cards("bench", cards, frozenset(), now), args.calls)
    print(f"{'record_cards() for 4 cards (metrics + queue)':<52} {enqueue * 1000:7.1f} µs")
    from cds_service.store import IssuedCard

    counter = iter(range(10**9))

    def batch(size: int):
        return [IssuedCard(f"bench-{next(counter)}", "bench", "mg-severity", "critical", now, False)
                for _ in range(size)]

    store = app.extensions["cds"].store
    for size in (4, 100):
        ms = per_call_ms(lambda size=size: store.add_cards(batch(size)), max(10, args.calls // 10))
        print(f"{f'background write of {size} cards (one transaction)':<52} {ms * 1000 / size:7.1f} µs per card")
    print()

    stages: list[tuple[str, float]] = []
    try:
        from cds_service.guideline import codes
        from cds_service.guideline.cards import CardContext, build_cards
        from cds_service.guideline.facts import build_facts
        from cds_service.guideline.rules import assess
        from cds_service.guideline.suggestions import OrderContext
        from cds_service.fhir.data import gather
        from cds_service.protocol.request import request_validator
        from cds_service.protocol.response import cards_response
        from cds_service.services import PATIENT_DATA
        from cds_service.web.hooks import json_response  # noqa: F401

        runtime = app.extensions["cds"]
        settings = runtime.settings
        now = datetime.now(timezone.utc)
        validator = request_validator()
        body = json.loads(raw)
        req = validator.parse(body, "patient-view", max_entries=settings.max_prefetch_entries)
        data = gather(req, PATIENT_DATA, client=None, executor=runtime.executor,
                      deadline_seconds=settings.fhir_deadline)
        facts = build_facts(data.resources, patient_id=req.patient_id,
                            encounter_id=req.encounter_id, unavailable=data.unavailable,
                            draft_orders=[])
        assessment = assess(facts, now, settings.thresholds)
        serum = next((c for c in codes.MG_SERUM if c.code == settings.serum_mg_order_loinc),
                     codes.MG_SERUM_MASS)
        ctx = CardContext(orders=OrderContext(req.patient_id, req.encounter_id, now, serum),
                          thresholds=settings.thresholds,
                          docs_base_url="http://127.0.0.1/docs/rules")
        cards = build_cards(assessment, ctx)
        out = cards_response(cards)

        from cds_service.protocol.body import ResourceMemo, parse_body

        warm_memo = ResourceMemo(settings.resource_memo_size or 5000, 600)
        for _ in range(2):  # the patient's first call is parsed plainly, the second keeps
            parse_body(raw, warm_memo)

        def parse_first_look_up():  # a patient called for before, whose resources are new
            fresh = ResourceMemo(settings.resource_memo_size or 5000, 600)
            fresh.called_before(req.patient_id)
            parse_body(raw, fresh)

        print(f"{'parse_body, the same record again (memo)':<52} "
              f"{per_call_ms(lambda: parse_body(raw, warm_memo), args.calls):7.3f} ms")
        print(f"{'parse_body, a returning patient, new resources':<52} "
              f"{per_call_ms(parse_first_look_up, args.calls):7.3f} ms")
        print("stages below: the path without the memo (every resource parsed and read)")
        stages = [
            ("orjson.loads of the body (as the service)", per_call_ms(lambda: orjson.loads(raw), args.calls)),
            ("schema validation + HookRequest (request.py)",
             per_call_ms(lambda: validator.parse(orjson.loads(raw), "patient-view",
                                                 max_entries=settings.max_prefetch_entries),
                         args.calls) - 0.0),
            ("gather (prefetch → resources)",
             per_call_ms(lambda: gather(req, PATIENT_DATA, client=None, executor=runtime.executor,
                                        deadline_seconds=settings.fhir_deadline), args.calls)),
            ("build_facts (facts.py)",
             per_call_ms(lambda: build_facts(data.resources, patient_id=req.patient_id,
                                             encounter_id=req.encounter_id,
                                             unavailable=data.unavailable, draft_orders=[]),
                         args.calls)),
            ("assess (rules.py)", per_call_ms(lambda: assess(facts, now, settings.thresholds),
                                              args.calls)),
            ("build_cards (cards.py, fhir.resources)",
             per_call_ms(lambda: build_cards(assessment, ctx), args.calls)),
            ("cards_response (response.py)", per_call_ms(lambda: cards_response(cards), args.calls)),
            ("orjson.dumps of the response",
             per_call_ms(lambda: orjson.dumps(out),
                         args.calls)),
        ]
        # validation alone = parse stage minus its json.loads
        loads = stages[0][1]
        stages[1] = (stages[1][0], stages[1][1] - loads)
    except Exception as error:  # the service is being edited: report, do not fail
        print(f"stage timings skipped: {type(error).__name__}: {error}")

    if stages:
        total = sum(ms for _, ms in stages)
        print(f"{'stage (median CPU per call)':<52} {'ms':>7} {'% of stages':>12}")
        for name, ms in stages:
            print(f"{name:<52} {ms:7.3f} {100 * ms / total:11.1f}%")
        print(f"{'sum of stages':<52} {total:7.3f}")
        print(f"{'Flask/werkzeug/logging overhead (memo off − stages)':<52} {whole_without_memo - total:7.3f}\n")

    if not args.no_tree:
        try:
            from pyinstrument import Profiler
        except ImportError:
            print("pyinstrument not installed: pip install pyinstrument (into the venv)")
            return 0
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for _ in range(args.calls):
            hook()
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
