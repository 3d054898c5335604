"""Operator control-loop benchmark: the kmock API emulator (no cluster needed) and, with --server, a real one.

    .venv/bin/python bench/operator.py [--runs 1 20] [--iterations 1] [--idle-seconds 60] [--server]

For each number of runs N: N runs of `--iterations` iterations are created at once and a driver playing
the Job controller completes every Job as soon as it appears. With the real operator (kopf + handlers +
reconciler, its default 1 s tick and resync) it measures:
- transition delay: from the driver marking a Job complete (its PATCH .../jobs/NAME/status arriving at the
  API server) to the operator creating the next Job (its POST .../jobs arriving), median and p95;
- API requests made by the operator (kopf's watches and our reconciles; the driver's own requests are
  excluded by user agent) per Job and per iteration of 5 Jobs, with a breakdown by verb and resource;
- idle requests per minute once every run has finished (over `--idle-seconds`);
- restart requests: a new operator started against the N finished runs (and their Jobs), counted until
  it has been quiet for 5 s;
- with --server, idle requests per minute with N more runs running (pods that never finish), once quiet.
`--server` does the same on a real control plane too (tests/support/control_plane.py: kube-apiserver, etcd
and kube-controller-manager from KUBEBUILDER_ASSETS or ../shared/k8s; pods finished by the kubelet stand-in),
with `rzero operator` as a process under a ServiceAccount of its own, requests counted from the API
server's audit log, and the operator's peak RSS and CPU seconds. There the transition delay runs from the Job
controller's last status write of a Job (the one that marks it complete) to the operator's create of the run's
next Job, both from the audit log.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.kube import (  # noqa: E402  (the test harness is the emulator + driver)
    DRIVER_AGENT, PLAUSIBLE_METRICS, Emulator, JobDriver, OperatorThread, tiny_spec, wait_for,
)

from support.control_plane import ControlPlane, find_assets  # noqa: E402
from support.kubelet import Kubelet, succeed_with  # noqa: E402
from support.operator_process import OperatorProcess  # noqa: E402
from support.tools import extract  # noqa: E402

from rzero_operator.kube.client import KubeApi, load_api_client  # noqa: E402

NAMESPACE = "bench"
QUIET_S = 5.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))] if ordered else 0.0



def request_figures(working, idle, restart, kind, *, runs: int, jobs: int, idle_s: float) -> dict:
    """The request counts both back ends report (kmock's request log, the real server's audit log)."""
    return {
        "requests_per_job": round(len(working) / jobs, 2),
        "requests_per_iteration_of_5_jobs": round(5 * len(working) / jobs, 1),
        "requests_breakdown_per_run": {k: round(v / runs, 2) for k, v in
                                       sorted(collections.Counter(kind(r) for r in working).items())},
        "idle_requests_per_minute": round(len(idle) * 60.0 / idle_s, 1) if idle_s else None,
        "restart_requests": len(restart),
        "restart_requests_breakdown": dict(sorted(collections.Counter(kind(r) for r in restart).items())),
    }

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
        **request_figures(working, idle, restart, kind, runs=runs, jobs=jobs, idle_s=idle_s),
        "wall_s": round(wall, 2),
    }


# ------------------------------------------------------------------------------ real control plane


def audit_kind(event: dict) -> str:
    ref = event.get("objectRef") or {}
    return f"{event.get('verb')} {ref.get('resource', event.get('requestURI', '?'))}" + (
        f"/{ref['subresource']}" if ref.get("subresource") else "")


def operator_identity(plane: ControlPlane, namespace: str) -> tuple[Path, str]:
    """A ServiceAccount bound to cluster-admin (the bench counts requests; RBAC is the tests' subject)."""
    name = "bench-operator"
    kubeconfig = plane.service_account_kubeconfig(namespace, name)
    plane.kube_api().request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", body={
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{namespace}-{name}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]})
    return kubeconfig, f"system:serviceaccount:{namespace}:{name}"


