"""Phase `challenger`: GRPO on the Challenger, rewarded for questions at the edge of the Solver's ability.

Reward of one rollout batch (all `batch_size x group_size` completions at once, see grpo.py):
1. parse each completion's `<question>`; a completion without one gets the format rule's reward;
2. the Solver (frozen, loaded once) answers every valid question m = `solver_samples` times with
   `solver_sampling`;
3. p_hat = the majority vote's share (math-equivalence classes, grading pool); a question none of
   whose answers has a `\\boxed{}` gets p_hat 0 (no agreement at all);
4. `rewards.challenger_rewards` turns p_hats into uncertainty minus the BLEU-cluster repetition
   penalty over the whole batch (paper or reference-code formula, per settings).
"""

from __future__ import annotations

import logging

from ..task import ChallengerSettings, ChallengerTask
from .context import PhaseContext

log = logging.getLogger(__name__)


def run(ctx: PhaseContext) -> dict:
    task: ChallengerTask = ctx.task

    from ..generation import make_generator
    from ..grading import GradingPool
    from ..grpo import prompt_dataset, train_grpo
    from ..models import load_model, resolve_model
    from ..prompts import challenger_messages

    grpo = task.settings.grpo
    challenger = resolve_model(task.challenger, ctx.storage, ctx.cache_dir, field="challenger", s3_location=task.storage)
    solver = resolve_model(task.solver, ctx.storage, ctx.cache_dir, field="solver", s3_location=task.storage)
    model, tokenizer = load_model(challenger, task.device, trainable=True)
    solver_generator = make_generator(solver, task.device, cache_dir=ctx.cache_dir)
    # Every prompt is the same Challenger prompt: the dataset only fixes the number of rollouts.
    dataset = prompt_dataset([{"prompt": challenger_messages()}], grpo, seed=task.seed)
    with GradingPool() as pool:
        reward = ChallengerReward(solver_generator, pool, task.settings, seed=task.seed)
        return train_grpo(ctx, model, tokenizer, reward, dataset, grpo)


class ChallengerReward:
    """TRL reward function for the Challenger (see the module docstring)."""

    __name__ = "challenger_reward"  # TRL names reward columns in its logs after the function

    def __init__(self, solver_generator, pool, settings: ChallengerSettings, *, seed: int):
        self.solver = solver_generator
        self.pool = pool
        self.settings = settings
        self.seed = seed
        self.calls = 0

    def __call__(self, prompts, completions, trainer_state=None, log_metric=None, **kwargs) -> list[float]:
        from ..grpo import completion_texts
        from ..rewards import challenger_rewards

        texts = completion_texts(completions)
        # A fresh Solver seed per rollout batch; after a resume the step number keeps it reproducible.
        step = trainer_state.global_step if trainer_state is not None else self.calls
        self.calls += 1
        p_hats = self.solver_p_hats(texts, seed=self.seed + step)
        if callable(log_metric):
            valid = [p for p in p_hats if p is not None]
            log_metric("valid_questions", len(valid) / len(texts) if texts else 0.0)
            if valid:
                log_metric("mean_p_hat", sum(valid) / len(valid))
        return challenger_rewards(texts, p_hats, self.settings)

    def solver_p_hats(self, texts: list[str], *, seed: int) -> list[float | None]:
        """p_hat per completion: the Solver's majority share on its question; None without a question."""
        from ..grading import extract_boxed, parse_challenger_output, vote_many
        from ..prompts import solver_messages

        questions = [parse_challenger_output(text)[0] for text in texts]
        valid = [index for index, question in enumerate(questions) if question is not None]
        p_hats: list[float | None] = [None] * len(texts)
        if not valid:
            return p_hats
        outputs = self.solver.generate(
            [solver_messages(questions[index]) for index in valid],
            n=self.settings.solver_samples,
            sampling=self.settings.solver_sampling,
            seed=seed,
        )
        answers = [[extract_boxed(output) for output in samples] for samples in outputs]
        for index, vote in zip(valid, vote_many(answers, self.pool)):
            p_hats[index] = vote.score if vote.label is not None else 0.0
        return p_hats

