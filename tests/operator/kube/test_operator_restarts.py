"""Restart safety: stopping the operator at any moment and starting another neither duplicates nor loses a
phase; an existing Job is adopted and a lost status is rebuilt from Jobs (and their pods' summaries)."""

from __future__ import annotations

import collections

import pytest

from support.kube import tiny_spec, wait_for

STAGES = ["demo-i000-evaluate-a1"] + [f"demo-i001-{phase}-a1" for phase in
                                     ("challenger", "generate", "label", "solver", "evaluate")]


def job_creations(kube_emulator) -> list[str]:
    return [r.data["metadata"]["name"] for r in kube_emulator.requests()
            if r.method == "POST" and r.path.endswith("/jobs")]


@pytest.mark.fault("operator restart at each stage", outcome="recovered")
@pytest.mark.parametrize("finish_while_down", [False, True], ids=["restart-while-running", "finish-while-down"])
def test_an_operator_restart_in_every_stage_neither_duplicates_nor_loses_a_phase(
    operators, job_driver, tmp_path, kube_emulator, finish_while_down
):
    operator = operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    for name in STAGES:
        job = job_driver.wait_for_job(name)
        operators.stop(operator)
        if finish_while_down:
            job_driver.succeed(job)
        operator = operators.start()
        if not finish_while_down:
            job_driver.succeed(job)
    status = wait_for(lambda: (s := job_driver.status("demo")).get("phase") == "Succeeded" and s, 10, "success")
    assert sorted(job_driver.job_names()) == sorted(STAGES)
    duplicates = [name for name, count in collections.Counter(job_creations(kube_emulator)).items() if count > 1]
    assert duplicates == []  # nothing re-created: the new operator adopted what was there
    assert len(status["iterationHistory"]) == 2 and status["iterationHistory"][1]["questionsKept"] == 6


@pytest.mark.fault("operator status lost", outcome="recovered")
def test_a_lost_status_is_rebuilt_by_adopting_the_existing_jobs(operators, job_driver, tmp_path, kube_emulator):
    operator = operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    for name in STAGES[:3]:
        job_driver.succeed(job_driver.wait_for_job(name))
    running = job_driver.wait_for_job(STAGES[3])  # label, still running
    operators.stop(operator)
    job_driver.api.request("PATCH", "/apis/rzero.dev/v1alpha1/namespaces/rzero-test/rzeroruns/demo/status",
                           body={"status": None}, content_type="application/merge-patch+json")
    assert job_driver.status("demo") == {}
    operators.start()
    status = wait_for(lambda: (s := job_driver.status("demo")).get("current", {}).get("name") == STAGES[3] and s,
                      10, "the status to be rebuilt up to the running label Job")
    assert status["stage"] == "Labeling"
    history = {record["iteration"]: record for record in status["iterationHistory"]}
    assert history[0]["scores"] == {"arithmetic": 0.25}
    assert history[1]["challengerCheckpoint"] == "iter-001/challenger" and history[1]["questionsGenerated"] == 16
    assert sorted(job_driver.job_names()) == sorted(STAGES[:4])
    job_driver.succeed(running)
    job_driver.wait_for_job(STAGES[4])
    assert sorted(job_driver.job_names()) == sorted(STAGES[:5])


def test_sharded_generation_runs_as_one_indexed_job_and_sums_the_shard_summaries(operators, job_driver, tmp_path):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1, sharding={"generate": 3}))
    for name in STAGES[:2]:
        job_driver.succeed(job_driver.wait_for_job(name))
    job = job_driver.wait_for_job(STAGES[2])
    assert (job["spec"]["completionMode"], job["spec"]["completions"], job["spec"]["parallelism"]) == ("Indexed", 3, 3)
    assert [task["shard"]["index"] for task in job_driver.tasks(job)] == [0, 1, 2]
    job_driver.succeed(job)
    job_driver.wait_for_job(STAGES[3])
    record = job_driver.status("demo")["iterationHistory"][1]
    assert record["questionsGenerated"] == 3 * 16 and record["questionsValid"] == 3 * 14
