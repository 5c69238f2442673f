"""The Procfile's web: command (gunicorn) started on a free loopback port, for tests that need
the real server: one way to start it, wait for it, read its log and stop it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen, timeout: float) -> None:
    """Terminate a server started by a test; kill it if it has not exited within `timeout`."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def web_command() -> str:
    return next(line.split(":", 1)[1].strip() for line in (ROOT / "Procfile").read_text().splitlines()
                if line.startswith("web:"))


@contextmanager
def procfile_server(env: Mapping[str, str] | None = None, *, port: int | None = None,
                    inherit_metrics_dir: bool = True) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """Yields (base URL, the gunicorn master process, its stderr log file) once /healthz answers.

    `env` is added to this process's environment; without `inherit_metrics_dir` the server makes
    its own Prometheus directory. Stopped with SIGTERM (workers write what they still hold)."""
    port = port or free_port()
    base_env = dict(os.environ)
    if not inherit_metrics_dir:
        base_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    full_env = {**base_env, "PORT": str(port), "WEB_CONCURRENCY": "2", **(env or {}),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log_path = Path(tempfile.mkdtemp(prefix="cds-procfile-")) / "stderr.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(["bash", "-c", f"exec {web_command()}"], cwd=ROOT, env=full_env,
                                   stdout=subprocess.DEVNULL, stderr=log)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60  # a fresh checkout compiles its bytecode on first start
        try:
            while True:
                try:
                    if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("gunicorn did not start: " + log_path.read_text()[-3000:])
                time.sleep(0.1)
            yield base, process, log_path
        finally:
            stop(process, timeout=30)
