r"""The Verifier's verdict: the last complete \boxed{correct} or \boxed{incorrect}; anything else is unparsable
(None), and unparsable is never approval."""

import pytest

from rzero_worker.grading import parse_verdict
from rzero_worker.verifier import verdict_of


@pytest.mark.parametrize("text", [
    r"2+2 is 4, as proposed. \boxed{correct}",
    r"\boxed{ Correct. }",
    r"\boxed{\text{correct}}",
    r"At first \boxed{incorrect}, but checking again: \boxed{correct}",  # the last box counts
])
def test_a_correct_verdict_approves(text):
    assert parse_verdict(text) is True and verdict_of(text) == "approved"


@pytest.mark.parametrize("text", [r"It is 5, not 4. \boxed{incorrect}", r"\boxed{\textbf{INCORRECT}}"])
def test_an_incorrect_verdict_rejects(text):
    assert parse_verdict(text) is False and verdict_of(text) == "rejected"


@pytest.mark.parametrize("text", [
    "",
    "correct",  # no box
    r"The answer is \boxed{4}",  # its own answer instead of a verdict
    r"\boxed{yes}",
    r"\boxed{correct or incorrect}",
    r"\boxed{correct",  # never closed
    r"\boxed{}",
    r"\boxed{not correct}",
    r"\boxed{correct} \boxed{maybe}",  # the last box is no verdict
    "\x00\xff" * 50,
])
def test_anything_else_is_unparsable_and_never_approval(text):
    assert parse_verdict(text) is None
    assert verdict_of(text) == "unparsable"


def test_no_output_at_all_is_unavailable():
    assert parse_verdict(None) is None and verdict_of(None) == "unavailable"
