"""Phase `export`: the run's best and last Solver as plain Hugging Face directories with a model card.

The operator starts it once, as a run's last step (spec.export.enabled), after the last evaluation or an
early stop. It writes `best/` (the Solver of status.bestIteration) and, when that is another iteration,
`last/` (the last Solver trained), each with README.md (modelcard.py); the runner commits them under
`iter-NNN/export`. A trained Solver is copied file for file from its verified checkpoint; when the base
model is the best (iteration 0) it is copied the same way if it is a Hugging Face directory, and loaded
and saved as one (safetensors, compute dtype) if it is a GGUF file or a hub id.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..modelcard import render_model_card
from ..task import ExportTask, ModelInput
from .context import PhaseContext

log = logging.getLogger(__name__)

_SKIP = {".rzero-complete"}


def run(ctx: PhaseContext) -> dict:
    task: ExportTask = ctx.task
    roles = [("best", task.best)] + ([] if task.last.iteration == task.best.iteration else [("last", task.last)])
    for role, item in roles:
        target = ctx.staging / role
        export_model(ctx, item.model, target)
        card = render_model_card(task.card, task.run, role, item.iteration, best=task.best.iteration,
                                 last=task.last.iteration)
        (target / "README.md").write_text(card, encoding="utf-8")
        log.info("exported the %s Solver (iteration %d) into %s", role, item.iteration, role)
    return {"best_iteration": task.best.iteration, "last_iteration": task.last.iteration,
            "exported": [role for role, _ in roles]}


def export_model(ctx: PhaseContext, model: ModelInput, target: Path) -> None:
    """A self-contained Hugging Face directory of `model` at `target`."""
    from ..models import resolve_model

    local = resolve_model(model, ctx.storage, ctx.cache_dir, field="export", s3_location=ctx.task.storage)
    if local.gguf_file is None and not local.hub:
        shutil.copytree(local.path, target, ignore=lambda _dir, names: [n for n in names if n in _SKIP])
        return
    from ..models import compute_dtype_name, load_model, resolve_device, save_checkpoint

    hints = ctx.task.device
    loaded, tokenizer = load_model(local, hints)
    save_checkpoint(loaded, tokenizer, target, dtype=compute_dtype_name(hints, resolve_device(hints)))
