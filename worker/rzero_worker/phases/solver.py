"""Phase `solver`: GRPO on the Solver against the pseudo-labels of the label phase.

Reads `train.jsonl` of every committed label shard under `task.dataset`; each row becomes the Solver
prompt (reason step by step, answer in `\\boxed{}`) with its `label` column, which TRL hands to the
reward function. Reward: `rewards.solver_rewards` (1 when the answer, read as the whole run reads answers,
is equivalent to the label under the run's checker, with the optional `<think>` format weight of the
reference code).

With spec.anchors (anchors.py): round(anchors.mixRatio x kept) anchor rows (halves up) ({question, label: its answer,
anchor: true}, each anchor once before any repeats, drawn with the task seed) join the kept questions before the
rollout order is drawn; `anchors_mixed` in the summary counts them. They are added only beside kept questions:
with none kept the Solver is carried forward as below. An anchor that is an evaluation question was dropped when
the file was read.

An empty dataset (the label band kept no question, e.g. a Challenger that wrote nothing parseable), or one
smaller than a rollout batch under dataOrder "epochs", does not stop the run: the Solver is carried forward unchanged as solver(i), with `steps: 0` and a `skipped`
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
    rows, anchor_counts = with_anchors(task, rows)

    from .. import distributed
    from ..grading import GradingPool
    from ..grpo import train_grpo
    from ..grpo_data import drop_long_prompts, prompt_dataset
    from ..models import compute_dtype_name, load_model, resolve_device, resolve_model, save_checkpoint
    from ..prompts import solver_messages

    grpo = task.settings.grpo
    device = resolve_device(task.device)
    local = resolve_model(task.solver, ctx.storage, ctx.cache_dir, field="solver", s3_location=task.storage)
    hints = distributed.training_hints(task.device, grpo, device) if rows else task.device
    model, tokenizer = load_model(local, hints, trainable=bool(rows))
    prompts = [{"prompt": solver_messages(row["question"]), "label": row["label"]} for row in rows]
    prompts, too_long = drop_long_prompts(prompts, tokenizer, grpo.max_prompt_tokens)
    reason = skip_reason(rows, prompts, grpo)
    if reason:
        log.warning("dataset %s: %s; carrying the Solver forward unchanged", ctx.storage.uri_for(task.dataset), reason)
        if ctx.main_process:
            save_checkpoint(model, tokenizer, ctx.staging / "model")
        return {"steps": 0, "questions": len(rows), "prompts_too_long": too_long, "skipped": reason, **anchor_counts}
    log.info("training the Solver on %d labelled questions", len(prompts))
    dataset = prompt_dataset(prompts, grpo, seed=task.seed)
    compute = compute_dtype_name(task.device, device)
    with GradingPool(workers=distributed.cpu_share(), **task.grading.pool_limits()) as pool:
        reward = SolverReward(pool, task.settings.format_weight, vote=task.grading.vote)
        metrics = train_grpo(ctx, model, tokenizer, reward, dataset, grpo, compute_dtype=compute, device=device,
                             use_vllm=distributed.vllm_rollouts(task.device, device))
    return {**metrics, "questions": len(rows), "prompts_too_long": too_long, **anchor_counts}


def with_anchors(task: SolverTask, rows: list[dict]) -> tuple[list[dict], dict]:
    """(the kept rows and the anchor rows mixed in at anchors.mixRatio, their counts for the summary)."""
    if task.anchors is None:
        return rows, {}
    from ..anchors import mix_count, read_anchors

    anchors = read_anchors(task.anchors, task.storage)
    mixed = anchors.mixed(mix_count(len(rows), task.anchors.settings.mix_ratio), task.seed)
    extra = [{"id": f"anchor-{a.line:04d}", "question": a.question, "label": a.answer, "anchor": True} for a in mixed]
    log.info("mixing %d anchor rows into %d kept questions", len(extra), len(rows))
    return rows + extra, {"anchors": anchors.stats(), "anchors_mixed": len(extra)}


def skip_reason(rows: list[dict], prompts: list[dict], grpo) -> str | None:
    """Why the Solver cannot train on these rows (None: it can). Under dataOrder "epochs" a rollout batch is
    whole questions without repeats, as the reference's loader (which refuses to start with fewer)."""
    if not rows:
        return NO_QUESTIONS_KEPT
    if not prompts:
        return f"all {len(rows)} kept questions exceed grpo.maxPromptTokens"
    if grpo.keeps_data_order and len(prompts) < grpo.rollout_batch_size:
        return (f"{len(prompts)} trainable questions make no whole rollout batch of solver.grpo.rolloutBatchSize "
                f"{grpo.rollout_batch_size} (dataOrder epochs); lower rolloutBatchSize or set dataOrder cycled")
    return None


def read_training_rows(ctx: PhaseContext) -> list[dict]:
    """Every kept question of every committed label shard (fails when none is committed)."""
    return ctx.read_input_jsonl(ctx.task.dataset, "train.jsonl")


class SolverReward:
    """TRL reward function: equivalence of each completion's boxed answer to its question's label.

    Each rank grades its own slice (the reward is per completion); the statistics it logs (`accuracy`, the share
    of answers equivalent to the label, and `boxed`, the share with a boxed answer) cover the whole rollout batch
    of every rank."""

    __name__ = "solver_reward"  # TRL names reward columns in its logs after the function

    def __init__(self, pool, format_weight: float, vote: str = "reference"):
        self.pool = pool
        self.format_weight = format_weight
        self.vote = vote

    def __call__(self, prompts, completions, label, log_metric=None, **kwargs) -> list[float]:
        from .. import distributed
        from ..grading import Reading
        from ..grpo import completion_texts
        from ..rewards import solver_rewards

        texts, labels = completion_texts(completions), list(label)
        rewards = solver_rewards(texts, labels, self.pool, self.format_weight, self.vote)
        # accuracy alone: the pool caches the verdicts just computed, so this grades nothing twice
        accuracy = rewards if not self.format_weight else solver_rewards(texts, labels, self.pool, 0.0, self.vote)
        reading = Reading(self.vote)
        counts = distributed.all_gather((len(texts), sum(accuracy), sum(reading.has_answer(t) for t in texts)))
        total, correct, boxed = (sum(column) for column in zip(*counts))
        if callable(log_metric) and total:
            log_metric("accuracy", correct / total)
            log_metric("boxed", boxed / total)
        return rewards

