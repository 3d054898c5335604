r"""Reading the open-ended judge: `criterion: score` entries in the last box, 1..10, every criterion once; anything
else is unparsable (None), never a score. Pairwise verdicts: \boxed{A}, \boxed{B} or \boxed{tie}."""

import pytest

from rzero_worker.grading.scores import normalised_score, parse_preference, parse_scores

CRITERIA = ("clarity", "accuracy")


@pytest.mark.parametrize(("text", "expected"), [
    (r"Good. \boxed{clarity: 7; accuracy: 4}", {"clarity": 7, "accuracy": 4}),
    ("\\boxed{\nClarity: 10\n  ACCURACY : 1\n}", {"clarity": 10, "accuracy": 1}),  # lines, case, spaces
    (r"\boxed{clarity: 7/10; accuracy = 4.}", {"clarity": 7, "accuracy": 4}),  # '/10', '=' and a full stop
    (r"\boxed{clarity: 2; accuracy: 2} then \boxed{clarity: 9; accuracy: 8}", {"clarity": 9, "accuracy": 8}),  # last
])
def test_scores_are_read_from_the_last_box(text, expected):
    assert parse_scores(text, CRITERIA) == expected


@pytest.mark.parametrize("text", [
    None, "", "clarity: 7; accuracy: 4",  # no box
    r"\boxed{clarity: 7; accuracy: 4",  # unclosed
    r"\boxed{clarity: 7}",  # a criterion missing
    r"\boxed{clarity: 7; accuracy: 4; style: 5}",  # an unknown criterion
    r"\boxed{clarity: 7; clarity: 8; accuracy: 4}",  # repeated
    r"\boxed{clarity: 11; accuracy: 4}", r"\boxed{clarity: 0; accuracy: 4}",  # outside 1..10
    r"\boxed{clarity: 7.5; accuracy: 4}", r"\boxed{clarity: seven; accuracy: 4}",  # not an integer
    r"\boxed{clarity 7; accuracy 4}", r"\boxed{10}", r"\boxed{}",  # not `name: score`
])
def test_anything_else_is_unparsable_and_never_a_score(text):
    assert parse_scores(text, CRITERIA) is None
    assert normalised_score(parse_scores(text, CRITERIA)) is None


def test_the_normalised_score_maps_one_to_ten_onto_zero_to_one():
    assert normalised_score({"a": 1, "b": 1}) == 0.0
    assert normalised_score({"a": 10, "b": 10}) == 1.0
    assert normalised_score({"a": 4, "b": 7}) == pytest.approx(4.5 / 9)


@pytest.mark.parametrize(("text", "expected"), [
    (r"A is clearer. \boxed{A}", "A"), (r"\boxed{b}", "B"), (r"\boxed{\text{Tie}}", "tie"), (r"\boxed{B.}", "B"),
    (r"\boxed{A} no wait \boxed{B}", "B"), ("A", None), (r"\boxed{both}", None), (r"\boxed{A and B}", None), (None, None),
])
def test_pairwise_preferences(text, expected):
    assert parse_preference(text) == expected
