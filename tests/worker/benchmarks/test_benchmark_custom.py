"""Your own benchmark files: free-form short answers in text and multiple choice by letter or option text
(answerType text / choice), read, asked and graded exactly, adversarial replies included."""

import json

import pytest

from rzero_worker.benchmarks import BenchmarkError, GoldError, load_benchmark, prompt_messages, rows_score, score_entry
from rzero_worker.benchmarks.answers import judge, predict
from rzero_worker.benchmarks.custom import normalize_text, option_gold, read_option
from rzero_worker.grading import GradingPool
from rzero_worker.phases.evaluate import score_outputs
from rzero_worker.task import BenchmarkSpec

OPTIONS = ("str.split", "str.join", "str.concat", "str.format")


@pytest.fixture(scope="module")
def pool():
    with GradingPool(workers=1, timeout_s=10.0) as grading_pool:
        yield grading_pool


@pytest.mark.parametrize(
    ("answer", "form"),
    [
        ("``str.join``", "str.join"),           # reST inline literal
        (":meth:`~str.join`", "str.join"),      # reST role, '~' shortening
        (":func:`len`.", "len"),
        ("\\texttt{len}", "len"),
        ("`True`", "true"),                     # Markdown code, case folded
        ("**True**.", "true"),
        ('"None"', "none"),
        ("\u201cutf-8\u201d", "utf-8"),
        ("str.join()", "str.join"),             # a call of a dotted name = the name
        ("print('x')", "print('x')"),           # a call with arguments stays
        ("*args", "*args"),                     # an unpaired star is not emphasis
        ("' '", "' '"),                         # quotes around a space stay: the answer is the space
        ("''", "''"),
        ("  a   list\nof  words ", "a list of words"),
        ("[1, 2,  3]", "[1,2,3]"),
        ("...", "..."),
        (None, ""),
    ],
)
def test_the_normal_form_of_a_free_form_answer(answer, form):
    assert normalize_text(answer) == form


@pytest.mark.parametrize(
    ("gold", "output", "prediction", "correct"),
    [
        ("str.join", "It joins strings. \\boxed{str.join}", "str.join", True),
        ("str.join", "\\boxed{\\texttt{str.join()}}", "\\texttt{str.join()}", True),
        ("``str.join``", "\\boxed{str.join}", "str.join", True),   # a gold written with markup
        ("str.join", "\\boxed{join}", "join", False),              # no fuzzy matching
        ("str.join", "\\boxed{str.join} no wait \\boxed{str.split}", "str.split", False),  # the last box counts
        ("str.join", "\\boxed{str.split} no wait \\boxed{str.join}", "str.join", True),
        ("True", "\\boxed{true}", "true", True),
        ("True", "\\boxed{True or False}", "True or False", False),
        ("False", "The answer is False.", None, False),           # no box and no answer line
        ("False", "Final Answer: False\n", "False", True),
        ("' '", "\\boxed{''}", "''", False),                     # a space is not the empty string
        ("' '", "\\boxed{' '}", "' '", True),
        ("5", "\\boxed{5.0}", "5.0", True),                       # a number gold: math-verify
        ("0.75", "\\boxed{\\frac{3}{4}}", "\\frac{3}{4}", True),
        ("-3", "\\boxed{-2}", "-2", False),
        ("1,000", "\\boxed{1000}", "1000", True),                # thousands commas on either side
        ("1000", "\\boxed{1,000}", "1,000", True),
        ("1,5", "\\boxed{1.5}", "1.5", False),                   # not a thousands comma: a text gold
        ("2to3", "\\boxed{2}", "2", False),                       # a text gold never goes to math-verify
        ("(3, 2)", "\\boxed{(3,2)}", "(3,2)", True),              # no space after a comma
        ("(3, 2)", "\\boxed{(2, 3)}", "(2, 3)", False),
        ("KeyError", "no idea", None, False),
    ],
)
def test_free_form_replies_are_graded_as_a_person_would(pool, gold, output, prediction, correct):
    read, guessed = predict("text", output)
    assert (read, guessed) == (prediction, False)
    assert judge("text", [read], [gold], pool) == [correct]


