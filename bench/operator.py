"""Operator control-loop benchmark in the kmock Kubernetes API emulator (no cluster needed).

    .venv/bin/python bench/operator.py [--iterations 3] [--runs 100]

Measures, with the real operator (kopf + handlers + reconciler) and a driver playing the Job controller that
completes every Job as soon as it appears:
- transition delay: from the driver marking a Job complete (its PATCH .../jobs/NAME/status arriving at the
  API server) to the operator creating the next Job (its POST .../jobs arriving), median and p95;
- API requests per iteration made by the operator (kopf's watches and our reconciles; the driver's own
  requests are excluded by user agent);
- the same with many runs at once.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.kube import (  # noqa: E402  (the test harness is the emulator + driver)
    DRIVER_AGENT, Emulator, JobDriver, OperatorThread, tiny_spec, wait_for,
)

from rzero_operator.kube.client import KubeApi, load_api_client  # noqa: E402

NAMESPACE = "bench"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


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


def scenario(runs: int, iterations: int, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    emulator = Emulator(workdir).start()
    operator = None
    try:
        operator = OperatorThread(KubeApi(load_api_client(str(emulator.kubeconfig))), NAMESPACE,
                                  tick_s=1.0, resync_s=60.0).start()
        driver = JobDriver(KubeApi(load_api_client(str(emulator.kubeconfig))), NAMESPACE)
        from support.kube import PLAUSIBLE_METRICS

        driver.summary_metrics = lambda task: PLAUSIBLE_METRICS[task["phase"]]
        names = [f"run{i:03d}" for i in range(runs)]
        started = time.monotonic()
        for name in names:
            driver.create_run(name, tiny_spec(workdir, iterations=iterations))
        drive(driver, names, 1 + 5 * iterations, timeout=60 + 6 * runs * iterations)
        wall = time.monotonic() - started
        log = emulator.requests()
    finally:
        if operator is not None:
            operator.stop()
        emulator.stop()
    delays = transitions(log)
    operator_requests = [r for r in log if r.user_agent != DRIVER_AGENT]
    return {
        "runs": runs, "iterations": iterations, "transitions": len(delays),
        "transition_median_s": round(statistics.median(delays), 4),
        "transition_p95_s": round(percentile(delays, 0.95), 4),
        "requests_per_iteration": round(len(operator_requests) / (runs * (iterations + 1)), 1),
        "wall_s": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--runs", type=int, default=100, help="concurrent runs in the second scenario")
    parser.add_argument("--many-iterations", type=int, default=1, help="iterations per run with --runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        single = scenario(1, args.iterations, Path(tmp) / "single")
        print(f"1 run x {args.iterations} iterations: {single}", flush=True)
        many = scenario(args.runs, args.many_iterations, Path(tmp) / "many")
        print(f"{args.runs} runs x {args.many_iterations} iteration(s): {many}", flush=True)
    result = {
        "transition_median_s": single["transition_median_s"],
        "transition_p95_s": single["transition_p95_s"],
        "requests_per_iteration": single["requests_per_iteration"],
        f"runs{args.runs}_transition_median_s": many["transition_median_s"],
        f"runs{args.runs}_transition_p95_s": many["transition_p95_s"],
        f"runs{args.runs}_requests_per_iteration": many["requests_per_iteration"],
        f"runs{args.runs}_wall_s": many["wall_s"],
        "note": "kmock emulator on loopback, 2 shared CPU cores; iteration = one iteration's phases "
                "(iteration 0, the base evaluation, counts as one)",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
