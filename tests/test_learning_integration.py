"""The learning loop on the real server (the Procfile's gunicorn, 2 workers) over loopback, on
SQLite and on PostgreSQL: cards, a silent card and feedback survive a restart and show up in
/analytics.json, in `cds-service report` and (counted across workers) in /metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from .procfile import ROOT, free_port, procfile_server
from .test_integration import SERVICES
from .test_store import severe_with_ppi, unmonitored

ADMIN = {"Authorization": "Bearer admin-token-for-the-integration-test"}
HOOK = SERVICES["patient-view"]


@contextmanager
def learning_server(env: dict):
    """The Procfile's server with its own metrics directory; no worker may end in a traceback."""
    with procfile_server(env, inherit_metrics_dir=False) as (base, _, log_path):
        yield base
    log = log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


def analytics(base: str) -> dict:
    response = requests.get(f"{base}/analytics.json", headers=ADMIN, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def by_kind(figures: dict) -> dict:
    return {row["kind"]: row for row in figures["kinds"]}


def wait_for_issued(base: str, kind: str, figure: str, count: int, *also: tuple[str, str, int]) -> dict:
    """Cards are written by each worker's background thread: wait (bounded) until they are
    (`kind`'s `figure` reaches `count`, and each (kind, figure, count) of `also`)."""
    deadline = time.monotonic() + 20
    while True:
        figures = analytics(base)
        rows = by_kind(figures)
        if all(rows[k][f] >= n for k, f, n in ((kind, figure, count), *also)) or time.monotonic() > deadline:
            return figures
        time.sleep(0.2)


def metric(base: str, name: str, **labels) -> float:
    text = requests.get(f"{base}/metrics", headers=ADMIN, timeout=10).text
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_the_loop_survives_a_restart(database_url, tmp_path):
    # Both runs share one metrics directory: gunicorn.conf.py must empty it at start, or the
    # second run would add the first run's counters to its own.
    env = {"CDS_DATABASE_URL": database_url, "CDS_SILENT_KINDS": "mg-monitoring",
           "CDS_ADMIN_TOKEN": ADMIN["Authorization"].split()[1],
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    calls = 6
    with learning_server(env) as base:
        for _ in range(calls):  # spread over both workers
            response = requests.post(f"{base}/cds-services/{HOOK}", json=severe_with_ppi(), timeout=10)
            assert response.status_code == 200
        severity, contributing = response.json()["cards"]
        assert requests.post(f"{base}/cds-services/{HOOK}", json=unmonitored(), timeout=10).json()["cards"] == []
        feedback = {"feedback": [
            {"card": severity["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-25T12:01:00Z",
             "acceptedSuggestions": [{"id": severity["suggestions"][0]["uuid"]}]},
            {"card": contributing["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-25T12:02:00Z",
             "overrideReason": {"reason": {"code": "already-addressed",
                                           "system": "urn:tacrolimus-magnesium-cds:override-reason"},
                                "userComment": "discussed with the patient"}}]}
        for _ in range(2):  # a retry is stored once
            assert requests.post(f"{base}/cds-services/{HOOK}/feedback", json=feedback, timeout=10).status_code == 200
        # Metrics are summed over the two workers (multiprocess mode).
        assert metric(base, "cds_hook_calls_total", service=HOOK, status="200") == calls + 1
        assert metric(base, "cds_cards_total", kind="mg-monitoring", silent="true") == 1
        assert metric(base, "cds_feedback_items_total", outcome="overridden") == 2
        assert metric(base, "cds_hook_duration_seconds_count", service=HOOK) == calls + 1
        assert requests.get(f"{base}/metrics", timeout=10).status_code == 401
        # Every card of this run written, whichever worker issued it (the silent one too).
        before = by_kind(wait_for_issued(base, "mg-severity", "issued", calls, ("mg-monitoring", "silent", 1)))

    with learning_server(env) as base:
        after = by_kind(analytics(base))
        assert after == before
        assert after["mg-severity"]["issued"] == calls and after["mg-severity"]["accepted"] == 1
        assert after["mg-contributing"]["overridden"] == 1
        assert after["mg-contributing"]["overrideReasons"] == {"already-addressed": 1}
        assert after["mg-monitoring"]["silent"] == 1 and after["mg-monitoring"]["issued"] == 0
        page = requests.get(f"{base}/analytics", headers=ADMIN, timeout=10)
        assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
        row = page.text.split('<tr data-kind="mg-severity">', 1)[1].split("</tr>", 1)[0]
        cells = [cell.rsplit(">", 1)[1].strip() for cell in row.split("</td>")[:4]]
        assert cells == [str(calls), "0", "1", "0"]  # issued, silent, accepted, overridden
        # A new run starts its counters from zero (the multiprocess directory was emptied).
        assert metric(base, "cds_hook_calls_total", service=HOOK, status="200") == 0

    report = subprocess.run([sys.executable, "-m", "cds_service.cli", "report", "--format", "json"],
                            env={**os.environ, "CDS_DATABASE_URL": database_url},
                            capture_output=True, text=True, timeout=60)
    assert report.returncode == 0, report.stderr
    assert by_kind(json.loads(report.stdout)) == after


def test_the_server_refuses_to_start_on_an_unusable_database():
    command = next(line.split(":", 1)[1].strip() for line in (ROOT / "Procfile").read_text().splitlines()
                   if line.startswith("web:"))
    env = {**os.environ, "PORT": str(free_port()), "CDS_DATABASE_URL": "postgresql+psycopg://cds@127.0.0.1:1/cds",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(["bash", "-c", f"exec {command}"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "Error: cannot open the state database" in result.stderr
    assert "Traceback" not in result.stderr
