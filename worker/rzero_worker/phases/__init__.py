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


def load_phase(name: str) -> Callable:
    """Import and return the phase's `run` function."""
    try:
        target = PHASE_ENTRYPOINTS[name]
    except KeyError:
        raise ValueError(f"unknown phase {name!r}; expected one of {', '.join(PHASE_ENTRYPOINTS)}") from None
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)
