"""Phase `challenger`: GRPO on the Challenger, rewarded for questions at the edge of the Solver's ability.

Reward of one rollout batch (all `batch_size x group_size` completions at once, see grpo.py):
1. read each completion with the run's reading (`labeling.vote`, grading/reading.py): in reference mode a
   completion is scored when it has a non-blank `<question>` and its last `\\boxed{` is not empty — an
   output WITHOUT a box is scored, as in the reference (its answer reads "None"); in boxed-only mode it also
   needs a boxed answer. A completion not scored gets the format rule's reward;
2. the Solver (frozen, loaded once) answers every valid question m = `solver_samples` times with
   `solver_sampling`;
3. p_hat = the majority vote's share of the m samples (equivalence classes under `labeling.checker`,
   grading pool; grading/vote.py): in reference mode unboxed answers form the class "None", which can hold
   the majority; in boxed-only mode a question without any boxed answer gets p_hat 0;
4. `rewards.challenger_rewards` turns p_hats into uncertainty minus the BLEU-cluster repetition
   penalty over the whole batch (paper or reference-code formula, per settings).

With spec.corpus (grounded, SPICE's setting): the rollout prompts are `steps x rolloutBatchSize` grounded
Challenger prompts, prompt i carrying passage `corpus.sample(task seed, iteration, i)` (as generate does), read
before any model is loaded. A completion is scored only in the grounded format (`rewards.grounded_pair`: a
non-blank question AND a non-blank boxed document answer); the Solver answers the question alone, never the
passage. `settings.objective` uncertainty: step 3 as above; variance: p is the pass rate, the share of the m
answers equivalent to the document answer (grading pool, gold first), and the reward is SPICE's variance score
(rewards.py). With spec.anchors, prompt i also shows `anchors.sample(task seed, iteration, i, k)` as examples
(without a corpus the prompts are then one per row too); `anchors_shown` in the summary counts them.

Ranks (distributed.py). TRL calls the reward on every rank with that rank's slice of the rollout batch. The
slices are gathered first (every rank sees the whole batch, in rank order); the Solver scores them where its
engines are: with `solverGpus: 0` each rank scores its own slice on its own GPU, with `solverGpus: k` the
first rank of each node scores its node's slices on the k GPUs the training ranks leave free. The p_hats are
gathered, rank 0 computes the rewards (and the clusters) of the whole batch once, and every rank takes its
slice of them back: the penalties are exactly those of one process holding the whole batch.
"""

from __future__ import annotations

import logging

from ..task import ChallengerSettings, ChallengerTask
from .context import ConfigurationError, PhaseContext

log = logging.getLogger(__name__)

RANK_SEED_STRIDE = 1_000_003  # each rank's slice of a rollout batch is scored with seeds of its own


def run(ctx: PhaseContext) -> dict:
    task: ChallengerTask = ctx.task

    from .. import distributed
    from ..generation import encode_prompts
    from ..grading import GradingPool
    from ..grpo import train_grpo
    from ..grpo_data import drop_long_prompts, prompt_dataset
    from ..models import compute_dtype_name, load_model, resolve_device, resolve_model

    grpo = task.settings.grpo
    prompts, extra = training_prompts(task)  # the corpus and the anchors are read before any model is loaded
    device = resolve_device(task.device)
    challenger = resolve_model(task.challenger, ctx.storage, ctx.cache_dir, field="challenger", s3_location=task.storage)
    solver = resolve_model(task.solver, ctx.storage, ctx.cache_dir, field="solver", s3_location=task.storage)
    model, tokenizer = load_model(challenger, distributed.training_hints(task.device, grpo, device), trainable=True)
    rows, too_long = drop_long_prompts([{"prompt": prompt} for prompt in prompts], tokenizer, grpo.max_prompt_tokens)
    if not rows:
        length = min(len(ids) for ids in encode_prompts(tokenizer, prompts))
        raise ConfigurationError(
            f"settings.grpo.maxPromptTokens {grpo.max_prompt_tokens} is shorter than the Challenger prompt "
            f"({length} tokens with this model's chat template)"
        )
    if too_long:
        extra["prompts_too_long"] = too_long
    dataset = prompt_dataset(rows, grpo, seed=task.seed)
    compute = compute_dtype_name(task.device, device)
    solver_generator, node_scoring = solver_scorer(task, solver, device, ctx.cache_dir)
    try:
        with GradingPool(workers=distributed.cpu_share(), **task.grading.pool_limits()) as pool:
            reward = ChallengerReward(solver_generator, pool, task.settings, seed=task.seed, vote=task.grading.vote,
                                      node_scoring=node_scoring, grounded=task.corpus is not None)
            metrics = train_grpo(ctx, model, tokenizer, reward, dataset, grpo, compute_dtype=compute, device=device,
                                 ref_model=shared_reference(task, solver_generator),
                                 use_vllm=distributed.vllm_rollouts(task.device, device))
    finally:
        if hasattr(solver_generator, "close"):
            solver_generator.close()
    return {**metrics, "reward_batch_sizes": reward.batch_sizes, **extra}


