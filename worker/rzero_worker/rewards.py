r"""Rewards: the Challenger's (uncertainty minus BLEU-cluster repetition) and the Solver's (pseudo-label match).

Formulas (DESIGN §2), paper by default, the reference code's selectable (`ChallengerSettings.reward`):

    paper: r = max(0, r_unc - r_rep),  r_unc = 1 - 2|p - 1/2|;  no <question> tags: r = 0
    code:  r = min(p, 1 - p) - r_rep   (no clamp);               no <question> tags: r = -1 - r_rep

    r_rep = lambda * |C_k| / B over the WHOLE rollout batch of B completions.

How the reference code (`examples/reward_function/caller_penalty.py`) computes r_rep, which we match:
- BLEU is not symmetric; the reference fills the upper triangle with BLEU(hypothesis = question i,
  references = [question j]) for i < j and mirrors it. nltk `sentence_bleu` on whitespace tokens,
  `SmoothingFunction().method1`; distance = 1 - BLEU, 0 on the diagonal.
- clustering: agglomerative, average linkage, on the precomputed distances, cut at 0.5. sklearn's
  `distance_threshold` keeps merges whose distance is strictly below the threshold; scipy's `fcluster`
  keeps those <= t, so we cut at the float just below the threshold to get the same clusters.
- invalid completions (not scored under the run's reading, grading/reading.py: no question; in boxed-only
  mode also no boxed answer; in reference mode an empty box) stay in the batch as the empty question: BLEU with an empty
  sentence is 0, so each is a singleton cluster. They count in B, and (code formula only) their
  -1 reward also loses lambda/B, exactly as in the reference. Paper: they get 0.
- p-hat: the share of the Solver's m samples in the majority class (`Vote.score`). A completion whose
  p-hat is None (not scored) is treated as invalid.

Variance objective (`ChallengerSettings.objective: variance`, SPICE, arXiv 2510.24684; needs spec.corpus):
p is the Solver's pass rate, the share of its m answers (asked WITHOUT the passage) equivalent to the
Challenger's own document answer under the run's checker (undecidable comparisons count as not passing), and
r_unc above is replaced by SPICE's Gaussian-shaped score of the pass-rate variance

    r_var = exp(-(p(1-p) - 1/4)^2 / (2 * 0.01))   (1 at p = 1/2; exp(-3.125) ~ 0.0439 at p = 0 or 1)

then combined with r_rep as the formula says (paper: max(0, r_var - r_rep), invalid 0; code: r_var - r_rep,
invalid -1 - r_rep). SPICE's own invalid-question penalty and its single shared model are not rzero's: the
repetition penalty, the formulas and the frozen Solver stay R-Zero's, only the difficulty signal changes.
Grounded format (any objective, with spec.corpus): a completion is scored only when it has a non-blank
`<question>` AND a non-blank boxed answer (`grounded_pair`): the document answer is part of the format.

Solver (the reference's `examples/reward_function/math.py`): accuracy = 1 if the answer the run's reading
finds is equivalent to the pseudo-label under the pool's checker (`grade_answer(answer, label)` for
mathruler, label as gold) else 0, and 0 when undecidable in time; with format weight w > 0:
(1 - w) * accuracy + w * format, format = 1 when the completion matches `<think>.*</think>.*\boxed{.*}.*`
(in reference mode after removing whitespace around `<`, `>` and `/`, `math.py:38`; the reference uses
w = 0.1).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from .grading.reading import Reading
from .grading.vote import grade
from .task import ChallengerSettings

Formula = Literal["paper", "code"]


def uncertainty_reward(p_hat: float, formula: Formula = "paper") -> float:
    """paper: 1 - 2|p - 1/2| (1 at p = 1/2, 0 at p = 0 or 1); code: min(p, 1 - p) (at most 1/2)."""
    if not 0.0 <= p_hat <= 1.0:
        raise ValueError(f"p_hat must be in [0, 1], got {p_hat}")
    if formula == "paper":
        return 1.0 - 2.0 * abs(p_hat - 0.5)
    if formula == "code":
        return min(p_hat, 1.0 - p_hat)
    raise ValueError(f"reward formula must be 'paper' or 'code', got {formula!r}")


VARIANCE_PEAK = 0.25  # p(1-p) at p = 1/2, the largest variance of a pass rate
VARIANCE_WIDTH = 0.01  # SPICE's sigma^2 of the Gaussian around the peak


def variance_reward(pass_rate: float) -> float:
    """SPICE's Challenger score of a pass rate p: exp(-(p(1-p) - 1/4)^2 / (2 * 0.01)), 1 at p = 1/2."""
    if not 0.0 <= pass_rate <= 1.0:
        raise ValueError(f"pass rate must be in [0, 1], got {pass_rate}")
    variance = pass_rate * (1.0 - pass_rate)
    return math.exp(-((variance - VARIANCE_PEAK) ** 2) / (2.0 * VARIANCE_WIDTH))


