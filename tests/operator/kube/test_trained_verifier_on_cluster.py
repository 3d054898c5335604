"""A run with a trained Verifier on a cluster: the real operator against the kmock emulator, a test driver playing
the Job controller. Each iteration gets a `verifier` Job after its label Job, the next label Job judges with its
checkpoint, and its held-out accuracy reaches status.iterationHistory, the events and the Prometheus metrics."""

from __future__ import annotations

from prometheus_client import generate_latest

from support.kube import tiny_spec, wait_for

TRAINED = {"labeling": {"verifier": "veto"}, "verifier": {"mode": "trained"}}
TRAINED_METRICS = {
    "examples": 50, "train_examples": 40, "held_out": 10, "sources": {"consensus": 44, "oracle": 6, "audit": 0},
    "audit_verdicts": 0, "accuracy_before": 0.4, "accuracy_after": 0.7, "accuracy_after_ci95": [0.4, 0.89],
    "oracle_held_out": 2, "oracle_accuracy_before": 0.5, "oracle_accuracy_after": 1.0, "steps": 5,
    "mean_reward": 0.62, "reward_std": 0.31, "weight_change": 2e-4, "resumed_from_step": None,
}


def events(kube_emulator, namespace: str) -> list[dict]:
    return [r.data for r in kube_emulator.requests()
            if r.method == "POST" and r.path == f"/api/v1/namespaces/{namespace}/events"]


def test_the_verifier_job_trains_after_labelling_and_the_next_label_job_judges_with_its_checkpoint(
    operators, job_driver, tmp_path, kube_emulator
):
    operator = operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=2, **TRAINED))
    for name in ["demo-i000-evaluate-a1"] + [f"demo-i001-{p}-a1" for p in ("challenger", "generate", "label")]:
        job_driver.succeed(job_driver.wait_for_job(name))
    verifier = job_driver.wait_for_job("demo-i001-verifier-a1")
    assert verifier["metadata"]["labels"]["rzero.dev/phase"] == "verifier"
    [task] = job_driver.tasks(verifier)
    assert task["verifier"] == {"source": "builtin:smollm2-135m-instruct"} and task["examples"] == "iter-001/label"
    status = job_driver.status("demo")
    assert status["stage"] == "VerifierTraining"
    job_driver.succeed(verifier, TRAINED_METRICS)

    for name in [f"demo-i001-{p}-a1" for p in ("solver", "evaluate")] + [f"demo-i002-{p}-a1" for p in ("challenger", "generate")]:
        job_driver.succeed(job_driver.wait_for_job(name))
    [label] = job_driver.tasks(job_driver.wait_for_job("demo-i002-label-a1"))
    assert label["verifier"]["model"] == {"artifact": "iter-001/verifier"}
    assert label["verificationConsensus"] == 0.9

    status = job_driver.status("demo")
    record = status["iterationHistory"][1]
    assert record["verifierCheckpoint"] == "iter-001/verifier"
    trained = record["verifierTraining"]
    assert (trained["accuracyBefore"], trained["accuracyAfter"], trained["heldOut"]) == (0.4, 0.7, 10)
    assert trained["oracleAccuracyAfter"] == 1.0 and trained["rewardStd"] == 0.31
    assert status["latestVerifierAccuracy"] == 0.7
    texts = [e["message"] for e in events(kube_emulator, job_driver.namespace) if e["reason"] == "VerifierTrained"]
    assert texts == ["iteration 1: the Verifier trained on 40 of 50 examples; held-out accuracy 40.0% before, 70.0% "
                     "after (n=10); on the 2 oracle-checked: 50.0% before, 100.0% after; reward spread 0.310, weight "
                     "change 2.00e-04"]
    text = wait_for(lambda: (t := generate_latest(operator.app.metrics.registry).decode())
                    and 'rzero_verifier_accuracy{namespace="rzero-test",run="demo"} 0.7' in t and t, 10, "the metric")
    assert 'rzero_verifier_accuracy_lower{namespace="rzero-test",run="demo"} 0.4' in text
