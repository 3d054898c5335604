"""Challenger and Solver rewards, checked against values worked out by hand (formulas in DESIGN §2)."""

import pytest

from rzero_worker.grading import GradingPool
from rzero_worker.rewards import (
    bleu_distance_matrix,
    challenger_rewards,
    cluster_labels,
    format_reward,
    grounded_pair,
    repetition_penalties,
    solver_rewards,
    uncertainty_reward,
    variance_reward,
)
from rzero_worker.task import ChallengerSettings

NEAR_1 = "A basket holds 3 red apples and 5 green apples . How many apples are in the basket ?"
NEAR_2 = "A basket holds 3 red apples and 7 green apples . How many apples are in the basket ?"
NEAR_3 = "A basket holds 4 red apples and 5 green apples . How many apples are in the basket ?"
OTHER = "Find the smallest prime p such that p squared plus 2 is also prime ."


def challenger_completion(question: str, answer: str = "8") -> str:
    return f"<question>{question}</question>\nThe answer is \\boxed{{{answer}}}."


@pytest.fixture(scope="module")
def pool():
    with GradingPool(workers=1, timeout_s=10.0) as grading_pool:
        yield grading_pool


@pytest.mark.parametrize(
    "p_hat, paper, code", [(0.5, 1.0, 0.5), (0.3, 0.6, 0.3), (1.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.8, 0.4, 0.2)]
)
def test_uncertainty_reward_both_formulas(p_hat, paper, code):
    assert uncertainty_reward(p_hat, "paper") == pytest.approx(paper)
    assert uncertainty_reward(p_hat, "code") == pytest.approx(code)


def test_uncertainty_reward_refuses_bad_input():
    with pytest.raises(ValueError, match="p_hat"):
        uncertainty_reward(1.5)
    with pytest.raises(ValueError, match="formula"):
        uncertainty_reward(0.5, "other")


def test_repetition_penalty_three_near_duplicates_and_one_different_question():
    questions = [NEAR_1, NEAR_2, OTHER, NEAR_3]
    labels = cluster_labels(questions)
    assert labels[0] == labels[1] == labels[3] != labels[2]
    assert repetition_penalties(questions) == pytest.approx([3 / 4, 3 / 4, 1 / 4, 3 / 4])
    assert repetition_penalties(questions, weight=2.0) == pytest.approx([1.5, 1.5, 0.5, 1.5])


def test_repetition_penalty_of_distinct_questions_and_tiny_batches():
    assert repetition_penalties([NEAR_1, OTHER]) == pytest.approx([0.5, 0.5])
    assert repetition_penalties([NEAR_1]) == [1.0]
    assert repetition_penalties([]) == []


def test_empty_questions_are_singletons():
    assert repetition_penalties(["", "", NEAR_1, NEAR_2]) == pytest.approx([1 / 4, 1 / 4, 2 / 4, 2 / 4])


def test_bleu_distance_uses_the_earlier_question_as_hypothesis():
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    short, long = "the cat sat on the mat", "the cat sat on the mat all day long"
    smoothing = SmoothingFunction().method1
    as_reference = sentence_bleu([long.split()], short.split(), smoothing_function=smoothing)
    as_hypothesis = sentence_bleu([short.split()], long.split(), smoothing_function=smoothing)
    assert as_reference != pytest.approx(as_hypothesis)  # BLEU is not symmetric...
    distance = bleu_distance_matrix([short, long])
    assert distance[0, 1] == distance[1, 0] == pytest.approx(1 - as_reference)  # ...the reference's choice
    assert distance[0, 0] == 0.0


def test_challenger_rewards_paper_formula_clamps_at_zero():
    completions = [challenger_completion(q) for q in (NEAR_1, NEAR_2, NEAR_3, OTHER)]
    rewards = challenger_rewards(completions, [0.5, 0.3, 1.0, 0.5], ChallengerSettings())
    # r_unc = 1, 0.6, 0, 1; r_rep = 3/4, 3/4, 3/4, 1/4
    assert rewards == pytest.approx([0.25, 0.0, 0.0, 0.75])


