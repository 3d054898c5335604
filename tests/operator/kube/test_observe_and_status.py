"""Pure pieces of the control loop: reading a Job's outcome, the status merge patch, Event hygiene, metrics."""

from __future__ import annotations

import json

import pytest
import urllib.request
import socket
from datetime import datetime, timedelta, timezone

from rzero_operator.api.status import CurrentAttempt, RZeroRunStatus
from rzero_operator.kube.events import build_event, redact
from rzero_operator.kube.metrics import OperatorMetrics
from rzero_operator.kube.observe import observe_attempt, output_keys, pods_answer
from rzero_operator.kube.status_writer import merge_patch, parse_status

UID = "uid-1"
CURRENT = CurrentAttempt(iteration=1, phase="label", attempt=1, name="demo-i001-label-a1", shards=2)


JOB_UID = "job-uid-1"


def job(conditions=(), name="demo-i001-label-a1", uid=UID, status=None, **meta) -> dict:
    return {"metadata": {"name": name, "uid": JOB_UID, "labels": {"rzero.dev/run-uid": uid}, **meta},
            "status": {**(status or {}), "conditions": [{"type": t, "status": "True", "reason": r, "message": m}
                                                         for t, r, m in conditions]}}


def pod(index: int, exit_code: int, message: str, owner: str = JOB_UID) -> dict:
    return {"metadata": {"name": f"demo-i001-label-a1-{index}-abcde",
                         "annotations": {"batch.kubernetes.io/job-completion-index": str(index)},
                         "ownerReferences": [{"kind": "Job", "name": "demo-i001-label-a1", "uid": owner, "controller": True}]},
            "status": {"containerStatuses": [{"name": "worker", "state": {"terminated": {"exitCode": exit_code, "message": message}}}]}}


def label_summary(index: int, **metrics) -> dict:
    return {"apiVersion": "rzero.dev/summary-v1", "run": "demo", "phase": "label", "iteration": 1,
            "output": f"iter-001/label/shard-{index:05d}-of-00002", "seconds": 1.0, "metrics": metrics}


def observe(jobs, pods=(), reader=None, events=()):
    return observe_attempt(CURRENT, list(jobs), lambda name: list(pods), run_uid=UID, read_summary=reader,
                           list_events=lambda name: list(events), run_name="demo", run_root="/runs/x", generation=3)


def test_the_pod_watchs_view_answers_only_when_it_holds_every_pod_the_finished_job_counts():
    complete = job([("Complete", "Completed", "")], status={"succeeded": 2})
    both = [pod(0, 0, "{}"), pod(1, 0, "{}")]
    assert pods_answer(complete, both)
    assert not pods_answer(complete, both[:1])  # the pod watch has not shown the second pod's end yet
    assert not pods_answer(complete, [pod(0, 0, "{}"), pod(1, 0, "{}", owner="another-job")])
    running = pod(1, 0, "{}")
    running["status"]["containerStatuses"][0]["state"] = {"running": {}}
    assert not pods_answer(complete, [both[0], running])
    failed = job([("Failed", "BackoffLimitExceeded", "")], status={"failed": 1})
    assert pods_answer(failed, [pod(0, 2, "bad")])
    assert not pods_answer(job([("Failed", "DeadlineExceeded", "")]), [])  # counts nothing: the pods are listed
    assert not pods_answer(job(status={"succeeded": 2}), both)  # not finished


def test_no_job_or_another_runs_job_or_a_deleting_job_reads_as_absent():
    assert observe([]).state == "absent"
    assert observe([job(uid="someone-else")]).state == "absent"
    assert observe([job(deletionTimestamp="2026-01-01T00:00:00Z")]).state == "absent"
    assert observe([job()]).state == "running"


def test_a_complete_job_yields_one_summary_per_shard_from_pods_then_from_storage():
    summary = label_summary(0, kept=3)
    stored = label_summary(1, kept=4)
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
    assert event["message"] == "token: ***" and event["metadata"]["name"].startswith("demo.")


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


def test_metrics_show_each_runs_iteration_of_its_planned_iterations_and_drop_them_with_the_run():
    metrics = OperatorMetrics()
    metrics.track_run(("ml", "a"), RZeroRunStatus(phase="Running", iteration=2, progress="2/3"))
    metrics.track_run(("ml", "new"), RZeroRunStatus(phase="Pending"))  # no progress written yet
    text = metrics_text(metrics)
    assert 'rzero_iteration{namespace="ml",run="a"} 2.0' in text
    assert 'rzero_iterations{namespace="ml",run="a"} 3.0' in text
    assert 'rzero_iteration{namespace="ml",run="new"} 0.0' in text
    assert 'rzero_iterations{namespace="ml",run="new"}' not in text
    metrics.track_run(("ml", "a"), None)
    assert 'run="a"' not in metrics_text(metrics)


