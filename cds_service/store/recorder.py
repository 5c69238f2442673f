"""Cards issued are written by a background thread in batches, so a hook call only appends to a
bounded in-memory queue and never waits for the database."""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence

from .. import logs
from . import IssuedCard, Store

MAX_QUEUED = 10000  # cards waiting; beyond this a card goes unrecorded (counted), the hook is not slowed
BATCH = 500
# How long the thread lets cards gather after the first one before writing them (sooner when a
# batch is full): one transaction for many hooks instead of one per hook. Short enough that
# feedback sent to another worker moments later still finds the card (flush() covers this one).
LINGER_SECONDS = 0.25


class CardRecorder:
    """A bounded queue of cards drained by one daemon thread per process (started on first use,
    so in the gunicorn worker, after the fork)."""

    def __init__(self, store: Store, *, on_drop: Callable[[int], None] = lambda n: None):
        self._store = store
        self._pending: deque[IssuedCard] = deque()
        self._on_drop = on_drop
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._queue_lock = threading.Lock()  # keeps the bound exact with several hook threads
        self._write_lock = threading.Lock()  # one batch at a time (flush() and the thread)
        self._has_cards = threading.Event()  # the thread sleeps on this while idle
        self._batch_full = threading.Event()  # ends the linger early

    def record(self, cards: Sequence[IssuedCard]) -> None:
        """Queue the cards without waiting: one lock, no database, no per-card wake-up."""
        if self._thread is None or not self._thread.is_alive():
            self._start_thread()
        pending = self._pending
        with self._queue_lock:
            was_empty = not pending
            room = MAX_QUEUED - len(pending)
            if len(cards) <= room:
                pending.extend(cards)
                dropped = 0
            else:
                pending.extend(cards[:max(room, 0)])
                dropped = len(cards) - max(room, 0)
            full = len(pending) >= BATCH
        if was_empty:
            self._has_cards.set()
        if full:
            self._batch_full.set()
        if dropped:
            self._on_drop(dropped)
            logs.event("cards_not_recorded", logging.WARNING, reason="queue full", cards=dropped)

    def flush(self) -> None:
        """Write every queued card now, after a batch being written (feedback, tests, exit)."""
        while self._write_batch():
            pass

    def _start_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="card-recorder", daemon=True)
                self._thread.start()
                atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            self._has_cards.wait()  # blocks without waking while idle
            self._batch_full.wait(LINGER_SECONDS)
            # Cleared before draining: a card queued from now on sets them again.
            self._has_cards.clear()
            self._batch_full.clear()
            while self._write_batch():
                pass

    def _write_batch(self) -> bool:
        with self._write_lock:
            with self._queue_lock:
                pending = self._pending
                if len(pending) <= BATCH:
                    batch = list(pending)
                    pending.clear()
                else:
                    batch = [pending.popleft() for _ in range(BATCH)]
            if not batch:
                return False
            try:
                self._store.add_cards(batch)
            except Exception as error:  # the database is down: the hook answered; log, go on
                logs.event("cards_not_recorded", logging.ERROR, reason=type(error).__name__,
                           cards=len(batch))
                self._on_drop(len(batch))
            return True
