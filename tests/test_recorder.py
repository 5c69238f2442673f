"""The background card recorder: bounded, never blocks the hook, counts what it could not write."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from cds_service.store import IssuedCard, recorder
from cds_service.store.recorder import CardRecorder

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def card(n: int) -> IssuedCard:
    return IssuedCard(f"card-{n}", "svc", "mg-severity", "critical", NOW, False)


class SlowStore:
    """Holds the first write until released, as a database under a long lock would."""

    def __init__(self, fail: bool = False):
        self.written: list[str] = []
        self.release = threading.Event()
        self.writing = threading.Event()
        self.fail = fail

    def add_cards(self, cards):
        self.writing.set()
        self.release.wait(10)
        if self.fail:
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is down"))
        self.written += [c.card_uuid for c in cards]


def test_a_full_queue_drops_and_counts_instead_of_blocking(monkeypatch):
    monkeypatch.setattr(recorder, "MAX_QUEUED", 5)
    store, dropped = SlowStore(), []
    cards = CardRecorder(store, on_drop=dropped.append)
    cards.record([card(0)])
    assert store.writing.wait(10)  # the thread is stuck writing card 0
    cards.record([card(n) for n in range(1, 9)])  # 5 fit in the queue, 3 do not
    assert dropped == [3]
    store.release.set()
    cards.flush()
    assert store.written == [f"card-{n}" for n in range(6)]


def test_a_database_error_is_counted_and_the_recorder_goes_on(monkeypatch):
    store, dropped = SlowStore(fail=True), []
    store.release.set()
    cards = CardRecorder(store, on_drop=dropped.append)
    cards.record([card(1), card(2)])
    cards.flush()
    assert sum(dropped) == 2
    store.fail = False
    cards.record([card(3)])
    cards.flush()
    assert store.written == ["card-3"]


@pytest.mark.parametrize("count", [1, 1200])
def test_flush_writes_everything_queued(tmp_path, count):
    from cds_service.store import Store

    store = Store(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    store.migrate()
    cards = CardRecorder(store)
    cards.record([card(n) for n in range(count)])
    cards.flush()
    with store.engine.connect() as db:
        assert db.execute(sa.text("SELECT count(*) FROM cards_issued")).scalar() == count
