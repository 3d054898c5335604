"""The operator at scale: a finished run costs no request, a restart costs requests in proportion to the
runs and not to their kept Jobs, the client's pool fits the reconcile workers, and kopf's per-handler lines
stay out of the log unless asked for."""

from __future__ import annotations

import logging
import time

from support.kube import DRIVER_AGENT, tiny_spec, wait_for

from rzero_operator.kube.client import KubeApi, load_api_client
from rzero_operator.kube.job_cache import JobCache, PodCache, RunCache
from rzero_operator.kube.main import KOPF_LOG_ENV, OperatorApp, configure_logging
from rzero_operator.kube.reconcile import Reconciler

JOBS = ["i000-evaluate-a1"] + [f"i001-{phase}-a1" for phase in ("challenger", "generate", "label", "solver", "evaluate")]
STARTUP = {"WATCH", "LIST"}  # kopf's discovery, initial listings and watches: a fixed cost, not per run


def operator_requests(kube_emulator, since: float) -> list:
    return [r for r in kube_emulator.requests() if r.user_agent != DRIVER_AGENT and r.at >= since]


def verb(request) -> str:
    """GET of a named object, LIST, or WATCH (a GET with watch=true); other methods as they are."""
    if request.method != "GET":
        return request.method
    if request.query.get("watch") in ("true", "1"):
        return "WATCH"
    parts = [p for p in request.path.split("/") if p]
    named = "namespaces" in parts[:-1] and len(parts) > parts.index("namespaces") + 3
    return "GET" if named else "LIST"


def finish(job_driver, run: str) -> None:
    for suffix in JOBS:
        job_driver.succeed(job_driver.wait_for_job(f"{run}-{suffix}"))
    wait_for(lambda: job_driver.status(run).get("phase") == "Succeeded", 10, f"{run} to succeed")


