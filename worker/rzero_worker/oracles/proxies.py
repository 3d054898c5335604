"""Label-quality proxies: what can be said about the pseudo-labels when no oracle answers the questions.

Recorded for every iteration, oracle or not (cheap, from the vote itself):
- `answer_entropy`: mean entropy (bits) of the kept questions' answer distributions over their
  math-equivalence classes (the "None" class included in reference mode). Rising entropy at a fixed band
  means the Solver's answers scatter more: its majority is a weaker label.
- `band_edge_share`: share of kept questions whose agreement lies within one vote (1/m) of either edge
  of the band: labels that one differing answer would have dropped.
The label phase also records the agreement histogram and the label = Challenger's answer share.
"""

from __future__ import annotations

import math


def entropy_bits(sizes: list[int]) -> float:
    """Shannon entropy (bits) of a distribution given as class sizes."""
    total = sum(sizes)
    if total <= 0:
        return 0.0
    return -sum(size / total * math.log2(size / total) for size in sizes if size > 0) + 0.0


def answer_entropy(kept: list[dict]) -> float | None:
    """Mean answer entropy over the kept rows (their `class_sizes`), None without any."""
    values = [entropy_bits(row["class_sizes"]) for row in kept if row.get("class_sizes")]
    return sum(values) / len(values) if values else None


def band_edge_share(kept: list[dict], band: tuple[float, float], samples: int) -> float | None:
    """Share of kept rows whose score is less than one vote (1/samples) inside the band's edges."""
    if not kept:
        return None
    low, high = band
    step = 1.0 / max(1, samples)
    near = sum(1 for row in kept if row["score"] - low < step - 1e-9 or high - row["score"] < step - 1e-9)
    return near / len(kept)


def proxy_metrics(kept: list[dict], band: tuple[float, float], samples: int) -> dict:
    return {"answer_entropy": answer_entropy(kept), "band_edge_share": band_edge_share(kept, band, samples)}
