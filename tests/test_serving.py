"""The gunicorn settings module the Procfile loads (GC tuning; no effect on answers)."""

from __future__ import annotations

import gc
from pathlib import Path
from types import SimpleNamespace

import pytest

from cds_service import serving

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def restore_gc():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_procfile_loads_the_settings_module():
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    assert "--config python:cds_service.serving" in web


def test_worker_init_freezes_the_loaded_heap_and_raises_the_young_threshold(restore_gc):
    serving.post_worker_init(worker=None)
    assert gc.get_freeze_count() > 1000
    assert gc.get_threshold()[0] == serving.GEN0_THRESHOLD


def test_first_hook_call_freezes_once_more_and_only_once(restore_gc, monkeypatch):
    calls = []
    monkeypatch.setattr(serving, "_frozen_after_first_hook", False)
    monkeypatch.setattr(serving, "_freeze", lambda: calls.append(1))
    serving.post_request(None, SimpleNamespace(method="GET"), {}, None)
    assert calls == []
    for _ in range(3):
        serving.post_request(None, SimpleNamespace(method="POST"), {}, None)
    assert calls == [1]


def test_gunicorn_reads_the_hooks_from_the_module():
    from gunicorn.config import Config

    from gunicorn.app.base import Application

    class App(Application):
        def init(self, parser, opts, args):
            return None

        def load(self):
            return None

        def load_config(self):
            self.cfg = Config()
            for key, value in self.get_config_from_module_name("cds_service.serving").items():
                if key in self.cfg.settings:
                    self.cfg.set(key.lower(), value)

    cfg = App().cfg
    assert cfg.post_worker_init is serving.post_worker_init
    assert cfg.post_request is serving.post_request