def test_challenger_rewards_code_formula_has_no_clamp():
    completions = [challenger_completion(q) for q in (NEAR_1, NEAR_2, NEAR_3, OTHER)]
    rewards = challenger_rewards(completions, [0.5, 0.3, 1.0, 0.5], ChallengerSettings(reward="code"))
    # min(p, 1-p) = 0.5, 0.3, 0, 0.5; r_rep = 3/4, 3/4, 3/4, 1/4
    assert rewards == pytest.approx([-0.25, -0.45, -0.75, 0.25])


def test_challenger_rewards_for_missing_question_tags():
    completions = [challenger_completion("What is 2 + 2 ?"), "I cannot think of a question. \\boxed{4}"]
    assert challenger_rewards(completions, [0.5, None], ChallengerSettings()) == pytest.approx([0.5, 0.0])
    # code: -1 for the format failure, and like the reference it also pays its singleton penalty 1/B
    code = challenger_rewards(completions, [0.5, None], ChallengerSettings(reward="code"))
    assert code == pytest.approx([0.5 - 0.5, -1.0 - 0.5])


def test_challenger_rewards_unscored_question_counts_as_invalid():
    completions = [challenger_completion("What is 2 + 2 ?"), challenger_completion(OTHER)]
    assert challenger_rewards(completions, [None, 0.5], ChallengerSettings()) == pytest.approx([0.0, 0.5])


def test_challenger_rewards_refuse_mismatched_lengths():
    with pytest.raises(ValueError, match="p_hats"):
        challenger_rewards(["<question>q</question>"], [], ChallengerSettings())


def test_format_reward_needs_think_then_a_box():
    assert format_reward("<think>2+2=4</think> so \\boxed{4}") == 1.0
    assert format_reward("\\boxed{4}") == 0.0
    assert format_reward("<think>no answer</think>") == 0.0
    assert format_reward("\\boxed{4} <think>late</think>") == 0.0


SOLVER_COMPLETIONS = [
    "<think>2 + 2 = 4</think> The answer is \\boxed{4}.",
    "\\boxed{4.0}",
    "<think>hmm</think> \\boxed{5}",
    "no answer at all",
]


def test_solver_rewards_are_pseudo_label_accuracy(pool):
    assert solver_rewards(SOLVER_COMPLETIONS, ["4"] * 4, pool) == [1.0, 1.0, 0.0, 0.0]


def test_solver_rewards_with_format_weight(pool):
    rewards = solver_rewards(SOLVER_COMPLETIONS, ["4"] * 4, pool, format_weight=0.1)
    assert rewards == pytest.approx([1.0, 0.9, 0.1, 0.0])


def test_solver_rewards_use_math_equivalence(pool):
    completions = ["\\boxed{\\frac{1}{2}}", "\\boxed{\\sqrt{8}}"]
    assert solver_rewards(completions, ["0.5", "2\\sqrt{2}"], pool) == [1.0, 1.0]


@pytest.fixture(scope="module")
def ruler():
    with GradingPool(workers=1, timeout_s=10.0, checker="mathruler") as grading_pool:
        yield grading_pool


@pytest.mark.parametrize(
    ("completion", "label", "reference", "rzero"),
    [
        # the checker: mathruler (reference) is case-blind and strict on integers; math-verify compares values
        ("<think>t</think> \\boxed{even}", "Even", 1.00, 0.10),
        ("<think>t</think> \\boxed{\\sqrt{25}}", "5", 0.10, 1.00),
        # the reading: the reference reads no \fbox
        ("$\\fbox{12}$", "12", 0.0, 0.9),
        # the format check: the reference removes whitespace around <, > and / first
        (" <think>t</think> $\\boxed{12}$", "12", 1.00, 0.90),
    ],
)
def test_the_solver_reward_is_the_references_in_reference_mode_and_rzeros_in_the_other(
        ruler, pool, completion, label, reference, rzero):
    assert solver_rewards([completion], [label], ruler, 0.1, "reference") == pytest.approx([reference])
    assert solver_rewards([completion], [label], pool, 0.1, "boxed-only") == pytest.approx([rzero])


