"""Benchmark of the CDS Hooks service as deployed (the Procfile's `web:` line), over loopback.

    python -m bench.run                      # defaults: about 50 s
    python -m bench.run --duration 10 --rounds 5 --connections 4,16
    python -m bench.run --workers 3 --threads 2          # WEB_CONCURRENCY / GUNICORN_THREADS
    python -m bench.run --gunicorn-args "--worker-class sync"
    python -m bench.run --store-cost --skip-fallback      # hook p50 with and without the state store

Measures, in one run against one server process:
1. start-up: process start until GET /cds-services answers 200;
2. with wrk (Lua scripts, POST body from a file), at each connection count: GET /cds-services
   (the floor: routing, JSON, HTTP, logging) and the patient-view hook with a two-year record
   of a kidney recipient on tacrolimus in the prefetch; p50/p99 latency, requests/s, errors;
3. the FHIR fallback: a loopback FHIR stub answering every query after a fixed delay; one
   fetch of each prefetch query alone vs. a hook call with no prefetch and fhirServer = stub.

Needs `wrk` on PATH (Debian: apt-get install wrk). Loopback only; stops the server at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
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
from cds_service.fhir.templates import render, token_values
from cds_service.testing.fhir_stub import FhirStub

ROOT = Path(__file__).resolve().parent.parent
HOOK_PATH = "/cds-services/tacrolimus-magnesium-patient-view"
DISCOVERY_PATH = "/cds-services"

TARGETS = {"hook_p50_over_discovery_p50": 1.5, "hook_rps": 3000.0,
           "fallback_over_slowest_query": 1.2, "startup_s": 2.0}

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The Procfile's web command under bash, with PORT set, in its own process group."""

    def __init__(self, command: str, port: int, env_extra: dict[str, str], log_path: Path):
        self.command, self.port = command, port
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
        self.proc = subprocess.Popen(["bash", "-c", self.command], cwd=ROOT, env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        while time.perf_counter() - self.started_at < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with {self.proc.returncode}; log: {self.log_path}")
            try:
                status, _ = request("GET", self.port, DISCOVERY_PATH, timeout=1.0)
                if status == 200:
                    return time.perf_counter() - self.started_at
            except OSError:
                pass
            time.sleep(0.01)
        self.stop()
        raise SystemExit(f"discovery did not answer within {timeout}s; log: {self.log_path}")

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


def wrk(url: str, *, connections: int, threads: int, seconds: float, body_file: Path | None,
        workdir: Path) -> dict:
    script = workdir / f"wrk-{'post' if body_file else 'get'}.lua"
    if body_file is not None:
        lua = (f'local f = assert(io.open("{body_file}", "rb"))\n'
               'wrk.body = f:read("*a")\nf:close()\n'
               'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
    else:
        lua = 'wrk.method = "GET"\n'
    script.write_text(lua + LUA_DONE)
    cmd = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    match = re.search(r"^BENCH_JSON (.*)$", out.stdout, re.M)
    if out.returncode != 0 or match is None:
        raise SystemExit(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    result = json.loads(match.group(1))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "timeout"))
    result["non_2xx"] = result["status"]
    return result


def measure_load(port: int, body_file: Path, *, connections: int, threads: int,
                 seconds: float, warmup: float, rounds: int, workdir: Path) -> dict:
    """Discovery then hook, `rounds` times alternating (the machine's noise hits both);
    each figure is the median over rounds, errors are summed."""
    base = f"http://127.0.0.1:{port}"
    per_round: list[dict] = []
    for _ in range(rounds):
        one = {}
        for name, path, body in (("discovery", DISCOVERY_PATH, None),
                                 ("hook", HOOK_PATH, body_file)):
            if warmup > 0:
                wrk(base + path, connections=connections, threads=threads, seconds=warmup,
                    body_file=body, workdir=workdir)
            one[name] = wrk(base + path, connections=connections, threads=threads,
                            seconds=seconds, body_file=body, workdir=workdir)
        one["ratio_p50"] = one["hook"]["p50_us"] / one["discovery"]["p50_us"]
        one["ratio_p99"] = one["hook"]["p99_us"] / one["discovery"]["p99_us"]
        one["ratio_rps"] = one["hook"]["rps"] / one["discovery"]["rps"]
        per_round.append(one)
    results: dict = {"rounds": per_round}
    for name in ("discovery", "hook"):
        merged = {k: statistics.median(r[name][k] for r in per_round)
                  for k in ("p50_us", "p90_us", "p99_us", "rps")}
        for k in ("requests", "errors", "non_2xx", "connect", "read", "write", "timeout"):
            merged[k] = sum(r[name][k] for r in per_round)
        results[name] = merged
    for k in ("ratio_p50", "ratio_p99", "ratio_rps"):
        results[k] = statistics.median(r[k] for r in per_round)
    return results


def measure_store_cost(with_port: int, without_port: int, body_file: Path, *, connections: int,
                       threads: int, seconds: float, warmup: float, rounds: int, workdir: Path) -> dict:
    """The hook on two servers run side by side, one recording every card issued
    (CDS_RECORD_CARDS=true, the default) and one not, alternating `rounds` times."""
    per_round: list[dict] = []
    for _ in range(rounds):
        one = {}
        for name, port in (("with_store", with_port), ("without_store", without_port)):
            url = f"http://127.0.0.1:{port}{HOOK_PATH}"
            if warmup > 0:
                wrk(url, connections=connections, threads=threads, seconds=warmup,
                    body_file=body_file, workdir=workdir)
            one[name] = wrk(url, connections=connections, threads=threads, seconds=seconds,
                            body_file=body_file, workdir=workdir)
        one["ratio_p50"] = one["with_store"]["p50_us"] / one["without_store"]["p50_us"]
        per_round.append(one)
    results: dict = {"rounds": per_round}
    for name in ("with_store", "without_store"):
        results[name] = {k: statistics.median(r[name][k] for r in per_round)
                         for k in ("p50_us", "p90_us", "p99_us", "rps")}
        results[name]["errors"] = sum(r[name]["errors"] + r[name]["non_2xx"] for r in per_round)
    results["ratio_p50"] = statistics.median(r["ratio_p50"] for r in per_round)
    return results


# ------------------------------------------------------------------------------ fallback


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


def measure_fallback(port: int, resources: list[dict], delay: float, rounds: int) -> dict:
    status, raw = request("GET", port, DISCOVERY_PATH)
    service = next(s for s in json.loads(raw)["services"] if HOOK_PATH.endswith(s["id"]))
    body = record.hook_request()
    with FhirStub(resources, delay=delay) as stub:
        queries = {key: render(t, token_values(body["context"])) for key, t in service["prefetch"].items()}
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
            status, answer = request("POST", port, HOOK_PATH, payload)
            hook_times.append(time.perf_counter() - started)
            statuses.append(status)
        cards = len(json.loads(answer).get("cards", [])) if status == 200 else None
        fetched = len(stub.paths)
    hook = statistics.median(hook_times[1:])
    return {"delay_s": delay, "queries": len(queries), "single_s": single,
            "slowest_key": slowest_key, "slowest_s": single[slowest_key],
            "sum_s": sum(single.values()), "hook_s": hook, "hook_first_s": hook_times[0],
            "statuses": statuses, "cards": cards, "stub_requests": fetched,
            "ratio": hook / single[slowest_key]}


# ------------------------------------------------------------------------------ main


def fmt_ms(us: float) -> str:
    return f"{us / 1000:.2f} ms"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk measurement (5)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of wrk warm-up before each (1)")
    p.add_argument("--rounds", type=int, default=3,
                   help="discovery/hook measurements alternated this many times; medians (3)")
    p.add_argument("--connections", default="4", help="comma-separated connection counts (4)")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1: leaves the CPU to the server)")
    p.add_argument("--fallback-delay", type=float, default=0.1, help="FHIR stub delay, seconds (0.1)")
    p.add_argument("--fallback-rounds", type=int, default=5, help="timed calls for the fallback (5)")
    p.add_argument("--skip-fallback", action="store_true")
    p.add_argument("--skip-load", action="store_true", help="no wrk measurement (start-up and fallback only)")
    p.add_argument("--workers", type=int, help="WEB_CONCURRENCY for the Procfile command")
    p.add_argument("--threads", type=int, help="GUNICORN_THREADS for the Procfile command")
    p.add_argument("--gunicorn-args", default="", help="extra arguments appended to the web command")
    p.add_argument("--command", help="replace the Procfile's web command entirely")
    p.add_argument("--days", type=int, default=730, help="length of the record in days (730)")
    p.add_argument("--store-cost", action="store_true",
                   help="also run a second server with CDS_RECORD_CARDS=false and compare hook p50")
    p.add_argument("--database-url", help="CDS_DATABASE_URL of the servers (default: SQLite in a temp dir)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--keep-log", action="store_true", help="keep the server log (path printed)")
    args = p.parse_args(argv)

    if (not args.skip_load or args.store_cost) and subprocess.run(["which", "wrk"], capture_output=True).returncode != 0:
        raise SystemExit("wrk not found (Debian: apt-get install -y wrk)")
    command = args.command or procfile_command(ROOT / "Procfile")
    if args.gunicorn_args:
        command = f"{command} {args.gunicorn_args}"
    env_extra = {}
    if args.workers is not None:
        env_extra["WEB_CONCURRENCY"] = str(args.workers)
    if args.threads is not None:
        env_extra["GUNICORN_THREADS"] = str(args.threads)
    connection_counts = [int(c) for c in args.connections.split(",") if c.strip()]

    resources = record.two_year_record(days=args.days)
    prefetch = record.prefetch_for(resources)
    body = json.dumps(record.hook_request(prefetch=prefetch), separators=(",", ":")).encode()

    workdir = Path(tempfile.mkdtemp(prefix="cds-bench-"))
    body_file = workdir / "hook-body.json"
    body_file.write_bytes(body)
    # The state store (cards issued, feedback) in the run's directory, never the checkout's.
    env_extra["CDS_DATABASE_URL"] = args.database_url or f"sqlite:///{workdir / 'state.sqlite3'}"
    port = free_port()
    server = Server(command, port, env_extra, workdir / "server.log")
    bare = (Server(command, free_port(), {**env_extra, "CDS_RECORD_CARDS": "false"},
                   workdir / "server-without-store.log") if args.store_cost else None)

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} "
          f"(shared machine: absolute figures are noisy, ratios less so)")
    print(f"server:  {command}")
    if env_extra:
        print(f"         env {' '.join(f'{k}={v}' for k, v in env_extra.items())}")
    print(f"record:  {record.counts(prefetch)}; hook body {len(body) / 1024:.0f} KiB")

    results: dict = {"command": command, "env": env_extra, "body_bytes": len(body),
                     "prefetch_counts": record.counts(prefetch), "load": {}}
    failed = False
    try:
        startup = server.start()
        results["startup_s"] = startup
        print(f"\nstart-up: discovery answered {startup:.2f} s after process start "
              f"(target < {TARGETS['startup_s']:.0f} s: {verdict(startup < TARGETS['startup_s'])})")
        status, answer = request("POST", port, HOOK_PATH, body)
        if status != 200:
            raise SystemExit(f"hook answered {status}: {answer[:500]!r}")
        cards = json.loads(answer)["cards"]
        print(f"sanity:   hook 200, {len(cards)} cards: "
              + ", ".join(sorted({c.get('indicator', '?') for c in cards})))

        for conns in ([] if args.skip_load else connection_counts):
            r = measure_load(port, body_file, connections=conns, threads=args.wrk_threads,
                             seconds=args.duration, warmup=args.warmup, rounds=args.rounds,
                             workdir=workdir)
            results["load"][conns] = r
            print(f"\nwrk, {conns} connections, {args.rounds} rounds of {args.duration:g} s per endpoint "
                  f"(each after {args.warmup:g} s warm-up); medians over rounds, errors summed:")
            print(f"  {'endpoint':<10} {'p50':>10} {'p90':>10} {'p99':>10} {'req/s':>9} "
                  f"{'requests':>9} {'non-2xx':>8} {'sock.err':>8}")
            for name in ("discovery", "hook"):
                x = r[name]
                print(f"  {name:<10} {fmt_ms(x['p50_us']):>10} {fmt_ms(x['p90_us']):>10} "
                      f"{fmt_ms(x['p99_us']):>10} {x['rps']:>9.0f} {x['requests']:>9} "
                      f"{x['non_2xx']:>8} {x['errors']:>8}")
            errors = sum(r[n]["non_2xx"] + r[n]["errors"] for n in ("discovery", "hook"))
            print(f"  hook/discovery: p50 ×{r['ratio_p50']:.2f}, p99 ×{r['ratio_p99']:.2f}, "
                  f"throughput ×{r['ratio_rps']:.3f}  (per round p50 ratio: "
                  + ", ".join(f"{x['ratio_p50']:.1f}" for x in r["rounds"]) + "; hook req/s: "
                  + ", ".join(f"{x['hook']['rps']:.0f}" for x in r["rounds"]) + ")")
            if conns == 4:
                print(f"  targets at 4 connections: p50 ratio ≤ {TARGETS['hook_p50_over_discovery_p50']} "
                      f"{verdict(r['ratio_p50'] <= TARGETS['hook_p50_over_discovery_p50'])}; "
                      f"hook ≥ {TARGETS['hook_rps']:.0f} req/s "
                      f"{verdict(r['hook']['rps'] >= TARGETS['hook_rps'])}; "
                      f"zero errors {verdict(errors == 0)}")
            failed |= errors > 0

        if bare is not None:
            bare.start()
            conns = connection_counts[0]
            sc = measure_store_cost(port, bare.port, body_file, connections=conns,
                                    threads=args.wrk_threads, seconds=args.duration,
                                    warmup=args.warmup, rounds=args.rounds, workdir=workdir)
            results["store_cost"] = sc
            print(f"\ncost of recording cards issued: hook with and without the state store, "
                  f"{conns} connections, {args.rounds} rounds alternating; medians:")
            for name in ("with_store", "without_store"):
                x = sc[name]
                print(f"  {name:<14} p50 {fmt_ms(x['p50_us']):>10}  p99 {fmt_ms(x['p99_us']):>10}  "
                      f"{x['rps']:>6.0f} req/s  errors {x['errors']}")
            print(f"  p50 with ÷ without: ×{sc['ratio_p50']:.3f} (per round: "
                  + ", ".join(f"{r['ratio_p50']:.3f}" for r in sc["rounds"]) + ")")
            failed |= any(sc[n]["errors"] for n in ("with_store", "without_store"))
            bare.stop()

        if not args.skip_fallback:
            fb = measure_fallback(port, resources, args.fallback_delay, args.fallback_rounds)
            results["fallback"] = fb
            print(f"\nFHIR fallback (stub delay {fb['delay_s'] * 1000:.0f} ms per query, "
                  f"{fb['queries']} queries, median of {args.fallback_rounds}):")
            print("  single queries alone: " + ", ".join(
                f"{k} {v * 1000:.0f}" for k, v in fb["single_s"].items()) + " ms")
            print(f"  slowest single query ({fb['slowest_key']}): {fb['slowest_s'] * 1000:.1f} ms; "
                  f"sum if sequential: {fb['sum_s'] * 1000:.0f} ms")
            print(f"  hook with no prefetch: {fb['hook_s'] * 1000:.1f} ms "
                  f"(first call {fb['hook_first_s'] * 1000:.0f} ms), statuses {sorted(set(fb['statuses']))}, "
                  f"{fb['cards']} cards")
            print(f"  ratio hook / slowest query: ×{fb['ratio']:.2f} "
                  f"(target ≤ {TARGETS['fallback_over_slowest_query']}: "
                  f"{verdict(fb['ratio'] <= TARGETS['fallback_over_slowest_query'])})")
            failed |= any(s != 200 for s in fb["statuses"])
    finally:
        server.stop()
        if bare is not None:
            bare.stop()
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
        if args.keep_log or failed:
            print(f"\nserver log: {server.log_path}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
