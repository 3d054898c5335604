"""Watching a run, as the plan decides it: label accuracy in the history, the best iteration, the drift guard
(stop and pause), the approval gate (approved, rejected, decided across restarts), retention and export."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rzero_operator.api import RZeroRunSpec, RZeroRunStatus
from rzero_operator.plan import Observed, decide

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
RUN = dict(run_name="demo", run_root="/runs/local/demo/uid-1", generation=1)


def make_spec(**fields) -> RZeroRunSpec:
    body = {"model": "builtin:smollm2-135m-instruct", "iterations": 3, "storage": {"uri": "/runs"},
            "retry": {"maxAttempts": 2, "backoffSeconds": 1, "maxBackoffSeconds": 1}}
    body.update(fields)
    return RZeroRunSpec.model_validate(body)


class Run:
    """Drives decide() like an executor: every started phase succeeds with the summary `metrics_for` gives."""

    def __init__(self, spec: RZeroRunSpec, correct: dict[int, int] | None = None, scores: dict[int, float] | None = None):
        self.spec, self.correct, self.scores = spec, correct or {}, scores or {}
        self.status, self.events, self.started, self.annotations = RZeroRunStatus(), [], [], {}
        self.decision = None

    def summary(self, iteration: int, phase: str) -> dict:
        """What the worker's runner would report: its metrics, `output_bytes`, and `pruned` for a task that
        named checkpoints to delete."""
        metrics: dict = {"output_bytes": 1000 * (iteration + 1)}
        prune = self.decision.start.tasks[0].prune if self.decision and self.decision.start else []
        if prune:
            metrics["pruned"] = {key: 0 for key in prune}
        if phase == "label":
            checked = 50
            correct = self.correct.get(iteration, 45)
            metrics.update(questions=100, kept=checked, oracle="endpoint", oracle_checked=checked, oracle_correct=correct,
                           answer_entropy=1.0, band_edge_share=0.3,
                           oracles={"endpoint": {"asked": checked, "checked": checked, "correct": correct, "requests": 52,
                                                 "malformed": 1, "failed": 0, "over_budget": 0}})
        if phase == "evaluate":
            accuracy = self.scores.get(iteration, 0.5)
            metrics["scores"] = {"arithmetic": {"accuracy": accuracy, "n": 1000, "correct": round(1000 * accuracy)}}
        if phase == "export":
            status_best = self.status.best_iteration.iteration if self.status.best_iteration else 0
            metrics.update(best_iteration=status_best, last_iteration=max(
                [r.iteration for r in self.status.iteration_history if "solver" in r.phases
                 and r.phases["solver"].state == "Succeeded"], default=0))
        return {"metrics": metrics, "seconds": 1.0}

    def step(self, state: str = "absent", **observed) -> None:
        current = self.status.current
        summaries = (self.summary(current.iteration, current.phase),) if state == "succeeded" and current else ()
        self.decision = decide(self.spec, self.status, Observed(state=state, summaries=summaries,
                                                                annotations=dict(self.annotations), **RUN, **observed), NOW)
        self.status = self.decision.status
        self.events += self.decision.events
        if self.decision.start is not None:
            self.started.append((self.decision.start.iteration, self.decision.start.phase))

    def go(self, limit: int = 100) -> "Run":
        """Run until nothing more starts (finished, or waiting)."""
        self.step()
        for _ in range(limit):
            if self.decision.start is None:
                return self
            self.step("succeeded")
        raise AssertionError("the run did not settle")

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]


# -- label accuracy and the best iteration ------------------------------------------------------------


def test_label_accuracy_per_oracle_and_the_proxies_reach_the_history_and_an_event():
    run = Run(make_spec(iterations=1), correct={1: 40}).go()
    record = run.status.record(1)
    assert (record.label_accuracy, record.oracle_checked, record.label_oracle) == (0.8, 50, "endpoint")
    low, high = record.label_accuracy_ci95
    assert 0.66 < low < 0.8 < high < 0.9
    endpoint = record.oracles["endpoint"]
    assert (endpoint.checked, endpoint.correct, endpoint.malformed, endpoint.requests) == (50, 40, 1, 52)
    assert endpoint.accuracy == 0.8 and endpoint.ci95 == record.label_accuracy_ci95
    assert (record.answer_entropy, record.band_edge_share) == (1.0, 0.3)
    assert run.status.latest_label_accuracy == 0.8
    [message] = [m for _, reason, m in run.events if reason == "LabelAccuracy"]
    assert "label accuracy 80.0%" in message and "50 kept questions checked by endpoint" in message


def test_the_best_iteration_is_the_highest_mean_score_with_its_solver_location():
    run = Run(make_spec(iterations=3), scores={0: 0.30, 1: 0.42, 2: 0.40, 3: 0.42}).go()
    best = run.status.best_iteration
    assert (best.iteration, best.score, best.solver_checkpoint) == (1, 0.42, "/runs/local/demo/uid-1/iter-001/solver")


def test_the_base_model_is_the_best_when_training_only_made_it_worse():
    run = Run(make_spec(iterations=1), scores={0: 0.5, 1: 0.4}).go()
    assert (run.status.best_iteration.iteration, run.status.best_iteration.solver_checkpoint) == (
        0, "builtin:smollm2-135m-instruct")


def test_storage_per_iteration_is_the_sum_of_its_committed_outputs():
    run = Run(make_spec(iterations=1)).go()
    assert run.status.record(1).storage_bytes == 5 * 2000 and run.status.record(0).storage_bytes == 1000
    assert run.status.storage_bytes == 11000
    assert run.status.record(1).phases["solver"].output_bytes == 2000


# -- the drift guard ------------------------------------------------------------------------------------


def test_the_guard_stops_before_the_solver_trains_on_inaccurate_labels():
    guard = {"minLabelAccuracy": 0.7, "action": "stop"}
    run = Run(make_spec(guard=guard), correct={1: 45, 2: 30}).go()  # 90%, then 60% [46%, 72%]
    assert run.started[-1] == (2, "label")  # no solver of iteration 2
    st = run.status
    assert (st.phase, st.stage, st.iteration) == ("Succeeded", "Done", 2)
    assert st.stopped.reason == "EarlyStopped" and "lower bound" in st.stopped.message
    assert st.record(2).guard_violations and not st.record(1).guard_violations
    ready = st.condition("Ready")
    assert (ready.status, ready.reason) == ("True", "EarlyStopped")
    assert run.reasons()[-2:] == ["GuardTripped", "EarlyStopped"]
    run.step()  # idempotent afterwards
    assert run.decision.events == [] and run.decision.start is None


def test_the_guard_stops_on_a_score_drop_from_the_best_after_patience_iterations():
    guard = {"maxScoreDrop": 0.05, "patience": 2}
    run = Run(make_spec(iterations=5, guard=guard), scores={0: 0.3, 1: 0.5, 2: 0.44, 3: 0.43, 4: 0.6}).go()
    assert run.status.stopped.iteration == 3 and run.started[-1] == (3, "evaluate")
    assert "2 iterations in a row" in run.status.stopped.message
    assert [r.iteration for r in run.status.iteration_history if r.guard_violations] == [2, 3]


def test_a_drop_within_the_threshold_or_no_oracle_evidence_does_not_trip():
    spec = make_spec(iterations=2, guard={"maxScoreDrop": 0.05, "minLabelAccuracy": 0.9})
    run = Run(spec, scores={1: 0.5, 2: 0.45}, correct={1: 50, 2: 50}).go()
    assert run.status.phase == "Succeeded" and run.status.stopped is None


def test_too_few_oracle_checks_are_no_evidence_for_the_label_threshold():
    run = Run(make_spec(iterations=1, guard={"minLabelAccuracy": 0.7, "minChecked": 51}), correct={1: 5})
    run.go()
    assert run.status.stopped is None and run.status.phase == "Succeeded"  # 5 of 50 right, but 50 < 51 checks
    run = Run(make_spec(iterations=1, guard={"minLabelAccuracy": 0.7, "minChecked": 50}), correct={1: 5}).go()
    assert run.status.stopped.reason == "EarlyStopped"


def test_the_guard_pauses_and_an_approval_resumes_the_run():
    run = Run(make_spec(iterations=2, guard={"minLabelAccuracy": 0.7, "action": "pause"}), correct={1: 20}).go()
    st = run.status
    assert (st.phase, st.stage, run.started[-1]) == ("Suspended", "AwaitingApproval", (1, "label"))
    assert st.approval.gate == "1" and st.approval.reasons[0].startswith("spec.guard:")
    assert st.condition("Suspended").reason == "AwaitingApproval"
    run.annotations = {"rzero.dev/approve": "1", "rzero.dev/decided-by": "alice", "rzero.dev/reason": "spot-checked"}
    run.go()
    assert run.status.phase == "Succeeded" and run.status.approval is None
    [decision] = run.status.approvals
    assert (decision.gate, decision.decision, decision.by, decision.reason, decision.at) == (
        "1", "Approved", "alice", "spot-checked", NOW)


# -- the approval gate ------------------------------------------------------------------------------------


def test_the_run_waits_after_labelling_until_approved_and_the_annotation_is_gate_specific():
    run = Run(make_spec(iterations=2, approval={})).go()
    assert run.status.stage == "AwaitingApproval" and run.started[-1] == (1, "label")
    assert run.status.approval.audit_sample == "/runs/local/demo/uid-1/iter-001/label"
    assert run.reasons().count("ApprovalRequired") == 1
    run.step()  # waiting is idempotent: no new events, nothing starts
    assert run.decision.events == [] and run.decision.start is None
    run.annotations = {"rzero.dev/approve": "2"}  # an approval for a later gate does not open this one
    run.step()
    assert run.decision.start is None
    run.annotations = {"rzero.dev/approve": "1"}
    run.go()
    assert run.started[-1] == (2, "label") and run.status.approval.gate == "2"  # the same annotation left behind
    run.annotations = {"rzero.dev/approve": "1,2"}
    run.go()
    assert run.status.phase == "Succeeded"
    assert [d.gate for d in run.status.approvals] == ["1", "2"]
    assert "Resumed" in run.reasons()


def test_a_rejection_stops_the_run_before_the_solver_uses_the_labels():
    run = Run(make_spec(iterations=3, approval={"after": ["label"]})).go()
    run.annotations = {"rzero.dev/reject": "1", "rzero.dev/approve": "1", "rzero.dev/decided-by": "bob",
                       "rzero.dev/reason": "labels are nonsense", "rzero.dev/decided-at": "2025-01-01T11:00:00Z"}
    run.go()
    st = run.status
    assert (st.phase, st.iteration, st.stopped.reason) == ("Succeeded", 1, "Rejected")  # reject wins over approve
    assert (1, "solver") not in run.started
    [decision] = st.approvals
    assert (decision.decision, decision.by, decision.at) == ("Rejected", "bob", NOW - timedelta(hours=1))
    assert st.condition("Ready").reason == "Rejected" and "labels are nonsense" in st.message


def test_a_gate_after_another_phase_is_named_iteration_slash_phase():
    run = Run(make_spec(iterations=1, approval={"after": ["generate"]})).go()
    assert run.status.approval.gate == "1/generate"
    run.annotations = {"rzero.dev/approve": "1"}  # the short form names the gate after labelling only
    run.step()
    assert run.decision.start is None
    run.annotations = {"rzero.dev/approve": "1/generate"}
    run.go()
    assert run.status.phase == "Succeeded"


def test_a_waiting_gate_survives_a_restart_because_everything_is_in_the_status():
    run = Run(make_spec(iterations=1, approval={})).go()
    saved = RZeroRunStatus.model_validate(run.status.wire())  # what a new executor or operator reads back
    again = decide(run.spec, saved, Observed(**RUN), NOW + timedelta(hours=1))
    assert again.start is None and again.events == [] and again.status.stage == "AwaitingApproval"
    later = decide(run.spec, saved, Observed(annotations={"rzero.dev/approve": "1"}, **RUN), NOW)
    assert later.start.phase == "solver"


def test_removing_the_approval_from_the_spec_releases_the_gate():
    run = Run(make_spec(iterations=1, approval={})).go()
    run.spec = make_spec(iterations=1)
    run.go()
    assert run.status.phase == "Succeeded" and "ApprovalWithdrawn" in run.reasons() and not run.status.approvals


def test_suspend_and_approval_both_hold_the_run():
    run = Run(make_spec(iterations=1, approval={}, suspend=True))
    run.spec = make_spec(iterations=1, approval={})
    run.go()
    run.spec = make_spec(iterations=1, approval={}, suspend=True)
    run.annotations = {"rzero.dev/approve": "1"}
    run.step()
    assert run.status.approvals and run.status.phase == "Suspended" and run.decision.start is None
    assert run.status.condition("Suspended").reason == "SpecSuspend"


# -- retention ------------------------------------------------------------------------------------------


def test_retention_deletes_old_checkpoints_keeping_the_newest_and_the_best():
    spec = make_spec(iterations=5, retention={"keepLast": 1}, export={"enabled": True})
    run = Run(spec, scores={0: 0.1, 1: 0.2, 2: 0.6, 3: 0.3, 4: 0.3, 5: 0.2})
    prunes = {}
    run.step()
    while run.decision.start is not None:
        start = run.decision.start
        prunes[(start.iteration, start.phase)] = start.tasks[0].prune
        run.step("succeeded")
    assert prunes[(1, "challenger")] == [] and prunes[(2, "challenger")] == ["iter-001/challenger.ckpt", "iter-001/solver.ckpt"]
    # at iteration 3 the newest is 2, which is also the best: 1 goes
    assert prunes[(3, "challenger")] == ["iter-001/challenger", "iter-001/solver", "iter-002/challenger.ckpt",
                                         "iter-002/solver.ckpt"]
    # at iteration 4 the newest is 3 and the best 2: both stay
    assert prunes[(4, "challenger")] == ["iter-003/challenger.ckpt", "iter-003/solver.ckpt"]
    assert prunes[(5, "challenger")] == ["iter-003/challenger", "iter-003/solver", "iter-004/challenger.ckpt",
                                         "iter-004/solver.ckpt"]
    assert prunes[(5, "export")] == ["iter-004/challenger", "iter-004/solver", "iter-005/challenger.ckpt",
                                     "iter-005/solver.ckpt"]
    for (iteration, phase), keys in prunes.items():  # never an input of what comes next, nor the best
        newest = iteration - 1 if phase == "challenger" else iteration  # the export may be followed by more iterations
        needed = {f"iter-{newest:03d}/challenger", f"iter-{newest:03d}/solver", "iter-002/challenger", "iter-002/solver"}
        assert not needed & set(keys), (iteration, phase)
    # the runner reports what it deleted; the history marks it (bytes are the summary's own)
    assert run.status.record(1).pruned == ["challenger", "challenger.ckpt", "solver", "solver.ckpt"]
    assert run.status.record(2).pruned == ["challenger.ckpt", "solver.ckpt"]
    assert run.status.record(1).storage_bytes == 3 * 2000  # generate, label, evaluate remain


def test_without_retention_nothing_is_deleted():
    run = Run(make_spec(iterations=2))
    run.step()
    while run.decision.start is not None:
        assert run.decision.start.tasks[0].prune == []
        run.step("succeeded")


# -- export ---------------------------------------------------------------------------------------------


def test_export_is_the_last_step_and_its_location_is_in_the_status():
    run = Run(make_spec(iterations=2, export={"enabled": True}), scores={0: 0.3, 1: 0.5, 2: 0.4}).go()
    assert run.started[-1] == (2, "export") and run.status.stage == "Done"
    task = run.decision  # the last decision recorded the export's success
    export = run.status.export
    assert (export.iteration, export.best.iteration, export.last.iteration) == (2, 1, 2)
    assert export.best.location == "/runs/local/demo/uid-1/iter-002/export/best"
    assert export.last.location == "/runs/local/demo/uid-1/iter-002/export/last"
    assert "Exported" in run.reasons() and task.status.record(2).phases["export"].state == "Succeeded"


def test_the_export_task_names_the_best_and_last_solvers_and_carries_the_card():
    run = Run(make_spec(iterations=2, export={"enabled": True}), scores={0: 0.3, 1: 0.5, 2: 0.4})
    run.step()
    while run.decision.start is not None and run.decision.start.phase != "export":
        run.step("succeeded")
    [task] = run.decision.start.tasks
    assert task.output == "iter-002/export" and task.best.model.artifact == "iter-001/solver"
    assert task.last.model.artifact == "iter-002/solver"
    assert [row.iteration for row in task.card.rows] == [0, 1, 2] and task.card.rows[1].label_accuracy == 0.9
    assert task.card.spec["iterations"] == 2 and task.card.base_model == "builtin:smollm2-135m-instruct"


def test_an_early_stopped_run_exports_what_it_has_and_stays_stopped():
    spec = make_spec(iterations=3, guard={"minLabelAccuracy": 0.7}, export={"enabled": True})
    run = Run(spec, correct={2: 20}, scores={0: 0.3, 1: 0.5}).go()
    assert run.started[-2:] == [(2, "label"), (2, "export")]
    assert (run.status.export.best.iteration, run.status.export.last.iteration) == (1, 1)
    run.spec = make_spec(iterations=5, guard={"minLabelAccuracy": 0.7}, export={"enabled": True})
    run.go()
    assert run.status.phase == "Succeeded" and run.started[-1] == (2, "export")


def test_raising_iterations_after_an_export_exports_again_at_the_new_end():
    run = Run(make_spec(iterations=1, export={"enabled": True})).go()
    run.spec = make_spec(iterations=2, export={"enabled": True})
    run.go()
    assert [s for s in run.started if s[1] == "export"] == [(1, "export"), (2, "export")]
    assert run.status.export.iteration == 2
