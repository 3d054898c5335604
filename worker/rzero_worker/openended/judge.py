"""The open-ended judges behind one `replies(chats) -> outputs` seam: a model (greedy, through the generation seam)
or an OpenAI-compatible endpoint (the endpoint oracle's client: key by Secret reference, timeouts, retries, a
request budget). An output of None is *unavailable* (endpoint failure, budget spent); an output grading/scores.py
cannot read is *unparsable*. Both are counted and score nothing.

`ScoreJudge` scores (task, response) pairs per rubric criterion with the frozen Verifier (prompts_openended
judge_messages); `PairJudge` asks the oracle which of two responses is better (pairwise_messages).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable

from ..task import TaskSettings, VerifierInput

log = logging.getLogger(__name__)

_ENDPOINT_COUNTERS = ("requests", "retries", "malformed", "failed", "over_budget")


class ModelReplies:
    """Greedy replies of one model, loaded on the first call (or a generator the phase already holds)."""

    name = "model"

    def __init__(self, settings: VerifierInput, load: Callable[[], object]):
        self.settings = settings
        self._load = load
        self._generator = None

    def replies(self, chats: list[list[dict]]) -> list[str | None]:
        from ..generation.base import greedy_replies

        if not chats:
            return []
        if self._generator is None:
            self._generator = self._load()
        return greedy_replies(self._generator, chats, max_tokens=self.settings.max_tokens,
                              batch_size=self.settings.batch_size, log=log, what="open-ended judge")

    def metrics(self) -> dict:
        return {}

    def close(self, keep: object = None) -> None:
        """Stop the judge's engine process, if it has one (not `keep`, a generator the phase owns)."""
        if self._generator is not None and self._generator is not keep and hasattr(self._generator, "close"):
            self._generator.close()
        self._generator = None


class EndpointReplies:
    """Replies from an OpenAI-compatible endpoint at temperature 0, within `budget` requests."""

    name = "endpoint"

    def __init__(self, settings: VerifierInput, *, budget: int, api_key: str | None = None, sleep=None):
        from ..oracles.endpoint import EndpointOracle

        extra = {"sleep": sleep} if sleep is not None else {}
        self.client = EndpointOracle(settings.endpoint, budget=budget, api_key=api_key, **extra)

    def replies(self, chats: list[list[dict]]) -> list[str | None]:
        return self.client.replies(chats)

    def metrics(self) -> dict:
        counts = {key: self.client.counts[key] for key in _ENDPOINT_COUNTERS}
        return {**counts, **({"error": self.client.error} if self.client.error else {})}

    def close(self, keep: object = None) -> None:
        pass


def make_replies(settings: VerifierInput, load_model: Callable[[], object], *, budget: int | None = None):
    """The judge's reply source: its endpoint (budget: `budget`, else the endpoint's maxRequests) or its model
    (`load_model()` makes the generator on first use)."""
    if settings.endpoint is not None:
        endpoint = settings.endpoint
        return EndpointReplies(settings, budget=endpoint.max_requests if budget is None else budget,
                               api_key=os.environ.get(endpoint.api_key_env))
    return ModelReplies(settings, load_model)


def model_loader(settings: VerifierInput, ctx, *, field: str = "verifier.model"):
    """A function that loads the judge's model as a generator (resolved from its source or run artefact)."""

    def load():
        from ..models import resolve_model
        from ..verifier import verifier_generator

        task = ctx.task
        local = resolve_model(settings.model, ctx.storage, ctx.cache_dir, field=field, s3_location=task.storage)
        return verifier_generator(local, settings, task.device, ctx.cache_dir)  # verifier.gpus: on its own GPUs

    return load


def training_loader(settings: VerifierInput, ctx, grpo):
    """The judge's model in a training phase: on vLLM an engine process on this rank's GPU at the rollout memory
    share, sleeping while the rank trains (as the Challenger's frozen Solver, phases/challenger.solver_scorer);
    otherwise (CPU, transformers) the model inside the rank."""

    def load():
        from .. import distributed
        from ..generation import choose_backend, make_generator
        from ..generation.remote import ProcessGenerator
        from ..models import resolve_model

        task = ctx.task
        local = resolve_model(settings.model, ctx.storage, ctx.cache_dir, field="verifier.model",
                              s3_location=task.storage)
        if choose_backend(task.device) != "vllm":
            return make_generator(local, task.device, cache_dir=ctx.cache_dir, batch_size=settings.batch_size)
        share = task.device.model_copy(
            update={"gpu_memory_utilization": distributed.sized(grpo, "rollout_gpu_memory_utilization")})
        own_gpu = [distributed.visible_devices()[distributed.current().local_rank]]
        return ProcessGenerator(local, share, devices=own_gpu, cache_dir=ctx.cache_dir, sleep_between_calls=True)

    return load


@dataclass
class Judgement:
    output: str | None
    scores: dict[str, int] | None
    score: float | None  # normalised 0..1; None = unparsable or unavailable

    @property
    def status(self) -> str:
        return "unavailable" if self.output is None else ("scored" if self.scores is not None else "unparsable")


class ScoreJudge:
    """Per-criterion scores of (task, response) pairs; counts what it could not read."""

    def __init__(self, replies, task: TaskSettings):
        self.source = replies
        self.task = task
        self.counts = {"judged": 0, "scored": 0, "unparsable": 0, "unavailable": 0}

    def score(self, pairs: list[tuple[str, str]]) -> list[Judgement]:
        from ..grading.scores import normalised_score, parse_scores
        from ..prompts_openended import judge_messages

        criteria = self.task.criteria
        chats = [judge_messages(self.task.description or "", criteria, task, response) for task, response in pairs]
        outputs = list(self.source.replies(chats)) if chats else []
        outputs = outputs[: len(pairs)] + [None] * max(0, len(pairs) - len(outputs))  # nothing passes unjudged
        judgements = []
        for output in outputs:
            scores = parse_scores(output, criteria) if output is not None else None
            judgement = Judgement(output, scores, normalised_score(scores))
            self.counts["judged"] += 1
            self.counts[judgement.status] += 1
            judgements.append(judgement)
        return judgements

    def metrics(self) -> dict:
        return {"source": self.source.name, **self.counts, **self.source.metrics()}


class PairJudge:
    """Which of two responses the oracle prefers: 'A', 'B', 'tie' or None (unparsable or unavailable)."""

    def __init__(self, replies, task: TaskSettings):
        self.source = replies
        self.task = task

    def prefer(self, triples: list[tuple[str, str, str]]) -> list[tuple[str | None, str | None]]:
        """(preference, raw output) per (task, first, second)."""
        from ..grading.scores import parse_preference
        from ..prompts_openended import pairwise_messages

        chats = [pairwise_messages(self.task.description or "", self.task.criteria, task, first, second)
                 for task, first, second in triples]
        outputs = list(self.source.replies(chats)) if chats else []
        outputs = outputs[: len(triples)] + [None] * max(0, len(triples) - len(outputs))
        return [(parse_preference(output), output) for output in outputs]
