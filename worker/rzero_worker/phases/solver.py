"""Phase `solver`: GRPO on the Solver against the pseudo-labels of the label phase.

Reads `train.jsonl` of every committed label shard under `task.dataset`; each row becomes the Solver
prompt (reason step by step, answer in `\\boxed{}`) with its `label` column, which TRL hands to the
reward function. Reward: `rewards.solver_rewards` (1 when the boxed answer is equivalent to the label,
with the optional `<think>` format weight of the reference code).

An empty dataset (the label band kept no question, e.g. a Challenger that wrote nothing parseable) does
not stop the run: the Solver is carried forward unchanged as solver(i), with `steps: 0` and a `skipped`
reason in the summary, so evaluation and the next iteration go on and the status shows what happened.
"""

from __future__ import annotations

import logging

from ..task import SolverTask
from .context import PhaseContext

log = logging.getLogger(__name__)


NO_QUESTIONS_KEPT = "no training questions: the label phase kept none (see its stats.json)"


def run(ctx: PhaseContext) -> dict:
    task: SolverTask = ctx.task
    rows = read_training_rows(ctx)

    from ..grading import GradingPool
    from ..grpo import prompt_dataset, train_grpo
    from ..models import load_model, resolve_model, save_checkpoint
    from ..prompts import solver_messages

    grpo = task.settings.grpo
    local = resolve_model(task.solver, ctx.storage, ctx.cache_dir, field="solver", s3_location=task.storage)
    model, tokenizer = load_model(local, task.device, trainable=bool(rows))
    if not rows:
        log.warning("dataset %s: %s; carrying the Solver forward unchanged", ctx.storage.uri_for(task.dataset),
                    NO_QUESTIONS_KEPT)
        save_checkpoint(model, tokenizer, ctx.staging / "model")
        return {"steps": 0, "questions": 0, "skipped": NO_QUESTIONS_KEPT}
    log.info("training the Solver on %d labelled questions", len(rows))
    dataset = prompt_dataset(
        [{"prompt": solver_messages(row["question"]), "label": row["label"]} for row in rows], grpo, seed=task.seed
    )
    with GradingPool() as pool:
        reward = SolverReward(pool, task.settings.format_weight)
        metrics = train_grpo(ctx, model, tokenizer, reward, dataset, grpo)
    return {**metrics, "questions": len(rows)}


def read_training_rows(ctx: PhaseContext) -> list[dict]:
    """Every kept question of every committed label shard (fails when none is committed)."""
    return ctx.read_input_jsonl(ctx.task.dataset, "train.jsonl")


class SolverReward:
    """TRL reward function: equivalence of each completion's boxed answer to its question's label."""

    __name__ = "solver_reward"  # TRL names reward columns in its logs after the function

    def __init__(self, pool, format_weight: float):
        self.pool = pool
        self.format_weight = format_weight

    def __call__(self, prompts, completions, label, **kwargs) -> list[float]:
        from ..grpo import completion_texts
        from ..rewards import solver_rewards

        return solver_rewards(completion_texts(completions), list(label), self.pool, self.format_weight)

