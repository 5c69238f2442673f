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


def test_procfile_loads_the_config_that_calls_the_gc_hooks():
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    assert "--config gunicorn.conf.py" in web


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


def test_gunicorn_config_hooks_call_the_gc_settings(restore_gc, monkeypatch, tmp_path):
    """gunicorn.conf.py's hooks reach cds_service.serving (imported when called)."""
    import runpy

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # the config would make its own

    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    calls = []
    monkeypatch.setattr(serving, "post_worker_init", lambda worker: calls.append(("init", worker)))
    monkeypatch.setattr(serving, "post_request", lambda *args: calls.append(("request", args[1].method)))
    hooks["post_worker_init"]("w")
    hooks["post_request"](None, SimpleNamespace(method="POST"), {}, None)
    assert calls == [("init", "w"), ("request", "POST")]
