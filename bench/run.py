"""Benchmark of the CDS Hooks service as deployed (the Procfile's `web:` line), over loopback.

    python -m bench.run                      # everything: about 5 minutes
    python -m bench.run --only load --connections 4 --rounds 5
    python -m bench.run --only tail,curve,memory,fallback
    python -m bench.run --only store --rounds 5          # hook with and without the state store
    python -m bench.run --workers 3 --threads 2          # WEB_CONCURRENCY / GUNICORN_THREADS
    python -m bench.run --gunicorn-args "--worker-class sync"

Two servers run side by side with the same command line: the service, and the floor
(bench/floor_app.py: a Flask handler that only parses the body with orjson and answers a fixed
card). Every figure is reported as a ratio to a baseline measured in the same run, in
alternating rounds, because absolute figures on a shared machine move by 2-3× between runs:

- load (wrk, `--connections`, default 1 and 4): discovery, the hook with the 267 KiB two-year
  record, the hook with the 84 KiB plain record (same resources, no EHR decoration) and the
  floor with the 267 KiB body, alternated `--rounds` times; p50/p99, req/s and server CPU per
  request (utime+stime of every process of the server, from /proc, before/after each wrk run,
  divided by the requests it completed). Ratios: hook CPU ÷ floor CPU (267 KiB), hook p50 ÷
  discovery p50 (84 KiB), and hook p99 ÷ p50 at one connection.
- curve: server CPU per request from 10 to 5000 resources (plain record), per resource and
  marginal per resource (above the 10-resource request).
- memory: RSS of each worker every 1000 hooks over `--rss-hooks` (10k).
- fallback: (a) one hook with no prefetch against a loopback FHIR stub answering after 100 ms,
  vs. the slowest single query; (b) 8 concurrent such hooks with wrk: req/s and p99.
- store: the cost of recording every card issued (issue 12): the hook on the service and on a
  second service with CDS_RECORD_CARDS=false, side by side, alternating; p50 and CPU ratios.

Each service gets its own SQLite state store in the run's temporary directory (unless
`--env CDS_DATABASE_URL=...` names one), never the checkout's.

Needs `wrk` on PATH (Debian: apt-get install wrk). Loopback only; stops the servers at the end.
Self-contained: imports nothing from tests/ (the FHIR stub and the record routing come from
cds_service.testing); the service itself is reached only over HTTP.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench import record
from cds_service.testing.fhir_stub import FhirStub

ROOT = Path(__file__).resolve().parent.parent
HOOK_PATH = "/cds-services/tacrolimus-magnesium-patient-view"
DISCOVERY_PATH = "/cds-services"
SERVICE_APP = "'cds_service:create_app()'"
FLOOR_APP = "'bench.floor_app:create_app()'"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SECTIONS = ("load", "curve", "memory", "fallback", "store", "memo")

# Issue 13's targets (ratios measured in the same run; issue 5's start-up target kept).
TARGETS = {"hook_cpu_over_floor_cpu": 1.5, "hook84_p50_over_discovery_p50": 4.0,
           "hooknew_cpu_over_floor_cpu": 1.5, "hook84new_p50_over_discovery_p50": 4.0,
           "p99_over_p50_one_connection": 3.0, "fallback_concurrent_rps": 50.0,
           "fallback_concurrent_p99_ms": 300.0, "fallback_first_rps": 50.0, "fallback_first_p99_ms": 300.0,
           "fallback_over_slowest_query": 1.2,
           "startup_s": 2.0}

# Patients whose copies of the record the 'new' endpoints send in turn: more records than the
# resource memo holds (CDS_RESOURCE_MEMO_SIZE 5000 resources; the record has 227 in Bundles).
NEW_RECORDS = 40

LUA_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""

# ------------------------------------------------------------------------------ the server


def procfile_command(procfile: Path) -> str:
    for line in procfile.read_text().splitlines():
        if line.startswith("web:"):
            return line[len("web:"):].strip()
    raise SystemExit(f"no web: line in {procfile}")


def floor_command(command: str) -> str:
    """The same command line serving the floor app instead of the service."""
    if SERVICE_APP not in command:
        raise SystemExit(f"cannot find {SERVICE_APP} in the web command to swap in the floor app")
    return command.replace(SERVICE_APP, FLOOR_APP)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on; comm may hold spaces


class Server:
    """A web command under bash, with PORT set, in its own process group (session)."""

    def __init__(self, name: str, command: str, port: int, env_extra: dict[str, str],
                 log_path: Path, cwd: Path = ROOT):
        self.name, self.command, self.port, self.cwd = name, command, port, cwd
        env = dict(os.environ)
        env.update(env_extra)
        env["PORT"] = str(port)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("CDS_LOG_LEVEL", "INFO")
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self, timeout: float = 30.0) -> float:
        """Start; return seconds until discovery answered 200."""
        self._log = open(self.log_path, "wb")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(["bash", "-c", self.command], cwd=self.cwd, env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        while time.perf_counter() - self.started_at < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.proc.returncode}; log: {self.log_path}")
            try:
                status, _ = request("GET", self.port, DISCOVERY_PATH, timeout=1.0)
                if status == 200:
                    return time.perf_counter() - self.started_at
            except OSError:
                pass
            time.sleep(0.01)
        self.stop()
        raise SystemExit(f"{self.name}: discovery did not answer within {timeout}s; log: {self.log_path}")

    def processes(self) -> dict[int, list[str]]:
        """Every live process of the server's session (bash or gunicorn master, workers)."""
        found = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                fields = _stat_fields(int(entry))
                if fields is not None and fields[3] == str(self.proc.pid):  # field 6: session
                    found[int(entry)] = fields
        return found

    def cpu_ticks(self) -> dict[int, int]:
        """utime + stime per process, in clock ticks."""
        return {pid: int(f[11]) + int(f[12]) for pid, f in self.processes().items()}

    def worker_rss(self) -> dict[int, int]:
        """RSS in bytes of each worker (a process whose parent is also in the session)."""
        procs = self.processes()
        return {pid: int(f[21]) * PAGE_SIZE for pid, f in procs.items() if int(f[1]) in procs}

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            self._log.close()
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass
        finally:
            self._log.close()


