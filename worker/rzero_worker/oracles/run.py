"""Run the configured oracles on a label shard's kept questions and record label accuracy per oracle.

- The exact arithmetic oracle (`oracle.arithmetic`) checks every kept question it can read: it is free.
- The model (`oracle.model`) and endpoint (`oracle.endpoint`) oracles answer the same seeded random sample
  of kept questions: `oracle.sampleSize` per iteration, split evenly across the label shards (shard i of K
  takes size // K, plus one for the first size % K shards). Every kept question of a shard is equally
  likely to be drawn, so the sample's accuracy estimates the shard's (and, summed, the iteration's).
  The draw is seeded by the task's seed: a retried attempt checks the same questions.

Metrics (summed over shards by the operator):
- the headline `oracle`, `oracle_checked`, `oracle_correct`, `label_accuracy`, `label_accuracy_ci95`:
  the endpoint oracle's when set, else the model oracle's, else the arithmetic oracle's;
- `oracles`: {name: {checked, correct, asked, and the endpoint's request counters and `error`}}.
Each checked row gets `oracle_answers` ({name: answer}), and the headline `oracle_answer` / `label_correct`.
"""

from __future__ import annotations

import logging
import os
import random

from rzero_worker.task import LabelTask, Shard

from .arithmetic import ArithmeticOracle
from .checks import LabelCheck, check_labels

log = logging.getLogger(__name__)


def shard_quota(total: int, shard: Shard) -> int:
    """This shard's part of a per-iteration total (the parts add up to `total`)."""
    return total // shard.count + (1 if shard.index < total % shard.count else 0)


def sample_indices(population: int, size: int, seed: int) -> list[int]:
    """`size` distinct indices of range(population), drawn with `seed`, in ascending order."""
    return sorted(random.Random(seed).sample(range(population), min(population, max(0, size))))


def sampled_oracles(task: LabelTask, ctx) -> list:
    """The oracles that answer a sample (model first, endpoint last: the last one is the headline)."""
    oracles = []
    if task.oracle.model is not None:
        from .model import ModelOracle

        oracles.append(ModelOracle(task.oracle.model, ctx))
    if task.oracle.endpoint is not None:
        from .endpoint import EndpointOracle

        settings = task.oracle.endpoint
        budget = shard_quota(settings.max_requests, task.shard)
        oracles.append(EndpointOracle(settings, budget=budget, api_key=os.environ.get(settings.api_key_env)))
    return oracles


def check_kept(kept: list[dict], task: LabelTask, ctx, pool, oracles: list | None = None) -> dict:
    """Check the kept rows against every configured oracle (in place: rows get the oracles' answers);
    returns the label phase's oracle metrics, {} when no oracle is configured. `oracles` replaces the
    sampled oracles the task configures (tests)."""
    checks: list[tuple[LabelCheck, object, list[dict]]] = []  # (check, oracle, the rows it was asked about)
    if task.oracle.arithmetic:
        checks.append((check_labels(kept, ArithmeticOracle(), pool), ArithmeticOracle(), kept))
    oracles = sampled_oracles(task, ctx) if oracles is None else oracles
    if oracles:
        indices = sample_indices(len(kept), shard_quota(task.oracle.sample_size, task.shard), task.seed)
        sample = [kept[i] for i in indices]
        checks += [(check_labels(sample, oracle, pool), oracle, sample) for oracle in oracles]
    if not checks:
        return {}
    for check, _, rows in checks:
        for row, answer in zip(rows, check.answers):
            row.setdefault("oracle_answers", {})[check.oracle] = answer
        if check.checked:
            log.info("oracle %s checked %d labels: %.0f%% right", check.oracle, check.checked, 100 * check.accuracy)
    headline, _, rows = checks[-1]
    for row, answer, verdict in zip(rows, headline.answers, headline.verdicts):
        row["oracle_answer"], row["label_correct"] = answer, verdict
    return {**headline.metrics(), "oracles": {check.oracle: _counts(check, oracle, len(rows))
                                              for check, oracle, rows in checks}}


def _counts(check: LabelCheck, oracle, asked: int) -> dict:
    extra = oracle.metrics() if hasattr(oracle, "metrics") else {}
    return {"asked": asked, "checked": check.checked, "correct": check.correct, **extra}
