"""Cards issued are written by a background thread in batches, so a hook call only appends to a
bounded in-memory queue and never waits for the database."""

from __future__ import annotations

import atexit
import logging
import queue
import threading
from collections.abc import Callable, Sequence

from .. import logs
from . import IssuedCard, Store

MAX_QUEUED = 10000  # cards waiting; beyond this a card goes unrecorded (counted), the hook is not slowed
BATCH = 500


class CardRecorder:
    """A bounded queue of cards drained by one daemon thread per process (started on first use,
    so in the gunicorn worker, after the fork)."""

    def __init__(self, store: Store, *, on_drop: Callable[[int], None] = lambda n: None):
        self._store = store
        self._queue: queue.Queue[IssuedCard] = queue.Queue(MAX_QUEUED)
        self._on_drop = on_drop
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one batch at a time (flush() and the thread)

    def record(self, cards: Sequence[IssuedCard]) -> None:
        self._ensure_thread()
        dropped = 0
        for card in cards:
            try:
                self._queue.put_nowait(card)
            except queue.Full:
                dropped += 1
        if dropped:
            self._on_drop(dropped)
            logs.event("cards_not_recorded", logging.WARNING, reason="queue full", cards=dropped)

    def flush(self) -> None:
        """Write every queued card now, and wait for a batch being written (feedback, tests, exit)."""
        while self._write_batch():
            pass
        self._queue.join()

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="card-recorder", daemon=True)
                self._thread.start()
                atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            # Blocks without waking while idle; under load the queue fills while a batch is
            # written, so batches grow with the load (one transaction each).
            self._write_batch(self._queue.get())

    def _write_batch(self, first: IssuedCard | None = None) -> bool:
        with self._write_lock:
            batch = [first] if first is not None else []
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not batch:
                return False
            try:
                self._store.add_cards(batch)
            except Exception as error:  # the database is down: the hook answered; log, go on
                logs.event("cards_not_recorded", logging.ERROR, reason=type(error).__name__,
                           cards=len(batch))
                self._on_drop(len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()
            return True
