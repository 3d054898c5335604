r"""The Verifier's veto of pseudo-labels (`labeling.verifier: veto`): judge each kept (question, label), drop the rest.

After the vote and the band, the Verifier (spec.verifier, frozen) is shown each kept question with its majority
answer (prompts.verifier_messages) and its output is read by grading.parse_verdict. Every kept row gets a
`verifier_verdict`:
- `approved`: `\boxed{correct}` — the only verdict that keeps the row;
- `rejected`: `\boxed{incorrect}`;
- `unparsable`: an output with no readable verdict (no box, another word, a number): never approval;
- `unavailable`: no output at all (the endpoint failed, timed out past its retries, or its budget was spent).
The non-approved rows are dropped (drop reasons `verifier_<verdict>`) and written to `vetoed.jsonl` with the
Verifier's output, so a person can read why.

Two Verifiers behind one `judge(pairs) -> outputs` interface: `ModelVerifier` (greedy, through the generation
seam; it reuses the label Solver's generator when it is the same model) and `EndpointVerifier` (the endpoint
oracle's client: timeouts, retries, budget, masked key).

Figures (`veto_metrics`, summed over shards by the operator): the verdict counts and, where an oracle checked
labels (the headline oracle of oracles/run.py), the checked/correct counts of the kept set before and after the
veto, the correct and wrong labels vetoed, and the Verifier's agreement with the oracle (an unparsable verdict
counts as a disagreement; an unavailable one is not counted).
"""

from __future__ import annotations

import logging
import os
from typing import Callable

from .task import LabelTask, VerifierInput

log = logging.getLogger(__name__)

VERDICTS = ("approved", "rejected", "unparsable", "unavailable")
DROP_REASONS = tuple(f"verifier_{verdict}" for verdict in VERDICTS[1:])
MAX_RECORDED_OUTPUT = 2000  # characters of the Verifier's output kept per vetoed row
_ENDPOINT_COUNTERS = ("requests", "retries", "malformed", "failed", "over_budget")


def verdict_of(output: str | None) -> str:
    """One Verifier output as a verdict name (VERDICTS)."""
    from .grading import parse_verdict

    if output is None:
        return "unavailable"
    verdict = parse_verdict(output)
    return "unparsable" if verdict is None else ("approved" if verdict else "rejected")


class ModelVerifier:
    """Greedy verdicts of one model; loaded on the first call unless a generator is given."""

    name = "model"

    def __init__(self, settings: VerifierInput, load: Callable[[], object]):
        self.settings = settings
        self._load = load
        self._generator = None

    def judge(self, pairs: list[tuple[str, str]]) -> list[str | None]:
        from .generation.base import greedy_replies
        from .prompts import verifier_messages

        if not pairs:
            return []
        if self._generator is None:
            self._generator = self._load()
        chats = [verifier_messages(question, answer) for question, answer in pairs]
        return greedy_replies(self._generator, chats, max_tokens=self.settings.max_tokens,
                              batch_size=self.settings.batch_size, log=log, what="verifier judged labels")

    def metrics(self) -> dict:
        return {}


class EndpointVerifier:
    """Verdicts from an OpenAI-compatible endpoint at temperature 0, through the endpoint oracle's client."""

    name = "endpoint"

    def __init__(self, settings: VerifierInput, *, budget: int, api_key: str | None = None, sleep=None):
        from .oracles.endpoint import EndpointOracle

        extra = {"sleep": sleep} if sleep is not None else {}
        self.client = EndpointOracle(settings.endpoint, budget=budget, api_key=api_key, **extra)

    def judge(self, pairs: list[tuple[str, str]]) -> list[str | None]:
        from .prompts import verifier_messages

        return self.client.replies([verifier_messages(q, a) for q, a in pairs])

    def metrics(self) -> dict:
        counts = {key: self.client.counts[key] for key in _ENDPOINT_COUNTERS}
        return {**counts, **({"error": self.client.error} if self.client.error else {})}


def make_verifier(task: LabelTask, ctx, solver_generator: Callable[[], object]):
    """The task's Verifier. A model Verifier that is the label Solver itself shares its generator."""
    from .oracles.run import shard_quota

    settings = task.verifier
    if settings.endpoint is not None:
        endpoint = settings.endpoint
        return EndpointVerifier(settings, budget=shard_quota(endpoint.max_requests, task.shard),
                                api_key=os.environ.get(endpoint.api_key_env))
    if shares_solver_engine(settings, task.solver):
        return ModelVerifier(settings, solver_generator)
    return ModelVerifier(settings, lambda: _load_model(settings, task, ctx))