def metrics_text(metrics: OperatorMetrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()


# ------------------------------------------------------------------------ untrusted summaries (issue 13)

COMPLETE = [("Complete", "Completed", "")]


def test_a_nan_in_a_termination_message_fails_the_attempt_instead_of_reaching_the_status():
    text = json.dumps(label_summary(0, mean_agreement=float("nan")))  # Python writes NaN; Go refuses it
    assert "NaN" in text
    observed = observe([job(COMPLETE)], [pod(0, 0, text), pod(1, 0, json.dumps(label_summary(1)))])
    assert observed.state == "failed" and observed.exit_code is None
    assert "pod demo-i001-label-a1-0-abcde: summary is not JSON (NaN is not a number)" in observed.message


@pytest.mark.parametrize(
    ("summary", "problem"),
    [
        (dict(label_summary(0), apiVersion="v0"), "apiVersion: expected 'rzero.dev/summary-v1'"),
        (dict(label_summary(0), phase="solver"), "phase: expected 'label'"),
        (dict(label_summary(0), output="iter-009/label"), "output: expected 'iter-001/label/shard-00000-of-00002'"),
        (dict(label_summary(0), seconds=-1), "seconds: expected a non-negative number"),
        (dict(label_summary(0), metrics=[1]), "metrics: expected an object"),
        (label_summary(0, kept=2**60), "metrics.kept: integer too large"),
        (label_summary(0, note="x" * 5000), "metrics.note: string of 5,000 characters"),
    ],
)
def test_a_summary_that_breaks_the_contract_fails_the_attempt_naming_the_field(summary, problem):
    stored = {"iter-001/label/shard-00000-of-00002": summary, "iter-001/label/shard-00001-of-00002": label_summary(1)}
    observed = observe([job(COMPLETE)], [], stored.get)
    assert observed.state == "failed" and problem in observed.message, observed.message


def test_a_stored_summary_is_checked_too():
    stored = {"iter-001/label/shard-00000-of-00002": label_summary(0, kept=float("inf")),
              "iter-001/label/shard-00001-of-00002": label_summary(1)}
    observed = observe([job(COMPLETE)], [], stored.get)
    assert observed.state == "failed" and "metrics.kept: inf is not a finite number" in observed.message


def test_pods_not_made_by_the_jobs_controller_are_not_believed():
    forged = pod(0, 0, json.dumps(label_summary(0, kept=999)), owner="someone-elses-job")
    observed = observe([job(COMPLETE)], [forged], {"iter-001/label/shard-00001-of-00002": label_summary(1)}.get)
    assert observed.state == "succeeded" and observed.summaries == (label_summary(1),)  # shard 0 read nowhere


def failed_create_event(message: str, name="demo-i001-label-a1", uid=JOB_UID) -> dict:
    return {"reason": "FailedCreate", "type": "Warning", "message": message, "lastTimestamp": "2026-01-01T00:00:00Z",
            "involvedObject": {"kind": "Job", "name": name, "uid": uid}}


@pytest.mark.parametrize(
    ("message", "configuration"),
    [
        ('Error creating: pods "demo-i001-label-a1-0-x" is forbidden: error looking up service account '
         'rzero-test/trainer: serviceaccount "trainer" not found', True),
        ('Error creating: pods "demo-i001-label-a1-0-x" is forbidden: no PriorityClass with name high was found', True),
        ('Error creating: pods "demo-i001-label-a1-0-x" is forbidden: exceeded quota: gpu, requested: '
         'requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=8, limited: requests.nvidia.com/gpu=8', False),
    ],
)
def test_a_job_that_cannot_create_its_pods_is_a_failed_attempt_to_stop(message, configuration):
    observed = observe([job()], [], events=[failed_create_event(message), failed_create_event("x", name="other")])
    assert observed.state == "failed" and observed.active
    assert message in observed.message and (observed.exit_code == 2) is configuration


def test_a_re_created_job_of_the_same_name_is_not_judged_by_its_predecessors_failed_create_events():
    """The Job controller's Event names the Job it was about by uid: a new Job with the old name (a run
    deleted and created again, an attempt made again) has a new uid and its own Events only."""
    predecessor = failed_create_event("error looking up service account x", uid="the-deleted-jobs-uid")
    assert observe([job()], [], events=[predecessor]).state == "running"
    nameless = failed_create_event("error looking up service account x", uid=None)
    assert observe([job()], [], events=[nameless]).state == "running"
    assert observe([job()], [], events=[predecessor, failed_create_event("quota")]).state == "failed"


def test_a_job_with_pods_or_suspended_by_kueue_is_not_judged_by_old_failed_create_events():
    events = [failed_create_event("error looking up service account x")]
    assert observe([job(status={"active": 1})], [], events=events).state == "running"
    suspended = job()
    suspended["spec"] = {"suspend": True}
    assert observe([suspended], [], events=events).state == "running"


def test_a_status_with_a_non_finite_number_is_never_sent():
    from rzero_operator.kube.status_writer import write_status

    class NoApi:
        def patch_run_status(self, *args):
            raise AssertionError("a NaN must not reach the API server")

    status = RZeroRunStatus(latest_score=float("nan"))
    with pytest.raises(ValueError, match="non-finite"):
        write_status(NoApi(), "ns", "demo", {}, status)


def test_event_names_are_derived_from_the_transition_so_reposting_is_idempotent():
    from rzero_operator.kube.events import event_name

    run = {"metadata": {"name": "demo", "namespace": "ns", "uid": "u1", "generation": 2}}
    first = build_event(run, "Normal", "PhaseStarted", "demo-i001-label-a1: started")
    again = build_event(run, "Normal", "PhaseStarted", "demo-i001-label-a1: started")
    assert first["metadata"]["name"] == again["metadata"]["name"] == event_name(run, "PhaseStarted",
                                                                                "demo-i001-label-a1: started")
    assert first["metadata"]["name"].startswith("demo.")
    later = {"metadata": dict(run["metadata"], generation=3)}
    assert build_event(later, "Normal", "PhaseStarted", "demo-i001-label-a1: started")["metadata"]["name"] != \
        first["metadata"]["name"]


def test_without_storage_credentials_the_fallback_says_so_plainly(monkeypatch, caplog):
    import logging

    from rzero_operator.kube.observe import storage_summary_reader

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    read = storage_summary_reader("s3://bucket/runs/ns/demo/uid", {"endpoint_url": "http://127.0.0.1:9"})
    with caplog.at_level(logging.INFO, logger="rzero_operator.kube.observe"):
        assert read("iter-000/evaluate") is None
        assert read("iter-001/challenger") is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "the operator has no storage access" in messages[0]
    assert "Unable to locate credentials" not in messages[0]
