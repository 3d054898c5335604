"""Judge-failure reports of an open-ended iteration (the known failures of LLM-as-judge).

- length bias: Pearson's r between a response's length (characters) and its normalised score, over every scored
  response of the label phase. Shards send the moments (n, Σx, Σy, Σx², Σy², Σxy), so the operator computes r over
  the whole iteration exactly (`pearson_from_moments`).
- score collapse: the share of tasks with at least two scored responses whose scores are all equal (the judge does
  not tell the responses apart; such a task has spread 0 and no Challenger reward).
- position bias (win-rate evaluation, winrate.py): the share of decided pairwise verdicts that chose the response
  shown first (0.5 = none), and the tasks whose two orders chose the same position (the order decided).
"""

from __future__ import annotations

import math


def length_moments(lengths: list[float], scores: list[float]) -> list[float]:
    """[n, Σx, Σy, Σx², Σy², Σxy] of the (length, score) pairs."""
    return [float(len(lengths)), sum(lengths), sum(scores), sum(x * x for x in lengths),
            sum(y * y for y in scores), sum(x * y for x, y in zip(lengths, scores))]


def add_moments(parts: list[list[float]]) -> list[float]:
    total = [0.0] * 6
    for part in parts:
        if isinstance(part, list) and len(part) == 6:
            total = [a + float(b) for a, b in zip(total, part)]
    return total


def pearson_from_moments(moments: list[float]) -> float | None:
    """Pearson's r from the moments; None with fewer than 3 pairs or no variance in either variable."""
    n, sx, sy, sxx, syy, sxy = moments
    if n < 3:
        return None
    cov, var_x, var_y = n * sxy - sx * sy, n * sxx - sx * sx, n * syy - sy * sy
    if var_x <= 1e-12 * max(1.0, n * sxx) or var_y <= 1e-12 * max(1.0, n * syy):
        return None
    return max(-1.0, min(1.0, cov / math.sqrt(var_x * var_y)))


def judge_report(groups: list[tuple[list[str], list]]) -> dict:
    """The label phase's `judge` metrics from (responses, judgements) per task (counts and moments: the operator
    sums shards and computes the rates)."""
    lengths, scores = [], []
    counts = {"judged": 0, "scored": 0, "unparsable": 0, "unavailable": 0}
    collapsed = scored_tasks = 0
    for responses, judgements in groups:
        values = []
        for response, judgement in zip(responses, judgements):
            counts["judged"] += 1
            counts[judgement.status] += 1
            if judgement.score is not None:
                values.append(judgement.score)
                lengths.append(float(len(response or "")))
                scores.append(judgement.score)
        if len(values) >= 2:
            scored_tasks += 1
            collapsed += int(max(values) - min(values) < 1e-9)
    moments = length_moments(lengths, scores)
    return {**counts, "tasks_scored": scored_tasks, "tasks_collapsed": collapsed,
            "score_sum": sum(scores), "length_moments": moments,
            "length_bias": pearson_from_moments(moments),
            "score_collapse": collapsed / scored_tasks if scored_tasks else None,
            "mean_score": sum(scores) / len(scores) if scores else None}
