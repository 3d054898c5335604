"""Reading answers: what each benchmark's scoring extracts from a model output and whether it is right,
item by item on hand-written outputs; gold readings; option letters; BBEH's matching."""

import pytest

from rzero_worker.benchmark_presets import PRESETS
from rzero_worker.benchmarks import GoldError, load_benchmark, read_gold
from rzero_worker.benchmarks.answers import answer_text, bbeh_match, guess_letter, judge, predict, read_letter
from rzero_worker.grading import GradingPool
from rzero_worker.task import BenchmarkSpec
from support.benchmark_files import HAND_GRADED, write_all_published


@pytest.fixture(scope="module")
def pool():
    with GradingPool(workers=1, timeout_s=10.0) as grading_pool:
        yield grading_pool


@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory):
    files = write_all_published(tmp_path_factory.mktemp("published"))
    return {name: load_benchmark(BenchmarkSpec(preset=name, path=str(path))) for name, path in files.items()}


@pytest.mark.parametrize(("preset", "row", "output", "prediction", "correct"), HAND_GRADED,
                         ids=[f"{case[0]}-{case[1]}-{i}" for i, case in enumerate(HAND_GRADED)])
def test_each_hand_written_output_is_read_and_graded_as_a_person_would(
    benchmarks, pool, preset, row, output, prediction, correct
):
    benchmark = benchmarks[preset]
    item = benchmark.items[row]
    read, guessed = predict(benchmark.scoring, output, item_id=item.id, option_count=len(item.options), fallback="none")
    assert (read, guessed) == (prediction, False)
    assert judge(benchmark.scoring, [read], [item.gold], pool) == [correct]


def test_every_preset_has_a_right_and_a_wrong_hand_graded_output():
    for name in PRESETS:
        assert {correct for preset, _, _, _, correct in HAND_GRADED if preset == name} == {True, False}, name


def test_a_multiple_choice_output_without_a_letter_is_guessed_reproducibly_or_counted_wrong(benchmarks):
    item = benchmarks["mmlu-pro"].items[0]
    output = "I am not sure about this one."
    letter, guessed = predict("choice", output, item_id=item.id, option_count=10, fallback="guess")
    assert guessed and letter in "ABCDEFGHIJ" and letter == guess_letter(item.id, 10)
    assert predict("choice", output, item_id=item.id, option_count=10, fallback="guess") == (letter, True)
    assert predict("choice", output, item_id=item.id, option_count=10, fallback="none") == (None, False)
    assert judge("choice", [None], ["I"]) == [False]
    # Guesses spread over the options (the reference's random.choice), never outside them.
    guesses = {guess_letter(f"q{i}", 4) for i in range(200)}
    assert guesses == set("ABCD")


@pytest.mark.parametrize(
    ("text", "options", "letter"),
    [
        ("B", 4, "B"),
        ("(b)", 4, "B"),
        ("\\text{D}", 4, "D"),
        ("\\textbf{(E)}", 10, "E"),
        ("G. Paris", 10, "G"),
        ("Option H is right", 10, "H"),
        ("E = mc^2", 4, None),  # E is not an option of a 4-option question
        ("Z", 10, None),
        ("none of them", 10, None),
        ("", 10, None),
    ],
)
def test_option_letters(text, options, letter):
    assert read_letter(text, options) == letter


def test_the_answer_text_is_the_last_box_else_the_final_answer_line():
    assert answer_text("\\boxed{A} then \\boxed{B}") == "B"
    assert answer_text("Final Answer: C\nThe answer is: D\n") == "C"
    assert answer_text("The answer is: D\nmore") == "D"
    assert answer_text("The answer is: D") is None  # the reference needs the line to end
    assert answer_text("no answer") is None


@pytest.mark.parametrize(
    ("prediction", "gold", "match"),
    [
        ("(a)", "(a)", True),
        ("a", "(a)", True),
        ("(b)", "a", False),
        ("True", "true", True),
        ("3.0", "3", True),
        ("'yes'", "yes", True),
        ("[x, y]", "x,y", True),
        ("no?", "no", True),
        ("The answer is: 12.", "12", True),
        ("\\text{valid}", "Valid", True),
        (None, "x", False),
        ("13", "12", False),
    ],
)
def test_bbeh_fuzzy_match(prediction, gold, match):
    assert bbeh_match(prediction, gold) is match


@pytest.mark.parametrize(
    ("value", "reading", "gold"),
    [
        (27.0, "numeric", "27"),
        ("033", "numeric", "33"),
        (70, "numeric", "70"),
        (0.5, "numeric", "0.5"),
        (["$\\frac{1}{2}$", "0.5"], "first", "$\\frac{1}{2}$"),
        ("c", "letter", "C"),
        ("x\n#### 1,234", "gsm8k", "1234"),
        ("  \\frac{1}{2} ", "plain", "\\frac{1}{2}"),
    ],
)
def test_gold_readings(value, reading, gold):
    assert read_gold(value, reading) == gold


@pytest.mark.parametrize(("value", "reading"), [(True, "numeric"), (None, "plain"), ([], "first"), ("", "plain"),
                                                ("AB", "letter"), ({"a": 1}, "plain")])
def test_gold_readings_refuse_what_is_not_an_answer(value, reading):
    with pytest.raises(GoldError):
        read_gold(value, reading)
