"""spec.retention: which training checkpoints to delete, and the storage each iteration holds. Pure.

The checkpoints of the newest `keepLast` iterations with one (per role: Challenger and Solver) and those of
the best iteration are kept; older ones are listed for deletion, with any resume checkpoints
(`<output>.ckpt/`) a committed training phase left behind (the runner deletes them at commit; a crash
between commit and delete leaves them). The list goes into the task of the next Challenger (and of the
export), whose runner deletes them before it starts: by then iteration i's outputs are all committed and
iteration i+1 reads only iteration i's checkpoints — always among the newest, since keepLast >= 1 — so
nothing a later phase needs is ever on the list. The best iteration is known whenever a list is made
(every earlier evaluation is in), and an iteration can only become the best while it is the newest.

What was deleted comes back in the runner's `pruned` metrics and is marked in `iterationHistory[].pruned`.
"""

from __future__ import annotations

from .api.spec import RZeroRunSpec
from .api.status import IterationRecord, RZeroRunStatus
from .tasks import phase_key

TRAINING_PHASES = ("challenger", "solver", "verifier")  # the Verifier's with spec.verifier.mode trained
CHECKPOINT_SUFFIX = ".ckpt"


def _committed(record: IterationRecord, phase: str) -> bool:
    return phase in record.phases and record.phases[phase].state == "Succeeded"


def prune_keys(spec: RZeroRunSpec, status: RZeroRunStatus) -> list[str]:
    """Run-relative prefixes to delete now (empty without spec.retention)."""
    if spec.retention is None:
        return []
    best = status.best_iteration.iteration if status.best_iteration is not None else None
    keys: list[str] = []
    for phase in TRAINING_PHASES:
        done = sorted(r.iteration for r in status.iteration_history if r.iteration > 0 and _committed(r, phase))
        keep = set(done[-spec.retention.keep_last :]) | {best}
        for iteration in done:
            record = status.record(iteration)
            if iteration not in keep and phase not in record.pruned:
                keys.append(phase_key(iteration, phase))
            if phase + CHECKPOINT_SUFFIX not in record.pruned:
                keys.append(phase_key(iteration, phase) + CHECKPOINT_SUFFIX)
    return sorted(keys)


def mark_pruned(status: RZeroRunStatus, pruned: dict) -> None:
    """Record in the history what a task's runner deleted (`pruned` metrics: {prefix: bytes})."""
    for prefix in pruned:
        head, _, tail = str(prefix).partition("/")
        if not head.startswith("iter-") or not head[5:].isdigit():
            continue
        record = status.record(int(head[5:]))
        if record is not None and tail not in record.pruned:
            record.pruned.append(tail)
            record.pruned.sort()


def update_storage(status: RZeroRunStatus) -> None:
    """Bytes each iteration's committed outputs hold now (deleted checkpoints excluded), and the total."""
    total = None
    for record in status.iteration_history:
        sizes = [p.output_bytes for name, p in record.phases.items()
                 if p.output_bytes is not None and name not in record.pruned]
        record.storage_bytes = sum(sizes) if sizes else None
        if record.storage_bytes is not None:
            total = (total or 0) + record.storage_bytes
    status.storage_bytes = total
