"""A run with the Verifier's veto on a cluster: the real operator against the kmock emulator, a test driver playing
the Job controller. The label Job gets the Verifier (task and API key by Secret reference); the veto's figures reach
status.iterationHistory, the events and the label accuracy the guard reads."""

from __future__ import annotations

from support.kube import PLAUSIBLE_METRICS, tiny_spec, wait_for

VERIFIER = {"endpoint": {"url": "https://verifier.example.com/v1", "model": "judge-8b", "apiKeyEnv": "VERIFIER_KEY",
                         "apiKeySecret": {"name": "verifier-key", "key": "token"}}}
VETO_LABEL = {
    **PLAUSIBLE_METRICS["label"], "kept": 30,
    "dropped": {"out_of_band": 6, "verifier_rejected": 8, "verifier_unparsable": 1, "verifier_unavailable": 1},
    "oracle": "arithmetic", "oracle_checked": 30, "oracle_correct": 24, "label_accuracy": 0.8,
    "oracles": {"arithmetic": {"asked": 40, "checked": 40, "correct": 27}},
    "verifier": {"source": "endpoint", "judged": 40, "approved": 30, "rejected": 8, "unparsable": 1, "unavailable": 1,
                 "oracle": "arithmetic", "checked_before": 40, "correct_before": 27, "checked_after": 30,
                 "correct_after": 24, "correct_vetoed": 3, "wrong_vetoed": 7, "oracle_compared": 39, "oracle_agreed": 29,
                 "requests": 42, "retries": 2, "malformed": 1, "failed": 1, "over_budget": 0},
}


def events(kube_emulator, namespace: str) -> list[dict]:
    return [r.data for r in kube_emulator.requests()
            if r.method == "POST" and r.path == f"/api/v1/namespaces/{namespace}/events"]


def test_the_vetoed_labels_and_their_effect_on_label_accuracy_are_in_status_and_events(
    operators, job_driver, tmp_path, kube_emulator
):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1, labeling={"verifier": "veto"}, verifier=VERIFIER))
    for name in ["demo-i000-evaluate-a1"] + [f"demo-i001-{p}-a1" for p in ("challenger", "generate")]:
        job_driver.succeed(job_driver.wait_for_job(name))
    label = job_driver.wait_for_job("demo-i001-label-a1")
    env = label["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "VERIFIER_KEY", "valueFrom": {"secretKeyRef": {"name": "verifier-key", "key": "token"}}} in env
    [task] = job_driver.tasks(label)
    assert task["settings"]["verifier"] == "veto" and task["verifier"]["endpoint"]["model"] == "judge-8b"
    job_driver.succeed(label, VETO_LABEL)

    status = wait_for(lambda: (s := job_driver.status("demo")) and len(s.get("iterationHistory", [])) > 1
                      and s["iterationHistory"][1].get("verifier") and s, 10, "the veto in the history")
    record = status["iterationHistory"][1]
    veto = record["verifier"]
    assert (veto["judged"], veto["vetoed"], veto["rejected"], veto["unparsable"], veto["unavailable"]) == (40, 10, 8, 1, 1)
    assert (veto["accuracyBefore"], veto["accuracyAfter"]) == (27 / 40, 0.8)
    assert veto["ci95Before"][0] < 27 / 40 < veto["ci95Before"][1]
    assert (veto["correctVetoed"], veto["wrongVetoed"], veto["verifierAccuracy"]) == (3, 7, 29 / 39)
    assert (veto["source"], veto["requests"], veto["malformed"], veto["failed"]) == ("endpoint", 42, 1, 1)
    assert record["labelAccuracy"] == 0.8 and status["latestLabelAccuracy"] == 0.8  # the trained-on labels'
    assert record["dropReasons"]["verifier_rejected"] == 8
    texts = [e["message"] for e in events(kube_emulator, job_driver.namespace) if e["reason"] == "LabelVeto"]
    assert texts == ["iteration 1: the Verifier vetoed 10 of 40 kept labels (rejected 8, unparsable 1, unavailable 1); "
                     "label accuracy 67.5% [52.0%, 79.9%] before (n=40), 80.0% [62.7%, 90.5%] after (n=30); 3 correct "
                     "and 7 wrong labels vetoed; Verifier agrees with the oracle on 74.4% of 39"]


def test_without_the_veto_the_label_job_has_no_verifier(operators, job_driver, tmp_path):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1, verifier=VERIFIER))
    for name in ["demo-i000-evaluate-a1"] + [f"demo-i001-{p}-a1" for p in ("challenger", "generate")]:
        job_driver.succeed(job_driver.wait_for_job(name))
    label = job_driver.wait_for_job("demo-i001-label-a1")
    [task] = job_driver.tasks(label)
    assert "verifier" not in task and task["settings"]["verifier"] == "off"
    assert not any(e["name"] == "VERIFIER_KEY" for e in label["spec"]["template"]["spec"]["containers"][0]["env"])