def start_up(event: dict) -> bool:
    """kopf's start-up: discovery (no namespace), its watches and initial listings (ours, a Job's pods or
    Events, name the Job in a selector)."""
    uri = event.get("requestURI", "")
    return (event.get("verb") == "watch" or not (event.get("objectRef") or {}).get("namespace")
            or (event.get("verb") == "list" and "fieldSelector" not in uri and "job-name" not in uri))


def audit_quiet(plane: ControlPlane, user: str, quiet_s: float, timeout: float) -> list[dict]:
    """The user's audit events once none has come for quiet_s (the log is written in 1 s batches)."""
    deadline, count, since = time.monotonic() + timeout, -1, time.monotonic()
    while True:
        events = plane.audit_events(user=user)
        if len(events) != count:
            count, since = len(events), time.monotonic()
        elif time.monotonic() - since >= quiet_s + 1.0 or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def _at(event: dict, key: str) -> float:
    return datetime.fromisoformat(event[key].replace("Z", "+00:00")).timestamp()


def server_transitions(events: list[dict], user: str) -> list[float]:
    """Per run, from the last status write of each Job by the Job controller before the run's next Job was
    created (the write that completed it) to that create (the operator's POST arriving)."""
    writes: dict[str, list[float]] = {}
    created: dict[str, list[tuple[float, str]]] = {}
    for event in events:
        ref = event.get("objectRef") or {}
        if ref.get("resource") != "jobs" or not ref.get("name") or (event.get("responseStatus") or {}).get("code", 200) >= 300:
            continue
        if ref.get("subresource") == "status" and event.get("verb") in ("update", "patch"):
            writes.setdefault(ref["name"], []).append(_at(event, "stageTimestamp"))
        elif event.get("verb") == "create" and event.get("user", {}).get("username") == user:
            created.setdefault(ref["name"].split("-i")[0], []).append((_at(event, "requestReceivedTimestamp"), ref["name"]))
    delays = []
    for jobs in created.values():
        jobs.sort()
        for (_, previous), (at, _) in zip(jobs, jobs[1:]):
            before = [t for t in writes.get(previous, []) if t <= at]
            if before:
                delays.append(at - max(before))
    return delays


def usage(pid: int) -> tuple[float, float]:
    """(peak RSS in MB, CPU seconds) of a live process, from /proc."""
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmHWM:")) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def create_runs(api: KubeApi, namespace: str, names: list[str], iterations: int, workdir: Path) -> None:
    for name in names:
        api.request("POST", f"/apis/rzero.dev/v1alpha1/namespaces/{namespace}/rzeroruns", body={
            "apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": name},
            "spec": tiny_spec(workdir, iterations=iterations)})


def running_idle(plane: ControlPlane, api: KubeApi, kubelet: Kubelet, user: str, namespace: str, runs: int,
                 idle_s: float, workdir: Path) -> float:
    """Requests per minute with `runs` runs running (their first Job's pods never finish), once quiet."""
    kubelet.outcome = lambda pod, task: None
    names = [f"live{i:03d}" for i in range(runs)]
    create_runs(api, namespace, names, 1, workdir)
    for name in names:
        wait_for(lambda name=name: (api.get_run(namespace, name).get("status") or {}).get("current"),
                 120 + runs, f"{name} to start")
    before = len(audit_quiet(plane, user, QUIET_S, 120))
    time.sleep(idle_s)
    return round((len(plane.audit_events(user=user)) - before) * 60.0 / idle_s, 1)


