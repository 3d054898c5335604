"""The drift guard and the best iteration: pure functions of the spec and the iteration history.

- `best_iteration`: the evaluated iteration with the highest mean score (iteration 0, the base model,
  competes too: a run whose training only made things worse says so); ties go to the earlier iteration
  (less training, less drift).
- `violation`: what new evidence a phase's success brings against the iteration (`spec.guard`): after
  labelling, a label accuracy whose 95% lower bound is under `minLabelAccuracy`; after evaluation, a mean
  score more than `maxScoreDrop` below the best iteration's; after a trained Verifier's phase, a held-out accuracy
  whose 95% lower bound is under `minVerifierAccuracy`. Fewer than `minChecked` oracle checks are
  no label evidence: the interval of a handful of checks is too wide to prove anything either way.
- `tripped`: the guard acts when the latest `patience` iterations (this one included) all carry a
  violation, and only on the phase that just added one — a second phase of the same iteration does not
  re-trip on the first one's evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

from .api.oversight import BestIteration, GuardSpec
from .api.status import IterationRecord, RZeroRunStatus
from .api.spec import RZeroRunSpec
from .tasks import solver_input

SCORE_EPSILON = 1e-9  # a drop equal to the threshold is allowed


@dataclass(frozen=True)
class Trip:
    """The guard acts: `message` says on what evidence."""

    iteration: int
    phase: str
    message: str


def best_iteration(status: RZeroRunStatus, spec: RZeroRunSpec) -> BestIteration | None:
    """The best evaluated iteration so far, with where its Solver lives (a run-root location, or the base
    model's source)."""
    evaluated = [
        record for record in status.iteration_history
        if record.mean_score is not None and _succeeded(record, "evaluate")
    ]
    if not evaluated:
        return None
    best = max(evaluated, key=lambda record: (record.mean_score, -record.iteration))
    solver = solver_input(spec, best.iteration)
    location = solver.source if solver.artifact is None else f"{(status.run_root or '').rstrip('/')}/{solver.artifact}"
    return BestIteration(iteration=best.iteration, score=best.mean_score, solver_checkpoint=location)


def _succeeded(record: IterationRecord, phase: str) -> bool:
    return phase in record.phases and record.phases[phase].state == "Succeeded"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def label_violation(guard: GuardSpec, record: IterationRecord) -> str | None:
    if guard.min_label_accuracy is None or not record.label_accuracy_ci95:
        return None
    if (record.oracle_checked or 0) < guard.min_checked:
        return None  # too few checks to be evidence either way
    low, high = record.label_accuracy_ci95
    if low >= guard.min_label_accuracy:
        return None
    return (f"iteration {record.iteration}: label accuracy {_percent(record.label_accuracy or 0.0)} "
            f"[{_percent(low)}, {_percent(high)}] over {record.oracle_checked} checked by "
            f"{record.label_oracle or 'the oracle'}: lower bound under minLabelAccuracy {_percent(guard.min_label_accuracy)}")


def verifier_violation(guard: GuardSpec, record: IterationRecord) -> str | None:
    """The trained Verifier's held-out accuracy: its 95% lower bound under minVerifierAccuracy (from minChecked
    held-out examples on), found after its phase, before the next labelling judges with it."""
    trained = record.verifier_training
    if guard.min_verifier_accuracy is None or trained is None or not trained.accuracy_after_ci95:
        return None
    if trained.held_out < guard.min_checked:
        return None
    low, high = trained.accuracy_after_ci95
    if low >= guard.min_verifier_accuracy:
        return None
    return (f"iteration {record.iteration}: trained Verifier's held-out accuracy {_percent(trained.accuracy_after or 0.0)} "
            f"[{_percent(low)}, {_percent(high)}] over {trained.held_out} examples: lower bound under "
            f"minVerifierAccuracy {_percent(guard.min_verifier_accuracy)}")


def score_violation(guard: GuardSpec, record: IterationRecord, best: BestIteration | None) -> str | None:
    if guard.max_score_drop is None or record.mean_score is None or best is None:
        return None
    drop = best.score - record.mean_score
    if drop <= guard.max_score_drop + SCORE_EPSILON:
        return None
    return (f"iteration {record.iteration}: mean score {_percent(record.mean_score)} is {100 * drop:.1f} points "
            f"below the best (iteration {best.iteration}, {_percent(best.score)}), more than maxScoreDrop "
            f"{100 * guard.max_score_drop:.1f}")


def violation(guard: GuardSpec, status: RZeroRunStatus, iteration: int, phase: str) -> str | None:
    """The violation the success of (iteration, phase) brings to light, if any."""
    record = status.record(iteration)
    if record is None:
        return None
    if phase == "label":
        return label_violation(guard, record)
    if phase == "evaluate":
        return score_violation(guard, record, status.best_iteration)
    if phase == "verifier":
        return verifier_violation(guard, record)
    return None


def consecutive_violations(status: RZeroRunStatus, iteration: int) -> int:
    """How many iterations, counting back from `iteration`, carry a violation without a gap."""
    count = 0
    for i in range(iteration, -1, -1):
        record = status.record(i)
        if record is None or not record.guard_violations:
            break
        count += 1
    return count


def check(guard: GuardSpec | None, status: RZeroRunStatus, iteration: int, phase: str) -> Trip | None:
    """Record new evidence in the iteration's `guardViolations` (in place) and say whether the guard acts."""
    if guard is None:
        return None
    found = violation(guard, status, iteration, phase)
    record = status.record(iteration)
    if found is None or record is None:
        return None
    if found not in record.guard_violations:
        record.guard_violations.append(found)
    streak = consecutive_violations(status, iteration)
    if streak < guard.patience:
        return None
    suffix = f" ({streak} iterations in a row)" if guard.patience > 1 else ""
    return Trip(iteration=iteration, phase=phase, message=found + suffix)
