r"""Extraction and normalisation of answers: the last \boxed{}, the Challenger's question, canonical strings."""

from fractions import Fraction

import pytest

from rzero_worker.grading import (
    extract_boxed,
    is_empty_answer,
    normalize_answer,
    numeric_value,
    parse_challenger_output,
)


def test_extract_boxed_handles_nested_braces():
    assert extract_boxed(r"so the answer is \boxed{\frac{1}{2}}.") == r"\frac{1}{2}"
    assert extract_boxed(r"\boxed{ {a}^{ {2} } }") == "{a}^{ {2} }"


def test_extract_boxed_takes_the_last_of_several_boxes():
    assert extract_boxed(r"first \boxed{3}, then \boxed{4}, finally \fbox{5} and \boxed{6}") == "6"
    assert extract_boxed(r"\boxed{6} then \fbox{7}") == "7"


def test_extract_boxed_accepts_the_braceless_form():
    assert extract_boxed(r"$\boxed 42$ done") == "42"


def test_extract_boxed_returns_none_without_a_complete_last_box():
    assert extract_boxed("no box here") is None
    assert extract_boxed("") is None
    assert extract_boxed(None) is None
    assert extract_boxed(r"\boxed{1} and a truncated \boxed{2") is None
    assert extract_boxed(r"\boxedfoo{3}") is None


def test_extract_boxed_ignores_escaped_braces():
    assert extract_boxed(r"\boxed{\{1, 2\}}") == r"\{1, 2\}"


def test_parse_challenger_output_takes_the_last_question_and_last_box():
    text = "<question>draft</question> ... <question>\n What is 2+3? \n</question> answer \\boxed{4} \\boxed{5}"
    assert parse_challenger_output(text) == ("What is 2+3?", "5")


def test_parse_challenger_output_without_tags_or_box():
    assert parse_challenger_output("What is 2+3? \\boxed{5}") == (None, "5")
    assert parse_challenger_output("<question>What is 2+3?</question>") == ("What is 2+3?", None)
    assert parse_challenger_output("<question>   </question>\\boxed{1}") == (None, "1")
    assert parse_challenger_output(None) == (None, None)


@pytest.mark.parametrize("answer", [None, "", "   ", "None", "none", "$None$", "null"])
def test_empty_answers_are_recognised(answer):
    assert is_empty_answer(answer)
    assert normalize_answer(answer) == ""


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  42. ", "42"),
        ("$42$", "42"),
        (r"\$18", "18"),
        (r"\dfrac{1}{2}", r"\frac{1}{2}"),
        (r"\tfrac{1}{2}", r"\frac{1}{2}"),
        (r"\left( 1, 2 \right)", "(1,2)"),
        (r"3\!\cdot\,4", r"3\cdot4"),
        (r"18 \text{ dollars}", "18"),
        (r"5\mbox{cm}", "5"),
        (r"\text{Monday}", "Monday"),
        (r"90^\circ", "90"),
        (r"90^{\circ}", "90"),
        ("x = 3", "3"),
        ("1,000", "1000"),
        ("1{,}000", "1000"),
        (r"\pi r^2", r"\pi r^2"),
        (r"50\%", r"50\%"),
    ],
)
def test_normalize_answer_rules(raw, expected):
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize("raw", [r"\dfrac{1}{2}", r"18 \text{ dollars}", "x = 3", r"\left( 1, 2 \right)", "1,000"])
def test_normalize_answer_is_idempotent(raw):
    once = normalize_answer(raw)
    assert normalize_answer(once) == once


def test_numeric_value_of_plain_numbers():
    assert numeric_value("18") == 18
    assert numeric_value("-0.5") == Fraction(-1, 2)
    assert numeric_value("3/4") == Fraction(3, 4)
    assert numeric_value(r"-\frac{3}{4}") == Fraction(-3, 4)
    assert numeric_value("1/0") is None
    assert numeric_value("x") is None
    assert numeric_value(r"\sqrt{2}") is None