def test_challenger_rewards_score_an_output_without_a_box_only_in_reference_mode():
    boxless = "<question>\nWhat is 2+3?\n</question>\n\nThe answer is 5."
    completions = [boxless, challenger_completion(OTHER), challenger_completion(NEAR_1)]
    p_hats = [0.5, 0.5, 0.5]
    code = ChallengerSettings(reward="code")
    assert challenger_rewards(completions, p_hats, code, "reference")[0] == pytest.approx(0.5 - 1 / 3)
    assert challenger_rewards(completions, p_hats, code, "boxed-only")[0] == pytest.approx(-1 - 1 / 3)
    assert challenger_rewards(completions, p_hats, ChallengerSettings(), "boxed-only")[0] == 0.0


@pytest.mark.parametrize(
    ("pass_rate", "expected"),
    [
        # exp(-(p(1-p) - 1/4)^2 / 0.02): the variance of a pass rate peaks at p = 1/2 (SPICE's Gaussian, sigma^2 0.01)
        (0.5, 1.0),
        (0.0, 0.04393693362340742),  # exp(-(0 - 0.25)^2 / 0.02) = exp(-3.125)
        (1.0, 0.04393693362340742),
        (0.2, 0.6669768108584746),  # variance 0.16: exp(-0.0081 / 0.02) = exp(-0.405)
        (0.8, 0.6669768108584746),
        (0.3, 0.9231163463866358),  # variance 0.21: exp(-0.0016 / 0.02) = exp(-0.08)
    ],
)
def test_variance_reward_is_a_gaussian_of_the_pass_rate_variance(pass_rate, expected):
    assert variance_reward(pass_rate) == pytest.approx(expected, abs=1e-12)


def test_variance_reward_refuses_bad_input():
    with pytest.raises(ValueError):
        variance_reward(1.5)


def test_the_grounded_format_needs_a_question_and_a_document_answer():
    assert grounded_pair("<question> Q? </question> \\boxed{ 42 }") == ("Q?", "42")
    assert grounded_pair("<question>Q?</question> no box") is None
    assert grounded_pair("<question>Q?</question> \\boxed{}") is None
    assert grounded_pair("<question>  </question> \\boxed{3}") is None
    assert grounded_pair("<question>Q?</question> \\boxed{None}", "boxed-only") is None


def test_variance_objective_rewards_pass_rates_minus_the_repetition_penalty():
    """Four distinct grounded questions (r_rep 1/4 each) with pass rates 1/2, 0, 0.2 and one without a document
    answer (invalid)."""
    distinct = "Which standard module parses command line options into a namespace ?"
    batch = [challenger_completion(q, a) for q, a in ((NEAR_1, "8"), (OTHER, "3"), (distinct, "argparse"))]
    batch.append(f"<question>{NEAR_2}</question> and no answer")
    paper = ChallengerSettings(objective="variance")
    code = ChallengerSettings(objective="variance", reward="code")

    rewards = challenger_rewards(batch, [0.5, 0.0, 0.2, None], paper, grounded=True)
    unclamped = challenger_rewards(batch, [0.5, 0.0, 0.2, None], code, grounded=True)

    assert rewards == pytest.approx([1.0 - 0.25, 0.0, 0.6669768108584746 - 0.25, 0.0])
    assert unclamped == pytest.approx([1.0 - 0.25, 0.04393693362340742 - 0.25, 0.6669768108584746 - 0.25, -1.25])
    with pytest.raises(ValueError, match="grounded"):
        challenger_rewards(batch, [0.5, 0.0, 0.2, None], paper)


def test_the_grounded_format_rule_applies_to_the_uncertainty_objective_too():
    """In reference mode an output without a box is scored (answer "None"); grounded, it is not: the document
    answer is part of the format."""
    batch = [challenger_completion(NEAR_1), f"<question>{OTHER}</question> no box"]
    assert challenger_rewards(batch, [0.5, 0.5], ChallengerSettings()) == pytest.approx([0.5, 0.5])
    assert challenger_rewards(batch, [0.5, 0.5], ChallengerSettings(), grounded=True) == pytest.approx([0.5, 0.0])
