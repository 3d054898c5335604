"""Benchmark scores: accuracy with a 95% Wilson interval, avg@k, shards merged, the paper's averages.

One score entry (in `scores.json`, the evaluate summary's `scores`, and after merging shards) is
`{"accuracy", "ci95": [lo, hi], "n", "correct"}`, plus `"preset"` for a paper benchmark, `"guessed"` (items
whose letter was guessed) for multiple choice, and `"k", "samples_correct", "avg_at_k"` with avg@k.
Counts travel with every entry so that the shards of a sharded evaluation merge exactly: accuracies are
recomputed from summed counts, never averaged.

The Wilson score interval stays inside [0, 1] and behaves well for small n and accuracies near 0 or 1
(the normal approximation does neither): the 30-problem AIME sets need that.

The paper's averages: "MATH AVG" is the mean accuracy of its seven maths benchmarks (Table 1's AVG), and
"Overall AVG" the mean of MATH AVG, SuperGPQA, MMLU-Pro and BBEH (Table 2; the abstract's "+7.54 on
general-domain reasoning" is this figure). Here each is the mean over the presets a run evaluates.

Stdlib only: the control plane merges shard summaries with it.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from ..benchmark_presets import GENERAL_ORDER, MATH_AVERAGE, MATHS_ORDER, OVERALL_AVERAGE

Z_95 = 1.959963984540054  # two-sided 95% quantile of the standard normal
_DIGITS = 6  # summaries travel in a 4 KiB termination message: no 17-digit floats


def wilson_interval(correct: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for `correct` successes out of `n` (95% by default); (0, 1) when n=0."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low, high = max(0.0, centre - half_width), min(1.0, centre + half_width)
    # Exact at the ends: the formula leaves a rounding hair (0 of 6 gave a lower bound of 2.8e-17).
    return (0.0 if correct == 0 else low, 1.0 if correct == n else high)


def score_entry(
    correct: int, n: int, *, preset: str | None = None, guessed: int | None = None,
    k: int = 0, samples_correct: int = 0,
) -> dict[str, Any]:
    """A score entry from counts (see the module docstring)."""
    low, high = wilson_interval(correct, n)
    entry: dict[str, Any] = {
        "accuracy": round(correct / n, _DIGITS) if n else None,
        "ci95": [round(low, _DIGITS), round(high, _DIGITS)],
        "n": n,
        "correct": correct,
    }
    if preset:
        entry["preset"] = preset
    if guessed is not None:
        entry["guessed"] = guessed
    if k:
        entry.update(k=k, samples_correct=samples_correct, avg_at_k=round(samples_correct / (n * k), _DIGITS) if n else None)
    return entry


def rows_score(rows: list[dict], *, preset: str | None = None, multiple_choice: bool = False, k: int = 0) -> dict:
    """The score entry of per-item rows (`correct`, and `guessed` / `samples_correct` where they apply)."""
    return score_entry(
        sum(bool(row["correct"]) for row in rows), len(rows), preset=preset,
        guessed=sum(bool(row.get("guessed")) for row in rows) if multiple_choice else None,
        k=k, samples_correct=sum(int(row.get("samples_correct") or 0) for row in rows),
    )


def merge_scores(shard_scores: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per benchmark, the entry over all shards: counts summed, accuracy and interval recomputed.

    An entry without `correct` (summaries older than sharded evaluation) counts round(accuracy * n)."""
    totals: dict[str, dict[str, Any]] = {}
    for scores in shard_scores:
        for name, entry in (scores or {}).items():
            if not isinstance(entry, dict) or not isinstance(entry.get("n"), int):
                continue
            correct = entry.get("correct")
            if not isinstance(correct, int):
                accuracy = entry.get("accuracy")
                correct = round(accuracy * entry["n"]) if isinstance(accuracy, (int, float)) else 0
            total = totals.setdefault(str(name), {"correct": 0, "n": 0, "guessed": None, "k": 0, "samples_correct": 0})
            total["correct"] += correct
            total["n"] += entry["n"]
            total["preset"] = entry.get("preset") or total.get("preset")
            if isinstance(entry.get("guessed"), int):
                total["guessed"] = (total["guessed"] or 0) + entry["guessed"]
            if isinstance(entry.get("k"), int) and entry["k"] > 0:
                total["k"] = entry["k"]
                total["samples_correct"] += int(entry.get("samples_correct") or 0)
    return {name: score_entry(**total) for name, total in totals.items()}


def paper_averages(scores: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The paper's MATH AVG and Overall AVG over the presets among `scores` (each preset counted once:
    the first benchmark using it). MATH AVG is None without a maths preset, Overall AVG without a
    general-reasoning one."""
    by_preset: dict[str, float] = {}
    for entry in scores.values():
        preset, accuracy = entry.get("preset"), entry.get("accuracy")
        if preset and preset not in by_preset and isinstance(accuracy, (int, float)):
            by_preset[preset] = float(accuracy)
    maths = [by_preset[name] for name in MATHS_ORDER if name in by_preset]
    math_average = sum(maths) / len(maths) if maths else None
    general = [by_preset[name] for name in GENERAL_ORDER if name in by_preset]
    # Without a general-reasoning benchmark the "overall" figure would just repeat MATH AVG.
    overall_parts = ([math_average] if math_average is not None else []) + general
    overall = sum(overall_parts) / len(overall_parts) if general else None
    return {
        MATH_AVERAGE: round(math_average, _DIGITS) if math_average is not None else None,
        OVERALL_AVERAGE: round(overall, _DIGITS) if overall is not None else None,
    }


def mean_accuracy(scores: dict[str, dict[str, Any]]) -> float | None:
    """The plain mean accuracy over every benchmark scored (the status's latestScore)."""
    values = [float(entry["accuracy"]) for entry in scores.values() if isinstance(entry.get("accuracy"), (int, float))]
    return round(sum(values) / len(values), _DIGITS) if values else None