def grounded_pair(text: str | None, vote: str = "reference") -> tuple[str, str] | None:
    """(question, document answer) of a grounded Challenger completion, or None when either is missing or blank."""
    parsed = Reading(vote).generated(text)
    if parsed is None or not parsed[0].strip() or parsed[1] is None or not parsed[1].strip():
        return None
    return parsed[0], parsed[1].strip()


def bleu_distance_matrix(questions: list[str]) -> np.ndarray:
    """Square matrix of 1 - BLEU(hypothesis=q_i, references=[q_j]) for i < j, mirrored; 0 diagonal."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    smoothing = SmoothingFunction().method1
    tokens = [question.split() for question in questions]
    size = len(questions)
    distance = np.zeros((size, size))
    for i in range(size):
        for j in range(i + 1, size):
            if tokens[i] and tokens[j]:
                score = sentence_bleu([tokens[j]], tokens[i], smoothing_function=smoothing)
            else:
                score = 0.0  # an empty question shares nothing (nltk also says 0)
            distance[i, j] = distance[j, i] = 1.0 - score
    return distance


def cluster_labels(questions: list[str], threshold: float = 0.5) -> list[int]:
    """Cluster id of each question: average-linkage clusters whose merges are all below `threshold`."""
    if len(questions) < 2:
        return [1] * len(questions)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    condensed = squareform(bleu_distance_matrix(questions), checks=False)
    tree = linkage(condensed, method="average")
    cut = np.nextafter(threshold, -np.inf)  # strict: the reference (sklearn) never merges at == threshold
    return [int(label) for label in fcluster(tree, t=cut, criterion="distance")]


def repetition_penalties(questions: list[str], weight: float = 1.0, threshold: float = 0.5) -> list[float]:
    """r_rep = weight * |C_k| / B for each question of the batch."""
    labels = cluster_labels(questions, threshold)
    sizes: dict[int, int] = {}
    for label in labels:
        sizes[label] = sizes.get(label, 0) + 1
    batch = len(questions)
    return [weight * sizes[label] / batch for label in labels]


def challenger_rewards(
    completions: list[str], p_hats: list[float | None], settings: ChallengerSettings, vote: str = "reference",
    grounded: bool = False,
) -> list[float]:
    """One reward per Challenger completion of the whole rollout batch (see the module notes); `vote`: the
    run's reading mode; `grounded` (spec.corpus): the grounded format; p_hats are pass rates under the
    variance objective."""
    if len(completions) != len(p_hats):
        raise ValueError(f"challenger_rewards: {len(completions)} completions but {len(p_hats)} p_hats")
    if settings.objective == "variance" and not grounded:
        raise ValueError("challenger_rewards: the variance objective needs grounded completions (spec.corpus)")
    reading = Reading(vote)
    if grounded:
        questions = [pair[0] if pair else None for pair in (grounded_pair(c, vote) for c in completions)]
    else:
        questions = [reading.challenger_question(completion) for completion in completions]
    valid = [question is not None and p_hat is not None for question, p_hat in zip(questions, p_hats)]
    penalties = repetition_penalties(
        [question if ok else "" for question, ok in zip(questions, valid)],
        weight=settings.repetition_weight,
        threshold=settings.bleu_distance_threshold,
    )
    rewards = []
    variance = settings.objective == "variance"
    for ok, p_hat, penalty in zip(valid, p_hats, penalties):
        score = (variance_reward(p_hat) if variance else uncertainty_reward(p_hat, settings.reward)) if ok else None
        if settings.reward == "paper":
            rewards.append(max(0.0, score - penalty) if ok else 0.0)
        else:
            rewards.append((score if ok else -1.0) - penalty)
    return rewards


def format_reward(completion: str, vote: str = "reference") -> float:
    r"""1 when the completion reasons in <think>...</think> and then gives a \boxed{} answer (module notes)."""
    return 1.0 if Reading(vote).format_ok(completion) else 0.0


def solver_rewards(
    completions: list[str], labels: list[str], pool, format_weight: float = 0.0, vote: str = "reference"
) -> list[float]:
    """accuracy (the answer equivalent to the pseudo-label), mixed with the format reward when w > 0;
    `vote`: the run's reading mode, `pool`: a GradingPool of the run's checker."""
    if len(completions) != len(labels):
        raise ValueError(f"solver_rewards: {len(completions)} completions but {len(labels)} labels")
    if not 0.0 <= format_weight <= 1.0:
        raise ValueError(f"format_weight must be in [0, 1], got {format_weight}")
    reading = Reading(vote)
    verdicts = grade([reading.answer(completion) for completion in completions], labels, pool)
    rewards = []
    for completion, verdict in zip(completions, verdicts):
        accuracy = 1.0 if verdict else 0.0  # None (undecidable in time) earns nothing
        if format_weight > 0:
            rewards.append((1.0 - format_weight) * accuracy + format_weight * format_reward(completion, vote))
        else:
            rewards.append(accuracy)
    return rewards
