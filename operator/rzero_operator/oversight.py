"""Watching a run: the plan's hooks for label accuracy, the drift guard, the best iteration, the human gate,
retention and export. Pure (no I/O), like the plan that calls it:

- `after_success(spec, status, iteration, phase, summaries, now)` when a phase succeeded (its numbers are
  already in the history): storage and retention bookkeeping, the label-accuracy event, the best iteration,
  the guard (stop: `status.stopped`; pause: a gate), the approval gate, the export's location;
- `before_next(spec, status, annotations, now)` before the plan starts the next step: decide a waiting gate
  from the run's annotations — "wait" (no decision yet), "finish" (stopped: export if enabled, then
  Succeeded), or None (go on);
- `final_step(spec, status)`: the export step, while it is due;
- `step_tasks(spec, status, run_name, iteration, phase)`: the tasks of a step — the export's, or the
  usual ones with spec.retention's deletions attached to the Challenger's.

Why a stopped run ends Succeeded (reason EarlyStopped or Rejected) and not Failed: it did what it was
asked to — it kept its best Solver and stopped training before the labels (or a person) said it would
only get worse. Failed means something needs fixing (a configuration error, retries exhausted) and is
terminal before any export.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from . import approval, guard, retention
from .api.oversight import EarlyStop
from .api.spec import RZeroRunSpec
from .api.status import RZeroRunStatus
from .export import PHASE as EXPORT, build_export_task, export_status, export_step
from .api.openended import open_ended_events
from .tasks import build_tasks

Event = tuple[str, str, str]
Hold = Literal["wait", "finish"] | None


def after_success(
    spec: RZeroRunSpec, status: RZeroRunStatus, iteration: int, phase: str, summaries: list[dict[str, Any]],
    now: datetime,
) -> list[Event]:
    """Update what watching the run needs after (iteration, phase) succeeded; returns the events."""
    events: list[Event] = []
    record = status.record(iteration)
    metrics = [s.get("metrics") or {} for s in summaries if isinstance(s, dict)]
    sizes = [m["output_bytes"] for m in metrics if isinstance(m.get("output_bytes"), int)]
    if record is not None and phase in record.phases and sizes:
        record.phases[phase].output_bytes = sum(sizes)
    for m in metrics:
        if isinstance(m.get("pruned"), dict):
            retention.mark_pruned(status, m["pruned"])
    retention.update_storage(status)
    if phase == "label" and record is not None:
        status.latest_label_accuracy = record.label_accuracy
        events += label_events(record)
    if phase == "evaluate":
        status.best_iteration = guard.best_iteration(status, spec)
    if record is not None:
        events += open_ended_events(record, phase)  # spec.task open-ended: the judge report, the win rate
    if phase == "verifier" and record is not None and record.verifier_training is not None:
        status.latest_verifier_accuracy = record.verifier_training.accuracy_after
        events.append(verifier_event(iteration, record.verifier_training))
    if phase == EXPORT:
        status.export = export_status(status, iteration, summaries)
        if status.export is not None:
            events.append(("Normal", "Exported", f"best Solver (iteration {status.export.best.iteration}) at "
                           f"{status.export.best.location}; last (iteration {status.export.last.iteration}) at "
                           f"{status.export.last.location}"))
        return events
    return events + _guard_and_gate(spec, status, iteration, phase, now)


def _guard_and_gate(spec: RZeroRunSpec, status: RZeroRunStatus, iteration: int, phase: str, now: datetime) -> list[Event]:
    events: list[Event] = []
    reasons = approval.gate_reasons(spec, phase)
    trip = guard.check(spec.guard, status, iteration, phase)
    if trip is not None:
        action = spec.guard.action
        events.append(("Warning", "GuardTripped", f"drift guard ({action}): {trip.message}"))
        if action == "stop":
            status.stopped = EarlyStop(iteration=iteration, reason="EarlyStopped", message=trip.message, at=now)
            return events
        reasons.append(f"spec.guard: {trip.message}")
    if reasons and status.stopped is None:
        gate = approval.open_gate(status, iteration, phase, reasons, now)
        if gate is not None:
            status.approval = gate
            events.append(("Normal", "ApprovalRequired", approval.waiting_message(gate)))
    return events


def label_events(record) -> list[Event]:
    """Label accuracy (or, without oracle checks, its proxies) of a finished labelling, as events."""
    events: list[Event] = []
    if record.label_accuracy is not None and record.label_accuracy_ci95:
        low, high = record.label_accuracy_ci95
        text = (f"iteration {record.iteration}: label accuracy {100 * record.label_accuracy:.1f}% "
                f"[{100 * low:.1f}%, {100 * high:.1f}%] over {record.oracle_checked} kept questions checked by "
                f"{record.label_oracle or 'the oracles'}")
    else:
        parts = []
        if record.answer_entropy is not None:
            parts.append(f"answer entropy {record.answer_entropy:.2f} bits")
        if record.band_edge_share is not None:
            parts.append(f"{100 * record.band_edge_share:.0f}% of kept questions at the band's edges")
        if record.label_matches_challenger is not None:
            parts.append(f"{100 * record.label_matches_challenger:.0f}% of labels equal the Challenger's answer")
        text = f"iteration {record.iteration}: no oracle checked the labels; proxies: " + (", ".join(parts) or "none")
    events.append(("Normal", "LabelAccuracy", text))
    for name, oracle in record.oracles.items():
        if oracle.error:
            events.append(("Warning", "OracleFailed", f"iteration {record.iteration}: oracle {name} stopped: {oracle.error}"))
    if record.verifier is not None:
        events.append(("Normal", "LabelVeto", f"iteration {record.iteration}: " + veto_text(record.verifier)))
        if record.verifier.error:
            events.append(("Warning", "VerifierFailed",
                           f"iteration {record.iteration}: the endpoint Verifier stopped: {record.verifier.error}"))
    return events


def verifier_event(iteration: int, trained) -> Event:
    """The trained Verifier's phase in one line: its examples, held-out accuracy before and after, whether it moved."""
    if trained.skipped:
        return ("Warning", "VerifierNotTrained", f"iteration {iteration}: the Verifier was carried forward unchanged: "
                f"{trained.skipped}")
    percent = _percent_or_dash
    text = (f"iteration {iteration}: the Verifier trained on {trained.train_examples} of {trained.examples} examples; "
            f"held-out accuracy {percent(trained.accuracy_before)} before, {percent(trained.accuracy_after)} after "
            f"(n={trained.held_out})")
    if trained.oracle_held_out:
        text += (f"; on the {trained.oracle_held_out} oracle-checked: {percent(trained.oracle_accuracy_before)} before, "
                 f"{percent(trained.oracle_accuracy_after)} after")
    spread = "–" if trained.reward_std is None else f"{trained.reward_std:.3f}"
    moved = "–" if trained.weight_change is None else f"{trained.weight_change:.2e}"
    return ("Normal", "VerifierTrained", text + f"; reward spread {spread}, weight change {moved}")


