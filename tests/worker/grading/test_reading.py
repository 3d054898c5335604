r"""The run's reading of model outputs: reference mode reads as the reference's own functions do (checked by
running mathruler 0.1.0's `extract_boxed_content` and the reference's regexes on the same inputs)."""

import random
import re

import pytest
from mathruler.grader import extract_boxed_content

from rzero_worker.grading.reading import Reading, reference_boxed, reference_boxes, without_space_around_tags

REFERENCE, BOXED_ONLY = Reading("reference"), Reading("boxed-only")

CASES = [
    "so \\boxed{12}.", "no box here", "", "\\boxed{}", "\\boxed{ 7 }", "\\fbox{12}", "\\boxed {12}", "$\\boxed 5$",
    "\\boxed{1} then \\boxed{2", "\\boxed{\\frac{1}{2}}", "\\boxed{\\{1, 2\\}}", "\\boxed{\\boxed{3}}",
    "\\boxed{a}\\boxed{b}", "\\boxed{x}}}", "\\boxed{{}", "\\boxed{None}",
]


def random_text(rng: random.Random) -> str:
    pieces = ["\\boxed{", "\\boxed", "{", "}", "\\{", "\\}", " ", "1", "x", "\\frac{1}{2}", "\\fbox{", "<", "/", ">", "\n"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))


def test_the_reference_extractor_is_mathrulers_on_hand_made_and_random_texts():
    rng = random.Random(0)
    for text in CASES + [random_text(rng) for _ in range(3000)]:
        assert reference_boxed(text) == extract_boxed_content(text), text


def question_generate_boxes(text):
    """The reference's `question_generate.py:13-35`, written out here for the comparison."""
    results, i = [], 0
    while (start := text.find("\\boxed{", i)) != -1:
        j, depth = start + 7, 1
        while j < len(text) and depth:
            depth += 1 if text[j] == "{" else -1 if text[j] == "}" else 0
            j += 1
        results.append(text[start + 7 : j - 1])
        i = j
    return results


def test_the_generation_scan_finds_the_boxes_the_reference_question_generation_finds():
    rng = random.Random(1)
    for text in CASES + [random_text(rng) for _ in range(3000)]:
        assert reference_boxes(text) == question_generate_boxes(text), text


def test_the_whitespace_rewrite_is_the_reference_rewards_and_stays_linear():
    rng = random.Random(2)
    for text in [random_text(rng) for _ in range(3000)] + [" <think>t</think> $\\boxed{12}$", "a / / b", "  <  "]:
        assert without_space_around_tags(text) == re.sub(r"\s*(<|>|/)\s*", r"\1", text), text
    assert without_space_around_tags(" " * 200_000 + "x") == " " * 200_000 + "x"  # the regex takes minutes here


@pytest.mark.parametrize(
    ("text", "reference", "boxed_only"),
    [
        ("the answer is \\boxed{12}", "12", "12"),
        ("$\\fbox{12}$", "None", "12"),
        ("\\boxed {12}", "None", "12"),
        ("$\\boxed 5$", "None", "5"),
        ("The answer is 5.", "None", None),
        ("\\boxed{1} and a truncated \\boxed{2", "None", None),
        ("\\boxed{}", "", ""),
    ],
)
def test_each_mode_reads_one_answer_per_output(text, reference, boxed_only):
    assert REFERENCE.answer(text) == reference
    assert BOXED_ONLY.answer(text) == boxed_only


@pytest.mark.parametrize(
    ("text", "reference", "boxed_only"),
    [
        # the reference scores a Challenger output without a box (mathruler reads "None", which is truthy) ...
        ("<question>\nWhat is 2+3?\n</question>\n\nThe answer is 5.", "What is 2+3?", None),
        ("<question>What is 2+3?</question> \\boxed{5}", "What is 2+3?", "What is 2+3?"),
        # ... but not one with an empty box, nor a blank question
        ("<question>What is 2+3?</question> \\boxed{}", None, None),
        ("<question>   </question> \\boxed{5}", None, None),
        ("What is 2+3? \\boxed{5}", None, None),
    ],
)
def test_which_challenger_outputs_are_scored_in_training(text, reference, boxed_only):
    assert REFERENCE.challenger_question(text) == reference
    assert BOXED_ONLY.challenger_question(text) == boxed_only


def test_the_format_check_ignores_whitespace_around_tags_only_in_reference_mode():
    text = " <think>t</think> $\\boxed{12}$"
    assert REFERENCE.format_ok(text) and not BOXED_ONLY.format_ok(text)
    assert REFERENCE.format_ok("<think>t</think> \\boxed{1}") and BOXED_ONLY.format_ok("<think>t</think> \\boxed{1}")


def test_a_boxed_answer_is_one_the_reading_finds():
    assert REFERENCE.has_answer("\\boxed{3}") and not REFERENCE.has_answer("3") and not REFERENCE.has_answer("\\boxed{}")
    assert BOXED_ONLY.has_answer("\\fbox{3}") and not BOXED_ONLY.has_answer("\\boxed{none}")


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="reading mode"):
        Reading("loose")
