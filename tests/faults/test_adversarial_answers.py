"""Adversarial model outputs through grading: LaTeX bombs, giant numbers, unbalanced braces, non-UTF-8 text
and 50 KB answers, alone and mixed into 10,000 normal answers, through vote_many (labelling), grade
(evaluation) and both rewards. Nothing crashes, time stays bounded (each distinct hanging answer costs at
most one grading timeout), adversarial answers are ungradable or unequal, and no vote of a question without
one changes."""

from __future__ import annotations

import random
import time

import pytest

from rzero_worker.grading import GradingPool, grade, majority_vote, vote_many
from rzero_worker.rewards import challenger_rewards, format_reward, solver_rewards
from rzero_worker.task import ChallengerSettings
from support.adversarial import ADVERSARIAL_CLASSES, GENERATORS, mixed_answer_lists, normal_answers

TIMEOUT_S = 2.0
GIANT_FORMS = {
    "slash fraction": "1/" + "9" * 4400,
    "latex fraction": r"\frac{1}{" + "9" * 4400 + "}",
    "decimal": "0." + "9" * 4400,
    "negative integer": "-" + "1" * 4400,
}


@pytest.fixture(scope="module")
def pool():
    with GradingPool(workers=2, timeout_s=TIMEOUT_S) as grading:
        grading.equivalent([("1", "x")])  # started
        yield grading


@pytest.fixture(scope="module")
def clean_pool():
    """A second pool that never saw an adversarial answer: the reference votes come from it."""
    with GradingPool(workers=2, timeout_s=TIMEOUT_S) as grading:
        yield grading


def time_bound(adversarial: int) -> float:
    """Normal work plus, at worst, one grading timeout per adversarial answer."""
    return 60.0 + adversarial * TIMEOUT_S


def changed_votes(lists, votes, clean_pool, adversarial_at: set[int]) -> int:
    """Questions without adversarial answers whose vote differs from a clean vote of the same answers."""
    clean_indices = [i for i in range(len(lists)) if i not in adversarial_at]
    clean = vote_many([lists[i] for i in clean_indices], clean_pool)
    return sum((votes[i].label, votes[i].score) != (vote.label, vote.score) for i, vote in zip(clean_indices, clean))


@pytest.mark.fault("giant number in an answer", outcome="recovered")
@pytest.mark.parametrize("form", list(GIANT_FORMS))
def test_one_giant_number_in_2500_answers_does_not_stop_the_vote(pool, clean_pool, form, fault_losses):
    rng = random.Random(1)
    lists = [normal_answers(rng, 10) for _ in range(250)]
    lists[17][3] = GIANT_FORMS[form]
    votes = vote_many(lists, pool)
    assert len(votes) == 250 and votes[17].ungradable == 1  # the giant answer, and only it
    assert grade([GIANT_FORMS[form], "7"], ["7", GIANT_FORMS[form]], pool) in ([None, None], [False, False])
    fault_losses.add(changed_votes(lists, votes, clean_pool, {17}), "normal questions whose vote changed")


@pytest.mark.fault("adversarial answers mixed into 10,000 normal ones", outcome="recovered")
def test_one_percent_adversarial_answers_among_10000_normal_ones(pool, clean_pool, fault_losses):
    lists, slots = mixed_answer_lists(questions=1011, samples=10, share=0.01, seed=7)
    assert 1011 * 10 - len(slots) >= 10_000 and len(slots) >= 100  # missing answers are normal output too
    started = time.monotonic()
    votes = vote_many(lists, pool)
    assert time.monotonic() - started < time_bound(len(slots))
    assert len(votes) == len(lists)
    touched = {question for question, _ in slots}
    fault_losses.add(changed_votes(lists, votes, clean_pool, touched), "normal questions whose vote changed")


@pytest.mark.fault("adversarial answer class through grading", outcome="recovered")
@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.faults_long) if k == "latex_bomb" else k
                                  for k in ADVERSARIAL_CLASSES])
def test_each_adversarial_class_among_normal_answers(pool, clean_pool, kind, fault_losses):
    lists, slots = mixed_answer_lists(questions=250, samples=10, share=0.02, seed=3, classes=(kind,))
    started = time.monotonic()
    votes = vote_many(lists, pool)
    assert time.monotonic() - started < time_bound(len(slots))
    adversarial = [lists[question][sample] for question, sample in slots]
    verdicts = grade(adversarial, ["42"] * len(adversarial), pool)  # evaluation's path: gold first
    assert all(verdict is not True for verdict in verdicts)
    touched = {question for question, _ in slots}
    fault_losses.add(changed_votes(lists, votes, clean_pool, touched), "normal questions whose vote changed")


@pytest.mark.fault("adversarial completions through the rewards", outcome="recovered")
def test_rewards_of_adversarial_completions_are_computed_in_bounded_time(pool):
    rng = random.Random(5)
    answers = [GENERATORS[kind](rng) for kind in ADVERSARIAL_CLASSES for _ in range(2)]
    completions = [f"<think>{'</think>' * 2000}</think>\\boxed{{{answer}}}" for answer in answers]
    completions.append("<think>" + "</think>\\boxed{" * 4000)  # backtracking bait for the format check
    started = time.monotonic()
    rewards = solver_rewards(completions, ["12"] * len(completions), pool, format_weight=0.1)
    assert len(rewards) == len(completions) and all(0.0 <= r <= 0.1 for r in rewards)
    assert format_reward(completions[-1]) == 0.0 and format_reward(completions[0]) == 1.0
    questions = ["<question>" * 5000] + [f"<question>{a[:2000]}</question> \\boxed{{{a}}}" for a in answers]
    scores = challenger_rewards(questions, [0.5] * len(questions), ChallengerSettings())
    assert len(scores) == len(questions) and scores[0] == 0.0
    assert time.monotonic() - started < time_bound(len(completions))


@pytest.mark.fault("adversarial answer class through grading", outcome="recovered")
def test_a_question_whose_answers_are_all_bombs_gets_an_ungradable_vote(pool):
    rng = random.Random(11)
    answers = [GENERATORS["latex_bomb"](rng) for _ in range(3)] + [GENERATORS["huge"](rng)]
    vote = majority_vote(answers, pool)
    assert vote.valid == 4 and vote.ungradable >= 3
