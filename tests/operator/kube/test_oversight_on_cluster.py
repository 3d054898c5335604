"""Watching a run on a cluster: the real operator against the kmock emulator, a test driver playing the Job
controller. Label accuracy in status, events and metrics; the drift guard stopping and pausing; the
approval gate approved and rejected by annotation, and surviving an operator restart while it waits;
the export Job; the endpoint oracle's API key by Secret reference only."""

from __future__ import annotations

from prometheus_client import generate_latest

from support.kube import PLAUSIBLE_METRICS, tiny_spec, wait_for

LOW_ACCURACY_LABEL = {**PLAUSIBLE_METRICS["label"], "oracle": "endpoint", "oracle_checked": 40, "oracle_correct": 16,
                      "oracles": {"endpoint": {"asked": 40, "checked": 40, "correct": 16, "requests": 41, "malformed": 1,
                                               "failed": 0, "over_budget": 0}}}
HIGH_ACCURACY_LABEL = {**LOW_ACCURACY_LABEL, "oracle_correct": 38}


def annotate(job_driver, name: str, annotations: dict) -> None:
    """What `kubectl annotate rzr NAME key=value --overwrite` sends."""
    job_driver.api.request(
        "PATCH", f"/apis/rzero.dev/v1alpha1/namespaces/{job_driver.namespace}/rzeroruns/{name}",
        body={"metadata": {"annotations": annotations}}, content_type="application/merge-patch+json",
    )


def wait_status(job_driver, name: str, probe, what: str, timeout: float = 10.0) -> dict:
    return wait_for(lambda: (s := job_driver.status(name)) and probe(s) and s, timeout, what)


def events(kube_emulator, namespace: str) -> list[dict]:
    return [r.data for r in kube_emulator.requests()
            if r.method == "POST" and r.path == f"/api/v1/namespaces/{namespace}/events"]


def drive(job_driver, names: list[str], label_metrics: dict | None = None) -> None:
    for name in names:
        job = job_driver.wait_for_job(name)
        job_driver.succeed(job, label_metrics if label_metrics is not None and "-label-" in name else None)


def first_iteration(run: str) -> list[str]:
    return [f"{run}-i000-evaluate-a1"] + [f"{run}-i001-{p}-a1" for p in ("challenger", "generate", "label")]


def test_the_approval_gate_waits_after_labelling_until_annotated_and_records_the_decision(
    operators, job_driver, tmp_path, kube_emulator
):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1, approval={"after": ["label"]}))
    drive(job_driver, first_iteration("demo"), HIGH_ACCURACY_LABEL)
    status = wait_status(job_driver, "demo", lambda s: s.get("stage") == "AwaitingApproval", "the gate")
    assert status["phase"] == "Suspended" and status["approval"]["gate"] == "1"
    assert status["approval"]["auditSample"].endswith("/iter-001/label")
    assert status["latestLabelAccuracy"] == 0.95 and status["iterationHistory"][1]["labelOracle"] == "endpoint"
    reasons = [e["reason"] for e in events(kube_emulator, job_driver.namespace)]
    assert reasons.count("ApprovalRequired") == 1 and "LabelAccuracy" in reasons
    assert "demo-i001-solver-a1" not in job_driver.job_names()

    annotate(job_driver, "demo", {"rzero.dev/approve": "1", "rzero.dev/decided-by": "alice@example.com"})
    drive(job_driver, ["demo-i001-solver-a1", "demo-i001-evaluate-a1"])
    status = wait_status(job_driver, "demo", lambda s: s.get("phase") == "Succeeded", "success")
    [decision] = status["approvals"]
    assert (decision["gate"], decision["decision"], decision["by"]) == ("1", "Approved", "alice@example.com")
    assert "approval" not in status and status["bestIteration"]["iteration"] in (0, 1)


