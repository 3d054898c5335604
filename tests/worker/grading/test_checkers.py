r"""The two equivalence checkers on the issue's hand-made cases: mathruler (the reference's, the default) gives
the reference's numbers, math-verify rzero's earlier ones; mathruler's shortcuts agree with mathruler itself;
a mathruler call that hangs costs one pair, never the vote, and never becomes a label."""

import random
import time

import pytest
from mathruler.grader import grade_answer

from rzero_worker.grading import GradingPool, Reading, grade, vote_many

REFERENCE = Reading("reference")


@pytest.fixture(scope="module")
def ruler():
    with GradingPool(workers=1, timeout_s=3.0, checker="mathruler") as pool:
        yield pool


@pytest.fixture(scope="module")
def verify():
    with GradingPool(workers=1, timeout_s=5.0, checker="math-verify") as pool:
        yield pool


def boxed(answers):
    return [REFERENCE.answer(f"so \\boxed{{{answer}}}") for answer in answers]


@pytest.mark.parametrize(
    ("answers", "ruler_vote", "verify_vote"),
    [
        # mathruler is case-blind on words; math-verify is not
        (["No", "No", "No", "Yes", "yes", "yes", "YES", "7", "8"], ("Yes", 4 / 9), ("No", 3 / 9)),
        # mathruler keeps an unreduced fraction apart (strict on fractions); math-verify compares values
        (["\\frac{2}{4}"] * 4 + ["\\frac{1}{2}"] * 3 + ["3"] * 2, ("\\frac{2}{4}", 4 / 9), ("\\frac{2}{4}", 7 / 9)),
    ],
)
def test_the_vote_of_each_checker(ruler, verify, answers, ruler_vote, verify_vote):
    for pool, (label, p_hat) in ((ruler, ruler_vote), (verify, verify_vote)):
        [vote] = vote_many([boxed(answers)], pool, "reference")
        assert (vote.label, vote.score) == (label, pytest.approx(p_hat))


def test_the_solver_reward_direction_of_each_checker(ruler, verify):
    predictions, golds = boxed(["even", "\\sqrt{25}"]), ["Even", "5"]
    assert grade(predictions, golds, ruler) == [True, False]
    assert grade(predictions, golds, verify) == [False, True]


def test_mathrulers_shortcuts_agree_with_mathruler():
    rng = random.Random(0)
    numbers = ["0", "-0", "5", "05", "-5", "12", "012", "100", "1000", "999999999999999", "-999999999999999"]
    pairs = [(rng.choice(numbers), rng.choice(numbers)) for _ in range(200)] + [("None", "None"), ("x", "x")]
    pairs += [(str(rng.randint(-10**6, 10**6)), str(rng.randint(-10**6, 10**6))) for _ in range(200)]
    with GradingPool(workers=1, timeout_s=5.0, checker="mathruler") as pool:
        verdicts = pool.equivalent(pairs)
        assert pool.stats.checker_calls == 0  # all decided in the parent
    assert verdicts == [grade_answer(a, b) or grade_answer(b, a) for a, b in pairs]


def test_the_none_answer_is_compared_as_the_reference_compares_it(ruler):
    # no box reads "None"; mathruler finds "none" the same answer, and "None" wins here: the question has no label
    [vote] = vote_many([["None", "none", "5", "None"]], ruler, "reference")
    assert vote.majority_none and vote.label is None and vote.score == 0.75


def test_the_reference_merges_two_answers_that_both_say_no(ruler):
    [vote] = vote_many([["no solution", "there is no real root", "2"]], ruler, "reference")
    assert (vote.label, vote.classes) == ("no solution", [("no solution", 2), ("2", 1)])
    [vote] = vote_many([["no solution", "there is no real root", "2"]], ruler, "boxed-only")
    assert len(vote.classes) == 3


HANG = "10**10**10"  # mathruler hands it to sympy, which computes the power in C


def test_a_mathruler_hang_costs_one_pair_and_never_becomes_a_label():
    with GradingPool(workers=1, timeout_s=2.0, checker="mathruler") as pool:
        started = time.monotonic()
        [vote] = vote_many([[HANG] * 3 + ["x+1"] * 2 + ["2x"]], pool, "reference")
        assert time.monotonic() - started < 8.0
        # the pair timed out: skipped, as the reference skips it; the hang answer's class wins but is no label
        assert vote.classes[0] == (HANG, 3) and vote.label_undecidable
        # the pool still works
        assert pool.equivalent([("x+1", "1+x")]) == [True]


def test_a_worker_stuck_past_the_hard_limit_is_killed_and_replaced():
    with GradingPool(workers=1, timeout_s=1.0, soft_timeout_s=60.0, checker="mathruler") as pool:
        assert pool.equivalent([(HANG, "x+1")]) == [None]
        assert pool.stats.restarts == 1 and pool.is_blamed(HANG)
        assert pool.equivalent([("x+1", "1+x")]) == [True]
