"""Oracles: independent answers to generated questions, to measure how often pseudo-labels are right.

R-Zero's known weakness is label drift: the majority vote's pseudo-labels get less accurate as the
Challenger's questions get harder (the paper, checked against a strong model: ~79% in iteration 1, ~63% in
iteration 3). An oracle answers a question on its own; the label phase compares its answers with the
pseudo-labels. Every oracle has the one small interface of `base.Oracle`.

- `arithmetic.ArithmeticOracle`: exact, free, for questions that are pure arithmetic expressions.
"""

from rzero_worker.oracles.arithmetic import ArithmeticOracle
from rzero_worker.oracles.base import Oracle

__all__ = ["ArithmeticOracle", "Oracle"]
