"""The open-ended challenger and solver phases (spec.task kind open-ended): GRPO rewarded by the frozen Verifier.

challenger: as phases/challenger.py (the same model loading, KL reference, Solver engines and rank layout: the
rollout batch is gathered, each slice scored where the Solver is, rank 0 computes the rewards of the whole batch),
but the Challenger answers prompts_openended.open_challenger_messages, the Solver writes `solverSamples` responses
per task (`solverSampling`), the Verifier scores each (judge.py) and the reward is rewards_openended
.open_challenger_rewards: the spread of the scores minus the repetition penalty.

solver: as phases/solver.py (the same skip rules and checkpoint carry-forward), on the kept tasks of the open-ended
label phase; the reward of a response is the Verifier's normalised score (rewards_openended.open_solver_rewards).
Each rank scores its own slice.

A model Verifier is loaded on first use (judge.training_loader: on vLLM an engine process on the rank's GPU at the
rollout memory share, sleeping while the rank trains; on CPU inside the rank), and a Verifier that is the Challenger
phase's frozen Solver shares its generator; an endpoint Verifier spends at most its maxRequests per phase and rank.
Both phases' summaries carry the judge's counts (`judge`: judged, scored, unparsable, unavailable).
"""

from __future__ import annotations

import logging

from ..phases.challenger import ChallengerReward, shared_reference, solver_scorer
from ..phases.context import ConfigurationError, PhaseContext

log = logging.getLogger(__name__)


def challenger(ctx: PhaseContext) -> dict:
    task = ctx.task

    from .. import distributed
    from ..generation import encode_prompts
    from ..grpo import train_grpo
    from ..grpo_data import drop_long_prompts, prompt_dataset
    from ..models import compute_dtype_name, load_model, resolve_device, resolve_model
    from ..prompts_openended import open_challenger_messages
    from .judge import ScoreJudge, make_replies, training_loader

    grpo = task.settings.grpo
    device = resolve_device(task.device)
    challenger_model = resolve_model(task.challenger, ctx.storage, ctx.cache_dir, field="challenger",
                                     s3_location=task.storage)
    solver = resolve_model(task.solver, ctx.storage, ctx.cache_dir, field="solver", s3_location=task.storage)
    model, tokenizer = load_model(challenger_model, distributed.training_hints(task.device, grpo, device),
                                  trainable=True)
    chat = open_challenger_messages(task.open_ended.task.description)
    rows, too_long = drop_long_prompts([{"prompt": chat}], tokenizer, grpo.max_prompt_tokens)
    if too_long:
        raise ConfigurationError(f"settings.grpo.maxPromptTokens {grpo.max_prompt_tokens} is shorter than the "
                                 f"open-ended Challenger prompt ({len(encode_prompts(tokenizer, [chat])[0])} tokens)")
    dataset = prompt_dataset(rows, grpo, seed=task.seed)
    solver_generator, node_scoring = solver_scorer(task, solver, device, ctx.cache_dir)
    settings = task.open_ended.judge
    shares = settings.model is not None and settings.model == task.solver and solver_generator is not None
    judge = ScoreJudge(make_replies(settings, (lambda: solver_generator) if shares
                                    else training_loader(settings, ctx, grpo)), task.open_ended.task)
    try:
        reward = OpenChallengerReward(solver_generator, judge, task.settings, seed=task.seed,
                                      node_scoring=node_scoring)
        metrics = train_grpo(ctx, model, tokenizer, reward, dataset, grpo,
                             compute_dtype=compute_dtype_name(task.device, device), device=device,
                             ref_model=shared_reference(task, solver_generator),
                             use_vllm=distributed.vllm_rollouts(task.device, device))
    finally:
        judge.source.close(keep=solver_generator)
        if hasattr(solver_generator, "close"):
            solver_generator.close()
    return {**metrics, "reward_batch_sizes": reward.batch_sizes, "judge": judge.metrics()}


