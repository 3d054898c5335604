"""The plan, as a specification: what decide() does for every situation an executor can report."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from rzero_operator.api import RZeroRunSpec, RZeroRunStatus
from rzero_operator.plan import STARTING_POLL_MAX_S, STARTING_POLL_S, Observed, attempt_name, decide, decide_invalid_spec, next_step, steps

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
RUN = dict(run_name="demo", run_root="/runs/local/demo/uid-1", generation=1)

SUMMARIES = {
    "evaluate": {"metrics": {"scores": {"gsm8k": {"accuracy": 0.25, "ci95": [0.2, 0.3], "n": 100},
                                        "arithmetic": {"accuracy": 0.75, "ci95": [0.7, 0.8], "n": 100}},
                             "mean_accuracy": 0.5}, "seconds": 3.0},
    "challenger": {"metrics": {"steps": 5, "mean_reward": 0.4, "last_reward": 0.5, "resumed_from_step": None}},
    "generate": {"metrics": {"requested": 8, "valid": 6, "invalid": 2, "duplicates": 0}, "seconds": 2.0},
    "label": {"metrics": {"questions": 6, "kept": 3, "dropped": {"out_of_band": 2, "no_answer": 1},
                          "mean_agreement": 0.6, "label_matches_challenger": 0.5}, "seconds": 4.0},
    "solver": {"metrics": {"steps": 15, "mean_reward": 0.3}},
}


def make_spec(**fields) -> RZeroRunSpec:
    body = {"model": "builtin:smollm2-135m-instruct", "iterations": 2, "storage": {"uri": "/runs"},
            "retry": {"maxAttempts": 3, "backoffSeconds": 10, "maxBackoffSeconds": 25}}
    body.update(fields)
    return RZeroRunSpec.model_validate(body)


def observed(state: str = "absent", **fields) -> Observed:
    return Observed(state=state, **{**RUN, **fields})


def succeeded(phase: str, shards: int = 1) -> Observed:
    return observed("succeeded", summaries=tuple(SUMMARIES[phase] for _ in range(shards)))


def run_through(spec: RZeroRunSpec, count: int) -> RZeroRunStatus:
    """Status after the first `count` steps succeeded, with step `count` (if any) just started."""
    decision = decide(spec, RZeroRunStatus(), observed(), NOW)
    for _ in range(count):
        decision = decide(spec, decision.status, succeeded(decision.status.current.phase), NOW)
    return decision.status


# -- fresh run and the step sequence -----------------------------------------------------------------


def test_steps_are_base_evaluation_then_five_phases_per_iteration():
    assert steps(2) == [(0, "evaluate")] + [
        (i, p) for i in (1, 2) for p in ("challenger", "generate", "label", "solver", "evaluate")
    ]


def test_a_warm_up_runs_first_in_iteration_0_and_both_roles_start_from_its_model():
    assert steps(1, warmup=True)[:2] == [(0, "warmup"), (0, "evaluate")]
    spec = make_spec(warmup={"enabled": True})

    decision = decide(spec, RZeroRunStatus(), observed(), NOW)

    assert (decision.start.iteration, decision.start.phase) == (0, "warmup")
    assert decision.status.stage == "FormatWarmup"
    [warmup] = decision.start.tasks
    assert warmup.model.source == spec.model and warmup.output == "iter-000/warmup"


def test_fresh_run_starts_by_evaluating_the_base_model():
    decision = decide(make_spec(), RZeroRunStatus(), observed(), NOW)
    start = decision.start
    assert (start.iteration, start.phase, start.attempt, start.name) == (0, "evaluate", 1, "demo-i000-evaluate-a1")
    assert start.tasks[0].model.source == "builtin:smollm2-135m-instruct"
    status = decision.status
    assert (status.phase, status.stage, status.progress, status.run_root) == (
        "Running", "Evaluation", "0/2", "/runs/local/demo/uid-1")
    assert status.current.name == start.name and status.current.started_at == NOW
    assert status.observed_generation == 1
    assert ("Normal", "PhaseStarted") == decision.events[0][:2]
    assert {c.type: c.status for c in status.conditions}["Progressing"] == "True"


def test_decide_does_not_modify_its_input_status():
    status = RZeroRunStatus()
    decide(make_spec(), status, observed(), NOW)
    assert status == RZeroRunStatus()


def test_run_root_is_required_until_the_status_records_it():
    with pytest.raises(ValueError, match="run_root"):
        decide(make_spec(), RZeroRunStatus(), Observed(run_name="demo"), NOW)


@pytest.mark.parametrize("done", range(0, 11))
def test_every_resume_point_starts_exactly_the_next_step(done):
    spec = make_spec()
    status = run_through(spec, done)
    expected = steps(2)[done]
    # A restarted executor finds the recorded attempt gone: the same attempt starts again, same name.
    decision = decide(spec, status, observed("absent"), NOW + timedelta(minutes=5))
    assert (decision.start.iteration, decision.start.phase) == expected
    assert decision.start.attempt == 1 and decision.start.name == status.current.name
    assert decision.events[0][1] == "PhaseRestarted"
    assert next_step(spec, status) == expected


def test_failed_tracker_calls_in_a_successful_phase_become_one_warning_event_and_the_run_goes_on():
    spec = make_spec()
    status = run_through(spec, 2)  # challenger done, generate running
    summary = {**SUMMARIES["generate"], "metrics": {**SUMMARIES["generate"]["metrics"], "tracking_errors": 2}}
    decision = decide(spec, status, observed("succeeded", summaries=(summary, summary)), NOW)
    assert [e[1] for e in decision.events] == ["PhaseSucceeded", "TrackingFailed", "PhaseStarted"]
    assert decision.events[1][0] == "Warning" and "4 tracker call(s) failed in generate of iteration 1" in decision.events[1][2]
    assert decision.start.phase == "label"


def test_running_attempt_waits_without_events_and_is_idempotent():
    spec = make_spec()
    status = run_through(spec, 3)
    decision = decide(spec, status, observed("running"), NOW)
    assert decision.start is None and decision.stop is None and decision.events == []
    assert decision.status == status


def test_success_records_the_phase_and_starts_the_next_in_one_decision():
    spec = make_spec()
    status = run_through(spec, 2)  # challenger done, generate running
    decision = decide(spec, status, succeeded("generate", shards=2), NOW)
    assert [e[1] for e in decision.events] == ["PhaseSucceeded", "PhaseStarted"]
    record = decision.status.record(1)
    assert record.questions_generated == 16 and record.questions_valid == 12
    assert record.phases["generate"].state == "Succeeded" and record.phases["generate"].seconds == 2.0
    assert decision.start.phase == "label"


def test_full_run_fills_the_iteration_history_and_succeeds():
    spec = make_spec()
    status = run_through(spec, 11)
    assert (status.phase, status.stage, status.progress, status.current) == ("Succeeded", "Done", "2/2", None)
    base, first = status.record(0), status.record(1)
    assert base.scores == {"gsm8k": 0.25, "arithmetic": 0.75} and base.mean_score == 0.5
    assert first.challenger_checkpoint == "iter-001/challenger" and first.solver_checkpoint == "iter-001/solver"
    assert (first.questions_kept, first.questions_labelled, first.mean_agreement) == (3, 6, 0.6)
    assert first.drop_reasons == {"out_of_band": 2, "no_answer": 1}
    assert first.label_matches_challenger == 0.5 and first.challenger_reward == 0.4
    assert first.finished_at == NOW and set(first.phases) == {"challenger", "generate", "label", "solver", "evaluate"}
    assert status.kept_questions == 3 and status.latest_score == 0.5
    assert {c.type: c.status for c in status.conditions}["Ready"] == "True"


def test_finished_run_stays_finished_without_new_events():
    spec = make_spec()
    status = run_through(spec, 11)
    decision = decide(spec, status, observed(), NOW + timedelta(hours=1))
    assert decision.start is None and decision.events == [] and decision.status.phase == "Succeeded"


def test_raising_iterations_on_a_finished_run_continues_it():
    status = run_through(make_spec(), 11)
    decision = decide(make_spec(iterations=3), status, observed(), NOW)
    assert (decision.start.iteration, decision.start.phase) == (3, "challenger")
    assert decision.start.tasks[0].challenger.artifact == "iter-002/challenger"
    assert (decision.status.phase, decision.status.progress) == ("Running", "3/3")


# -- failures and retries ------------------------------------------------------------------------------


def test_failed_attempt_with_retries_left_waits_with_exponential_backoff():
    spec = make_spec()
    status = run_through(spec, 1)
    decision = decide(spec, status, observed("failed", message="CUDA out of memory", exit_code=1), NOW)
    assert decision.start is None and decision.requeue_after == 10
    assert decision.status.current.retry_at == NOW + timedelta(seconds=10)
    assert decision.status.failed_attempts == 1
    assert decision.status.record(1).phases["challenger"].state == "Retrying"
    assert decision.events[0][:2] == ("Warning", "PhaseRetry") and "CUDA out of memory" in decision.events[0][2]


def test_retry_waits_until_the_backoff_has_passed_then_starts_the_next_attempt():
    spec = make_spec()
    failed = decide(spec, run_through(spec, 1), observed("failed", message="boom", exit_code=1), NOW).status
    early = decide(spec, failed, observed("failed", message="boom", exit_code=1), NOW + timedelta(seconds=4))
    assert early.start is None and early.requeue_after == pytest.approx(6) and early.status.failed_attempts == 1
    later = decide(spec, failed, observed("failed", message="boom", exit_code=1), NOW + timedelta(seconds=10))
    assert (later.start.phase, later.start.attempt, later.start.name) == ("challenger", 2, "demo-i001-challenger-a2")
    assert later.status.current.retry_at is None and later.status.record(1).phases["challenger"].attempts == 2


def test_backoff_doubles_per_attempt_and_is_capped():
    spec = make_spec(retry={"maxAttempts": 5, "backoffSeconds": 10, "maxBackoffSeconds": 25})
    status, now, waits = run_through(spec, 1), NOW, []
    for _ in range(3):
        decision = decide(spec, status, observed("failed", exit_code=1), now)
        waits.append(decision.requeue_after)
        now = decision.status.current.retry_at
        status = decide(spec, decision.status, observed("failed", exit_code=1), now).status
    assert waits == [10, 20, 25]


def test_exhausted_attempts_fail_the_run_naming_the_phase_and_cause():
    spec = make_spec(retry={"maxAttempts": 1})
    decision = decide(spec, run_through(spec, 3), observed("failed", message="grader crashed", exit_code=1), NOW)
    status = decision.status
    assert status.phase == "Failed" and decision.start is None
    assert "label of iteration 1" in status.message and "grader crashed" in status.message
    assert status.record(1).phases["label"].state == "Failed"
    assert decision.events[-1][:2] == ("Warning", "RunFailed")
    assert {c.type: c.status for c in status.conditions}["Failed"] == "True"


def test_configuration_error_exit_code_2_fails_at_once_without_retry():
    spec = make_spec(retry={"maxAttempts": 5})
    decision = decide(spec, run_through(spec, 1), observed("failed", message="bad task", exit_code=2), NOW)
    assert decision.status.phase == "Failed" and decision.requeue_after is None
    assert "configuration error" in decision.status.message


def test_failed_run_is_terminal():
    spec = make_spec(retry={"maxAttempts": 1})
    failed = decide(spec, run_through(spec, 1), observed("failed", exit_code=1), NOW).status
    decision = decide(spec, failed, observed("failed", exit_code=1), NOW + timedelta(hours=1))
    assert decision.start is None and decision.events == [] and decision.status.phase == "Failed"


def test_phase_deadline_stops_the_attempt_and_counts_it_as_failed():
    spec = make_spec(phaseDeadlineSeconds=600)
    status = run_through(spec, 1)
    within = decide(spec, status, observed("running"), NOW + timedelta(seconds=500))
    assert within.stop is None and within.requeue_after == pytest.approx(100)
    late = decide(spec, status, observed("running"), NOW + timedelta(seconds=601))
    assert late.stop.name == "demo-i001-challenger-a1" and late.status.current.retry_at is not None
    assert "phaseDeadlineSeconds" in late.status.record(1).phases["challenger"].message


# -- suspend and resume --------------------------------------------------------------------------------


def test_suspend_without_stop_lets_the_running_phase_finish_then_starts_nothing():
    status = run_through(make_spec(), 1)
    suspended = make_spec(suspend=True)
    running = decide(suspended, status, observed("running"), NOW)
    assert running.stop is None and running.start is None and running.status.phase == "Running"
    finished = decide(suspended, running.status, succeeded("challenger"), NOW)
    assert finished.start is None and finished.status.phase == "Suspended"
    assert finished.status.record(1).phases["challenger"].state == "Succeeded"
    assert [e[1] for e in finished.events] == ["PhaseSucceeded", "Suspended"]


def test_suspend_with_stop_stops_the_attempt_and_resume_restarts_it_under_the_same_name():
    status = run_through(make_spec(), 1)
    spec = make_spec(suspend=True, stopRunningOnSuspend=True)
    stopping = decide(spec, status, observed("running"), NOW)
    assert stopping.stop.name == "demo-i001-challenger-a1" and stopping.status.phase == "Suspended"
    quiet = decide(spec, stopping.status, observed("absent"), NOW)
    assert quiet.start is None and quiet.stop is None and quiet.events == []
    resumed = decide(make_spec(), quiet.status, observed("absent"), NOW)
    assert resumed.start.name == "demo-i001-challenger-a1" and resumed.status.phase == "Running"
    assert {c.type: c.status for c in resumed.status.conditions}["Suspended"] == "False"
    assert [e[1] for e in resumed.events] == ["Resumed", "PhaseRestarted"]  # a resume is always announced


def test_a_failed_attempt_whose_job_is_still_there_is_stopped_as_well():
    status = run_through(make_spec(), 1)
    decision = decide(make_spec(), status, observed("failed", message="pods cannot be created", active=True), NOW)
    assert decision.stop.name == "demo-i001-challenger-a1" and decision.status.current.retry_at is not None
    progressing = {c.type: c for c in decision.status.conditions}["Progressing"]
    assert progressing.reason == "Retrying" and "pods cannot be created" in progressing.message


def test_suspended_run_between_phases_resumes_with_the_next_step():
    status = run_through(make_spec(), 1)
    between = decide(make_spec(suspend=True), status, succeeded("challenger"), NOW).status
    decision = decide(make_spec(), between, observed(), NOW)
    assert decision.start.phase == "generate" and [e[1] for e in decision.events] == ["Resumed", "PhaseStarted"]


def test_suspend_during_a_retry_backoff_holds_the_retry():
    spec = make_spec()
    failed = decide(spec, run_through(spec, 1), observed("failed", exit_code=1), NOW).status
    held = decide(make_spec(suspend=True), failed, observed("failed", exit_code=1), NOW + timedelta(hours=1))
    assert held.start is None and held.status.phase == "Suspended"
    resumed = decide(spec, held.status, observed("failed", exit_code=1), NOW + timedelta(hours=2))
    assert resumed.start.attempt == 2


# -- spec changes, identity and invalid specs ---------------------------------------------------------


def test_spec_change_mid_run_applies_to_the_next_phase_started():
    status = run_through(make_spec(), 2)  # generate running with the old settings
    changed = make_spec(labeling={"samples": 4, "band": "code"}, sharding={"label": 3})
    decision = decide(changed, status, succeeded("generate"), NOW)
    assert decision.start.phase == "label" and len(decision.start.tasks) == 3
    assert all(t.settings.samples == 4 and t.settings.band == "code" for t in decision.start.tasks)
    assert decision.status.current.shards == 3


def test_observed_generation_follows_metadata_generation():
    status = run_through(make_spec(), 1)
    decision = decide(make_spec(), status, Observed(state="running", run_name="demo", generation=7), NOW)
    assert decision.status.observed_generation == 7
    assert all(c.observed_generation == 7 for c in decision.status.conditions)


def test_invalid_spec_is_reported_and_nothing_starts():
    decision = decide_invalid_spec(RZeroRunStatus(), ["spec.iterations: must be >= 1"], 3, NOW)
    assert decision.start is None and decision.status.observed_generation == 3
    condition = decision.status.condition("SpecValid")
    assert condition.status == "False" and "spec.iterations" in condition.message


def test_sizing_warnings_are_reported_once_per_generation_in_events_and_the_condition():
    warning = "spec.resources.gpus: warning: 1 of the evaluate pod's 2 GPUs stay idle"
    first = decide(make_spec(), RZeroRunStatus(), observed(spec_warnings=(warning,)), NOW)
    assert ("Warning", "SizingWarning", warning) in first.events and first.start is not None
    assert first.status.condition("SpecValid").message == f"sizing warnings: {warning}"
    resync = decide(make_spec(), first.status, observed("running", spec_warnings=(warning,)), NOW)
    assert [e for e in resync.events if e[1] == "SizingWarning"] == []
    assert resync.status.condition("SpecValid").message == f"sizing warnings: {warning}"
    edited = decide(make_spec(), resync.status, observed("running", spec_warnings=(warning,), generation=2), NOW)
    assert [e for e in edited.events if e[1] == "SizingWarning"] == [("Warning", "SizingWarning", warning)]
    fixed = decide(make_spec(), edited.status, observed("running", generation=3), NOW)
    assert fixed.events == [] and fixed.status.condition("SpecValid").message == ""


def test_a_spec_that_cannot_build_a_task_fails_the_run_with_the_reason():
    status = run_through(make_spec(), 1)
    broken = make_spec().model_copy(update={"sharding": make_spec().sharding.model_copy(update={"generate": 0})})
    decision = decide(broken, status, succeeded("challenger"), NOW)
    assert decision.status.phase == "Failed" and "generate" in decision.status.message


def test_attempt_names_are_dns_labels_even_for_long_run_names():
    long = "r" * 63
    name = attempt_name(long, 12, "challenger", 3)
    assert len(name) <= 58 and name.endswith("-i012-challenger-a3")  # room for an Indexed pod's "-1023"
    assert name != attempt_name("r" * 62, 12, "challenger", 3)


def test_a_started_attempt_and_one_still_without_pods_are_looked_at_again_within_seconds():
    """A Job whose pods cannot be created says so only in an Event: the plan asks to look again soon, so the
    FailedCreate fails the attempt in seconds instead of at the next resync."""
    spec = make_spec()
    started = decide(spec, RZeroRunStatus(), observed(), NOW)
    assert started.start is not None and started.requeue_after == STARTING_POLL_S
    waiting = decide(spec, started.status, observed("running", starting=True), NOW)
    assert waiting.start is None and waiting.requeue_after == STARTING_POLL_S
    with_pods = decide(spec, started.status, observed("running"), NOW)
    assert with_pods.requeue_after is None


def test_a_job_kept_without_pods_for_long_is_looked_at_less_and_less_often():
    """Each look waits as long as the attempt has already waited (a busy Job controller, a full cluster),
    from STARTING_POLL_S up to STARTING_POLL_MAX_S: a few looks a minute, not one every 2 s."""
    spec = make_spec()
    started = decide(spec, RZeroRunStatus(), observed(), NOW)
    later = [decide(spec, started.status, observed("running", starting=True), NOW + timedelta(seconds=s)).requeue_after
             for s in (1, 5, 12, 600)]
    assert later == [STARTING_POLL_S, 5.0, 12.0, STARTING_POLL_MAX_S]