@pytest.mark.parametrize(
    ("output", "letter"),
    [
        ("\\boxed{B}", "B"),
        ("\\boxed{(b)}", "B"),
        ("\\boxed{\\text{B}}", "B"),
        ("\\boxed{str.join}", "B"),                          # the option's text
        ("\\boxed{``str.join``}", "B"),                      # its text with markup
        ("\\boxed{B. str.join}", "B"),                       # a label and its own text
        ("\\boxed{(C) something else}", "C"),                # a label and free text
        ("\\boxed{A. str.join}", None),                      # a label contradicted by another option's text
        ("\\boxed{A} then \\boxed{C}", "C"),                 # several boxes: the last counts
        ("\\boxed{A or C}", None),                           # two letters in one answer name none
        ("\\boxed{A, B}", None),
        ("\\boxed{Option D}", "D"),
        ("\\boxed{E}", None),                                # not one of four options
        ("\\boxed{join}", None),                             # no option's text
        ("Final Answer: B\n", "B"),
        ("I think it is B", None),                           # no box, no answer line
    ],
)
def test_a_multiple_choice_reply_names_an_option_by_letter_or_text(output, letter):
    assert read_option(output, OPTIONS) == letter
    assert predict("options", output, item_id="q", options=OPTIONS, fallback="none") == (letter, False)


@pytest.mark.parametrize(("output", "letter"), [("\\boxed{4}.", "A"), ("\\boxed{5}", "B"), ("\\boxed{7}", None),
                                               ("\\boxed{None}", "D"), ("\\boxed{D}", "D")])
def test_an_option_whose_text_is_one_character_is_named_by_its_text(output, letter):
    assert read_option(output, ("4", "5", "6", "None")) == letter


def test_a_reply_naming_no_option_is_guessed_or_wrong_as_choice_fallback_says():
    letter, guessed = predict("options", "\\boxed{A or C}", item_id="q7", options=OPTIONS, fallback="guess")
    assert guessed and letter in "ABCD"
    assert predict("options", "\\boxed{A or C}", item_id="q7", options=OPTIONS, fallback="guess") == (letter, True)
    assert judge("options", [None, "B", "C"], ["B", "B", "B"]) == [False, True, False]


@pytest.mark.parametrize(
    ("value", "gold"),
    [("B", "B"), ("b", "B"), (" D ", "D"), ("str.join", "B"), ("``str.format``", "D"), ("STR.SPLIT", "A")],
)
def test_a_gold_is_a_letter_of_the_options_or_the_text_of_one(value, gold):
    assert option_gold(value, OPTIONS) == gold


@pytest.mark.parametrize("value", ["E", "join", "", None, 2, "str.join or str.split"])
def test_a_gold_naming_no_option_is_refused(value):
    with pytest.raises(GoldError):
        option_gold(value, OPTIONS)


def test_a_gold_text_that_two_options_share_is_refused():
    with pytest.raises(GoldError, match="exactly one"):
        option_gold("len", ("len", "``len``", "id"))


def test_options_that_differ_only_in_case_are_told_apart_by_case():
    options = ("abc", "ABC", "Abc", "aBC")
    assert option_gold("ABC", options) == "B" and option_gold("Abc", options) == "C"
    assert read_option("\\boxed{aBC}", options) == "D" and read_option("\\boxed{ABC}", options) == "B"
    assert read_option("\\boxed{abC}", options) is None  # none has that case
    # free-form answers fold case: for a benchmark where case matters, ask it as multiple choice
    assert normalize_text("ABC") == normalize_text("abc")


def held_out(tmp_path, rows) -> str:
    path = tmp_path / "held-out.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


ROWS = [
    {"id": "q1", "question": "Which str method joins an iterable?", "answer": "str.join", "options": list(OPTIONS)},
    {"id": "q2", "question": "What is bool([])?", "answer": "False", "options": ["True", "False", "None", "[]"]},
    {"id": "q3", "question": "What is 7 // 2?", "answer": "3", "options": ["3", "3.5", "4", "2"]},
]


