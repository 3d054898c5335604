r"""mathruler 0.1.0's `grade_answer` split in two: what it computes of each answer alone (its `Form`, in a worker
process) and what it then does with two forms (here, in the parent, in microseconds).

`grade_answer(given, truth)` normalises both answers twice (`math_normalize.normalize_answer`, then
`grader._normalize`, which runs pylatexenc on LaTeX), splits the second normal form into tuple elements, and
decides by string comparisons, except where two elements reach `are_equal_under_sympy`, which parses and
simplifies with sympy (milliseconds, and the place a power tower hangs). The normal forms depend on one answer
only, so a vote needs them once per distinct answer rather than twice per comparison: the worker computes
`form_of` with mathruler's own functions, and `directed` below follows `grade_answer`'s branches on them,
returning None exactly where `grade_answer` would call sympy on elements whose outcome the forms do not
settle. Two sympy calls are settled here: two canonical integers of at most 15 digits (`-?[1-9][0-9]*` or `0`),
whose difference sympy simplifies to 0 iff they are the same string; and a pair that `should_allow_eval` refuses
(more than two distinct letters, once `sqrt` and `frac` are removed, or a `^{`, `^(`, `^12`, `^1^`), which is
unequal without sympy. `should_allow_eval` sees `(truth)-(given)`; no letter run, `^{`, `^(` or `^` digit run
can span `)-(`, so its verdict follows from each element's letters and bad spots, computed once. tests/worker/grading/test_ruler.py checks
`directed` against `grade_answer` itself on bench/grading.py's answer sets and on hand-made cases.
"""

from __future__ import annotations

import re

# An element of split_tuple(_normalize(x)): (element, _is_frac, _str_is_int, its letters without sqrt and frac,
# has one of BAD_SUBSTRINGS or BAD_REGEXES).
Element = tuple[str, bool, bool, frozenset, bool]
Form = tuple[str, str, tuple[Element, ...]]  # (normalize_answer(x), _normalize(x), its elements)
_CANONICAL_INTEGER = re.compile(r"-?[1-9][0-9]{0,14}|0")


def form_of(answer: str) -> Form:
    """mathruler's normal forms of one answer (call in a worker: imports mathruler, hence sympy). Raises what
    mathruler raises."""
    from mathruler import grader
    from mathruler.math_normalize import normalize_answer

    def element(text: str) -> Element:
        letters = frozenset(char for char in text.replace("sqrt", "").replace("frac", "") if char.isalpha())
        bad = any(spot in text for spot in grader.BAD_SUBSTRINGS) or any(
            re.search(pattern, text) for pattern in grader.BAD_REGEXES)
        return text, grader._is_frac(text), grader._str_is_int(text), letters, bad

    normal = grader._normalize(answer)
    return normalize_answer(answer), normal, tuple(element(text) for text in grader.split_tuple(normal))


def integer_form(answer: str) -> Form | None:
    """The form of a canonical integer of at most 15 digits, without mathruler: both normalisations leave it
    as it is (no character they rewrite; float() holds 15 digits exactly), it is one element, no fraction
    (no '/'), an integer. None for anything else."""
    if not _CANONICAL_INTEGER.fullmatch(answer):
        return None
    return answer, answer, ((answer, False, True, frozenset(), False),)


def directed(given: Form, truth: Form) -> bool | None:
    """`grade_answer(given, truth)` from the two forms; None where it would need sympy."""
    if truth[0] == given[0] or truth[1] == given[1]:
        return True
    given_normal, truth_normal = given[1], truth[1]
    if not given_normal:
        return False
    if len(truth[2]) > 1 and (truth_normal[0] != given_normal[0] or truth_normal[-1] != given_normal[-1]):
        return False
    if len(truth[2]) != len(given[2]):
        return False
    for (truth_text, truth_frac, truth_int, truth_letters, truth_bad), (given_text, given_frac, given_int,
                                                                      given_letters, given_bad) in zip(truth[2], given[2]):
        if truth_frac and given_frac:
            same = truth_text == given_text  # mathruler: unreduced fractions must match as written
        elif truth_int != given_int:
            same = False  # mathruler: an integer needs an integer
        elif truth_bad or given_bad or len(truth_letters | given_letters) > 2:
            same = False  # should_allow_eval refuses: are_equal_under_sympy is False
        elif _CANONICAL_INTEGER.fullmatch(truth_text) and _CANONICAL_INTEGER.fullmatch(given_text):
            same = truth_text == given_text  # what sympy says of their difference
        else:
            return None
        if not same:
            return False
    return True


def undirected(a: Form, b: Form) -> bool | None:
    """Does either order pass (the vote's relation)? None where the answer needs sympy."""
    first = directed(a, b)
    if first:
        return True
    second = directed(b, a)
    if second:
        return True
    return False if first is False and second is False else None
