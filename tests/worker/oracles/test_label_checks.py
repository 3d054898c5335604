"""Label accuracy against an oracle: checked questions only, math equivalence, a 95% interval."""

import pytest

from rzero_worker.oracles import ArithmeticOracle
from rzero_worker.oracles.checks import check_labels


def test_labels_are_checked_where_the_oracle_answers(pool):
    rows = [
        {"question": "What is 2 + 3 * 4?", "label": "14"},  # right
        {"question": "What is 7 / 2?", "label": "3.5"},  # right: 7/2 in another notation
        {"question": "What is 10 - 12?", "label": "2"},  # wrong: -2
        {"question": "How many legs has a spider?", "label": "8"},  # not arithmetic: not checked
    ]

    check = check_labels(rows, ArithmeticOracle(), pool)

    assert (check.checked, check.correct) == (3, 2)
    assert check.verdicts == [True, True, False, None]
    assert check.answers == ["14", "7/2", "-2", None]
    metrics = check.metrics()
    assert metrics["oracle"] == "arithmetic" and metrics["oracle_checked"] == 3
    assert metrics["label_accuracy"] == pytest.approx(2 / 3)
    low, high = metrics["label_accuracy_ci95"]
    assert 0.2 < low < 2 / 3 < high < 1.0  # Wilson interval of 2/3


def test_nothing_checkable_gives_no_accuracy(pool):
    check = check_labels([{"question": "Name a colour.", "label": "red"}], ArithmeticOracle(), pool)
    assert check.metrics() == {"oracle": "arithmetic", "oracle_checked": 0, "oracle_correct": 0, "label_accuracy": None,
                               "label_accuracy_ci95": None}
