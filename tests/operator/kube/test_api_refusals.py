"""What a real API server refuses becomes a visible outcome within one reconcile (issue 13).

The kmock emulator stores whatever it is given; `support.kube_admission` makes it answer as a real server
does (422 for an invalid pod template, 403 for an exhausted quota, 400 for NaN in a body, FailedCreate
events from the Job controller). For each class the run reaches its documented outcome — Failed for what
no retry can fix, retried with backoff for the rest — with the server's message in a condition and a
Warning event, and never a silent loop.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from support.kube import tiny_spec, wait_for
from support.kube_admission import (
    fail_status_writes, json_numbers_only, pod_template_validation, quota_exceeded, still_there_until,
)

BAD_AFFINITY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
    "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "Bogus", "values": ["a"]}]}]}}}


def condition(status: dict, type_: str) -> dict:
    return next(c for c in status.get("conditions", []) if c["type"] == type_)


def warnings(emulator, namespace: str) -> list[dict]:
    return [e for e in emulator.events(namespace) if e.get("type") == "Warning"
            and (e.get("involvedObject") or {}).get("kind") == "RZeroRun"]


def job_posts(emulator) -> list[str]:
    return [r.data["metadata"]["name"] for r in emulator.requests() if r.method == "POST" and r.path.endswith("/jobs")]


@pytest.mark.parametrize(("resources", "server_says"), [
    ({"affinity": BAD_AFFINITY}, 'operator: Unsupported value: "Bogus"'),
    ({"nodeSelector": {"not a label key": "x"}}, "spec.template.spec.nodeSelector: Invalid value: 'not a label key'"),
], ids=["affinity", "nodeSelector-key"])
def test_a_job_the_server_refuses_as_invalid_fails_the_run_with_the_servers_message(
        operators, job_driver, tmp_path, kube_emulator, resources, server_says):
    kube_emulator.admit(pod_template_validation())
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, resources={"gpus": 0, "cpu": "1", "memory": "1Gi", **resources}))
    status = wait_for(lambda: (s := job_driver.status("demo")).get("phase") == "Failed" and s, 10, "run Failed")
    assert "HTTP 422 Invalid" in status["message"] and server_says in status["message"]
    assert condition(status, "Failed")["status"] == "True" and server_says in condition(status, "Failed")["message"]
    (run_failed,) = [e for e in warnings(kube_emulator, job_driver.namespace) if e["reason"] == "RunFailed"]
    assert server_says in run_failed["message"]
    assert job_posts(kube_emulator) == ["demo-i000-evaluate-a1"]  # one refused create, no loop
    assert job_driver.jobs() == []


def test_an_exhausted_quota_is_retried_with_backoff_and_the_servers_message(
        operators, job_driver, tmp_path, kube_emulator):
    kube_emulator.admit(quota_exceeded(times=1))
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, retry={"maxAttempts": 3, "backoffSeconds": 1,
                                                            "maxBackoffSeconds": 1}))
    retrying = wait_for(lambda: (s := job_driver.status("demo")).get("current", {}).get("retryAt") and s, 10,
                        "a retry to be scheduled")
    assert "exceeded quota: gpu-quota" in retrying["message"] and "retrying in 1s" in retrying["message"]
    assert condition(retrying, "Progressing")["reason"] == "Retrying"
    assert "exceeded quota" in condition(retrying, "Progressing")["message"]
    job_driver.wait_for_job("demo-i000-evaluate-a2")  # quota free again: attempt 2 runs
    (retry,) = [e for e in warnings(kube_emulator, job_driver.namespace) if e["reason"] == "PhaseRetry"]
    assert "HTTP 403 Forbidden" in retry["message"]
    assert job_posts(kube_emulator) == ["demo-i000-evaluate-a1", "demo-i000-evaluate-a2"]


def test_a_job_whose_pods_cannot_be_created_fails_the_run_and_is_stopped(
        operators, job_driver, tmp_path, kube_emulator):
    operators.start(resync_s=0.5)
    job_driver.create_run("demo", tiny_spec(tmp_path, resources={"gpus": 0, "cpu": "1", "memory": "1Gi",
                                                                  "serviceAccountName": "trainer"}))
    job = job_driver.wait_for_job("demo-i000-evaluate-a1")
    server_says = ('Error creating: pods "demo-i000-evaluate-a1-" is forbidden: error looking up service account '
                   'rzero-test/trainer: serviceaccount "trainer" not found')
    job_driver.failed_create(job, server_says)
    status = wait_for(lambda: (s := job_driver.status("demo")).get("phase") == "Failed" and s, 10, "run Failed")
    assert server_says in status["message"] and "configuration error" in status["message"]
    assert server_says in condition(status, "Failed")["message"]
    assert any(server_says in e["message"] for e in warnings(kube_emulator, job_driver.namespace))
    wait_for(lambda: job_driver.jobs() == [], 5, "the stuck Job to be deleted")


def test_a_nan_in_a_summary_fails_the_attempt_and_never_reaches_a_status_patch(
        operators, job_driver, tmp_path, kube_emulator):
    kube_emulator.admit(json_numbers_only())
    operators.start()
    # A 2 s backoff keeps the retrying status visible long enough to read: with no backoff the retry can
    # start (and clear retryAt) between two polls on a loaded machine.
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1, retry={"maxAttempts": 2, "backoffSeconds": 2,
                                                                          "maxBackoffSeconds": 2}))
    job_driver.succeed(job_driver.wait_for_job("demo-i000-evaluate-a1"),
                       metrics={"scores": {"arithmetic": {"accuracy": float("nan"), "n": 3}}, "mean_accuracy": 0.1})
    status = wait_for(lambda: (s := job_driver.status("demo")).get("current", {}).get("retryAt") and s, 10,
                      "the attempt to fail")
    assert "summary is not JSON (NaN is not a number)" in status["message"]
    assert any("NaN is not a number" in e["message"] for e in warnings(kube_emulator, job_driver.namespace))
    job_driver.succeed(job_driver.wait_for_job("demo-i000-evaluate-a2"))  # a good attempt goes on as usual
    job_driver.wait_for_job("demo-i001-challenger-a1")
    status_writes = [r for r in kube_emulator.requests() if r.path.endswith("/status") and r.method == "PATCH"
                     and "rzeroruns" in r.path]
    for write in status_writes:
        json.dumps(write.data, allow_nan=False)  # raises on any NaN/Infinity that reached the server


def test_a_stale_configmap_of_a_deleted_run_is_replaced_never_mounted(operators, job_driver, tmp_path, kube_api,
                                                                      monkeypatch):
    monkeypatch.setattr("rzero_operator.kube.jobs.INLINE_TASKS_LIMIT", 0)  # tasks too large to travel inline
    namespace = job_driver.namespace
    stale_task = {"storage": {"uri": "s3://rzero-test/runs/rzero-test/demo/OLD-UID"}}
    kube_api.create_core(namespace, "configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "demo-i000-evaluate-a1", "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "rzero-operator"},
                     "ownerReferences": [{"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "name": "demo",
                                          "uid": "OLD-UID", "controller": True}]},
        "data": {"task.json": json.dumps(stale_task)}})
    operators.start()
    created = job_driver.create_run("demo", tiny_spec(tmp_path))
    job = job_driver.wait_for_job("demo-i000-evaluate-a1")
    (task,) = job_driver.tasks(job)
    assert created["metadata"]["uid"] in task["storage"]["uri"] and "OLD-UID" not in task["storage"]["uri"]
    owners = job_driver.config_map("demo-i000-evaluate-a1")["metadata"]["ownerReferences"]
    assert [ref["uid"] for ref in owners] == [created["metadata"]["uid"]]


def test_a_configmap_being_deleted_is_waited_for(operators, job_driver, tmp_path, kube_api, kube_emulator, monkeypatch):
    monkeypatch.setattr("rzero_operator.kube.jobs.INLINE_TASKS_LIMIT", 0)  # tasks too large to travel inline
    namespace = job_driver.namespace
    gone = threading.Event()
    kube_api.create_core(namespace, "configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "demo-i000-evaluate-a1", "namespace": namespace, "deletionTimestamp": "2026-01-01T00:00:00Z",
                     "labels": {"app.kubernetes.io/managed-by": "rzero-operator"},
                     "ownerReferences": [{"kind": "RZeroRun", "name": "demo", "uid": "OLD-UID", "controller": True}]},
        "data": {}})
    kube_emulator.admit(still_there_until("configmaps", "demo-i000-evaluate-a1", gone))
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path))
    wait_for(lambda: job_driver.status("demo").get("phase") == "Running", 10, "the run to start")
    assert job_driver.jobs() == []  # the old task is never mounted
    time.sleep(1.0)
    assert job_driver.jobs() == []
    gone.set()  # its finalizers ran: the server removes it (kmock already hides a deleting object)
    job_driver.wait_for_job("demo-i000-evaluate-a1", timeout=10)


@pytest.mark.parametrize("field", ["storage", "corpus", "anchors"])
def test_a_local_path_is_refused_on_a_cluster(operators, job_driver, tmp_path, kube_emulator, field):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, **{field: {"uri": str(tmp_path / "local")}}))
    status = wait_for(lambda: (s := job_driver.status("demo")).get("conditions") and s, 10, "a condition")
    spec_valid = condition(status, "SpecValid")
    assert spec_valid["status"] == "False" and spec_valid["reason"] == "InvalidSpec"
    assert f"spec.{field}.uri: a local path cannot be used on a cluster" in spec_valid["message"]
    assert any("a local path cannot be used" in e["message"] for e in warnings(kube_emulator, job_driver.namespace))
    assert job_driver.jobs() == []


def test_events_survive_a_failed_status_write_and_are_never_doubled(operators, job_driver, tmp_path, kube_emulator):
    """The operator posts a transition's events, then fails to write the status (as if it died there); the
    next reconcile re-decides the same transition: the same event names, answered 409, one event each."""
    kube_emulator.admit(fail_status_writes(times=2))
    operators.start()
    operators.start()  # a second replica deciding the same transitions
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    job_driver.succeed(job_driver.wait_for_job("demo-i000-evaluate-a1"))
    job_driver.wait_for_job("demo-i001-challenger-a1")
    wait_for(lambda: job_driver.status("demo").get("current", {}).get("phase") == "challenger", 10, "status")
    reasons = [e["reason"] for e in kube_emulator.events(job_driver.namespace)
               if (e.get("involvedObject") or {}).get("kind") == "RZeroRun"]
    assert reasons.count("PhaseStarted") == 2 and reasons.count("PhaseSucceeded") == 1
    posts = [r for r in kube_emulator.requests() if r.method == "POST" and r.path.endswith("/events")]
    assert len(posts) > len(reasons)  # some were re-posts, refused with 409
