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
    from ..grpo import drop_long_prompts, prompt_dataset, train_grpo
    from ..models import compute_dtype_name, load_model, resolve_device, resolve_model, save_checkpoint
    from ..prompts import solver_messages

    grpo = task.settings.grpo
    local = resolve_model(task.solver, ctx.storage, ctx.cache_dir, field="solver", s3_location=task.storage)
    model, tokenizer = load_model(local, task.device, trainable=bool(rows))
    prompts = [{"prompt": solver_messages(row["question"]), "label": row["label"]} for row in rows]
    prompts, too_long = drop_long_prompts(prompts, tokenizer, grpo.max_prompt_tokens)
    if not prompts:
        reason = NO_QUESTIONS_KEPT if not rows else f"all {len(rows)} kept questions exceed grpo.maxPromptTokens"
        log.warning("dataset %s: %s; carrying the Solver forward unchanged", ctx.storage.uri_for(task.dataset), reason)
        save_checkpoint(model, tokenizer, ctx.staging / "model")
        return {"steps": 0, "questions": len(rows), "prompts_too_long": too_long, "skipped": reason}
    log.info("training the Solver on %d labelled questions", len(prompts))
    dataset = prompt_dataset(prompts, grpo, seed=task.seed)
    compute = compute_dtype_name(task.device, resolve_device(task.device))
    with GradingPool() as pool:
        reward = SolverReward(pool, task.settings.format_weight)
        metrics = train_grpo(ctx, model, tokenizer, reward, dataset, grpo, compute_dtype=compute)
    return {**metrics, "questions": len(rows), "prompts_too_long": too_long}


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