def training_prompts(task: ChallengerTask) -> tuple[list[list[dict]], dict]:
    """(the rollout prompts, the corpus and anchor counts for the summary). R-Zero's setting: the one Challenger
    prompt (the dataset only fixes the number of rollouts). With a corpus or anchors: `steps x rolloutBatchSize`
    prompts, prompt i grounded in passage i and showing anchors i (module notes)."""
    from ..anchors import read_anchors
    from ..corpus import read_corpus
    from ..prompts import challenger_messages, grounded_challenger_messages, with_examples

    corpus = read_corpus(task.corpus, task.storage) if task.corpus else None
    anchors = read_anchors(task.anchors, task.storage) if task.anchors else None
    k = task.anchors.settings.examples if task.anchors else 0
    if corpus is None and not k:
        return [challenger_messages()], ({"anchors": anchors.stats(), "anchors_shown": 0} if anchors else {})
    prompts, shown = [], 0
    for i in range(task.settings.grpo.steps * task.settings.grpo.rollout_batch_size):
        base = grounded_challenger_messages(corpus.sample(task.seed, task.iteration, i).text) if corpus else None
        examples = [(a.question, a.answer) for a in anchors.sample(task.seed, task.iteration, i, k)] if k else []
        shown += len(examples)
        prompts.append(with_examples(base or challenger_messages(), examples))
    extra = {"corpus": corpus.stats()} if corpus else {}
    return prompts, {**extra, **({"anchors": anchors.stats(), "anchors_shown": shown} if anchors else {})}


def solver_scorer(task: ChallengerTask, solver, device: str, cache_dir):
    """(the frozen Solver this rank scores with, or None; whether one rank per node scores for the node).

    `solverGpus: k`: the node's first rank drives k / tensorParallelSize engines on the GPUs after the training
    ranks' (processes on the CPU when there is no GPU). `solverGpus: 0`: each rank scores its own slice: a vLLM
    engine in its own process on the rank's GPU, sleeping while the rank trains, or on CPU (and without vLLM)
    the Solver's model inside the rank."""
    from .. import distributed
    from ..generation import choose_backend, make_generator
    from ..generation.remote import ProcessGenerator, start_engines

    ranks = distributed.current()
    hints = task.device
    if task.settings.solver_gpus:
        if task.settings.solver_gpus % hints.tensor_parallel_size:
            raise ConfigurationError(f"settings.solverGpus {task.settings.solver_gpus} must be a multiple of "
                                     f"device.tensorParallelSize {hints.tensor_parallel_size}")
        if not ranks.is_local_main:
            return None, True
        engines = task.settings.solver_gpus // hints.tensor_parallel_size
        spare = distributed.visible_devices()[ranks.local_world_size :] if device == "cuda" else []
        blocks = [distributed.engine_devices(e, hints.tensor_parallel_size, spare) if device == "cuda" else None
                  for e in range(engines)]
        start = lambda e: ProcessGenerator(solver, hints, devices=blocks[e], cache_dir=cache_dir)  # noqa: E731
        return start_engines(engines, start), True
    if choose_backend(hints) == "vllm":
        rollout_share = distributed.sized(task.settings.grpo, "rollout_gpu_memory_utilization")
        share = hints.model_copy(update={"gpu_memory_utilization": rollout_share})
        own_gpu = [distributed.visible_devices()[ranks.local_rank]]
        return ProcessGenerator(solver, share, devices=own_gpu, cache_dir=cache_dir, sleep_between_calls=True), False
    return make_generator(solver, hints, cache_dir=cache_dir), False


def shared_reference(task: ChallengerTask, solver_generator):
    """The frozen Solver's model when it holds the Challenger's starting weights (iteration 1: both roles
    start from the base model), so the KL reference is not loaded a second time; else None."""
    same_weights = task.challenger == task.solver
    return getattr(solver_generator, "model", None) if same_weights and task.settings.grpo.kl_coef else None


