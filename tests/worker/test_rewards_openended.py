"""Open-ended rewards: the Solver's is the Verifier's normalised score (0 when unreadable); the Challenger's is the
spread of its task's scores (normalised standard deviation) minus R-Zero's repetition penalty (values by hand)."""

import pytest

from rzero_worker.rewards_openended import open_challenger_rewards, open_solver_rewards, score_spread
from rzero_worker.task import ChallengerSettings

POEM = "Write a haiku about the sea at night"
EMAIL = "Draft a polite email asking a landlord to fix the heating"
RECIPE = "Give a recipe for a vegetarian lasagne for four people"


def test_the_spread_is_the_standard_deviation_over_its_largest_value():
    assert score_spread([0.0, 1.0]) == 1.0  # half at the bottom, half at the top: saturated
    assert score_spread([0.5, 0.5, 0.5]) == 0.0  # collapse
    assert score_spread([0.0, 0.5]) == pytest.approx(0.5)  # std 0.25 / 0.5
    assert score_spread([0.2, None, 0.6, None]) == pytest.approx(0.4)  # unreadable scores do not count
    assert score_spread([0.7, None]) is None and score_spread([]) is None  # fewer than two: no spread


@pytest.mark.parametrize(("formula", "expected"), [
    # three different tasks: singleton clusters, r_rep = 1/4 each (B = 4 completions)
    ("paper", [1.0 - 0.25, 0.0, 0.5 - 0.25, 0.0]),  # max(0, spread - r_rep); no task / no spread: 0
    ("code", [1.0 - 0.25, 0.0 - 0.25, 0.5 - 0.25, -1.0 - 0.25]),  # spread - r_rep; invalid: -1 - r_rep
])
def test_challenger_rewards_on_a_hand_made_batch(formula, expected):
    settings = ChallengerSettings(reward=formula)
    rewards = open_challenger_rewards([POEM, EMAIL, RECIPE, None], [1.0, 0.0, 0.5, None], settings)
    assert rewards == pytest.approx(expected)


def test_repeated_tasks_share_their_clusters_penalty():
    settings = ChallengerSettings()
    rewards = open_challenger_rewards([POEM, POEM, EMAIL, RECIPE], [0.8, 0.8, 0.8, 0.8], settings)
    assert rewards == pytest.approx([0.8 - 0.5, 0.8 - 0.5, 0.8 - 0.25, 0.8 - 0.25])


def test_a_task_without_a_spread_counts_as_invalid():
    assert open_challenger_rewards([POEM, EMAIL], [None, 0.6], ChallengerSettings()) == pytest.approx([0.0, 0.1])


def test_the_solver_reward_is_the_score_and_zero_when_unreadable():
    assert open_solver_rewards([0.25, None, 1.0]) == [0.25, 0.0, 1.0]


def test_batches_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="2 tasks but 1 spreads"):
        open_challenger_rewards([POEM, EMAIL], [0.5], ChallengerSettings())
