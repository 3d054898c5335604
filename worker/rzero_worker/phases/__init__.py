"""The phases: the five of each iteration (six with a trained Verifier), the optional format warm-up, and `export` at the end of a run.
Each module exposes `run(ctx: PhaseContext) -> dict` (its metrics).

The registry names them as "module:function" strings so that nothing heavy (torch, transformers) is
imported until a phase actually runs: validating a task or re-running a committed phase stays light.
"""

from __future__ import annotations

import importlib
from typing import Callable

PHASE_ENTRYPOINTS: dict[str, str] = {
    "warmup": "rzero_worker.phases.warmup:run",
    "challenger": "rzero_worker.phases.challenger:run",
    "generate": "rzero_worker.phases.generate:run",
    "label": "rzero_worker.phases.label:run",
    "verifier": "rzero_worker.phases.verifier:run",
    "solver": "rzero_worker.phases.solver:run",
    "evaluate": "rzero_worker.phases.evaluate:run",
    "export": "rzero_worker.phases.export:run",
}


# spec.task kind open-ended (rzero_worker/openended/): a task carrying `open_ended` runs these instead; an evaluate
# task carrying `win_rate` runs the benchmarks and then the win rate.
OPEN_ENDED_ENTRYPOINTS: dict[str, str] = {
    "challenger": "rzero_worker.openended.training:challenger",
    "generate": "rzero_worker.openended.data:generate",
    "label": "rzero_worker.openended.data:label",
    "solver": "rzero_worker.openended.training:solver",
    "evaluate": "rzero_worker.openended.winrate:evaluate",
}


def phase_for(task) -> Callable:
    """The `run` function of a task: its phase's, or the open-ended one where the task asks for it."""
    if getattr(task, "open_ended", None) is not None or getattr(task, "win_rate", None) is not None:
        module_name, _, function = OPEN_ENDED_ENTRYPOINTS[task.phase].partition(":")
        return getattr(importlib.import_module(module_name), function)
    return load_phase(task.phase)


def load_phase(name: str) -> Callable:
    """Import and return the phase's `run` function."""
    try:
        target = PHASE_ENTRYPOINTS[name]
    except KeyError:
        raise ValueError(f"unknown phase {name!r}; expected one of {', '.join(PHASE_ENTRYPOINTS)}") from None
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)