def test_a_rejection_by_annotation_stops_the_run_cleanly_and_exports_the_best_solver(
    operators, job_driver, tmp_path, kube_emulator
):
    operators.start()
    spec = tiny_spec(tmp_path, iterations=2, approval={}, export={"enabled": True})
    job_driver.create_run("demo", spec)
    drive(job_driver, first_iteration("demo"))
    wait_status(job_driver, "demo", lambda s: s.get("stage") == "AwaitingApproval", "the gate")
    annotate(job_driver, "demo", {"rzero.dev/reject": "1", "rzero.dev/reason": "labels look wrong"})
    export = job_driver.wait_for_job("demo-i001-export-a1")
    assert "demo-i001-solver-a1" not in job_driver.job_names()
    [task] = job_driver.tasks(export)
    assert task["best"]["model"] == {"source": "builtin:smollm2-135m-instruct"} and task["best"]["iteration"] == 0
    container = export["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:3] == ["rzero", "worker", "export"]
    assert "nvidia.com/gpu" not in container["resources"]["requests"]
    job_driver.succeed(export, {"best_iteration": 0, "last_iteration": 0, "exported": ["best"], "output_bytes": 10})
    status = wait_status(job_driver, "demo", lambda s: s.get("phase") == "Succeeded", "the stop")
    assert status["stopped"]["reason"] == "Rejected" and "labels look wrong" in status["stopped"]["message"]
    assert status["export"]["best"]["location"].endswith("/iter-001/export/best")
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("True", "Rejected")
    reasons = [e["reason"] for e in events(kube_emulator, job_driver.namespace)]
    assert {"Rejected", "Exported"} <= set(reasons)


def test_an_operator_restart_while_waiting_keeps_the_run_waiting(operators, job_driver, tmp_path, kube_emulator):
    operator = operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1, approval={}))
    drive(job_driver, first_iteration("demo"))
    wait_status(job_driver, "demo", lambda s: s.get("stage") == "AwaitingApproval", "the gate")
    operators.stop(operator)
    restarted = operators.start()
    wait_for(lambda: 'rzero_awaiting_approval{namespace="rzero-test",run="demo"} 1.0'
             in generate_latest(restarted.app.metrics.registry).decode(), 10, "the new operator to see the gate")
    status = job_driver.status("demo")
    assert status["stage"] == "AwaitingApproval" and status["approval"]["gate"] == "1"
    assert "demo-i001-solver-a1" not in job_driver.job_names()
    assert [e["reason"] for e in events(kube_emulator, job_driver.namespace)].count("ApprovalRequired") == 1
    annotate(job_driver, "demo", {"rzero.dev/approve": "1"})
    job_driver.wait_for_job("demo-i001-solver-a1")


def test_the_guard_stops_the_run_when_label_accuracy_drops(operators, job_driver, tmp_path, kube_emulator):
    operator = operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=3, guard={"minLabelAccuracy": 0.6}))
    drive(job_driver, first_iteration("demo"), LOW_ACCURACY_LABEL)  # 40% [26%, 56%]
    status = wait_status(job_driver, "demo", lambda s: s.get("phase") == "Succeeded", "the early stop")
    assert status["stopped"]["reason"] == "EarlyStopped" and status["progress"] == "1/3"
    assert status["iterationHistory"][1]["guardViolations"]
    assert "demo-i001-solver-a1" not in job_driver.job_names()
    warnings = [e for e in events(kube_emulator, job_driver.namespace) if e["reason"] == "GuardTripped"]
    assert warnings and warnings[0]["type"] == "Warning"
    text = generate_latest(operator.app.metrics.registry).decode()
    assert 'rzero_guard_trips_total{action="stop"} 1.0' in text
    assert 'rzero_label_accuracy{namespace="rzero-test",run="demo"} 0.4' in text


def test_the_guard_pauses_until_a_person_lets_the_run_go_on(operators, job_driver, tmp_path):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1, guard={"minLabelAccuracy": 0.6, "action": "pause"}))
    drive(job_driver, first_iteration("demo"), LOW_ACCURACY_LABEL)
    status = wait_status(job_driver, "demo", lambda s: s.get("stage") == "AwaitingApproval", "the pause")
    assert status["approval"]["reasons"][0].startswith("spec.guard:")
    annotate(job_driver, "demo", {"rzero.dev/approve": "1", "rzero.dev/decided-by": "carol"})
    drive(job_driver, ["demo-i001-solver-a1", "demo-i001-evaluate-a1"])
    wait_status(job_driver, "demo", lambda s: s.get("phase") == "Succeeded", "the end")


def test_the_endpoint_oracle_key_reaches_the_label_job_only_as_a_secret_reference(operators, job_driver, tmp_path, kube_emulator):
    operators.start()
    oracle = {"sampleSize": 32, "endpoint": {"url": "https://judge.example.com/v1", "model": "judge-70b",
                                             "apiKeySecret": {"name": "judge-key", "key": "token"}}}
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1, oracle=oracle))
    drive(job_driver, first_iteration("demo")[:3])
    label = job_driver.wait_for_job("demo-i001-label-a1")
    env = label["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "RZERO_ORACLE_API_KEY", "valueFrom": {"secretKeyRef": {"name": "judge-key", "key": "token"}}} in env
    [task] = job_driver.tasks(label)
    assert task["oracle"]["endpoint"]["apiKeyEnv"] == "RZERO_ORACLE_API_KEY" and task["oracle"]["sampleSize"] == 32
    other = job_driver.wait_for_job("demo-i001-challenger-a1")
    assert not any(e["name"] == "RZERO_ORACLE_API_KEY" for e in other["spec"]["template"]["spec"]["containers"][0]["env"])
    assert [set(e) for e in env if e["name"] == "RZERO_ORACLE_API_KEY"] == [{"name", "valueFrom"}]  # never a value
