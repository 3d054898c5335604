"""Phase `challenger`: GRPO on the Challenger, rewarded for questions at the edge of the Solver's ability.

Reward of one rollout batch (all `batch_size x group_size` completions at once, see grpo.py):
1. parse each completion's `<question>`; a completion without one gets the format rule's reward;
2. the Solver (frozen, loaded once) answers every valid question m = `solver_samples` times with
   `solver_sampling`;
3. p_hat = the majority vote's share of the m samples (math-equivalence classes, grading pool) under the
   run's `labeling.vote` (grading/vote.py): in reference mode unboxed answers form the class "None", which
   can hold the majority; in boxed-only mode a question without any boxed answer gets p_hat 0;
4. `rewards.challenger_rewards` turns p_hats into uncertainty minus the BLEU-cluster repetition
   penalty over the whole batch (paper or reference-code formula, per settings).
"""

from __future__ import annotations

import logging

from ..task import ChallengerSettings, ChallengerTask
from .context import ConfigurationError, PhaseContext

log = logging.getLogger(__name__)


def run(ctx: PhaseContext) -> dict:
    task: ChallengerTask = ctx.task

    from ..generation import encode_prompts, make_generator
    from ..grading import GradingPool
    from ..grpo import drop_long_prompts, prompt_dataset, train_grpo
    from ..models import compute_dtype_name, load_model, resolve_device, resolve_model
    from ..prompts import challenger_messages

    grpo = task.settings.grpo
    challenger = resolve_model(task.challenger, ctx.storage, ctx.cache_dir, field="challenger", s3_location=task.storage)
    solver = resolve_model(task.solver, ctx.storage, ctx.cache_dir, field="solver", s3_location=task.storage)
    model, tokenizer = load_model(challenger, task.device, trainable=True)
    solver_generator = make_generator(solver, task.device, cache_dir=ctx.cache_dir)
    # Every prompt is the same Challenger prompt: the dataset only fixes the number of rollouts.
    rows, too_long = drop_long_prompts([{"prompt": challenger_messages()}], tokenizer, grpo.max_prompt_tokens)
    if too_long:
        length = len(encode_prompts(tokenizer, [challenger_messages()])[0])
        raise ConfigurationError(
            f"settings.grpo.maxPromptTokens {grpo.max_prompt_tokens} is shorter than the Challenger prompt "
            f"({length} tokens with this model's chat template)"
        )
    dataset = prompt_dataset(rows, grpo, seed=task.seed)
    compute = compute_dtype_name(task.device, resolve_device(task.device))
    with GradingPool() as pool:
        reward = ChallengerReward(solver_generator, pool, task.settings, seed=task.seed, vote=task.vote)
        return train_grpo(ctx, model, tokenizer, reward, dataset, grpo, compute_dtype=compute,
                          ref_model=shared_reference(task, solver_generator))


def shared_reference(task: ChallengerTask, solver_generator):
    """The frozen Solver's model when it holds the Challenger's starting weights (iteration 1: both roles
    start from the base model), so the KL reference is not loaded a second time; else None."""
    same_weights = task.challenger == task.solver
    return getattr(solver_generator, "model", None) if same_weights and task.settings.grpo.kl_coef else None


class ChallengerReward:
    """TRL reward function for the Challenger (see the module docstring)."""

    __name__ = "challenger_reward"  # TRL names reward columns in its logs after the function

    def __init__(self, solver_generator, pool, settings: ChallengerSettings, *, seed: int, vote: str = "reference"):
        self.solver = solver_generator
        self.pool = pool
        self.settings = settings
        self.seed = seed
        self.vote = vote
        self.calls = 0

    def __call__(self, prompts, completions, trainer_state=None, log_metric=None, **kwargs) -> list[float]:
        from ..grpo import completion_texts
        from ..rewards import challenger_rewards

        texts = completion_texts(completions)
        # A fresh Solver seed per rollout batch; after a resume the update number keeps it reproducible.
        step = trainer_state.global_step if trainer_state is not None else self.calls
        self.calls += 1
        p_hats = self.solver_p_hats(texts, seed=self.seed + step)
        valid = [p for p in p_hats if p is not None]
        log.info("scored %d Challenger questions (%d valid) with %d Solver answers each",
                 len(texts), len(valid), self.settings.solver_samples)
        if callable(log_metric):
            log_metric("valid_questions", len(valid) / len(texts) if texts else 0.0)
            if valid:
                log_metric("mean_p_hat", sum(valid) / len(valid))
        return challenger_rewards(texts, p_hats, self.settings)

    def solver_p_hats(self, texts: list[str], *, seed: int) -> list[float | None]:
        """p_hat per completion: the Solver's majority share on its question; None for an invalid output
        (no `<question>`; in reference mode also no boxed Challenger answer, as the reference requires both)."""
        from ..grading import extract_boxed, parse_challenger_output, vote_many
        from ..prompts import solver_messages

        parsed = [parse_challenger_output(text) for text in texts]
        valid = [
            index for index, (question, answer) in enumerate(parsed)
            if question is not None and (self.vote != "reference" or answer)
        ]
        p_hats: list[float | None] = [None] * len(texts)
        if not valid:
            return p_hats
        outputs = self.solver.generate(
            [solver_messages(parsed[index][0]) for index in valid],
            n=self.settings.solver_samples,
            sampling=self.settings.solver_sampling,
            seed=seed,
        )
        answers = [[extract_boxed(output) for output in samples] for samples in outputs]
        for index, vote in zip(valid, vote_many(answers, self.pool, self.vote)):
            # reference: the "None" class may hold the majority and its share is p-hat, as in the reference
            # server; boxed-only: a question without any boxed answer has no agreement at all (0).
            p_hats[index] = vote.score if (vote.label is not None or vote.majority_none) else 0.0
        return p_hats
