r"""mathruler's `grade_answer` split into per-answer forms and a pairwise decision (grading/ruler.py): wherever
the split decides without sympy it says what `grade_answer` itself says, on the GSM8K-derived answer sets of
bench/grading.py and on hand-made cases; the pool decides every such pair without a worker call."""

import random
import sys
from itertools import permutations
from pathlib import Path

import pytest
from mathruler.grader import grade_answer

from rzero_worker.grading import GradingPool, Reading, vote_many
from rzero_worker.grading.ruler import directed, form_of, integer_form, undirected

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from support.gsm8k_answers import notation_set, random_golds, realistic_set  # noqa: E402

READING = Reading("reference")
HAND_MADE = [
    "Even", "even", "EVEN", "5", "05", "-5", "\\sqrt{25}", "\\frac{2}{4}", "\\frac{1}{2}", "1/2", "0.5", ".5", "2/4",
    "None", "none", "no solution", "(1,2)", "(1, 2)", "[1,2]", "(2,1)", "1,000", "1000", "1,2", "x^{2}", "x^2",
    "x**2", "2^{10}", "1024", "2^10", "18 \\text{ dollars}", "\\$18", "18", "18.0", "18.00", "18\\%", "x = 18",
    "k=3", "3", "\\dfrac{9}{2}", "4.5", "4.50", "9/2", "4\\frac{1}{2}", "4 1/2", "\\pi", "pi", "3.14159", "1e3",
    "1000.0", "\\infty", "inf", "-\\infty", "a+b", "b+a", "abc", "x+y+z", "\\sqrt{8}", "2\\sqrt{2}", "\\text{(A)}",
    "A", "(A)", "", " ", "{}", "{5}", "\\left(1,2\\right)", "10^6", "1 million", "1000000", "45^\\circ", "45",
    "5 cm", "5 meters", "5", "0", "-0", "0.0", "1.5e1", "15", "\\frac{3}{6}",
]


def sets_of_answers():
    """(set name, the distinct answers of one question)."""
    golds = random_golds(150, seed=1)
    for build in (realistic_set, notation_set):
        outputs, _ = build(golds, 10, seed=2)
        for question in outputs:
            yield build.__name__, sorted({READING.answer(output) for output in question} - {""})
    yield "hand-made", HAND_MADE


def test_the_forms_decide_as_grade_answer_does_wherever_they_decide():
    checked, decided = {}, {}
    forms = {}
    for name, answers in sets_of_answers():
        for answer in answers:
            forms.setdefault(answer, form_of(answer))
        for given, truth in permutations(answers, 2):
            verdict = directed(forms[given], forms[truth])
            checked[name] = checked.get(name, 0) + 1
            if verdict is not None:
                decided[name] = decided.get(name, 0) + 1
                assert verdict == grade_answer(given, truth), (given, truth)
    assert sum(checked.values()) > 10_000
    # sympy is left for the pairs that need it: few in what models write, more in the stress set
    assert decided["realistic_set"] / checked["realistic_set"] > 0.97
    assert decided["notation_set"] / checked["notation_set"] > 0.75


def test_a_canonical_integers_form_is_mathrulers_form():
    rng = random.Random(0)
    integers = ["0", "-1", "7", "999999999999999", "-999999999999999"] + [str(rng.randint(-10**9, 10**12)) for _ in range(300)]
    for integer in integers:
        assert integer_form(integer) == form_of(integer)
    for other in ["007", "-0", "1e5", "1000000000000000", "1,000", "+5", " 5", "5.0", "x"]:
        assert integer_form(other) is None


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("18", "\\$18", True),  # equal once mathd-normalised
    ("17", "18 \\text{ dollars}", False),  # an integer needs an integer
    ("None", "\\frac{9}{2}", False),  # n, o, e: should_allow_eval refuses sympy
    ("\\frac{2}{4}", "\\frac{1}{2}", False),  # unreduced fractions must match as written
    ("17.00", "18", False),  # two canonical integers once normalised
    ("4.5", "\\frac{9}{2}", None),  # sympy's call
])
def test_what_the_forms_settle(a, b, expected):
    assert undirected(form_of(a), form_of(b)) is expected
    if expected is not None:
        assert expected == (grade_answer(a, b) or grade_answer(b, a))


@pytest.fixture(scope="module")
def ruler():
    with GradingPool(workers=1, timeout_s=21.0, soft_timeout_s=10.0, checker="mathruler") as pool:
        yield pool


def test_the_pool_asks_a_worker_only_for_forms_and_sympy(ruler):
    pairs = [(a, b) for a, b in permutations(HAND_MADE, 2) if a.strip() and b.strip()][::7]
    before_items, before_forms = ruler.stats.checker_calls, ruler.stats.forms
    assert ruler.equivalent(pairs) == [grade_answer(a, b) or grade_answer(b, a) for a, b in pairs]
    forms = {answer: form_of(answer) for pair in pairs for answer in pair}
    sympy_pairs = {tuple(sorted(pair)) for pair in pairs if pair[0] != pair[1] and undirected(*map(forms.get, pair)) is None}
    assert ruler.stats.forms - before_forms == len({a for a in forms if integer_form(a) is None})
    assert ruler.stats.checker_calls - before_items == ruler.stats.forms - before_forms + len(sympy_pairs)


def test_votes_on_the_realistic_set_need_few_sympy_calls(ruler):
    outputs, _ = realistic_set(random_golds(100, seed=3), 10, seed=4)
    before = ruler.stats.checker_calls - ruler.stats.forms
    votes = vote_many([[READING.answer(output) for output in question] for question in outputs], ruler, "reference")
    assert len(votes) == 100 and all(vote.classes for vote in votes)
    assert ruler.stats.checker_calls - ruler.stats.forms - before < 40  # of about 800 comparisons


def test_an_answer_whose_normalisation_runs_out_of_time_is_blamed_alone():
    slow = "+".join(f"\\frac{{\\sqrt{{{i}}}}}{{{i + 1}}}" for i in range(40))  # pylatexenc: 5 ms or more
    with GradingPool(workers=1, timeout_s=5.0, soft_timeout_s=0.001, checker="mathruler") as pool:
        pool.prepare([slow])
        assert pool.is_blamed(slow) and pool.stats.timeouts == 1
        calls = pool.stats.checker_calls
        assert pool.equivalent([(slow, "4.5")]) == [None]  # its pairs are skipped, without a worker
        assert pool.stats.checker_calls == calls and not pool.is_blamed("4.5")
