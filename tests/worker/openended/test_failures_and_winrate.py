"""Judge-failure figures (length bias, score collapse) and the win-rate bookkeeping (both orders, ties, position)."""

import math

import pytest

from rzero_worker.openended.failures import add_moments, judge_report, length_moments, pearson_from_moments
from rzero_worker.openended.judge import Judgement
from rzero_worker.openended.winrate import comparison, win_counts


def judged(score):
    return Judgement(output="x" if score is not None else None, scores={"o": 1} if score is not None else None,
                     score=score)


def test_length_bias_is_pearsons_r_and_adds_up_over_shards():
    lengths, scores = [1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.35, 0.4]
    whole = pearson_from_moments(length_moments(lengths, scores))
    split = pearson_from_moments(add_moments([length_moments(lengths[:2], scores[:2]),
                                              length_moments(lengths[2:], scores[2:])]))
    mx, my = sum(lengths) / 4, sum(scores) / 4
    cov = sum((x - mx) * (y - my) for x, y in zip(lengths, scores))
    expected = cov / math.sqrt(sum((x - mx) ** 2 for x in lengths) * sum((y - my) ** 2 for y in scores))
    assert whole == pytest.approx(expected) and split == pytest.approx(expected)
    assert pearson_from_moments(length_moments([1.0, 2.0], [0.1, 0.2])) is None  # fewer than three pairs
    assert pearson_from_moments(length_moments([1.0, 2.0, 3.0], [0.5, 0.5, 0.5])) is None  # no variance


def test_the_report_counts_collapsed_tasks_and_unreadable_judgements():
    groups = [(["a", "bb"], [judged(0.5), judged(0.5)]),  # collapsed
              (["a", "bbb", "c"], [judged(0.1), judged(0.9), judged(None)]),  # spread; one unavailable
              (["a", "b"], [judged(0.3), judged(None)])]  # one scored: not a scored task
    report = judge_report(groups)
    assert report["judged"] == 7 and report["scored"] == 5 and report["unavailable"] == 2
    assert report["tasks_scored"] == 2 and report["tasks_collapsed"] == 1 and report["score_collapse"] == 0.5
    assert report["mean_score"] == pytest.approx(2.3 / 5)


@pytest.mark.parametrize(("forward", "backward", "outcome"), [
    ("A", "B", "win"),  # the current Solver preferred in both orders
    ("B", "A", "loss"),
    ("A", "A", "tie"),  # the first response won both times: the order decided
    ("tie", "B", "win"), ("tie", "tie", "tie"), (None, "A", "loss"), (None, None, "unjudged"),
])
def test_each_task_is_judged_in_both_orders(forward, backward, outcome):
    row = comparison("t", "current", "base", (forward, "out1"), (backward, "out2"))
    assert row["outcome"] == outcome


def test_win_counts_report_position_bias():
    rows = [comparison("t", "c", "b", (f, None), (r, None))
            for f, r in [("A", "B"), ("A", "A"), ("B", "A"), (None, "tie")]]
    counts = win_counts(rows)
    assert (counts["wins"], counts["losses"], counts["ties"], counts["unjudged"]) == (1, 1, 2, 0)
    assert counts["decided"] == 6 and counts["first_chosen"] == 4 and counts["order_decided"] == 1
    assert counts["unparsable"] == 1 and counts["tie_verdicts"] == 1
