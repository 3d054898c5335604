r"""Rewards of an open-ended run (spec.task kind open-ended): the Verifier's scores instead of a vote.

Solver: r = the Verifier's normalised score of the response (grading/scores.py: mean criterion score mapped from
1..10 onto 0..1); an unparsable or missing judgement earns 0, never a high score. As in Multi-Agent Evolve
(arXiv 2510.23595), whose Solver reward is its Judge's score.

Challenger: the analogue of R-Zero's uncertainty. For a task the Solver answers m times, the spread is the
population standard deviation of the m normalised scores divided by 1/2 (the largest standard deviation of
values in [0, 1]), so it runs from 0 (every response scored alike: the task does not separate good from bad
responses) to 1 (half at the bottom, half at the top). Only parsed scores count; fewer than two leave the task
without a spread, and it is treated like an invalid task. Then, with R-Zero's repetition penalty
(rewards.repetition_penalties, BLEU clusters over the whole batch) on the task texts:

    paper: r = max(0, spread - r_rep);  no <task> block or no spread: r = 0
    code:  r = spread - r_rep;          no <task> block or no spread: r = -1 - r_rep
"""

from __future__ import annotations

import math

from .rewards import repetition_penalties
from .task import ChallengerSettings

MAX_STD = 0.5  # the population standard deviation of values in [0, 1] is at most 1/2


def score_spread(scores: list[float | None]) -> float | None:
    """Normalised standard deviation (0..1) of the parsed scores; None with fewer than two."""
    values = [score for score in scores if score is not None]
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    std = math.sqrt(sum((value - mean) ** 2 for value in values) / len(values))
    return min(1.0, std / MAX_STD)


def open_challenger_rewards(tasks: list[str | None], spreads: list[float | None],
                            settings: ChallengerSettings) -> list[float]:
    """One reward per Challenger completion of the whole rollout batch (`tasks`: prompts_openended.read_task of
    each completion; `spreads`: score_spread of its responses, None when not scored)."""
    if len(tasks) != len(spreads):
        raise ValueError(f"open_challenger_rewards: {len(tasks)} tasks but {len(spreads)} spreads")
    valid = [task is not None and spread is not None for task, spread in zip(tasks, spreads)]
    penalties = repetition_penalties([task if ok else "" for task, ok in zip(tasks, valid)],
                                     weight=settings.repetition_weight, threshold=settings.bleu_distance_threshold)
    rewards = []
    for ok, spread, penalty in zip(valid, spreads, penalties):
        if settings.reward == "paper":
            rewards.append(max(0.0, spread - penalty) if ok else 0.0)
        else:
            rewards.append((spread if ok else -1.0) - penalty)
    return rewards


def open_solver_rewards(scores: list[float | None]) -> list[float]:
    """The Verifier's normalised score per response; 0 for an unparsable or missing judgement."""
    return [0.0 if score is None else float(score) for score in scores]