class ChallengerReward:
    """TRL reward function for the Challenger (see the module docstring)."""

    __name__ = "challenger_reward"  # TRL names reward columns in its logs after the function

    def __init__(self, solver_generator, pool, settings: ChallengerSettings, *, seed: int, vote: str = "reference",
                 node_scoring: bool = False, grounded: bool = False):
        self.solver = solver_generator
        self.pool = pool
        self.settings = settings
        self.seed = seed
        self.vote = vote
        self.node_scoring = node_scoring
        self.grounded = grounded  # spec.corpus: the grounded format (question + document answer)
        self.calls = 0
        self.batch_sizes: list[int] = []  # completions in each whole rollout batch the rewards were computed over

    def __call__(self, prompts, completions, trainer_state=None, log_metric=None, **kwargs) -> list[float]:
        from .. import distributed
        from ..grpo import completion_texts
        from ..rewards import challenger_rewards

        ranks = distributed.current()
        parts = distributed.all_gather(completion_texts(completions))  # every rank's slice, in rank order
        # A fresh Solver seed per rollout batch; after a resume the update number keeps it reproducible.
        step = trainer_state.global_step if trainer_state is not None else self.calls
        self.calls += 1
        texts = [text for part in parts for text in part]
        p_hats = [p for part in self.batch_p_hats(parts, seed=self.seed + step) for p in part]
        rewards = (challenger_rewards(texts, p_hats, self.settings, vote=self.vote, grounded=self.grounded)
                   if ranks.is_main else None)
        rewards = distributed.broadcast(rewards)
        self.batch_sizes.append(len(texts))
        valid = [p for p in p_hats if p is not None]
        log.info("scored %d Challenger questions (%d valid) with %d Solver answers each",
                 len(texts), len(valid), self.settings.solver_samples)
        if callable(log_metric):  # the same whole-batch value on every rank: TRL's mean over ranks keeps it
            log_metric("valid_questions", len(valid) / len(texts) if texts else 0.0)
            if valid:
                log_metric("mean_pass_rate" if self.settings.objective == "variance" else "mean_p_hat",
                           sum(valid) / len(valid))
        return rewards[distributed.slices([len(part) for part in parts])[ranks.rank]]

    def batch_p_hats(self, parts: list[list[str]], *, seed: int) -> list[list[float | None]]:
        """p_hat of every rank's slice (`parts`), each slice scored once where the Solver engines are (module
        docstring) with the seed `seed + rank * RANK_SEED_STRIDE`, then shared with every rank."""
        from .. import distributed

        ranks = distributed.current()
        if self.node_scoring:
            mine = range(ranks.node_main, ranks.node_main + ranks.local_world_size) if ranks.is_local_main else []
        else:
            mine = [ranks.rank]
        scored = {rank: self.solver_p_hats(parts[rank], seed=seed + rank * RANK_SEED_STRIDE) for rank in mine}
        merged: dict[int, list[float | None]] = {}
        for part in distributed.all_gather(scored):
            merged.update(part)
        return [merged[rank] for rank in range(len(parts))]

    def solver_p_hats(self, texts: list[str], *, seed: int) -> list[float | None]:
        """p_hat per completion: the Solver's majority share on its question (variance objective: its pass rate
        against the document answer); None for an output the run's reading does not score (module notes)."""
        from ..grading import Reading, vote_many
        from ..grading.vote import grade
        from ..prompts import solver_messages
        from ..rewards import grounded_pair

        reading = Reading(self.vote)
        if self.grounded:
            pairs = [grounded_pair(text, self.vote) for text in texts]
            questions = [pair[0] if pair else None for pair in pairs]
        else:
            questions = [reading.challenger_question(text) for text in texts]
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
        answers = [[reading.answer(output) for output in samples] for samples in outputs]
        if self.settings.objective == "variance":  # pass rate: answers equivalent to the document's (None: not)
            golds = [pairs[index][1] for index, samples in zip(valid, answers) for _ in samples]
            verdicts = iter(grade([answer for samples in answers for answer in samples], golds, self.pool))
            for index, samples in zip(valid, answers):
                p_hats[index] = sum(1 for _ in samples if next(verdicts)) / len(samples)
            return p_hats
        for index, vote in zip(valid, vote_many(answers, self.pool, self.vote)):
            # reference: the "None" class may hold the majority and its share is p-hat, as in the reference
            # server; boxed-only: a question without any boxed answer has no agreement at all (0).
            p_hats[index] = vote.score if (vote.label is not None or vote.majority_none) else 0.0
        return p_hats
