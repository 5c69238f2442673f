"""In-process cost of recording cards (issue 13, after phase B): 4 threads run N "hooks" that
each spin 2 ms of CPU and record 3 cards, into a SQLite store in a temporary directory; prints
process CPU per hook. Run with `on` and `off` (no recording) and subtract:

    .venv/bin/python -m bench.recorder on 1500
    .venv/bin/python -m bench.recorder off 1500

To compare code versions, run it with PYTHONPATH set to each checkout, from outside them.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

import sqlalchemy as sa

from cds_service.store import IssuedCard, Store
from cds_service.store.recorder import CardRecorder


def spin(ms: float) -> None:
    end = time.thread_time() + ms / 1000
    while time.thread_time() < end:
        pass


def main() -> None:
    record = sys.argv[1] == "on" if len(sys.argv) > 1 else True
    hooks = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
    with tempfile.TemporaryDirectory() as workdir:
        store = Store(f"sqlite:///{workdir}/state.sqlite3")
        store.migrate()
        recorder = CardRecorder(store)
        now = datetime.now(timezone.utc)

        def worker(thread: int) -> None:
            for i in range(hooks // 4):
                spin(2)
                if record:
                    recorder.record([IssuedCard(f"{thread}-{i}-{k}", "svc", "mg", "warning", now, False)
                                     for k in range(3)])

        cpu, wall = time.process_time(), time.perf_counter()
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        recorder.flush()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        with store.engine.connect() as db:
            rows = db.execute(sa.text("SELECT count(*) FROM cards_issued")).scalar()
        store.dispose()
    print(f"recording {'on' if record else 'off'}: CPU per hook {cpu / hooks * 1000:.3f} ms, "
          f"wall {wall:.2f} s, rows {rows}")


if __name__ == "__main__":
    main()
