r"""Grading: the run's reading of model outputs (one per `labeling.vote` mode), `\boxed{}` extraction and
normalisation, mathruler or math-verify equivalence in a pool of processes with a hard per-item timeout, and
the majority vote that makes pseudo-labels.

Importing this package imports no ML library; the checkers are imported only inside the worker processes.
"""

from .extract import (
    extract_boxed,
    is_empty_answer,
    normalize_answer,
    numeric_value,
    parse_challenger_output,
)
from .reading import Reading
from .verdict import parse_verdict
from .verify import GradingPool, default_workers
from .vote import Vote, grade, majority_vote, vote_many

__all__ = [
    "GradingPool",
    "Reading",
    "Vote",
    "default_workers",
    "extract_boxed",
    "grade",
    "is_empty_answer",
    "majority_vote",
    "normalize_answer",
    "numeric_value",
    "parse_challenger_output",
    "parse_verdict",
    "vote_many",
]