def quiet(kube_emulator, since: float, quiet_s: float = 1.0, timeout: float = 20.0) -> float:
    """Wait until the operator has made no request for quiet_s; the monotonic time it went quiet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = max((r.at for r in operator_requests(kube_emulator, since)), default=since)
        if time.monotonic() - last >= quiet_s:
            return last + 0.001
        time.sleep(0.1)
    raise AssertionError("the operator never went quiet")


def test_a_finished_run_makes_no_request_over_many_resync_periods_while_a_running_one_is_resynced(
    operators, job_driver, tmp_path, kube_emulator
):
    # A 0.3 s resync stands in for the default 600 s: 6 s here are 20 resync periods (over three hours).
    operators.start(tick_s=0.05, resync_s=0.3)
    job_driver.create_run("done", tiny_spec(tmp_path, iterations=1))
    finish(job_driver, "done")
    job_driver.create_run("failed", tiny_spec(tmp_path, iterations=1, retry={"maxAttempts": 1}))
    job_driver.fail(job_driver.wait_for_job("failed-i000-evaluate-a1"))
    wait_for(lambda: job_driver.status("failed").get("phase") == "Failed", 10, "the failed run")
    quiet(kube_emulator, 0.0)  # the last status writes of the finished runs are behind us
    job_driver.create_run("running", tiny_spec(tmp_path, iterations=1))
    job_driver.wait_for_job("running-i000-evaluate-a1")
    since = time.monotonic()
    time.sleep(6)
    paths = [r.path for r in operator_requests(kube_emulator, since)]
    assert [p for p in paths if "/done" in p or "/failed" in p] == []
    # The safety net still looks at the run that is not finished (one GET per resync period, about 20).
    assert len([p for p in paths if p.endswith("/rzeroruns/running")]) >= 5


def test_a_restart_with_finished_runs_costs_requests_per_run_not_per_job(operators, job_driver, tmp_path, kube_emulator):
    operator = operators.start()
    runs = [f"run{i}" for i in range(4)]
    for run in runs:
        job_driver.create_run(run, tiny_spec(tmp_path, iterations=1))
        finish(job_driver, run)
    operators.stop(operator)
    restarted = time.monotonic()
    operators.start()
    quiet(kube_emulator, restarted, quiet_s=2.0)
    requests = operator_requests(kube_emulator, restarted)
    per_run = [r for r in requests if verb(r) not in STARTUP]
    # Before: one reconcile per kept Job (6 per run) and one per run's resume, 13 run GETs per run.
    assert len(per_run) <= len(runs), [(r.method, r.path) for r in per_run]
    assert not [r for r in requests if r.method in ("POST", "PATCH", "PUT", "DELETE")]


def test_a_finished_run_whose_spec_changed_while_the_operator_was_down_continues(operators, job_driver, tmp_path):
    operator = operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    finish(job_driver, "demo")
    operators.stop(operator)
    job_driver.patch_spec("demo", {"iterations": 2})  # a new generation: no longer finished
    operators.start()
    job_driver.wait_for_job("demo-i002-challenger-a1")


def test_the_clients_connection_pool_fits_the_reconcile_workers(kube_emulator):
    api = KubeApi(load_api_client(str(kube_emulator.kubeconfig)))
    api.api_client.configuration.connection_pool_maxsize = 2
    OperatorApp(api, workers=16)
    assert api.api_client.configuration.connection_pool_maxsize >= 16
    assert api.api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] >= 16


def test_kopfs_per_handler_lines_are_quiet_by_default_and_can_be_brought_back(monkeypatch):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        monkeypatch.delenv(KOPF_LOG_ENV, raising=False)
        configure_logging()
        assert not logging.getLogger("kopf.objects").isEnabledFor(logging.INFO)
        assert logging.getLogger("kopf.objects").isEnabledFor(logging.WARNING)
        assert logging.getLogger("rzero_operator.kube.reconcile").isEnabledFor(logging.INFO)  # our own lines
        monkeypatch.setenv(KOPF_LOG_ENV, "info")
        configure_logging()
        assert logging.getLogger("kopf.objects").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("kopf.objects").setLevel(logging.NOTSET)



def test_once_the_job_watch_shows_pods_the_look_for_a_failed_create_is_skipped(operators, job_driver, tmp_path,
                                                                               kube_emulator):
    operators.start(tick_s=0.05, resync_s=60)
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    job = job_driver.wait_for_job("demo-i000-evaluate-a1")
    quiet(kube_emulator, 0.0, quiet_s=0.5)  # the start's own requests are done, well within 2 s
    since = time.monotonic()
    job_driver.api.request(  # the Job controller made its pod: status.active
        "PATCH", f"/apis/batch/v1/namespaces/{job_driver.namespace}/jobs/{job['metadata']['name']}/status",
        body={"status": {"active": 1}}, content_type="application/merge-patch+json")
    time.sleep(3)  # past plan.STARTING_POLL_S (2 s) after the start
    assert [(r.method, r.path) for r in operator_requests(kube_emulator, since)] == []
    job_driver.succeed(job)  # the watch still drives the run
    job_driver.wait_for_job("demo-i001-challenger-a1")


def test_a_job_without_pods_is_still_looked_at_within_seconds(operators, job_driver, tmp_path, kube_emulator):
    operators.start(tick_s=0.05, resync_s=60)
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    job_driver.failed_create(job_driver.wait_for_job("demo-i000-evaluate-a1"), 'serviceaccount "x" not found')
    wait_for(lambda: job_driver.status("demo").get("phase") == "Failed", 8, "the FailedCreate to fail the run")


def test_a_status_written_over_a_stale_cached_run_is_refused_and_the_run_read_again(kube_emulator, kube_api,
                                                                                     job_driver, tmp_path):
    namespace = job_driver.namespace
    job_driver.create_run("demo", tiny_spec(tmp_path))
    runs = RunCache()
    reconciler = Reconciler(api=KubeApi(load_api_client(str(kube_emulator.kubeconfig))), read_storage_summaries=False,
                            runs=runs, jobs=JobCache())
    stale = kube_api.get_run(namespace, "demo")
    stale["metadata"]["resourceVersion"] = "0"  # older than the server's "1"
    runs.read(stale)

    def precondition(request):  # what the API server does with a patch that names a resourceVersion
        sent = ((request.data or {}).get("metadata") or {}).get("resourceVersion") if request.method == "PATCH" else None
        return (409, "Conflict", "the object has been modified") if sent not in (None, "1") else None

    kube_emulator.admit(precondition)
    since = time.monotonic()
    outcome = reconciler.reconcile(namespace, "demo", fresh=False)
    assert outcome.created == ["demo-i000-evaluate-a1"]
    status_path = f"/apis/rzero.dev/v1alpha1/namespaces/{namespace}/rzeroruns/demo/status"
    calls = [(r.method, r.path, (r.data or {}).get("metadata", {}).get("resourceVersion") if r.method == "PATCH" else None)
             for r in operator_requests(kube_emulator, since) if "rzeroruns/demo" in r.path]
    assert calls == [("PATCH", status_path, "0"),  # refused: the cached run was stale
                     ("GET", status_path[:-len("/status")], None),  # read again, decided again
                     ("PATCH", status_path, None)]
    assert job_driver.status("demo")["phase"] == "Running"


def test_a_reconcile_from_the_cache_reads_neither_the_run_nor_a_finished_jobs_pods(kube_api, job_driver, tmp_path,
                                                                                    kube_emulator):
    namespace = job_driver.namespace
    job_driver.create_run("demo", tiny_spec(tmp_path))
    reconciler = Reconciler(api=KubeApi(load_api_client(str(kube_emulator.kubeconfig))), read_storage_summaries=False,
                            runs=RunCache(), jobs=JobCache(), pods=PodCache("batch.kubernetes.io/job-name"))
    reconciler.reconcile(namespace, "demo")  # a GET: the run's own trigger
    job = job_driver.wait_for_job("demo-i000-evaluate-a1")
    job_driver.succeed(job)
    reconciler.jobs.seen(job_driver.api.get_job(namespace, job["metadata"]["name"]))  # what the watches show
    for pod in job_driver.api.list_pods(namespace, {"batch.kubernetes.io/job-name": job["metadata"]["name"]}):
        reconciler.pods.seen(pod)
    since = time.monotonic()
    outcome = reconciler.reconcile(namespace, "demo", fresh=False)
    assert outcome.created == ["demo-i001-challenger-a1"]
    kinds = [(r.method, r.path.rsplit("/", 2)[-2] if r.path.endswith("/status") else r.path.rsplit("/", 1)[-1])
             for r in operator_requests(kube_emulator, since)]
    assert kinds == [("POST", "events"), ("PATCH", "demo"), ("POST", "jobs"), ("POST", "events")]
    assert reconciler.pods.of(namespace, job["metadata"]["name"]) == []  # read into the status: not kept
    assert job_driver.status("demo")["iterationHistory"][0]["phases"]["evaluate"]["state"] == "Succeeded"
