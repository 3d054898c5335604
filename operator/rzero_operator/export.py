"""spec.export: when the export step runs, and its task. Pure.

The export is the run's last step: after the last iteration's evaluation, or after an early stop (guard
or rejection). It runs once per end: its output is `iter-NNN/export` of the iteration the run ended at, so
raising `spec.iterations` on a finished run exports again at the new end. The task names the best
Solver (status.bestIteration; the base model when iteration 0 scored best) and the last one trained, and
carries the model card's data: the base model, per-iteration figures and the spec.
"""

from __future__ import annotations

from rzero_worker.task import CardRow, ExportedModel, ExportTask, ModelCardData

from .api.oversight import ExportedLocation, ExportStatus
from .api.spec import RZeroRunSpec
from .api.status import RZeroRunStatus
from .tasks import phase_key, solver_input, task_common

PHASE = "export"


def end_iteration(spec: RZeroRunSpec, status: RZeroRunStatus) -> int:
    return status.stopped.iteration if status.stopped is not None else spec.iterations


def export_step(spec: RZeroRunSpec, status: RZeroRunStatus) -> tuple[int, str] | None:
    """(iteration, "export") while the run's export is still to do, else None."""
    if not spec.export.enabled:
        return None
    end = end_iteration(spec, status)
    record = status.record(end)
    if record is not None and PHASE in record.phases and record.phases[PHASE].state == "Succeeded":
        return None
    return end, PHASE


def last_trained(status: RZeroRunStatus) -> int:
    """The newest iteration whose Solver is committed (0: none yet, the base model)."""
    done = [r.iteration for r in status.iteration_history
            if "solver" in r.phases and r.phases["solver"].state == "Succeeded"]
    return max(done, default=0)


def _model(spec: RZeroRunSpec, iteration: int) -> ExportedModel:
    return ExportedModel(iteration=iteration, model=solver_input(spec, iteration))


def card_data(spec: RZeroRunSpec, status: RZeroRunStatus) -> ModelCardData:
    rows = [
        CardRow(iteration=r.iteration, kept=r.questions_kept, label_accuracy=r.label_accuracy,
                label_accuracy_ci95=r.label_accuracy_ci95, oracle_checked=r.oracle_checked, oracle=r.label_oracle,
                mean_score=r.mean_score, scores=dict(r.scores))
        for r in status.iteration_history
    ]
    stopped = f"{status.stopped.reason}: {status.stopped.message}" if status.stopped is not None else None
    return ModelCardData(base_model=spec.solver_model, iterations=spec.iterations, stopped=stopped, rows=rows,
                         spec=spec.wire())


def build_export_task(
    spec: RZeroRunSpec, status: RZeroRunStatus, run_name: str, iteration: int, prune: list[str] | None = None
) -> ExportTask:
    last = last_trained(status)
    best = status.best_iteration.iteration if status.best_iteration is not None else last
    return ExportTask(
        **task_common(spec, status.run_root or "", run_name, iteration, PHASE), output=phase_key(iteration, PHASE),
        best=_model(spec, best), last=_model(spec, last), card=card_data(spec, status), prune=prune or [],
    )


def export_status(status: RZeroRunStatus, iteration: int, summaries: list[dict]) -> ExportStatus | None:
    """Where the export of `iteration` put the Solvers, from its summary (best/ always; last/ only when it
    is another iteration, else the best directory is also the last)."""
    metrics = next((s.get("metrics") for s in summaries if isinstance(s, dict) and s.get("metrics")), None) or {}
    best, last = metrics.get("best_iteration"), metrics.get("last_iteration")
    if not isinstance(best, int) or not isinstance(last, int):
        return None
    root = f"{(status.run_root or '').rstrip('/')}/{phase_key(iteration, PHASE)}"
    best_location = ExportedLocation(iteration=best, location=f"{root}/best")
    last_location = best_location if last == best else ExportedLocation(iteration=last, location=f"{root}/last")
    return ExportStatus(iteration=iteration, best=best_location, last=last_location)
