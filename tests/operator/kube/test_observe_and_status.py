"""Pure pieces of the control loop: reading a Job's outcome, the status merge patch, Event hygiene, metrics."""

from __future__ import annotations

import json
import urllib.request
import socket
from datetime import datetime, timedelta, timezone

from rzero_operator.api.status import CurrentAttempt, RZeroRunStatus
from rzero_operator.kube.events import build_event, redact
from rzero_operator.kube.metrics import OperatorMetrics
from rzero_operator.kube.observe import observe_attempt, output_keys
from rzero_operator.kube.status_writer import merge_patch, parse_status

UID = "uid-1"
CURRENT = CurrentAttempt(iteration=1, phase="label", attempt=1, name="demo-i001-label-a1", shards=2)


def job(conditions=(), name="demo-i001-label-a1", uid=UID, **meta) -> dict:
    return {"metadata": {"name": name, "labels": {"rzero.dev/run-uid": uid}, **meta},
            "status": {"conditions": [{"type": t, "status": "True", "reason": r, "message": m} for t, r, m in conditions]}}


def pod(index: int, exit_code: int, message: str) -> dict:
    return {"metadata": {"annotations": {"batch.kubernetes.io/job-completion-index": str(index)}},
            "status": {"containerStatuses": [{"name": "worker", "state": {"terminated": {"exitCode": exit_code, "message": message}}}]}}


def observe(jobs, pods=(), reader=None):
    return observe_attempt(CURRENT, list(jobs), lambda name: list(pods), run_uid=UID, read_summary=reader,
                           run_name="demo", run_root="/runs/x", generation=3)


def test_no_job_or_another_runs_job_or_a_deleting_job_reads_as_absent():
    assert observe([]).state == "absent"
    assert observe([job(uid="someone-else")]).state == "absent"
    assert observe([job(deletionTimestamp="2026-01-01T00:00:00Z")]).state == "absent"
    assert observe([job()]).state == "running"


def test_a_complete_job_yields_one_summary_per_shard_from_pods_then_from_storage():
    summary = {"phase": "label", "metrics": {"kept": 3}}
    stored = {"phase": "label", "metrics": {"kept": 4}, "from": "storage"}
    asked = []

    def reader(key):
        asked.append(key)
        return stored

    observed = observe([job([("Complete", "Completed", "")])], [pod(0, 0, json.dumps(summary))], reader)
    assert observed.state == "succeeded"
    assert observed.summaries == (summary, stored)
    assert asked == ["iter-001/label/shard-00001-of-00002"]
    assert (observed.run_name, observed.run_root, observed.generation) == ("demo", "/runs/x", 3)


def test_a_failed_job_reports_the_workers_error_and_prefers_a_configuration_error():
    pods = [pod(0, 1, json.dumps({"error": "oom"})), pod(1, 2, json.dumps({"error": "bad benchmark path"}))]
    observed = observe([job([("Failed", "BackoffLimitExceeded", "backoff")])], pods)
    assert (observed.state, observed.message, observed.exit_code) == ("failed", "bad benchmark path", 2)


def test_a_failed_job_whose_pods_are_gone_still_explains_itself():
    condition = ("Failed", "PodFailurePolicy", "Container worker for pod x failed with exit code 2 matching FailJob rule")
    observed = observe([job([condition])])
    assert observed.exit_code == 2 and "PodFailurePolicy" in observed.message
    deadline = observe([job([("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")])])
    assert deadline.exit_code is None and "DeadlineExceeded" in deadline.message


def test_output_keys_follow_the_storage_layout():
    assert output_keys(CURRENT) == ["iter-001/label/shard-00000-of-00002", "iter-001/label/shard-00001-of-00002"]
    assert output_keys(CurrentAttempt(iteration=2, phase="solver", attempt=1, name="x")) == ["iter-002/solver"]
    assert output_keys(CurrentAttempt(iteration=0, phase="evaluate", attempt=1, name="x")) == [
        "iter-000/evaluate/shard-00000-of-00001"]


def test_the_status_patch_nulls_dropped_fields_and_sends_nothing_when_unchanged():
    old = {"phase": "Running", "current": {"name": "a"}, "conditions": [{"type": "Ready"}], "stray": 1}
    new = {"phase": "Running", "conditions": [{"type": "Ready"}, {"type": "Failed"}]}
    assert merge_patch(old, new) == {"current": None, "stray": None, "conditions": new["conditions"]}
    assert not merge_patch(new, dict(new))


def test_an_unreadable_status_is_rebuilt_from_scratch():
    assert parse_status({"phase": "NotAPhase"}) == RZeroRunStatus()
    assert parse_status(None) == RZeroRunStatus()
    assert parse_status({"phase": "Running", "iteration": 2}).iteration == 2


def test_events_reference_the_run_and_mask_anything_that_looks_like_a_credential():
    assert redact("auth failed: AWS_SECRET_ACCESS_KEY=abc123 and key AKIAABCDEFGHIJKLMNOP") == \
        "auth failed: AWS_SECRET_ACCESS_KEY=*** and key ***"
    run = {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "demo", "namespace": "ml", "uid": "u"}}
    event = build_event(run, "Warning", "PhaseRetry", "token: s3cr3t")
    assert event["involvedObject"] == {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "name": "demo",
                                       "namespace": "ml", "uid": "u"}
    assert event["message"] == "token: ***" and event["metadata"]["generateName"] == "demo."


def test_metrics_count_runs_by_phase_durations_retries_and_failures_and_are_served_over_http():
    metrics = OperatorMetrics()
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    running = RZeroRunStatus(phase="Running", stage="Labeling",
                             current=CurrentAttempt(iteration=1, phase="label", attempt=1, name="x", started_at=now - timedelta(seconds=90)))
    metrics.track_run(("ml", "a"), running)
    metrics.track_run(("ml", "b"), RZeroRunStatus(phase="Failed"))
    metrics.record_events([("Normal", "PhaseSucceeded", "")], running, now)
    metrics.record_events([("Warning", "PhaseRetry", "")], running, now)
    metrics.record_events([("Warning", "RunFailed", "")], running, now)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    metrics.serve(port, addr="127.0.0.1")
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'rzero_runs{phase="Running"} 1.0' in text and 'rzero_runs{phase="Failed"} 1.0' in text
    assert 'rzero_phase_duration_seconds_sum{phase="label"} 90.0' in text
    assert 'rzero_phase_retries_total{phase="label"} 1.0' in text
    assert 'rzero_phase_failures_total{phase="label"} 2.0' in text
    assert "rzero_run_failures_total 1.0" in text
    metrics.track_run(("ml", "b"), None)
    assert 'rzero_runs{phase="Failed"} 0.0' in metrics_text(metrics)


def metrics_text(metrics: OperatorMetrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()
