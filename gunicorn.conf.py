"""gunicorn settings read by the Procfile's web: line (`--config gunicorn.conf.py`).

Runs in the master process, before any worker is forked:
- Prometheus multiprocess mode: every worker writes its metrics under PROMETHEUS_MULTIPROC_DIR,
  and /metrics adds them up. The directory must be set before prometheus_client is imported
  (this file imports nothing of the service at module level) and emptied at each start, or the
  counters of a previous run would be summed in. Unset: a temporary directory, removed at exit.
- The state database is migrated once, here, so workers start on the newest schema.
"""

import os
import shutil
import tempfile

_own_metrics_dir = None
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(_metrics_dir, exist_ok=True)
    for _name in os.listdir(_metrics_dir):
        if _name.endswith(".db"):
            os.remove(os.path.join(_metrics_dir, _name))
else:
    _own_metrics_dir = tempfile.mkdtemp(prefix="cds-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir


def on_starting(server):
    from cds_service.config import Settings
    from cds_service.store import Store, database_url

    try:
        settings = Settings.from_env()
        store = Store(database_url(settings.database_url, settings.state_db))
        try:
            store.migrate()
        finally:
            store.dispose()
    except ValueError as error:  # bad settings, unusable database: gunicorn prints "Error: ..." and exits 1
        raise RuntimeError(str(error)) from None


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)
