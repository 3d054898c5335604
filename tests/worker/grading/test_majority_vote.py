"""Majority vote over math-equivalence classes, and grading against gold answers."""

import pytest

from rzero_worker.grading import grade, majority_vote, vote_many


def test_equivalent_notations_form_one_class(grading_pool):
    answers = ["0.5", r"\frac{1}{2}", "1/2", "3", "3", r"\dfrac{1}{2}", None, "None", "7", ""]
    vote = majority_vote(answers, grading_pool, "boxed-only")
    assert vote.label == "0.5"
    assert vote.classes == [("0.5", 4), ("3", 2), ("7", 1)]
    assert vote.score == pytest.approx(4 / 10)  # over all m samples, empty ones included
    assert vote.valid == 7
    assert vote.share_of_valid == pytest.approx(4 / 7)
    assert vote.samples == 10 and vote.ungradable == 0


def test_the_reference_vote_puts_unboxed_answers_in_one_class_none(grading_pool):
    """As the reference's extractor returns "None" without a box: a class that counts (empty boxes do not)."""
    answers = ["0.5", r"\frac{1}{2}", "1/2", "3", "3", r"\dfrac{1}{2}", None, "None", "7", ""]
    vote = majority_vote(answers, grading_pool, "reference")
    assert vote.classes == [("0.5", 4), ("3", 2), ("None", 2), ("7", 1)]
    assert (vote.valid, vote.share_of_valid, vote.score) == (9, pytest.approx(4 / 9), pytest.approx(4 / 10))

    unboxed = majority_vote(["5"] * 4 + [None] * 6, grading_pool, "reference")
    assert unboxed.label is None and unboxed.majority_none and unboxed.score == pytest.approx(0.6)
    assert unboxed.classes == [("None", 6), ("5", 4)]


def test_symbolic_equivalence_merges_classes(grading_pool):
    vote = majority_vote([r"2\sqrt{2}", "5", r"\sqrt{8}", r"\sqrt{2}\cdot 2", "5"], grading_pool)
    assert vote.classes == [(r"2\sqrt{2}", 3), ("5", 2)]


def test_ties_go_to_the_class_seen_first(grading_pool):
    assert majority_vote(["4", "3", "3", "4"], grading_pool).label == "4"
    assert majority_vote(["3", "4", "4", "3"], grading_pool).label == "3"
    assert majority_vote(["9", "1", "2", "2", "1"], grading_pool).label == "1"
    # same answers, same order: same result every time
    votes = {majority_vote([r"\pi", "3", r"\pi", "3", "x"], grading_pool).label for _ in range(3)}
    assert votes == {r"\pi"}


def test_empty_answers_never_form_the_label_when_only_boxed_answers_vote(grading_pool):
    vote = majority_vote([None, "None", "", "none", "12"], grading_pool, "boxed-only")
    assert vote.label == "12" and vote.score == pytest.approx(0.2) and vote.valid == 1
    nothing = majority_vote([None, "None", ""], grading_pool, "boxed-only")
    assert nothing.label is None and nothing.score == 0.0 and nothing.classes == [] and nothing.valid == 0
    assert not nothing.majority_none


def test_vote_many_matches_one_by_one_votes(grading_pool):
    answer_lists = [
        ["1/2", "0.5", "2"],
        [r"\sqrt{4}", "2", "3", "3", "3"],
        [None, None],
        [r"x^2", r"x \cdot x", "y"],
    ]
    many = vote_many(answer_lists, grading_pool, "boxed-only")
    assert many == [majority_vote(answers, grading_pool, "boxed-only") for answers in answer_lists]
    reference = vote_many(answer_lists, grading_pool, "reference")
    assert reference == [majority_vote(answers, grading_pool, "reference") for answers in answer_lists]
    assert reference[2].majority_none and reference[2].score == 1.0  # two unboxed answers: "None" 2/2
    assert [vote.label for vote in many] == ["1/2", "3", None, "x^2"]
    assert [vote.score for vote in many] == pytest.approx([2 / 3, 3 / 5, 0.0, 2 / 3])


def test_undecidable_answers_are_counted_and_never_merged():
    from rzero_worker.grading import GradingPool

    hang = r"\dfrac{5^{5^{5^{5^5}}}}{5^{5^{5^5}}}"
    with GradingPool(workers=1, timeout_s=1.0) as pool:
        vote = majority_vote(["5", hang, hang, "5", "5"], pool)
    assert vote.label == "5" and vote.score == pytest.approx(3 / 5)
    assert vote.classes == [("5", 3), (hang, 2)]
    assert vote.ungradable == 2  # the hang input is blamed for the timeout, not "5"


def test_grade_reads_gold_first_and_counts_missing_predictions_wrong(grading_pool):
    predictions = ["0.5", "3", None, r"\frac{\sqrt{2}}{2}"]
    golds = [r"\frac{1}{2}", "4", "7", r"\sqrt{2}/2"]
    assert grade(predictions, golds, grading_pool) == [True, False, False, True]


def test_grade_refuses_mismatched_lengths(grading_pool):
    with pytest.raises(ValueError, match="golds"):
        grade(["1"], ["1", "2"], grading_pool)
