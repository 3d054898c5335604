"""Operator control-loop benchmark in the kmock Kubernetes API emulator (no cluster needed).

    .venv/bin/python bench/operator.py [--runs 1 20 100] [--iterations 1] [--idle-seconds 60]

For each number of runs N: N runs of `--iterations` iterations are created at once and a driver playing
the Job controller completes every Job as soon as it appears. With the real operator (kopf + handlers +
reconciler, its default 1 s tick and resync) it measures:
- transition delay: from the driver marking a Job complete (its PATCH .../jobs/NAME/status arriving at the
  API server) to the operator creating the next Job (its POST .../jobs arriving), median and p95;
- API requests made by the operator (kopf's watches and our reconciles; the driver's own requests are
  excluded by user agent) per Job and per iteration of 5 Jobs, with a breakdown by verb and resource;
- idle requests per minute once every run has finished (over `--idle-seconds`);
- restart requests: a new operator started against the N finished runs (and their Jobs), counted until
  it has been quiet for 5 s.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.kube import (  # noqa: E402  (the test harness is the emulator + driver)
    DRIVER_AGENT, PLAUSIBLE_METRICS, Emulator, JobDriver, OperatorThread, tiny_spec, wait_for,
)

from rzero_operator.kube.client import KubeApi, load_api_client  # noqa: E402

NAMESPACE = "bench"
QUIET_S = 5.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))] if ordered else 0.0


def drive(driver: JobDriver, runs: list[str], phases_per_run: int, timeout: float) -> None:
    """Complete every Job as it appears until every run has had all its phases."""
    done: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(done) < len(runs) * phases_per_run:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(done)} of {len(runs) * phases_per_run} phases completed")
        fresh = [job for job in driver.jobs() if job["metadata"]["name"] not in done]
        for job in fresh:
            driver.succeed(job)
            done.add(job["metadata"]["name"])
        if not fresh:
            time.sleep(0.01)
    for run in runs:
        wait_for(lambda run=run: driver.status(run).get("phase") == "Succeeded", 30, f"{run} to succeed")


def transitions(requests) -> list[float]:
    """Delay from each Job's completion to the creation of the same run's next Job."""
    completed: dict[str, float] = {}
    created: list[tuple[str, float]] = []
    for r in requests:
        if r.method == "PATCH" and r.subresource == "status" and "/jobs/" in r.path:
            completed[r.path.split("/jobs/")[1].split("/")[0]] = r.at
        elif r.method == "POST" and r.path.endswith("/jobs") and isinstance(r.data, dict):
            created.append((r.data["metadata"]["name"], r.at))
    by_run: dict[str, list[tuple[str, float]]] = {}
    for name, at in created:
        by_run.setdefault(name.split("-i")[0], []).append((name, at))
    delays = []
    for jobs in by_run.values():
        for (previous, _), (_, created_at) in zip(jobs, jobs[1:]):
            if previous in completed:
                delays.append(created_at - completed[previous])
    return delays


def kind(request) -> str:
    """'VERB resource[/subresource]', e.g. 'GET rzeroruns', 'LIST jobs', 'WATCH jobs', 'PATCH rzeroruns/status'."""
    parts = [p for p in request.path.split("/") if p]
    if "namespaces" in parts[:-1] and parts.index("namespaces") + 2 < len(parts):
        parts = parts[parts.index("namespaces") + 2:]  # resource[/name[/subresource]]
    else:  # cluster-wide: /api/v1/RESOURCE or /apis/GROUP/VERSION/RESOURCE
        parts = parts[2:] if parts[:1] == ["api"] else parts[3:]
    resource, named = (parts or ["?"])[0], len(parts) > 1
    verb = request.method
    if verb == "GET":
        verb = "WATCH" if request.query.get("watch") in ("true", "1") else ("GET" if named else "LIST")
    return f"{verb} {resource}" + (f"/{request.subresource}" if request.subresource else "")


def operator_requests(log, since: float = 0.0, until: float = float("inf")) -> list:
    return [r for r in log if r.user_agent != DRIVER_AGENT and since <= r.at < until]


def wait_quiet(emulator: Emulator, since: float, quiet_s: float, timeout: float) -> float:
    """Wait until the operator has made no request for `quiet_s`; returns the time of its last request."""
    deadline = time.monotonic() + timeout
    while True:
        mine = operator_requests(emulator.requests(), since)
        last = max((r.at for r in mine), default=since)
        if time.monotonic() - last >= quiet_s or time.monotonic() > deadline:
            return last
        time.sleep(0.5)


def new_operator(emulator: Emulator) -> OperatorThread:
    return OperatorThread(KubeApi(load_api_client(str(emulator.kubeconfig))), NAMESPACE, tick_s=1.0,
                          resync_s=None).start()


def scenario(runs: int, iterations: int, idle_s: float, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    emulator = Emulator(workdir).start()
    operator = None
    try:
        operator = new_operator(emulator)
        driver = JobDriver(KubeApi(load_api_client(str(emulator.kubeconfig))), NAMESPACE)
        driver.summary_metrics = lambda task: PLAUSIBLE_METRICS[task["phase"]]
        names = [f"run{i:03d}" for i in range(runs)]
        started = time.monotonic()
        for name in names:
            driver.create_run(name, tiny_spec(workdir, iterations=iterations))
        jobs_per_run = 1 + 5 * iterations
        drive(driver, names, jobs_per_run, timeout=60 + 6 * runs * iterations)
        wall = time.monotonic() - started
        finished = wait_quiet(emulator, started, 2.0, 30) + 0.001
        working = operator_requests(emulator.requests(), started, finished)
        time.sleep(idle_s)
        idle = operator_requests(emulator.requests(), finished)
        operator.stop()
        operator = None
        restarted = time.monotonic()
        operator = new_operator(emulator)
        wait_quiet(emulator, restarted, QUIET_S, 120)
        restart = operator_requests(emulator.requests(), restarted)
        log = emulator.requests()
    finally:
        if operator is not None:
            operator.stop()
        emulator.stop()
    delays = transitions(log)
    jobs = runs * jobs_per_run
    return {
        "runs": runs, "iterations": iterations, "jobs": jobs, "transitions": len(delays),
        "transition_median_s": round(statistics.median(delays), 4) if delays else None,
        "transition_p95_s": round(percentile(delays, 0.95), 4),
        "transition_max_s": round(max(delays), 4) if delays else None,
        "requests_per_job": round(len(working) / jobs, 2),
        "requests_per_iteration_of_5_jobs": round(5 * len(working) / jobs, 1),
        "requests_breakdown_per_run": {k: round(v / runs, 2) for k, v in
                                       sorted(collections.Counter(kind(r) for r in working).items())},
        "idle_requests_per_minute": round(len(idle) * 60.0 / idle_s, 1) if idle_s else None,
        "restart_requests": len(restart),
        "restart_requests_breakdown": dict(sorted(collections.Counter(kind(r) for r in restart).items())),
        "wall_s": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 20, 100])
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--idle-seconds", type=float, default=60.0,
                        help="how long to count requests with every run finished (the default resync is 60 s)")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for runs in args.runs:
            result = scenario(runs, args.iterations, args.idle_seconds, Path(tmp) / f"runs{runs}")
            print(f"{runs} run(s) x {args.iterations} iteration(s): {json.dumps(result)}", flush=True)
            results[f"runs{runs}"] = result
    summary = {key: {k: v for k, v in result.items() if "breakdown" not in k} for key, result in results.items()}
    summary["note"] = ("kmock emulator on loopback, shared CPU cores; a run's iteration 0 is one Job (the base "
                       "evaluation), each further iteration 5 Jobs")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
