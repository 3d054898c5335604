"""The plan with a trained Verifier (spec.verifier.mode trained): its phase after each label phase, which checkpoint
each label phase judges with, its record in the history, the event, the guard, and the gate's per-item verdicts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from rzero_operator.api import RZeroRunSpec, RZeroRunStatus
from rzero_operator.plan import decide, next_step, run_steps, steps
from test_plan import NOW, SUMMARIES, make_spec, observed

TRAINED = {"labeling": {"verifier": "veto"}, "verifier": {"mode": "trained"}}
VERIFIER_SUMMARY = {"metrics": {
    "examples": 40, "train_examples": 32, "held_out": 8, "audit_verdicts": 1,
    "sources": {"consensus": 30, "oracle": 9, "audit": 1}, "accuracy_before": 0.5, "accuracy_after": 0.75,
    "accuracy_after_ci95": [0.41, 0.93], "unparsable_after": 1, "oracle_held_out": 4, "oracle_accuracy_before": 0.25,
    "oracle_accuracy_after": 0.5, "steps": 5, "mean_reward": 0.6, "reward_std": 0.3, "weight_change": 1e-4,
}, "seconds": 9.0}


def trained_spec(**fields) -> RZeroRunSpec:
    return make_spec(**{**TRAINED, **fields})


def summary(phase: str) -> dict:
    return VERIFIER_SUMMARY if phase == "verifier" else SUMMARIES[phase]


def run_until(spec: RZeroRunSpec, iteration: int, phase: str, status: RZeroRunStatus | None = None):
    """Decisions from `status` (or a fresh run) until (iteration, phase) is started; returns that decision."""
    decision = decide(spec, status or RZeroRunStatus(), observed(), NOW)
    while (decision.start.iteration, decision.start.phase) != (iteration, phase):
        done = observed("succeeded", summaries=(summary(decision.status.current.phase),))
        decision = decide(spec, decision.status, done, NOW)
    return decision


def test_a_trained_verifier_adds_its_phase_right_after_each_label_phase():
    assert run_steps(trained_spec()) == steps(2, trained_verifier=True) == [(0, "evaluate")] + [
        (i, p) for i in (1, 2) for p in ("challenger", "generate", "label", "verifier", "solver", "evaluate")]
    assert run_steps(make_spec(labeling={"verifier": "veto"})) == steps(2)  # frozen (the default): no phase


def test_the_verifier_phase_trains_the_base_verifier_on_the_label_output_in_stage_verifier_training():
    decision = run_until(trained_spec(), 1, "verifier")
    assert decision.status.stage == "VerifierTraining" and decision.start.name == "demo-i001-verifier-a1"
    [task] = decision.start.tasks
    assert task.verifier.source == "builtin:smollm2-135m-instruct" and task.examples == "iter-001/label"
    assert task.output == "iter-001/verifier" and task.audit == []


def test_each_label_phase_judges_with_the_previous_iterations_verifier_and_writes_its_examples():
    spec = trained_spec()
    first = run_until(spec, 1, "label").start.tasks[0]
    assert first.verifier.model.source == "builtin:smollm2-135m-instruct"
    assert first.verification_consensus == spec.verifier.training.consensus
    second = run_until(spec, 2, "label").start.tasks[0]
    assert second.verifier.model.artifact == "iter-001/verifier"
    frozen = run_until(make_spec(labeling={"verifier": "veto"}), 2, "label").start.tasks[0]
    assert frozen.verifier.model.source == "builtin:smollm2-135m-instruct" and frozen.verification_consensus is None


def test_its_success_fills_the_history_the_latest_accuracy_and_one_event():
    spec = trained_spec()
    running = run_until(spec, 1, "verifier").status
    decision = decide(spec, running, observed("succeeded", summaries=(VERIFIER_SUMMARY,)), NOW)
    record = decision.status.record(1)
    assert record.verifier_checkpoint == "iter-001/verifier"
    trained = record.verifier_training
    assert (trained.examples, trained.held_out, trained.accuracy_before, trained.accuracy_after) == (40, 8, 0.5, 0.75)
    assert trained.sources == {"consensus": 30, "oracle": 9, "audit": 1} and trained.weight_change == 1e-4
    assert decision.status.latest_verifier_accuracy == 0.75
    [event] = [e for e in decision.events if e[1] == "VerifierTrained"]
    assert "held-out accuracy 50.0% before, 75.0% after (n=8)" in event[2]
    assert "oracle-checked: 25.0% before, 50.0% after" in event[2] and decision.start.phase == "solver"


def test_a_verifier_that_did_not_train_says_so_in_a_warning():
    spec = trained_spec()
    running = run_until(spec, 1, "verifier").status
    skipped = {"metrics": {"examples": 0, "train_examples": 0, "held_out": 0, "steps": 0, "skipped": "no examples"}}
    decision = decide(spec, running, observed("succeeded", summaries=(skipped,)), NOW)
    assert ("Warning", "VerifierNotTrained") in [e[:2] for e in decision.events]
    assert decision.status.record(1).verifier_training.skipped == "no examples"


def test_a_restart_inside_the_verifier_phase_starts_the_same_attempt_again():
    spec = trained_spec()
    status = run_until(spec, 1, "verifier").status
    decision = decide(spec, status, observed("absent"), NOW + timedelta(minutes=5))
    assert (decision.start.phase, decision.start.attempt, decision.start.name) == ("verifier", 1, "demo-i001-verifier-a1")
    assert decision.events[0][1] == "PhaseRestarted" and next_step(spec, status) == (1, "verifier")


def test_the_guard_stops_a_run_whose_trained_verifier_is_below_min_verifier_accuracy():
    spec = trained_spec(guard={"minVerifierAccuracy": 0.6, "minChecked": 5})
    running = run_until(spec, 1, "verifier").status
    decision = decide(spec, running, observed("succeeded", summaries=(VERIFIER_SUMMARY,)), NOW)  # lower bound 0.41
    assert decision.status.stopped is not None and decision.status.phase == "Succeeded"
    assert "minVerifierAccuracy 60.0%" in decision.status.stopped.message


def test_per_item_verdicts_at_the_label_gate_reach_the_same_iterations_verifier_phase():
    spec = trained_spec(approval={"after": ["label"]})
    decision = decide(spec, RZeroRunStatus(), observed(), NOW)
    while decision.start is not None:
        decision = decide(spec, decision.status, observed("succeeded", summaries=(summary(decision.status.current.phase),)), NOW)
    assert decision.status.stage == "AwaitingApproval"
    annotations = {"rzero.dev/approve": "1", "rzero.dev/decided-by": "ana",
                   "rzero.dev/verdicts": "g-000001=correct, g-000002=incorrect bogus g-000003=maybe"}
    decision = decide(spec, decision.status, observed("absent", annotations=annotations), NOW)
    assert decision.start.phase == "verifier"
    assert [(v.id, v.correct) for v in decision.start.tasks[0].audit] == [("g-000001", True), ("g-000002", False)]
    assert decision.status.approvals[0].verdicts[1].id == "g-000002"
    [warning] = [e for e in decision.events if e[1] == "VerdictsIgnored"]
    assert "bogus" in warning[2] and "g-000003=maybe" in warning[2]


def test_a_trained_verifier_needs_the_veto_and_a_model():
    with pytest.raises(ValidationError, match="set labeling.verifier: veto"):
        make_spec(verifier={"mode": "trained"})
    endpoint = {"url": "http://judge:8000/v1", "model": "judge"}
    with pytest.raises(ValidationError, match="an endpoint cannot be trained"):
        make_spec(labeling={"verifier": "veto"}, verifier={"mode": "trained", "endpoint": endpoint})