def test_one_file_loads_as_free_form_and_as_multiple_choice(tmp_path):
    path = held_out(tmp_path, ROWS)

    text = load_benchmark(BenchmarkSpec(name="docs", path=path, answer_type="text"))
    choice = load_benchmark(BenchmarkSpec(name="docs-choice", path=path, answer_type="choice"))

    assert (text.scoring, choice.scoring) == ("text", "options")
    assert [item.gold for item in text.items] == ["str.join", "False", "3"] and text.items[0].options == ()
    assert [item.gold for item in choice.items] == ["B", "B", "A"] and choice.items[0].options == OPTIONS
    assert [item.id for item in choice.items] == ["q1", "q2", "q3"]
    asked = prompt_messages(choice.prompt, choice.items[0].question, choice.items[0].options)
    assert asked[0] == {"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."}
    assert asked[1]["content"] == (
        "Which str method joins an iterable?\nOptions are:\n(A): str.split\n(B): str.join\n(C): str.concat\n"
        "(D): str.format\n\n\nPut only the letter of the correct option in the box, e.g. \\boxed{A}."
    )
    assert prompt_messages(text.prompt, "What is bool([])?")[1] == {"role": "user", "content": "What is bool([])?"}


def test_a_choice_row_without_options_or_with_a_gold_outside_them_is_refused_naming_the_row(tmp_path):
    no_options = held_out(tmp_path, [{"question": "q", "answer": "B"}])
    with pytest.raises(BenchmarkError, match=r"line 1: missing field 'options' \(set questionField/answerField/optionsField\)"):
        load_benchmark(BenchmarkSpec(name="docs", path=no_options, answer_type="choice"))
    outside = held_out(tmp_path, [{"question": "q", "answer": "join", "options": list(OPTIONS)}])
    with pytest.raises(BenchmarkError, match=r"line 1: field 'answer' is 'join': neither a letter"):
        load_benchmark(BenchmarkSpec(name="docs", path=outside, answer_type="choice"))


def test_the_option_field_can_be_named(tmp_path):
    path = held_out(tmp_path, [{"q": "Which?", "gold": "C", "choices": ["x", "y", "z"]}])
    spec = BenchmarkSpec(name="docs", path=path, answer_type="choice", question_field="q", answer_field="gold",
                         options_field="choices")
    assert load_benchmark(spec).items[0].options == ("x", "y", "z")


def test_the_evaluate_phase_grades_both_kinds_and_counts_guesses_for_multiple_choice(tmp_path, pool):
    path = held_out(tmp_path, ROWS)
    text = load_benchmark(BenchmarkSpec(name="docs", path=path, answer_type="text"))
    choice = load_benchmark(BenchmarkSpec(name="docs-choice", path=path, answer_type="choice"))
    replies = ["\\boxed{``str.join``}", "\\boxed{True}", "\\boxed{3.0}"]
    choices = ["\\boxed{str.join}", "\\boxed{A or B}", "\\boxed{B}"]

    text_rows = score_outputs(text, text.items, replies, pool)
    choice_rows = score_outputs(choice, choice.items, choices, pool, fallback="none")

    assert [(r["prediction"], r["correct"]) for r in text_rows] == [("``str.join``", True), ("True", False), ("3.0", True)]
    assert "guessed" not in text_rows[0]
    assert [(r["prediction"], r["correct"], r["guessed"]) for r in choice_rows] == [
        ("B", True, False), (None, False, False), ("B", False, False)]
    assert rows_score(text_rows) == score_entry(2, 3)
    assert rows_score(choice_rows, multiple_choice=choice.multiple_choice) == score_entry(1, 3, guessed=0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"preset": "gsm8k", "answer_type": "text"}, "remove answerType"),
        ({"preset": "mmlu-pro", "options_field": "choices"}, "remove optionsField"),
        ({"name": "docs", "answer_type": "choice", "answer_format": "boxed"},
         "answerType choice reads the gold as a letter or an option's text; remove answerFormat"),
    ],
)
def test_fields_that_do_not_apply_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        BenchmarkSpec(path="x.jsonl", **fields)