class OpenChallengerReward(ChallengerReward):
    """TRL reward function of the open-ended Challenger: the Verifier's score spread minus the repetition penalty.
    The rank layout is ChallengerReward's (batch_p_hats); each slice's value is the spread instead of p-hat."""

    __name__ = "challenger_reward"

    def __init__(self, solver_generator, judge, settings, *, seed: int, node_scoring: bool = False):
        super().__init__(solver_generator, None, settings, seed=seed, node_scoring=node_scoring)
        self.judge = judge

    def __call__(self, prompts, completions, trainer_state=None, log_metric=None, **kwargs) -> list[float]:
        from .. import distributed
        from ..grpo import completion_texts
        from ..prompts_openended import read_task
        from ..rewards_openended import open_challenger_rewards

        ranks = distributed.current()
        parts = distributed.all_gather(completion_texts(completions))
        step = trainer_state.global_step if trainer_state is not None else self.calls
        self.calls += 1
        texts = [text for part in parts for text in part]
        spreads = [s for part in self.batch_p_hats(parts, seed=self.seed + step) for s in part]
        tasks = [read_task(text) for text in texts]
        rewards = open_challenger_rewards(tasks, spreads, self.settings) if ranks.is_main else None
        rewards = distributed.broadcast(rewards)
        self.batch_sizes.append(len(texts))
        valid = [s for s in spreads if s is not None]
        log.info("scored %d open-ended tasks (%d with a spread)", len(texts), len(valid))
        if callable(log_metric):
            log_metric("valid_tasks", len(valid) / len(texts) if texts else 0.0)
            if valid:
                log_metric("mean_spread", sum(valid) / len(valid))
        return rewards[distributed.slices([len(part) for part in parts])[ranks.rank]]

    def solver_p_hats(self, texts: list[str], *, seed: int) -> list[float | None]:
        """The spread of the Verifier's scores of the Solver's responses to each task; None without a task."""
        from ..prompts_openended import open_solver_messages, read_task
        from ..rewards_openended import score_spread

        tasks = [read_task(text) for text in texts]
        valid = [index for index, found in enumerate(tasks) if found is not None]
        spreads: list[float | None] = [None] * len(texts)
        if not valid:
            return spreads
        outputs = self.solver.generate([open_solver_messages(tasks[i]) for i in valid],
                                       n=self.settings.solver_samples, sampling=self.settings.solver_sampling,
                                       seed=seed)
        pairs = [(tasks[i], response) for i, responses in zip(valid, outputs) for response in responses]
        judgements = iter(self.judge.score(pairs))
        for index, responses in zip(valid, outputs):
            spreads[index] = score_spread([next(judgements).score for _ in responses])
        return spreads


def solver(ctx: PhaseContext) -> dict:
    task = ctx.task
    from ..phases.solver import read_training_rows, skip_reason

    rows = read_training_rows(ctx)

    from .. import distributed
    from ..grpo import train_grpo
    from ..grpo_data import drop_long_prompts, prompt_dataset
    from ..models import compute_dtype_name, load_model, resolve_device, resolve_model, save_checkpoint
    from ..prompts_openended import open_solver_messages
    from .judge import ScoreJudge, make_replies, training_loader

    grpo = task.settings.grpo
    device = resolve_device(task.device)
    local = resolve_model(task.solver, ctx.storage, ctx.cache_dir, field="solver", s3_location=task.storage)
    hints = distributed.training_hints(task.device, grpo, device) if rows else task.device
    model, tokenizer = load_model(local, hints, trainable=bool(rows))
    prompts = [{"prompt": open_solver_messages(row["question"]), "task": row["question"]} for row in rows]
    prompts, too_long = drop_long_prompts(prompts, tokenizer, grpo.max_prompt_tokens)
    reason = skip_reason(rows, prompts, grpo)
    if reason:
        log.warning("open-ended Solver: %s; carrying the Solver forward unchanged", reason)
        if ctx.main_process:
            save_checkpoint(model, tokenizer, ctx.staging / "model")
        return {"steps": 0, "questions": len(rows), "prompts_too_long": too_long, "skipped": reason}
    settings = task.open_ended.judge
    judge = ScoreJudge(make_replies(settings, training_loader(settings, ctx, grpo)), task.open_ended.task)
    reward = OpenSolverReward(judge)
    try:
        metrics = train_grpo(ctx, model, tokenizer, reward, prompt_dataset(prompts, grpo, seed=task.seed), grpo,
                             compute_dtype=compute_dtype_name(task.device, device), device=device,
                             use_vllm=distributed.vllm_rollouts(task.device, device))
    finally:
        judge.source.close()
    return {**metrics, "questions": len(rows), "prompts_too_long": too_long, "judge": judge.metrics()}


class OpenSolverReward:
    """TRL reward function: the Verifier's normalised score of each response to its task (0 when unreadable)."""

    __name__ = "solver_reward"

    def __init__(self, judge):
        self.judge = judge

    def __call__(self, prompts, completions, task, log_metric=None, **kwargs) -> list[float]:
        from .. import distributed
        from ..grpo import completion_texts
        from ..rewards_openended import open_solver_rewards

        texts = completion_texts(completions)
        judgements = self.judge.score(list(zip(list(task), texts)))
        rewards = open_solver_rewards([j.score for j in judgements])
        counts = distributed.all_gather((len(texts), sum(rewards), sum(j.score is None for j in judgements)))
        total, score_sum, unscored = (sum(column) for column in zip(*counts))
        if callable(log_metric) and total:
            log_metric("mean_score", score_sum / total)
            log_metric("unscored", unscored / total)
        return rewards