def veto_text(veto) -> str:
    """One line on a VetoRecord: what the Verifier vetoed and, with oracle checks, what that did to label accuracy."""
    text = (f"the Verifier vetoed {veto.vetoed} of {veto.judged} kept labels (rejected {veto.rejected}, "
            f"unparsable {veto.unparsable}, unavailable {veto.unavailable})")
    if veto.accuracy_before is None:
        return text + "; no oracle checked them"
    after = "–" if veto.accuracy_after is None else _percent_ci(veto.accuracy_after, veto.ci95_after)
    text += (f"; label accuracy {_percent_ci(veto.accuracy_before, veto.ci95_before)} before (n={veto.checked_before}), "
             f"{after} after (n={veto.checked_after}); {veto.correct_vetoed} correct and {veto.wrong_vetoed} wrong "
             "labels vetoed")
    if veto.verifier_accuracy is not None:
        text += f"; Verifier agrees with the oracle on {100 * veto.verifier_accuracy:.1f}% of {veto.oracle_compared}"
    return text


def _percent_or_dash(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _percent_ci(value: float, ci: list[float] | None) -> str:
    low, high = ci or (value, value)
    return f"{100 * value:.1f}% [{100 * low:.1f}%, {100 * high:.1f}%]"


def before_next(
    spec: RZeroRunSpec, status: RZeroRunStatus, annotations: dict[str, str], now: datetime, events: list[Event]
) -> Hold:
    """Decide a waiting gate (in place; events appended) and say whether the run may go on."""
    gate = status.approval
    if gate is not None and not approval.still_required(spec, gate):
        status.approval = None
        events.append(("Normal", "ApprovalWithdrawn", f"gate {gate.gate}: the spec no longer asks for it"))
    elif gate is not None:
        decision = approval.decision_for(gate, approval.decision_annotations(annotations), now)
        if decision is None:
            return "wait"
        status.approvals.append(decision)
        status.approval = None
        text = f"gate {gate.gate} (iteration {gate.iteration}, after {gate.after}) {decision.decision.lower()} by {decision.by}"
        if decision.verdicts:
            text += f" with {len(decision.verdicts)} per-item verdict(s)"
        events.append(("Normal", decision.decision, text + (f": {decision.reason}" if decision.reason else "")))
        ignored = approval.parse_verdicts(annotations.get(approval.VERDICTS))[1]
        if ignored:
            events.append(("Warning", "VerdictsIgnored", f"gate {gate.gate}: {approval.VERDICTS} entries that are not "
                           f"<id>=correct|incorrect were left out: {', '.join(ignored[:10])}"))
        if decision.decision == "Rejected":
            message = text + (f": {decision.reason}" if decision.reason else "")
            status.stopped = EarlyStop(iteration=gate.iteration, reason="Rejected", message=message, at=now)
    return "finish" if status.stopped is not None else None


def final_step(spec: RZeroRunSpec, status: RZeroRunStatus) -> tuple[int, str] | None:
    return export_step(spec, status)


def step_tasks(spec: RZeroRunSpec, status: RZeroRunStatus, run_name: str, iteration: int, phase: str) -> list:
    """The tasks of a step; raises ValueError when the spec cannot make them."""
    if phase == EXPORT:
        return [build_export_task(spec, status, run_name, iteration, prune=retention.prune_keys(spec, status))]
    tasks = build_tasks(spec, status.run_root or "", run_name, iteration, phase)
    if phase == "challenger":
        for task in tasks:
            task.prune = retention.prune_keys(spec, status)
    if phase == "verifier":  # what a person said of this iteration's audit sample at its gate
        for task in tasks:
            task.audit = approval.audit_verdicts(status, iteration)
    return tasks


def finish(spec: RZeroRunSpec, status: RZeroRunStatus) -> tuple[str, str, int]:
    """(Ready condition reason, message, iteration) of a finished run."""
    if status.stopped is not None:
        stop = status.stopped
        what = "stopped early by the drift guard" if stop.reason == "EarlyStopped" else "stopped: labels rejected"
        return stop.reason, f"{what} in iteration {stop.iteration}: {stop.message}", stop.iteration
    return "Succeeded", f"all {spec.iterations} iteration(s) done", spec.iterations
