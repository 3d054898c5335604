"""The real operator (kopf) against the kmock API emulator answering with faults: a flaky API server
(5xx on creates, reads and lists), status writes that fail, conflicts, and a watch that expires (410).
Each run still goes through every stage to Succeeded, with every Job created exactly once.

Operator restarts at every stage are rows too: tests/operator/kube/test_operator_restarts.py."""

from __future__ import annotations

import collections

import pytest

from support.kube import tiny_spec, wait_for
from support.kube_faults import ApiFaults

STAGES = ["demo-i000-evaluate-a1"] + [f"demo-i001-{phase}-a1" for phase in
                                     ("challenger", "generate", "label", "solver", "evaluate")]
RUNS = "/apis/rzero.dev/v1alpha1/namespaces/rzero-test/rzeroruns"


def drive_to_success(job_driver, tmp_path) -> dict:
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    for name in STAGES:
        job_driver.succeed(job_driver.wait_for_job(name, timeout=60))
    return wait_for(lambda: (s := job_driver.status("demo")).get("phase") == "Succeeded" and s, 60, "success")


def assert_each_job_created_once(kube_emulator, fault_losses) -> None:
    created = collections.Counter(r.data["metadata"]["name"] for r in kube_emulator.requests()
                                  if r.method == "POST" and r.path.endswith("/jobs") and isinstance(r.data, dict))
    assert sorted(created) == sorted(STAGES)
    fault_losses.add(sum(count - 1 for count in created.values()), "Jobs created twice")


@pytest.mark.fault("API server 5xx", outcome="recovered")
@pytest.mark.parametrize("method, path, status", [
    ("POST", r"/jobs$", 503),
    ("POST", r"/configmaps$", 500),
    ("GET", r"/jobs$", 503),
    ("GET", r"/pods$", 504),
], ids=["create-job-503", "create-configmap-500", "list-jobs-503", "list-pods-504"])
def test_a_flaky_api_server_is_retried_and_the_run_succeeds(
    operators, job_driver, kube_emulator, tmp_path, method, path, status, fault_losses, monkeypatch
):
    if "configmaps" in path:  # only tasks too large to travel inline make a ConfigMap
        monkeypatch.setattr("rzero_operator.kube.jobs.INLINE_TASKS_LIMIT", 0)
    faults = ApiFaults(kube_emulator)
    faults.add(method, path, status, times=3)
    operators.start()
    status_doc = drive_to_success(job_driver, tmp_path)
    assert len(faults.injected) == 3
    assert len(status_doc["iterationHistory"]) == 2
    assert_each_job_created_once(kube_emulator, fault_losses)


@pytest.mark.fault("status writes fail", outcome="recovered")
@pytest.mark.parametrize("status", [500, 409, 429])
def test_failing_status_writes_are_retried_without_duplicating_work(
    operators, job_driver, kube_emulator, tmp_path, status, fault_losses
):
    faults = ApiFaults(kube_emulator)
    faults.add("PATCH", r"/rzeroruns/demo(/status)?$", status, times=4)
    operators.start()
    status_doc = drive_to_success(job_driver, tmp_path)
    assert len(faults.injected) == 4
    assert status_doc["iterationHistory"][1]["questionsKept"] == 6
    assert_each_job_created_once(kube_emulator, fault_losses)


@pytest.mark.fault("watch expired (410 Gone)", outcome="recovered")
def test_an_expired_watch_is_restarted_and_no_run_is_missed(operators, job_driver, kube_emulator, tmp_path, fault_losses):
    faults = ApiFaults(kube_emulator)
    faults.add("GET", rf"{RUNS}$|/rzeroruns$", 410, times=2, query="watch")
    operators.start()
    drive_to_success(job_driver, tmp_path)
    assert faults.injected, "the watch was never refused: the fault did not apply"
    assert_each_job_created_once(kube_emulator, fault_losses)


@pytest.mark.fault("worker killed by the OOM killer (exit 137)", outcome="failed cleanly")
@pytest.mark.parametrize("reason", ["OOMKilled", "Error"])
def test_a_pod_killed_for_memory_is_reported_as_such_and_retried(operators, job_driver, tmp_path, reason):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    job = job_driver.wait_for_job(STAGES[0])
    job_driver.killed(job, exit_code=137, reason=reason)  # no termination message: SIGKILL leaves none
    retried = job_driver.wait_for_job("demo-i000-evaluate-a2", timeout=30)
    status = job_driver.status("demo")
    expected = ("ran out of memory (OOMKilled, exit code 137)" if reason == "OOMKilled"
                else "killed by SIGKILL (exit code 137; out of memory?)")
    phase = status["iterationHistory"][0]["phases"]["evaluate"]
    assert expected in phase["message"] and phase["attempts"] == 2, phase
    job_driver.succeed(retried)