def server_scenario(plane: ControlPlane, runs: int, iterations: int, idle_s: float, workdir: Path) -> dict:
    namespace = plane.new_namespace(f"bench{runs}")
    kubeconfig, user = operator_identity(plane, namespace)
    api = plane.kube_api()
    kubelet = Kubelet(api, namespace, succeed_with(PLAUSIBLE_METRICS)).start()
    operator = OperatorProcess(kubeconfig, ["--namespace", namespace], workdir).start()
    try:
        started = time.monotonic()
        names = [f"run{i:03d}" for i in range(runs)]
        create_runs(api, namespace, names, iterations, workdir)
        for name in names:
            wait_for(lambda name=name: (api.get_run(namespace, name).get("status") or {}).get("phase")
                     in ("Succeeded", "Failed"), 120 + 10 * runs, f"{name} to finish")
        wall = time.monotonic() - started
        working = audit_quiet(plane, user, 2.0, 60)
        time.sleep(idle_s)
        idle = plane.audit_events(user=user)[len(working):]
        rss, cpu = usage(operator.process.pid)
        operator.kill()  # SIGKILL, then a fresh operator against the finished runs
        operator = OperatorProcess(kubeconfig, ["--namespace", namespace], workdir).start()
        restart = audit_quiet(plane, user, QUIET_S, 120)[len(working) + len(idle):]
        running = running_idle(plane, api, kubelet, user, namespace, runs, idle_s, workdir)
    finally:
        operator.terminate()
        kubelet.stop()
    jobs = runs * (1 + 5 * iterations)
    delays = server_transitions(plane.audit_events(namespace=namespace), user)
    after_start = [e for e in working if not start_up(e)]
    return {
        "runs": runs, "iterations": iterations, "jobs": jobs, "transitions": len(delays),
        "transition_median_s": round(statistics.median(delays), 4) if delays else None,
        "transition_p95_s": round(percentile(delays, 0.95), 4),
        "transition_max_s": round(max(delays), 4) if delays else None,
        **request_figures(working, idle, restart, audit_kind, runs=runs, jobs=jobs, idle_s=idle_s),
        "requests_per_iteration_after_start_up": round(5 * len(after_start) / jobs, 1),
        "idle_requests_per_minute_all_running": running,
        "peak_rss_mb": round(rss, 1), "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
    }


def on_server(args: argparse.Namespace, tmp: Path) -> dict:
    assets = find_assets()
    if assets is None:
        raise SystemExit("--server: no control-plane binaries (set KUBEBUILDER_ASSETS)")
    plane = ControlPlane(assets=assets, workdir=tmp / "k8s", kubectl_binary=extract("kubectl133"))
    results = {}
    try:
        plane.start()
        plane.apply_crd(REPO / "crds" / "rzeroruns.rzero.dev.yaml")
        for runs in args.runs:
            result = server_scenario(plane, runs, args.iterations, args.idle_seconds, tmp)
            print(f"server, {runs} run(s) x {args.iterations} iteration(s): {json.dumps(result)}", flush=True)
            results[f"server_runs{runs}"] = result
    finally:
        plane.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 20],
                        help="numbers of concurrent runs (100 works; on kmock it takes minutes, bound by the emulator)")
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--idle-seconds", type=float, default=60.0,
                        help="how long to count requests with every run finished")
    parser.add_argument("--server", action="store_true", help="also on a real control plane")
    parser.add_argument("--no-kmock", action="store_true", help="only on the real control plane")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for runs in [] if args.no_kmock else args.runs:
            result = scenario(runs, args.iterations, args.idle_seconds, Path(tmp) / f"runs{runs}")
            print(f"{runs} run(s) x {args.iterations} iteration(s): {json.dumps(result)}", flush=True)
            results[f"runs{runs}"] = result
        if args.server or args.no_kmock:
            results.update(on_server(args, Path(tmp)))
    summary = {key: {k: v for k, v in result.items() if "breakdown" not in k} for key, result in results.items()}
    summary["note"] = ("runsN: kmock emulator on loopback; server_runsN: real kube-apiserver v1.36 + etcd + "
                       "kube-controller-manager on loopback (audit log); shared CPU cores; a run's iteration 0 is "
                       "one Job (the base evaluation), each further iteration 5 Jobs")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
