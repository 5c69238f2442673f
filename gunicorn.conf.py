"""gunicorn settings read by the Procfile's web: line (`--config gunicorn.conf.py`).

Runs in the master process, before any worker is forked:
- Prometheus multiprocess mode: every worker writes its metrics under PROMETHEUS_MULTIPROC_DIR,
  and /metrics adds them up. The directory must be set before prometheus_client is imported
  (this file imports nothing of the service at module level) and emptied at each start, or the
  counters of a previous run would be summed in. Unset: a temporary directory, removed at exit.
- The state database is migrated once, here, so workers start on the newest schema and never
  race to create it.

gunicorn has no read timeout for request headers or bodies: the reverse proxy in
deploy/nginx.conf is required in production to bound slow clients in time. What gunicorn can
bound directly is the size of what a client may send before the app sees it.
"""

import atexit
import os
import shutil
import tempfile

_own_metrics_dir = None
_master_pid = os.getpid()  # this file is read by the master, before any fork
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(_metrics_dir, exist_ok=True)
    for _name in os.listdir(_metrics_dir):
        if _name.endswith(".db"):
            os.remove(os.path.join(_metrics_dir, _name))
else:
    _own_metrics_dir = tempfile.mkdtemp(prefix="cds-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir


def _remove_own_metrics_dir():
    """At the master's exit, also when start-up failed (workers inherit this handler: not theirs)."""
    if _own_metrics_dir and os.getpid() == _master_pid:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)


atexit.register(_remove_own_metrics_dir)

limit_request_line = 8190  # bytes of the request line
limit_request_fields = 64  # header fields
limit_request_field_size = 8190  # bytes per header field
keepalive = 5  # seconds an idle kept-alive connection is held


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
    _remove_own_metrics_dir()


# Garbage-collection tuning of the workers (cds_service/serving.py, measured in bench/):
# imported when called, so the service is not loaded here before the metrics directory is set.
def post_worker_init(worker):
    from cds_service import serving

    serving.post_worker_init(worker)


def post_request(worker, req, environ, resp):
    from cds_service import serving

    serving.post_request(worker, req, environ, resp)
