"""Start-up: workers creating a fresh state database at once all boot (issue 11, finding 9).

Two gunicorn workers opening a new SQLite file together could fail with "database is locked"
(switching to WAL and creating the table race; SQLite answers some of these conflicts at once,
without waiting on its busy timeout). Four processes open 300 fresh databases in lock-step:
before the fix about 6 of the 1,200 starts failed."""

from __future__ import annotations

import multiprocessing

from cds_service.security.jwt_auth import ReplayStore

WORKERS, DATABASES = 4, 300


def _start_many(directory: str, barrier, results) -> None:
    failures, first_uses = [], 0
    for n in range(DATABASES):
        barrier.wait()
        try:
            store = ReplayStore(f"{directory}/state-{n}.sqlite3")
            first_uses += store.first_use("iss", "jti-shared", 2e9, 0)
        except Exception as error:  # noqa: BLE001 - the test reports whatever a worker met
            failures.append(f"{type(error).__name__}: {error}")
    results.put((failures, first_uses))


def test_many_concurrent_fresh_starts_all_succeed(tmp_path):
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(WORKERS), context.Queue()
    processes = [context.Process(target=_start_many, args=(str(tmp_path), barrier, results))
                 for _ in range(WORKERS)]
    for p in processes:
        p.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(timeout=60)
    failures = [f for failed, _ in outcomes for f in failed]
    assert not failures, failures[:3]
    assert sum(first for _, first in outcomes) == DATABASES  # each database recorded the jti once