def cpu_seconds(before: dict[int, int], after: dict[int, int]) -> float:
    return sum(t - before.get(pid, 0) for pid, t in after.items()) / CLOCK_TICKS


def request(method: str, port: int, path: str, body: bytes | None = None,
            timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# ------------------------------------------------------------------------------ wrk


def wrk(url: str, *, connections: int, threads: int, seconds: float, body_file: Path | list[Path] | None,
        workdir: Path, server: Server | None = None) -> dict:
    """One wrk run; with `server`, its CPU seconds per completed request too. With a list of
    body files, each request sends the next one in turn."""
    script = workdir / f"wrk-{'post' if body_file else 'get'}-{os.getpid()}.lua"
    if isinstance(body_file, list):
        lua = ("local bodies = {}\n"
               + "".join(f'do local f = assert(io.open("{b}", "rb")); bodies[#bodies + 1] = f:read("*a"); '
                         "f:close() end\n" for b in body_file)
               + 'local i = 0\nwrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
               "request = function()\n  i = i % #bodies + 1\n"
               "  return wrk.format(nil, nil, nil, bodies[i])\nend\n")
    elif body_file is not None:
        lua = (f'local f = assert(io.open("{body_file}", "rb"))\n'
               'wrk.body = f:read("*a")\nf:close()\n'
               'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
    else:
        lua = 'wrk.method = "GET"\n'
    script.write_text(lua + LUA_DONE)
    cmd = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--timeout", "10s", "-s", str(script), url]
    before = server.cpu_ticks() if server else None
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    after = server.cpu_ticks() if server else None
    match = re.search(r"^BENCH_JSON (.*)$", out.stdout, re.M)
    if out.returncode != 0 or match is None:
        raise SystemExit(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    result = json.loads(match.group(1))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "timeout"))
    result["non_2xx"] = result["status"]
    if server is not None:
        result["cpu_s"] = cpu_seconds(before, after)
        result["cpu_ms_per_request"] = 1000 * result["cpu_s"] / max(1, result["requests"])
    return result


# ------------------------------------------------------------------------------ load


def measure_load(endpoints: list[tuple[str, Server, str, Path | list[Path] | None]], *, connections: int,
                 threads: int, seconds: float, warmup: float, rounds: int, workdir: Path) -> dict:
    """Each endpoint in turn, `rounds` times alternating (the machine's noise hits all of
    them); each figure is the median over rounds, errors are summed."""
    per_round: list[dict] = []
    for _ in range(rounds):
        one = {}
        for name, server, path, body in endpoints:
            url = f"http://127.0.0.1:{server.port}{path}"
            if warmup > 0:
                wrk(url, connections=connections, threads=threads, seconds=warmup,
                    body_file=body, workdir=workdir)
            one[name] = wrk(url, connections=connections, threads=threads, seconds=seconds,
                            body_file=body, workdir=workdir, server=server)
        one.update(load_ratios(one))
        per_round.append(one)
    results: dict = {"rounds": per_round}
    for name, *_ in endpoints:
        merged = {k: statistics.median(r[name][k] for r in per_round)
                  for k in ("p50_us", "p90_us", "p99_us", "rps", "cpu_ms_per_request")}
        for k in ("requests", "errors", "non_2xx", "connect", "read", "write", "timeout"):
            merged[k] = sum(r[name][k] for r in per_round)
        results[name] = merged
    for k in per_round[0]:
        if k.startswith("ratio_"):
            results[k] = statistics.median(r[k] for r in per_round)
    return results


def load_ratios(one: dict) -> dict:
    """The round's ratios, each against a baseline measured in the same round."""
    out = {}
    if "hook" in one and "base" in one:
        out["ratio_cpu_hook_base"] = one["hook"]["cpu_ms_per_request"] / max(1e-9, one["base"]["cpu_ms_per_request"])
        out["ratio_p50_hook_base"] = one["hook"]["p50_us"] / one["base"]["p50_us"]
        out["ratio_p99_hook_base"] = one["hook"]["p99_us"] / one["base"]["p99_us"]
    if "hooknew" in one and "basenew" in one:
        out["ratio_cpu_hooknew_basenew"] = (one["hooknew"]["cpu_ms_per_request"]
                                            / max(1e-9, one["basenew"]["cpu_ms_per_request"]))
        out["ratio_p50_hooknew_basenew"] = one["hooknew"]["p50_us"] / one["basenew"]["p50_us"]
    for name in ("hook", "hooknew"):
        if name in one and "floor" in one:
            out[f"ratio_cpu_{name}_floor"] = (one[name]["cpu_ms_per_request"]
                                              / max(1e-9, one["floor"]["cpu_ms_per_request"]))
            out[f"ratio_p50_{name}_floor"] = one[name]["p50_us"] / one["floor"]["p50_us"]
    if "discovery" in one:
        for name in ("hook", "hook84", "hook84new", "floor"):
            if name in one:
                out[f"ratio_p50_{name}_discovery"] = one[name]["p50_us"] / one["discovery"]["p50_us"]
                out[f"ratio_cpu_{name}_discovery"] = (one[name]["cpu_ms_per_request"]
                                                      / max(1e-9, one["discovery"]["cpu_ms_per_request"]))
    for name in ("hook", "hook84", "hooknew", "hook84new", "base", "floor"):
        if name in one:
            out[f"ratio_p99_p50_{name}"] = one[name]["p99_us"] / one[name]["p50_us"]
    return out


# ------------------------------------------------------------------------------ curve, memory


def measure_curve(server: Server, sizes: list[int], *, seconds: float, warmup: float,
                  workdir: Path) -> list[dict]:
    """Server CPU per request at each record size (plain record, one connection)."""
    points = []
    for n in sizes:
        resources = record.sized_record(n)
        body = json.dumps(record.hook_request(prefetch=record.prefetch_for(resources, decorated=False)),
                          separators=(",", ":")).encode()
        status, answer = request("POST", server.port, HOOK_PATH, body)
        if status != 200:
            raise SystemExit(f"hook answered {status} to the {n}-resource record: {answer[:300]!r}")
        body_file = workdir / f"curve-{n}.json"
        body_file.write_bytes(body)
        url = f"http://127.0.0.1:{server.port}{HOOK_PATH}"
        if warmup > 0:
            wrk(url, connections=1, threads=1, seconds=warmup, body_file=body_file, workdir=workdir)
        r = wrk(url, connections=1, threads=1, seconds=seconds, body_file=body_file,
                workdir=workdir, server=server)
        points.append({"resources": len(resources), "body_kib": len(body) / 1024,
                       "cpu_ms": r["cpu_ms_per_request"], "p50_us": r["p50_us"],
                       "p99_us": r["p99_us"], "requests": r["requests"],
                       "errors": r["errors"] + r["non_2xx"]})
        body_file.unlink()
    first = points[0]
    for p in points:
        p["us_per_resource"] = 1000 * p["cpu_ms"] / p["resources"]
        extra = p["resources"] - first["resources"]
        p["marginal_us_per_resource"] = (1000 * (p["cpu_ms"] - first["cpu_ms"]) / extra) if extra else None
    return points


def measure_memory(server: Server, body_file: Path, *, hooks: int, step: int, connections: int,
                   workdir: Path) -> dict:
    """Worker RSS before and after about every `step` hooks (wrk runs of step ÷ last req/s
    seconds: wrk cannot stop on a request count without waiting out its duration)."""
    url = f"http://127.0.0.1:{server.port}{HOOK_PATH}"
    samples = [{"hooks": 0, "rss": server.worker_rss()}]
    done, errors, seconds = 0, 0, 2.0
    while done < hooks:
        r = wrk(url, connections=connections, threads=1, seconds=seconds, body_file=body_file,
                workdir=workdir)
        done += r["requests"]
        errors += r["errors"] + r["non_2xx"]
        samples.append({"hooks": done, "rss": server.worker_rss()})
        seconds = max(1.0, min(30.0, min(step, hooks - done) / max(1.0, r["rps"])))
    return {"samples": samples, "errors": errors}


def measure_store_cost(with_store: Server, without_store: Server, body_file: Path, *,
                       connections: int, threads: int, seconds: float, warmup: float,
                       rounds: int, workdir: Path) -> dict:
    """The hook on two servers side by side, one recording every card issued (CDS_RECORD_CARDS
    on, the default) and one not, alternating `rounds` times (issue 12); the ratios are the
    medians of the rounds' ratios."""
    results = measure_load([("with_store", with_store, HOOK_PATH, body_file),
                            ("without_store", without_store, HOOK_PATH, body_file)],
                           connections=connections, threads=threads, seconds=seconds,
                           warmup=warmup, rounds=rounds, workdir=workdir)
    for one in results["rounds"]:
        one["ratio_p50"] = one["with_store"]["p50_us"] / one["without_store"]["p50_us"]
        one["ratio_cpu"] = (one["with_store"]["cpu_ms_per_request"]
                            / max(1e-9, one["without_store"]["cpu_ms_per_request"]))
    for name in ("with_store", "without_store"):
        results[name]["errors"] += results[name]["non_2xx"]
    for k in ("ratio_p50", "ratio_cpu"):
        results[k] = statistics.median(r[k] for r in results["rounds"])
    results["connections"] = connections
    return results


# ------------------------------------------------------------------------------ fallback

_TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")


def render(template: str, context: dict) -> str | None:
    """A prefetch template with its {{context.X}} / {{userPractitionerId}} tokens filled."""
    values = {f"context.{k}": v for k, v in context.items() if isinstance(v, str)}
    user = context.get("userId", "")
    if user.startswith("Practitioner/"):
        values["userPractitionerId"] = user.partition("/")[2]
    missing = [m for m in _TOKEN.findall(template) if m not in values]
    return None if missing else _TOKEN.sub(lambda m: values[m.group(1)], template)


def timed_get(url: str) -> float:
    """One GET on a new connection, body read; seconds."""
    parts = url.split("/", 3)
    host, port = parts[2].split(":")
    started = time.perf_counter()
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/" + parts[3], headers={"Accept": "application/fhir+json"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"stub answered {response.status} to {url}")
    finally:
        conn.close()
    return time.perf_counter() - started


def measure_fallback(server: Server, resources: list[dict], delay: float, rounds: int, *,
                     concurrency: int, seconds: float, warmup: float, workdir: Path,
                     first_calls: Server | None = None) -> dict:
    """The fallback against the stub: each query alone, one hook, and `concurrency` hooks at
    once; with `first_calls` (a started service with the memo off), the concurrent run on it too."""
    status, raw = request("GET", server.port, DISCOVERY_PATH)
    service = next(s for s in json.loads(raw)["services"] if HOOK_PATH.endswith(s["id"]))
    body = record.hook_request()
    with FhirStub(resources, delay=delay, cache=True) as stub:
        queries = {key: render(t, body["context"]) for key, t in service["prefetch"].items()}
        queries = {k: q for k, q in queries.items() if q is not None}
        single: dict[str, float] = {}
        for key, query in queries.items():
            single[key] = statistics.median(timed_get(f"{stub.base_url}/{query}")
                                            for _ in range(rounds))
        slowest_key = max(single, key=single.get)
        payload = json.dumps(record.hook_request(fhir_server=stub.base_url)).encode()
        hook_times, statuses = [], []
        for _ in range(rounds + 1):  # the first call opens the FHIR connections; kept out
            started = time.perf_counter()
            status, answer = request("POST", server.port, HOOK_PATH, payload)
            hook_times.append(time.perf_counter() - started)
            statuses.append(status)
        cards = len(json.loads(answer).get("cards", [])) if status == 200 else None
        fetched = stub.requests
        # Concurrent fallback hooks: what one worker's fetch pool does under load.
        body_file = workdir / "fallback-body.json"
        body_file.write_bytes(payload)
        concurrent = first = None
        under_load = dict(concurrency=concurrency, seconds=seconds, warmup=warmup, workdir=workdir)
        if concurrency:
            concurrent = concurrent_fallback(server, stub, body_file, **under_load)
        if concurrency and first_calls is not None:
            first = concurrent_fallback(first_calls, stub, body_file, **under_load)
    hook = statistics.median(hook_times[1:])
    return {"delay_s": delay, "queries": len(queries), "single_s": single,
            "slowest_key": slowest_key, "slowest_s": single[slowest_key],
            "sum_s": sum(single.values()), "hook_s": hook, "hook_first_s": hook_times[0],
            "statuses": statuses, "cards": cards, "stub_requests": fetched,
            "ratio": hook / single[slowest_key], "concurrent": concurrent, "first_calls": first}


def concurrent_fallback(server: Server, stub: FhirStub, body_file: Path, *, concurrency: int,
                        seconds: float, warmup: float, workdir: Path) -> dict:
    """`concurrency` fallback hooks at once for `seconds` (wrk): what one worker's fetch pool
    does under load, and the queries that reached the stub per hook."""
    url = f"http://127.0.0.1:{server.port}{HOOK_PATH}"
    if warmup > 0:
        wrk(url, connections=concurrency, threads=1, seconds=warmup, body_file=body_file, workdir=workdir)
    asked_before = stub.requests
    result = wrk(url, connections=concurrency, threads=1, seconds=seconds, body_file=body_file,
                 workdir=workdir, server=server)
    result["connections"] = concurrency
    # A fetch the service sheds (pool or server limit) never reaches the stub, and the hook
    # still answers 200 from what it has: fewer queries per hook than a lone hook sends means
    # answers under load were incomplete. (Hooks still running when wrk stops add a few
    # queries: slightly above is expected.)
    result["queries_per_hook"] = (stub.requests - asked_before) / max(1, result["requests"])
    return result


def all_queries_arrived(concurrent: dict, queries: int) -> bool:
    """No fetch was shed under load (see concurrent_fallback)."""
    return concurrent["queries_per_hook"] >= queries * 0.995


# ------------------------------------------------------------------------------ main


def fmt_ms(us: float) -> str:
    return f"{us / 1000:.2f} ms"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def print_load(r: dict, conns: int, args) -> None:
    print(f"\nwrk, {conns} connection{'s' if conns > 1 else ''}, {args.rounds} rounds of "
          f"{args.duration:g} s per endpoint (each after {args.warmup:g} s warm-up), alternating; "
          "medians over rounds, errors summed:")
    print(f"  {'endpoint':<22} {'p50':>9} {'p90':>9} {'p99':>9} {'req/s':>7} {'CPU/req':>10} "
          f"{'requests':>9} {'errors':>7}")
    labels = {"discovery": "discovery", "hook": "hook 267 KiB", "hook84": "hook 84 KiB plain",
              "hooknew": "hook 267 KiB, new", "hook84new": "hook 84 KiB, new",
              "floor": "floor 267 KiB", "base": "baseline hook 267 KiB",
              "basenew": "baseline 267 KiB, new"}
    for name, label in labels.items():
        if name in r:
            x = r[name]
            print(f"  {label:<22} {fmt_ms(x['p50_us']):>9} {fmt_ms(x['p90_us']):>9} "
                  f"{fmt_ms(x['p99_us']):>9} {x['rps']:>7.0f} {x['cpu_ms_per_request']:>7.2f} ms "
                  f"{x['requests']:>9} {x['non_2xx'] + x['errors']:>7}")

    def per_round(key: str) -> str:
        return ", ".join(f"{one[key]:.2f}" for one in r["rounds"])

    print("  ratios (median; per round):")
    for key, label in (("ratio_cpu_hook_floor", "CPU hook ÷ floor, 267 KiB"),
                       ("ratio_p50_hook_floor", "p50 hook ÷ floor, 267 KiB"),
                       ("ratio_cpu_hook84_discovery", "CPU hook 84 KiB ÷ discovery"),
                       ("ratio_p50_hook84_discovery", "p50 hook 84 KiB ÷ discovery"),
                       ("ratio_p50_hook_discovery", "p50 hook 267 KiB ÷ discovery"),
                       ("ratio_cpu_hooknew_floor", "CPU hook ÷ floor, 267 KiB, new"),
                       ("ratio_p50_hooknew_floor", "p50 hook ÷ floor, 267 KiB, new"),
                       ("ratio_cpu_hook84new_discovery", "CPU hook 84 KiB ÷ discovery, new"),
                       ("ratio_p50_hook84new_discovery", "p50 hook 84 KiB ÷ discovery, new"),
                       ("ratio_p99_p50_hooknew", "p99 ÷ p50, hook 267 KiB, new"),
                       ("ratio_p99_p50_hook", "p99 ÷ p50, hook 267 KiB"),
                       ("ratio_p99_p50_hook84", "p99 ÷ p50, hook 84 KiB"),
                       ("ratio_p99_p50_base", "p99 ÷ p50, baseline 267 KiB"),
                       ("ratio_p99_p50_floor", "p99 ÷ p50, floor (machine noise)"),
                       ("ratio_cpu_hook_base", "CPU hook ÷ baseline, 267 KiB"),
                       ("ratio_p50_hook_base", "p50 hook ÷ baseline, 267 KiB"),
                       ("ratio_p99_hook_base", "p99 hook ÷ baseline, 267 KiB"),
                       ("ratio_cpu_hooknew_basenew", "CPU hook ÷ baseline, new"),
                       ("ratio_p50_hooknew_basenew", "p50 hook ÷ baseline, new")):
        if key in r:
            print(f"    {label:<32} ×{r[key]:6.2f}   ({per_round(key)})")


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - option handling, then one scenario after another
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(SECTIONS),
                   help=f"comma-separated sections to run, of {', '.join(SECTIONS)} (all)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk measurement (5)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of wrk warm-up before each (1)")
    p.add_argument("--rounds", type=int, default=3,
                   help="load measurements alternated this many times; medians (3)")
    p.add_argument("--connections", default="1,4", help="comma-separated connection counts (1,4)")
    p.add_argument("--endpoints", default="discovery,hook,hook84,hooknew,hook84new,floor",
                   help="load endpoints (discovery,hook,hook84,hooknew,hook84new,floor; 'new': "
                        "each call sends a record the service has not seen, see NEW_RECORDS)")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1: leaves the CPU to the server)")
    p.add_argument("--curve-sizes", default="10,30,100,300,1000,2000,5000",
                   help="record sizes for the cost curve (10,...,5000)")
    p.add_argument("--curve-seconds", type=float, default=3.0, help="seconds per curve point (3)")
    p.add_argument("--rss-hooks", type=int, default=10000, help="hooks for the memory run (10000)")
    p.add_argument("--rss-step", type=int, default=1000, help="RSS sampled every N hooks (1000)")
    p.add_argument("--fallback-delay", type=float, default=0.1, help="FHIR stub delay, seconds (0.1)")
    p.add_argument("--fallback-rounds", type=int, default=5, help="timed calls for the fallback (5)")
    p.add_argument("--fallback-concurrency", type=int, default=8,
                   help="concurrent fallback hooks for the wrk run (8; 0 skips it)")
    p.add_argument("--workers", type=int, help="WEB_CONCURRENCY for the Procfile command")
    p.add_argument("--threads", type=int, help="GUNICORN_THREADS for the Procfile command")
    p.add_argument("--gunicorn-args", default="", help="extra arguments appended to the web command")
    p.add_argument("--command", help="replace the Procfile's web command entirely")
    p.add_argument("--env", action="append", default=[], metavar="K=V",
                   help="extra environment for the service (not the floor); repeatable")
    p.add_argument("--baseline-dir", type=Path,
                   help="before/after in one run: also serve the code in this directory (e.g. "
                        "`git archive HEAD~1 | tar -x -C /tmp/base`) as the 'base' endpoint")
    p.add_argument("--baseline-command", help="web command of the baseline (default: the same)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--keep-log", action="store_true", help="keep the server logs (paths printed)")
    args = p.parse_args(argv)
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = sections - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections: {', '.join(sorted(unknown))}")

    if subprocess.run(["which", "wrk"], capture_output=True).returncode != 0:
        raise SystemExit("wrk not found (Debian: apt-get install -y wrk)")
    command = args.command or procfile_command(ROOT / "Procfile")
    if args.gunicorn_args:
        command = f"{command} {args.gunicorn_args}"
    env_extra = {}
    if args.workers is not None:
        env_extra["WEB_CONCURRENCY"] = str(args.workers)
    if args.threads is not None:
        env_extra["GUNICORN_THREADS"] = str(args.threads)
    service_env = dict(env_extra)
    for item in args.env:
        key, _, value = item.partition("=")
        service_env[key] = value
    connection_counts = [int(c) for c in args.connections.split(",") if c.strip()]
    endpoint_names = [e.strip() for e in args.endpoints.split(",") if e.strip()]

    resources = record.two_year_record()
    prefetch = record.prefetch_for(resources)
    body = json.dumps(record.hook_request(prefetch=prefetch), separators=(",", ":")).encode()
    plain_body = json.dumps(record.hook_request(prefetch=record.prefetch_for(
        record.plain_record(), decorated=False)), separators=(",", ":")).encode()

    workdir = Path(tempfile.mkdtemp(prefix="cds-bench-"))
    body_file = workdir / "hook-body.json"
    body_file.write_bytes(body)
    plain_file = workdir / "hook-body-plain.json"
    plain_file.write_bytes(plain_body)
    # 'new' endpoints: the record for 40 other patients (each resource with other bytes), sent in
    # turn: more than the resource memo holds, so that no call finds a resource it has read.
    new_files: dict[str, list[Path]] = {"hooknew": [], "hook84new": []}
    for name, source in (("hooknew", prefetch),
                         ("hook84new", record.prefetch_for(record.plain_record(), decorated=False))):
        if ("load" in sections and name in endpoint_names) or (name == "hooknew" and "memo" in sections):
            for k, new_patient in enumerate(record.new_patients(source, NEW_RECORDS)):
                path = workdir / f"{name}-{k}.json"
                path.write_bytes(json.dumps(new_patient, separators=(",", ":")).encode())
                new_files[name].append(path)
    # Each service's state store in the run's directory, never the checkout's.
    service_env.setdefault("CDS_DATABASE_URL", f"sqlite:///{workdir / 'state.sqlite3'}")
    server = Server("service", command, free_port(), service_env, workdir / "server.log")

    def service_with(label: str, slug: str, **env: str) -> Server:
        """A second service, the same command with other settings and its own state store."""
        return Server(f"service {label}", command, free_port(),
                      {**service_env, **env, "CDS_DATABASE_URL": f"sqlite:///{workdir / f'state-{slug}.sqlite3'}"},
                      workdir / f"server-{slug}.log")

    without_store = service_with("without store", "without-store", CDS_RECORD_CARDS="false") \
        if "store" in sections else None
    without_memo = service_with("without resource memo", "without-memo", CDS_RESOURCE_MEMO_SIZE="0") \
        if "memo" in sections or "fallback" in sections else None
    # The records of patients never seen go to a service of their own: sent to the same one,
    # they fill its resource memo until it pauses (protocol/body.py, admission), and the same
    # record measured after them in the next round would be read without the memo.
    server_new = service_with("for the new patients", "new") if any(new_files.values()) else None
    floor = Server("floor", floor_command(command), free_port(), env_extra, workdir / "floor.log")
    baseline = baseline_new = None
    if args.baseline_dir or args.baseline_command:
        baseline = Server("baseline", args.baseline_command or command, free_port(),
                          {**env_extra, "CDS_DATABASE_URL": f"sqlite:///{workdir / 'state-base.sqlite3'}"},
                          workdir / "baseline.log", cwd=(args.baseline_dir or ROOT).resolve())
        if "base" not in endpoint_names:
            endpoint_names.append("base")
        if "hooknew" in endpoint_names and "basenew" not in endpoint_names:
            endpoint_names.append("basenew")  # the baseline with the same new patients
        if "basenew" in endpoint_names:
            state_new = f"sqlite:///{workdir / 'state-base-new.sqlite3'}"
            baseline_new = Server("baseline for the new patients", baseline.command, free_port(),
                                  {**baseline.env, "CDS_DATABASE_URL": state_new},
                                  workdir / "baseline-new.log", cwd=baseline.cwd)

    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          "(shared machine: absolute figures are noisy; compare the ratios)")
    print(f"server:  {command}")
    if service_env:
        print(f"         env {' '.join(f'{k}={v}' for k, v in service_env.items())}")
    print(f"floor:   the same command serving {FLOOR_APP}")
    if baseline is not None:
        print(f"baseline: {baseline.command}  (in {baseline.cwd})")
    print(f"record:  {record.counts(prefetch)}; hook body {len(body) / 1024:.0f} KiB "
          f"(plain: {len(plain_body) / 1024:.0f} KiB)")

    def terminate(signum, frame):  # `timeout`, Ctrl-C: still stop the servers (finally below)
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)

    results: dict = {"command": command, "env": service_env, "body_bytes": len(body),
                     "plain_body_bytes": len(plain_body), "prefetch_counts": record.counts(prefetch),
                     "loadavg_start": os.getloadavg(), "load": {}, "summary": {}}
    summary = results["summary"]
    failed = False
    try:
        startup = server.start()
        floor.start()
        for other in (server_new, baseline, baseline_new):
            if other is not None:
                other.start()
        results["startup_s"] = startup
        print(f"\nstart-up: discovery answered {startup:.2f} s after process start "
              f"(target < {TARGETS['startup_s']:.0f} s: {verdict(startup < TARGETS['startup_s'])})")
        answered = {}
        for name, b in (("267 KiB", body), ("84 KiB plain", plain_body)):
            status, answer = request("POST", server.port, HOOK_PATH, b)
            if status != 200:
                raise SystemExit(f"hook answered {status}: {answer[:500]!r}")
            cards = json.loads(answer)["cards"]
            answered[name] = [(c.get("indicator"), c.get("summary")) for c in cards]
            print(f"sanity:   hook {name}: 200, {len(cards)} cards: "
                  + ", ".join(c.get("indicator", "?") for c in cards))
        for name, like in (("hooknew", "267 KiB"), ("hook84new", "84 KiB plain")):
            for path in new_files[name][:2]:
                assert server_new is not None  # made whenever there are new patients' files
                status, answer = request("POST", server_new.port, HOOK_PATH, path.read_bytes())
                same = status == 200 and [(c.get("indicator"), c.get("summary"))
                                          for c in json.loads(answer)["cards"]] == answered[like]
                if not same:
                    raise SystemExit(f"{name}: a copy of the record is answered differently ({status})")
        if new_files["hooknew"] or new_files["hook84new"]:
            print(f"sanity:   the record for {NEW_RECORDS} other patients ('new' endpoints) gets the same cards")

        endpoints_all = {"discovery": ("discovery", server, DISCOVERY_PATH, None),
                         "hook": ("hook", server, HOOK_PATH, body_file),
                         "hook84": ("hook84", server, HOOK_PATH, plain_file),
                         "hooknew": ("hooknew", server_new, HOOK_PATH, new_files["hooknew"]),
                         "hook84new": ("hook84new", server_new, HOOK_PATH, new_files["hook84new"]),
                         "floor": ("floor", floor, HOOK_PATH, body_file),
                         "base": ("base", baseline, HOOK_PATH, body_file),
                         "basenew": ("basenew", baseline_new, HOOK_PATH, new_files["hooknew"])}
        endpoints = [endpoints_all[n] for n in endpoint_names]
        for conns in (connection_counts if "load" in sections else []):
            r = measure_load(endpoints, connections=conns, threads=args.wrk_threads,
                             seconds=args.duration, warmup=args.warmup, rounds=args.rounds,
                             workdir=workdir)
            results["load"][conns] = r
            print_load(r, conns, args)
            failed |= sum(r[n]["non_2xx"] + r[n]["errors"] for n in endpoint_names) > 0
            if conns == 4 and "ratio_cpu_hook_floor" in r:
                summary["hook_cpu_over_floor_cpu"] = r["ratio_cpu_hook_floor"]
            if conns == 4 and "ratio_cpu_hooknew_floor" in r:
                summary["hooknew_cpu_over_floor_cpu"] = r["ratio_cpu_hooknew_floor"]
            if conns == 4 and "ratio_p50_hook84_discovery" in r:
                summary["hook84_p50_over_discovery_p50"] = r["ratio_p50_hook84_discovery"]
            if conns == 4 and "ratio_p50_hook84new_discovery" in r:
                summary["hook84new_p50_over_discovery_p50"] = r["ratio_p50_hook84new_discovery"]
            if conns == 1 and "ratio_p99_p50_hook" in r:
                summary["p99_over_p50_one_connection"] = r["ratio_p99_p50_hook"]

        if without_store is not None:
            without_store.start()
            conns = max(connection_counts)
            sc = measure_store_cost(server, without_store, body_file, connections=conns,
                                    threads=args.wrk_threads, seconds=args.duration,
                                    warmup=args.warmup, rounds=args.rounds, workdir=workdir)
            without_store.stop()
            results["store_cost"] = sc
            print(f"\ncost of recording cards issued (issue 12): hook 267 KiB with and without the "
                  f"state store (CDS_RECORD_CARDS=false), {conns} connections, {args.rounds} rounds "
                  "alternating; medians:")
            for name in ("with_store", "without_store"):
                x = sc[name]
                print(f"  {name:<14} p50 {fmt_ms(x['p50_us']):>10}  p99 {fmt_ms(x['p99_us']):>10}  "
                      f"{x['rps']:>6.0f} req/s  CPU {x['cpu_ms_per_request']:.2f} ms/req  errors {x['errors']}")
            print(f"  p50 with ÷ without: ×{sc['ratio_p50']:.3f} (per round: "
                  + ", ".join(f"{r['ratio_p50']:.3f}" for r in sc["rounds"]) + ")")
            print(f"  CPU with ÷ without: ×{sc['ratio_cpu']:.3f} (per round: "
                  + ", ".join(f"{r['ratio_cpu']:.3f}" for r in sc["rounds"]) + ")")
            summary["store_p50_with_over_without"] = sc["ratio_p50"]
            summary["store_cpu_with_over_without"] = sc["ratio_cpu"]
            failed |= any(sc[n]["errors"] for n in ("with_store", "without_store"))

        if "memo" in sections and without_memo is not None:
            without_memo.start()
            conns = max(connection_counts)
            files = new_files["hooknew"] or [body_file]
            r = measure_load([("same", server, HOOK_PATH, body_file),
                              ("same_off", without_memo, HOOK_PATH, body_file),
                              ("new", server_new, HOOK_PATH, files),
                              ("new_off", without_memo, HOOK_PATH, files)],
                             connections=conns, threads=args.wrk_threads, seconds=args.duration,
                             warmup=args.warmup, rounds=args.rounds, workdir=workdir)
            without_memo.stop()
            for one in [*r["rounds"], r]:
                for kind in ("same", "new"):
                    one[f"cpu_{kind}"] = (one[kind]["cpu_ms_per_request"]
                                          / max(1e-9, one[f"{kind}_off"]["cpu_ms_per_request"]))
                    one[f"p50_{kind}"] = one[kind]["p50_us"] / one[f"{kind}_off"]["p50_us"]
            results["memo"] = r
            print(f"\nthe resource memo: hook 267 KiB on the service and on a second one with "
                  f"CDS_RESOURCE_MEMO_SIZE=0, {conns} connections, {args.rounds} rounds alternating; "
                  f"'same': the same record again, 'new': {NEW_RECORDS} new patients in turn; medians:")
            for name in ("same", "same_off", "new", "new_off"):
                x = r[name]
                print(f"  {name:<9} p50 {fmt_ms(x['p50_us']):>10}  p99 {fmt_ms(x['p99_us']):>10}  "
                      f"{x['rps']:>6.0f} req/s  CPU {x['cpu_ms_per_request']:.2f} ms/req  "
                      f"errors {x['errors'] + x['non_2xx']}")
            for kind in ("same", "new"):
                for figure in ("cpu", "p50"):
                    key = f"{figure}_{kind}"
                    print(f"  {figure.upper()} with ÷ without the memo, {kind} record: ×{r[key]:.3f} (per round: "
                          + ", ".join(f"{one[key]:.3f}" for one in r["rounds"]) + ")")
                summary[f"memo_cpu_{kind}"] = r[f"cpu_{kind}"]
            failed |= any(r[n]["errors"] + r[n]["non_2xx"] for n in ("same", "same_off", "new", "new_off"))

        if "curve" in sections:
            sizes = [int(x) for x in args.curve_sizes.split(",") if x.strip()]
            # Without the resource memo: each size's record is sent again and again, and a memo
            # would answer the sizes it can hold from memory and read the others: the curve would
            # show the memo's capacity, not the cost of reading a resource.
            curve_server = service_with("without resource memo (curve)", "curve", CDS_RESOURCE_MEMO_SIZE="0")
            curve_server.start()
            try:
                points = measure_curve(curve_server, sizes, seconds=args.curve_seconds,
                                       warmup=args.warmup, workdir=workdir)
            finally:
                curve_server.stop()
            results["curve"] = points
            print(f"\ncost per resource (plain record, 1 connection, {args.curve_seconds:g} s per size, "
                  "resource memo off: every resource parsed and read; marginal = above the smallest record):")
            print(f"  {'resources':>9} {'body':>9} {'CPU/req':>10} {'µs/resource':>12} "
                  f"{'marginal µs/res':>16} {'p50':>9} {'p99':>9}")
            for pt in points:
                marginal = (f"{pt['marginal_us_per_resource']:.1f}"
                            if pt["marginal_us_per_resource"] is not None else "-")
                print(f"  {pt['resources']:>9} {pt['body_kib']:>6.0f} KiB {pt['cpu_ms']:>7.2f} ms "
                      f"{pt['us_per_resource']:>12.1f} {marginal:>16} {fmt_ms(pt['p50_us']):>9} "
                      f"{fmt_ms(pt['p99_us']):>9}")
            mids = [pt for pt in points if pt["marginal_us_per_resource"] is not None
                    and 200 <= pt["resources"] <= 400]
            if mids and points[-1]["marginal_us_per_resource"]:
                ratio = points[-1]["marginal_us_per_resource"] / mids[0]["marginal_us_per_resource"]
                summary["marginal_cost_largest_over_300"] = ratio
                print(f"  marginal cost at {points[-1]['resources']} ÷ at {mids[0]['resources']} "
                      f"resources: ×{ratio:.2f} (flat = ×1)")
            failed |= any(pt["errors"] for pt in points)

        if "memory" in sections and args.rss_hooks > 0:
            mem = measure_memory(server, body_file, hooks=args.rss_hooks, step=args.rss_step,
                                 connections=4, workdir=workdir)
            results["memory"] = mem
            print(f"\nmemory: RSS per worker (MiB) over {args.rss_hooks} hooks (267 KiB, 4 connections):")
            pids = sorted(mem["samples"][0]["rss"])
            print(f"  {'hooks':>7} " + " ".join(f"{'pid ' + str(pid):>11}" for pid in pids))
            for sample in mem["samples"]:
                print(f"  {sample['hooks']:>7} " + " ".join(
                    f"{sample['rss'].get(pid, 0) / 2**20:>11.1f}" for pid in pids))
            first, last = mem["samples"][1], mem["samples"][-1]  # after the first step: warm
            growth = max((last["rss"].get(pid, 0) / first["rss"][pid]) for pid in first["rss"])
            summary["rss_growth_after_first_step"] = growth
            print(f"  growth from {first['hooks']} to {last['hooks']} hooks: ×{growth:.3f} "
                  f"(largest worker); errors {mem['errors']}")
            failed |= mem["errors"] > 0

        if "fallback" in sections:
            # Every concurrent hook is the same patient's: from its second call on, the FHIR
            # server's answers are read through the resource memo. A patient's first call reads
            # them all: the same run on the service with the memo off.
            if without_memo is not None:
                without_memo.start()
            try:
                fb = measure_fallback(server, resources, args.fallback_delay, args.fallback_rounds,
                                      concurrency=args.fallback_concurrency, seconds=args.duration,
                                      warmup=args.warmup, workdir=workdir, first_calls=without_memo)
            finally:
                if without_memo is not None:
                    without_memo.stop()
            results["fallback"] = fb
            print(f"\nFHIR fallback (stub delay {fb['delay_s'] * 1000:.0f} ms per query, "
                  f"{fb['queries']} queries, median of {args.fallback_rounds}):")
            print("  single queries alone: " + ", ".join(
                f"{k} {v * 1000:.0f}" for k, v in fb["single_s"].items()) + " ms")
            print(f"  slowest single query ({fb['slowest_key']}): {fb['slowest_s'] * 1000:.1f} ms; "
                  f"sum if sequential: {fb['sum_s'] * 1000:.0f} ms")
            print(f"  one hook with no prefetch: {fb['hook_s'] * 1000:.1f} ms "
                  f"(first call {fb['hook_first_s'] * 1000:.0f} ms), statuses {sorted(set(fb['statuses']))}, "
                  f"{fb['cards']} cards")
            print(f"  ratio hook / slowest query: ×{fb['ratio']:.2f} "
                  f"(target ≤ {TARGETS['fallback_over_slowest_query']}: "
                  f"{verdict(fb['ratio'] <= TARGETS['fallback_over_slowest_query'])})")
            summary["fallback_over_slowest_query"] = fb["ratio"]
            failed |= any(s != 200 for s in fb["statuses"])
            c = fb["concurrent"]
            if c is not None:
                print(f"  {c['connections']} concurrent fallback hooks (wrk, {args.duration:g} s): "
                      f"{c['rps']:.1f} req/s, p50 {fmt_ms(c['p50_us'])}, p99 {fmt_ms(c['p99_us'])}, "
                      f"p99 ÷ stub delay ×{c['p99_us'] / 1e6 / fb['delay_s']:.2f}, "
                      f"CPU {c['cpu_ms_per_request']:.2f} ms/req, errors {c['errors'] + c['non_2xx']}")
                complete = all_queries_arrived(c, fb["queries"])
                print(f"  queries reaching the stub per hook under load: {c['queries_per_hook']:.2f} "
                      f"(a lone hook sends {fb['queries']}: "
                      f"{'none shed' if complete else 'SHED: answers were incomplete'})")
                failed |= not complete
                summary["fallback_concurrent_rps"] = c["rps"]
                summary["fallback_concurrent_p99_ms"] = c["p99_us"] / 1000
                failed |= (c["errors"] + c["non_2xx"]) > 0
            first = fb["first_calls"]
            if first is not None:
                complete = all_queries_arrived(first, fb["queries"])
                print(f"  the same, every call a patient's first (memo off): {first['rps']:.1f} req/s, "
                      f"p50 {fmt_ms(first['p50_us'])}, p99 {fmt_ms(first['p99_us'])}, "
                      f"CPU {first['cpu_ms_per_request']:.2f} ms/req, errors {first['errors'] + first['non_2xx']}, "
                      f"queries per hook {first['queries_per_hook']:.2f}"
                      f"{'' if complete else ' (SHED: answers were incomplete)'}")
                summary["fallback_first_rps"] = first["rps"]
                summary["fallback_first_p99_ms"] = first["p99_us"] / 1000
                failed |= (first["errors"] + first["non_2xx"]) > 0 or not complete

        results["loadavg_end"] = os.getloadavg()
        print(f"\nsummary against issue 13's targets (load average at the end "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}):")
        checks = (("hook_cpu_over_floor_cpu", "hook CPU ÷ floor CPU, 267 KiB, 4 conn.", "×", "≤"),
                  ("hooknew_cpu_over_floor_cpu", "  the same, every call a new record", "×", "≤"),
                  ("hook84_p50_over_discovery_p50", "hook p50 ÷ discovery p50, 84 KiB, 4 conn.", "×", "≤"),
                  ("hook84new_p50_over_discovery_p50", "  the same, every call a new record", "×", "≤"),
                  ("p99_over_p50_one_connection", "hook p99 ÷ p50, 267 KiB, 1 conn.", "×", "≤"),
                  ("fallback_concurrent_rps", "fallback, 8 concurrent: req/s", "", "≥"),
                  ("fallback_concurrent_p99_ms", "fallback, 8 concurrent: p99 ms", "", "≤"),
                  ("fallback_first_rps", "  the same, every call a first: req/s", "", "≥"),
                  ("fallback_first_p99_ms", "  the same, every call a first: p99 ms", "", "≤"),
                  ("fallback_over_slowest_query", "one fallback hook ÷ slowest query", "×", "≤"))
        for key, label, prefix, op in checks:
            if key in summary:
                value, target = summary[key], TARGETS[key]
                ok = value <= target if op == "≤" else value >= target
                print(f"  {label:<44} {prefix}{value:8.2f}  target {op} {target:g}: {verdict(ok)}")
        for key, label in (("store_p50_with_over_without", "hook p50 with ÷ without the state store"),
                           ("store_cpu_with_over_without", "hook CPU with ÷ without the state store"),
                           ("memo_cpu_same", "hook CPU with ÷ without the memo, same record"),
                           ("memo_cpu_new", "hook CPU with ÷ without the memo, new records"),
                           ("marginal_cost_largest_over_300", "marginal cost per resource, 5000 ÷ 300"),
                           ("rss_growth_after_first_step", "worker RSS growth over the memory run")):
            if key in summary:
                print(f"  {label:<44} ×{summary[key]:8.3f}  (flat = ×1)")
    finally:
        server.stop()
        floor.stop()
        if without_store is not None:
            without_store.stop()
        if without_memo is not None:
            without_memo.stop()
        for other in (server_new, baseline, baseline_new):
            if other is not None:
                other.stop()
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
        if args.keep_log or failed:
            print(f"\nserver logs: {', '.join(str(p) for p in workdir.glob('*.log'))}")
        else:
            for f in workdir.iterdir():
                f.unlink()
            workdir.rmdir()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
