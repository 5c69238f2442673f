"""Worker garbage-collection settings, called by the hooks of gunicorn.conf.py (the Procfile's config).

Garbage collection, measured with bench/ (figures in bench/README.md): a hook call allocates
~20 000 container objects (the parsed prefetch) and most are freed by reference counting, but
with CPython's default thresholds (700, 10, 10) they trigger ~7 young collections per call, and
every ~20 calls a full collection walks the whole heap of a loaded worker (~70 000 objects:
modules, the fhir.resources models, compiled schemas) — the p99 tail even at one connection.

- After the app is loaded in a worker (and once more after its first hook call, which imports
  the models the cards use lazily) everything alive is moved to the permanent generation
  (`gc.freeze()`): collections no longer walk it. It is never garbage: it lives as long as the
  worker.
- The young-generation threshold is raised so a whole call usually fits before a collection;
  cyclic garbage is still collected, only less often (bounded by the threshold: a few MB).

Nothing here changes what the service answers. Tests and `cds-service` do not load this
module; the app factory stays free of process-wide settings.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # gunicorn's types, for the hooks' signatures only
    from gunicorn.http import Request
    from gunicorn.http.wsgi import Response
    from gunicorn.workers.base import Worker

GEN0_THRESHOLD = 50_000  # young objects before a collection (CPython default: 700)

_frozen_after_first_hook = False


def _freeze() -> None:
    gc.collect()
    gc.freeze()


def post_worker_init(worker: Worker) -> None:  # gunicorn server hook: the app is loaded in this worker
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
    _freeze()


def post_request(worker: Worker, req: Request, environ: dict[str, Any], resp: Response) -> None:  # gunicorn server hook
    global _frozen_after_first_hook
    if not _frozen_after_first_hook and req.method == "POST":
        _frozen_after_first_hook = True
        _freeze()