def shares_solver_engine(settings: VerifierInput, solver) -> bool:
    """A colocated model Verifier that is the label Solver's model judges with the Solver's engine; one with GPUs
    of its own (verifier.gpus) never does."""
    return settings.model is not None and settings.model == solver and not settings.gpus


def _load_model(settings: VerifierInput, task: LabelTask, ctx):
    from .models import resolve_model

    local = resolve_model(settings.model, ctx.storage, ctx.cache_dir, field="verifier.model", s3_location=task.storage)
    return verifier_generator(local, settings, task.device, ctx.cache_dir)


def verifier_generator(local, settings: VerifierInput, hints, cache_dir):
    """The model Verifier's generator: with verifier.gpus on a GPU pod, one engine in a process of its own on the
    pod's last `gpus` GPUs (tensor parallel over them; distributed.verifier_devices); else in this process, on the
    rank's own device (colocated)."""
    from . import distributed
    from .generation import make_generator

    devices = distributed.verifier_devices(distributed.pod_devices(), settings.gpus) if settings.gpus else None
    if devices is None:
        return make_generator(local, hints, cache_dir=cache_dir, batch_size=settings.batch_size)
    from .generation.remote import ProcessGenerator

    log.info("the Verifier runs on its own GPUs %s", ",".join(devices))
    own = hints.model_copy(update={"tensor_parallel_size": len(devices)})
    return ProcessGenerator(local, own, devices=devices, cache_dir=cache_dir)


def judge_kept(kept: list[dict], verifier) -> None:
    """Set each kept row's `verifier_verdict` and `verifier_output` (in place)."""
    outputs = verifier.judge([(row["question"], row["label"]) for row in kept])
    if len(outputs) != len(kept):  # a generator that lost outputs: nothing may pass unjudged
        outputs = list(outputs)[: len(kept)] + [None] * max(0, len(kept) - len(outputs))
    for row, output in zip(kept, outputs):
        row["verifier_verdict"] = verdict_of(output)
        row["verifier_output"] = None if output is None else str(output)[-MAX_RECORDED_OUTPUT:]


def apply_veto(kept: list[dict], dropped: dict) -> tuple[list[dict], list[dict]]:
    """(approved rows, vetoed rows); the vetoed are counted into `dropped` by reason."""
    approved, vetoed = [], []
    for row in kept:
        verdict = row.get("verifier_verdict", "unavailable")
        if verdict == "approved":
            approved.append(row)
        else:
            dropped[f"verifier_{verdict}"] = dropped.get(f"verifier_{verdict}", 0) + 1
            vetoed.append(row)
    return approved, vetoed


def _checked(rows: list[dict]) -> tuple[int, int]:
    """(checked, correct) of the rows the headline oracle judged (`label_correct` True or False)."""
    verdicts = [row["label_correct"] for row in rows if row.get("label_correct") is not None]
    return len(verdicts), sum(1 for verdict in verdicts if verdict)


def veto_metrics(kept: list[dict], approved: list[dict], vetoed: list[dict], verifier, oracle: str | None) -> dict:
    """The label phase's `verifier` metrics (counts only: the operator sums shards and computes the rates)."""
    counts = {verdict: sum(1 for row in kept if row.get("verifier_verdict") == verdict) for verdict in VERDICTS}
    before, after = _checked(kept), _checked(approved)
    judged = [row for row in kept if row.get("label_correct") is not None
              and row.get("verifier_verdict") in ("approved", "rejected", "unparsable")]
    agree = sum(1 for row in judged if row["verifier_verdict"] != "unparsable"  # an unreadable verdict is wrong
                and (row["verifier_verdict"] == "approved") == bool(row["label_correct"]))
    return {
        "source": verifier.name, "judged": len(kept), **counts, "oracle": oracle if before[0] else None,
        "checked_before": before[0], "correct_before": before[1],
        "checked_after": after[0], "correct_after": after[1],
        "correct_vetoed": sum(1 for row in vetoed if row.get("label_correct") is True),
        "wrong_vetoed": sum(1 for row in vetoed if row.get("label_correct") is False),
        "oracle_compared": len(judged), "oracle_agreed": agree,
        **verifier.metrics(),
    }


def headline_after_veto(checks: dict, approved: list[dict]) -> dict:
    """The headline label accuracy (oracles/run.py) recomputed over the approved rows: what the Solver trains on."""
    from .benchmarks.scoring import wilson_interval

    if not checks:
        return {}
    checked, correct = _checked(approved)
    return {**checks, "oracle_checked": checked, "oracle_correct": correct,
            "label_accuracy": correct / checked if checked else None,
            "label_accuracy_ci95": list(wilson_interval(correct, checked)) if checked else None}
