"""The real operator (kopf + our handlers) against the kmock API emulator, with a test driver playing the Job
controller: a run goes through its phases as Jobs, retries, fails, suspends, resumes, and is deleted."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from support.kube import tiny_spec, wait_for

K8S_VERSION = "1.33.0"
ITERATION_PHASES = ["challenger", "generate", "label", "solver", "evaluate"]


def expected_jobs(run: str, iterations: int) -> list[str]:
    names = [f"{run}-i000-evaluate-a1"]
    for i in range(1, iterations + 1):
        names += [f"{run}-i{i:03d}-{phase}-a1" for phase in ITERATION_PHASES]
    return names


def drive_to_end(driver, names: list[str]) -> None:
    for name in names:
        driver.succeed(driver.wait_for_job(name))


def wait_for_phase(driver, run: str, phase: str, timeout: float = 10.0) -> dict:
    return wait_for(lambda: (s := driver.status(run)).get("phase") == phase and s, timeout, f"run phase {phase}")


def event_reasons(kube_emulator, namespace: str) -> list[str]:
    return [r.data.get("reason") for r in kube_emulator.requests()
            if r.method == "POST" and r.path == f"/api/v1/namespaces/{namespace}/events"]


def test_a_two_iteration_run_creates_one_job_per_phase_in_order_and_succeeds(operators, job_driver, tmp_path, kube_emulator):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path))
    names = expected_jobs("demo", 2)
    drive_to_end(job_driver, names)
    status = wait_for_phase(job_driver, "demo", "Succeeded")

    creates = [r.data["metadata"]["name"] for r in kube_emulator.requests()
               if r.method == "POST" and r.path.endswith("/jobs")]
    assert creates == names  # in order, each exactly once
    assert status["stage"] == "Done" and status["progress"] == "2/2"
    history = {record["iteration"]: record for record in status["iterationHistory"]}
    assert sorted(history) == [0, 1, 2]
    assert history[1]["questionsKept"] == 6 and history[1]["scores"] == {"arithmetic": 0.25}
    assert history[2]["challengerCheckpoint"] == "iter-002/challenger"
    assert status["keptQuestions"] == 6 and status["latestScore"] == 0.25
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    for job in job_driver.jobs():
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    reasons = event_reasons(kube_emulator, job_driver.namespace)
    assert reasons.count("PhaseStarted") == len(names) and reasons.count("PhaseSucceeded") == len(names)
    assert "RunSucceeded" in reasons


def test_status_is_written_only_through_the_status_subresource(operators, job_driver, tmp_path, kube_emulator):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    drive_to_end(job_driver, expected_jobs("demo", 1))
    wait_for_phase(job_driver, "demo", "Succeeded")
    run_patches = [r for r in kube_emulator.requests()
                   if r.method == "PATCH" and "/rzeroruns/" in r.path]
    via_status = [r for r in run_patches if r.subresource == "status"]
    assert len(via_status) >= 6
    assert all(r.path.endswith("/demo/status") for r in via_status)
    assert not [r for r in run_patches if r.subresource is None and "status" in (r.data or {})]


@pytest.mark.fault("phase Job failed (retryable)", outcome="recovered")
def test_a_failed_attempt_is_retried_as_a_new_job_and_the_run_goes_on(operators, job_driver, tmp_path, kube_emulator):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    job_driver.succeed(job_driver.wait_for_job("demo-i000-evaluate-a1"))
    job_driver.fail(job_driver.wait_for_job("demo-i001-challenger-a1"), exit_code=1, error="CUDA out of memory")
    retry = job_driver.wait_for_job("demo-i001-challenger-a2")
    assert retry["metadata"]["labels"]["rzero.dev/attempt"] == "2"
    status = job_driver.status("demo")
    assert status["failedAttempts"] == 1
    assert status["iterationHistory"][1]["phases"]["challenger"]["message"] == "CUDA out of memory"
    job_driver.succeed(retry)
    drive_to_end(job_driver, expected_jobs("demo", 1)[2:])
    wait_for_phase(job_driver, "demo", "Succeeded")
    assert "PhaseRetry" in event_reasons(kube_emulator, job_driver.namespace)


@pytest.mark.fault("phase Job failed (retryable)", outcome="failed cleanly")
def test_exhausted_retries_fail_the_run_with_a_message_naming_the_phase(operators, job_driver, tmp_path):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    job_driver.succeed(job_driver.wait_for_job("demo-i000-evaluate-a1"))
    drive_to_end(job_driver, ["demo-i001-challenger-a1"])
    job_driver.fail(job_driver.wait_for_job("demo-i001-generate-a1"), error="disk full")
    job_driver.fail(job_driver.wait_for_job("demo-i001-generate-a2"), error="disk full again")
    status = wait_for_phase(job_driver, "demo", "Failed")
    assert "generate" in status["message"] and "disk full again" in status["message"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Failed"] == "True"
    assert "demo-i001-generate-a3" not in job_driver.job_names()


@pytest.mark.fault("phase Job configuration error (exit 2)", outcome="refused")
def test_a_configuration_error_fails_the_run_without_retry(operators, job_driver, tmp_path):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1, retry={"maxAttempts": 5, "backoffSeconds": 0, "maxBackoffSeconds": 0}))
    job_driver.fail(job_driver.wait_for_job("demo-i000-evaluate-a1"), exit_code=2, error="benchmark path missing")
    status = wait_for_phase(job_driver, "demo", "Failed")
    assert "configuration error" in status["message"] and "evaluate" in status["message"]
    assert job_driver.job_names() == ["demo-i000-evaluate-a1"]


def test_suspend_lets_the_running_phase_finish_then_resume_continues(operators, job_driver, tmp_path):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    running = job_driver.wait_for_job("demo-i000-evaluate-a1")
    job_driver.patch_spec("demo", {"suspend": True})
    wait_for(lambda: {c["type"]: c["reason"] for c in job_driver.status("demo").get("conditions", [])}.get("Suspended") == "SuspendPending",
             10, "the suspend to be noticed")
    job_driver.succeed(running)
    wait_for_phase(job_driver, "demo", "Suspended")
    assert job_driver.job_names() == ["demo-i000-evaluate-a1"]
    job_driver.patch_spec("demo", {"suspend": False})
    drive_to_end(job_driver, expected_jobs("demo", 1)[1:])
    wait_for_phase(job_driver, "demo", "Succeeded")


def test_suspend_with_stop_deletes_the_running_job_and_resume_starts_it_again(operators, job_driver, tmp_path, kube_emulator):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    job_driver.succeed(job_driver.wait_for_job("demo-i000-evaluate-a1"))
    job_driver.wait_for_job("demo-i001-challenger-a1")
    job_driver.patch_spec("demo", {"suspend": True, "stopRunningOnSuspend": True})
    wait_for_phase(job_driver, "demo", "Suspended")
    wait_for(lambda: "demo-i001-challenger-a1" not in job_driver.job_names(), 10, "the running Job to be deleted")
    deletes = [r for r in kube_emulator.requests() if r.method == "DELETE" and r.path.endswith("/jobs/demo-i001-challenger-a1")]
    assert deletes and deletes[0].data["propagationPolicy"] == "Background"
    job_driver.patch_spec("demo", {"suspend": False})
    job_driver.wait_for_job("demo-i001-challenger-a1")  # the same attempt starts again: nothing was lost


def test_raising_iterations_on_a_finished_run_continues_it(operators, job_driver, tmp_path):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    drive_to_end(job_driver, expected_jobs("demo", 1))
    wait_for_phase(job_driver, "demo", "Succeeded")
    job_driver.patch_spec("demo", {"iterations": 2})
    drive_to_end(job_driver, expected_jobs("demo", 2)[6:])
    status = wait_for(lambda: (s := job_driver.status("demo")).get("phase") == "Succeeded" and s.get("progress") == "2/2" and s,
                      10, "the second iteration to finish")
    assert len(status["iterationHistory"]) == 3


def test_an_invalid_spec_gets_a_condition_naming_the_field_and_no_job(operators, job_driver, tmp_path, kube_emulator):
    operators.start()
    job_driver.create_run("bad", tiny_spec(tmp_path, labeling={"samples": 0}))
    status = wait_for(lambda: job_driver.status("bad").get("conditions") and job_driver.status("bad"), 10, "a condition")
    condition = {c["type"]: c for c in status["conditions"]}["SpecValid"]
    assert condition["status"] == "False" and "spec.labeling.samples" in condition["message"]
    assert job_driver.job_names() == []
    assert "InvalidSpec" in event_reasons(kube_emulator, job_driver.namespace)
    job_driver.patch_spec("bad", {"labeling": {"samples": 4}})  # fixing the spec starts the run
    job_driver.wait_for_job("bad-i000-evaluate-a1")


def test_every_object_of_a_run_is_owned_by_it_so_deleting_the_run_deletes_them(operators, job_driver, tmp_path, kube_emulator):
    operators.start()
    created = job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    job_driver.succeed(job_driver.wait_for_job("demo-i000-evaluate-a1"))
    job_driver.wait_for_job("demo-i001-challenger-a1")
    posts = [r.data for r in kube_emulator.requests() if r.method == "POST" and r.data and r.data.get("kind") in ("Job", "ConfigMap")]
    assert [obj["kind"] for obj in posts] == ["Job", "Job"]  # the tasks travel inline: no ConfigMap
    for obj in posts:
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner["uid"] == created["metadata"]["uid"] and owner["controller"] and owner["blockOwnerDeletion"]
    job_driver.delete_run("demo")
    before = len(kube_emulator.requests())
    job_driver.succeed(job_driver.jobs()[-1])  # a Job finishing after its run is gone starts nothing
    wait_for(lambda: len(kube_emulator.requests()) > before + 3, 5, "the operator to see the Job event")
    assert sorted(job_driver.job_names()) == ["demo-i000-evaluate-a1", "demo-i001-challenger-a1"]


def test_no_secret_value_reaches_status_events_or_jobs(operators, job_driver, tmp_path, kube_emulator):
    operators.start()
    spec = tiny_spec(tmp_path, iterations=1, storage={"uri": "s3://bucket/runs", "endpoint": "http://127.0.0.1:9",
                                                     "secretRef": {"name": "s3-creds"}})
    job_driver.create_run("demo", spec)
    job_driver.fail(job_driver.wait_for_job("demo-i000-evaluate-a1"), error="auth failed: AWS_SECRET_ACCESS_KEY=hunter2hunter2")
    job_driver.wait_for_job("demo-i000-evaluate-a2")
    written = json.dumps([r.data for r in kube_emulator.requests() if r.method in ("POST", "PATCH")])
    assert "hunter2hunter2" not in json.dumps([r.data for r in kube_emulator.requests()
                                               if r.path.endswith("/events")])
    assert "secretKeyRef" in written and "hunter2" not in json.dumps(job_driver.jobs())
