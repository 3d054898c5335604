"""Loading benchmarks: preset files in their published layouts (JSONL, Parquet, local or s3://), layout
mismatches refused naming the field, custom JSONL fields (GSM8K '####', plain, boxed), the arithmetic set."""

import json
import re
from fractions import Fraction

import pytest

from rzero_worker.benchmark_presets import PRESETS
from rzero_worker.benchmarks import BenchmarkError, arithmetic_benchmark, load_benchmark, read_gold
from rzero_worker.storage import open_storage
from rzero_worker.task import BenchmarkSpec
from support.benchmark_files import PUBLISHED_ROWS, write_all_published, write_published


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_gsm8k_answer_is_the_text_after_the_last_hashes_without_thousands_commas(tmp_path):
    rows = [
        {"question": "How many eggs?", "answer": "She has 3 + 4 = <<3+4=7>>7 eggs.\n#### 7"},
        {"question": "How much money?", "answer": "It costs 1,200 dollars.\n#### 1,200"},
    ]
    spec = BenchmarkSpec(name="gsm8k", path=str(write_jsonl(tmp_path / "g.jsonl", rows)), answer_format="gsm8k")

    items = load_benchmark(spec).items

    assert [(item.question, item.gold) for item in items] == [("How many eggs?", "7"), ("How much money?", "1200")]


def test_custom_fields_plain_answers_and_limit(tmp_path):
    rows = [{"id": f"q{i}", "problem": f"What is {i}+{i}?", "solution": f" {2 * i} "} for i in range(5)]
    spec = BenchmarkSpec(
        name="custom",
        path=str(write_jsonl(tmp_path / "c.jsonl", rows)),
        question_field="problem",
        answer_field="solution",
        limit=3,
    )

    items = load_benchmark(spec).items

    assert [(item.id, item.question, item.gold) for item in items] == [
        ("q0", "What is 0+0?", "0"),
        ("q1", "What is 1+1?", "2"),
        ("q2", "What is 2+2?", "4"),
    ]


def test_a_question_holding_unicode_line_separators_is_one_row(tmp_path):
    question = "First line\u2028second\x85third\u2029end: what is 2+2?"
    path = tmp_path / "raw.jsonl"
    path.write_text(json.dumps({"question": question, "answer": "4"}, ensure_ascii=False) + "\r\n", encoding="utf-8")

    [item] = load_benchmark(BenchmarkSpec(name="raw", path=str(path))).items

    assert (item.question, item.gold) == (question, "4")


def test_boxed_answer_format_takes_the_last_box():
    assert read_gold(r"first \boxed{1}, then \boxed{\frac{1}{2}}", "boxed") == r"\frac{1}{2}"


def test_a_missing_field_is_named_in_the_error(tmp_path):
    spec = BenchmarkSpec(name="bad", path=str(write_jsonl(tmp_path / "b.jsonl", [{"question": "q"}])))
    with pytest.raises(BenchmarkError, match=r"line 1: missing field 'answer'"):
        load_benchmark(spec)


def test_a_gsm8k_row_without_hashes_is_refused(tmp_path):
    rows = [{"question": "q", "answer": "no final answer here"}]
    spec = BenchmarkSpec(name="bad", path=str(write_jsonl(tmp_path / "b.jsonl", rows)), answer_format="gsm8k")
    with pytest.raises(BenchmarkError, match="'answer' has no gsm8k answer"):
        load_benchmark(spec)


def test_a_missing_file_is_a_clear_error(tmp_path):
    spec = BenchmarkSpec(name="gone", path=str(tmp_path / "nope.jsonl"))
    with pytest.raises(BenchmarkError, match="no such file"):
        load_benchmark(spec)


def test_arithmetic_benchmark_is_determined_by_its_seed():
    assert arithmetic_benchmark(20, seed=3) == arithmetic_benchmark(20, seed=3)
    assert arithmetic_benchmark(20, seed=3) != arithmetic_benchmark(20, seed=4)
    assert len({item.id for item in arithmetic_benchmark(50, seed=0)}) == 50


def test_arithmetic_gold_answers_are_exact():
    """Recompute every answer from the numbers in the question text, independently of the generator."""
    for item in arithmetic_benchmark(40, seed=11):
        numbers = [int(n) for n in re.findall(r"\d+", item.question)]
        if item.question.startswith("Compute ("):
            a, b, c, d = numbers
            assert item.gold == str((a + b) * c - d)
        elif item.question.startswith("Compute \\frac"):
            a, b, c, d = numbers
            total = Fraction(a, b) + Fraction(c, d)
            expected = str(total) if total.denominator == 1 else rf"\frac{{{total.numerator}}}{{{total.denominator}}}"
            assert item.gold == expected
        elif item.question.startswith("Sam has"):
            start, bags, per_bag, given = numbers
            assert item.gold == str(start + bags * per_bag - given)
        else:
            people, each, left, cost = numbers
            assert item.gold == str((people * each + left) * cost)


def test_easy_arithmetic_is_seeded_exact_and_not_the_warm_ups_own_problems():
    from rzero_worker.oracles.arithmetic import solve
    from rzero_worker.warmup_data import warmup_examples

    items = arithmetic_benchmark(60, seed=0, difficulty="easy")
    assert items == arithmetic_benchmark(60, seed=0, difficulty="easy")
    checked = [item for item in items if solve(item.question) is not None]
    assert len(checked) > 30 and all(solve(item.question) == item.gold for item in checked)
    taught = {e["prompt"][-1]["content"] for e in warmup_examples(30, 8, 0) if e["role"] == "solver"}
    assert len(taught & {item.question for item in items}) <= 3  # another seed stream: at most chance overlaps


def test_arithmetic_spec_honours_size_and_limit():
    spec = BenchmarkSpec(name="arith", kind="arithmetic", size=12, seed=5, limit=4)
    assert [item.id for item in load_benchmark(spec).items] == [f"arithmetic-5-{i:05d}" for i in range(4)]


# --------------------------------------------------------------------------------------------------
# Presets


EXPECTED_GOLDS = {
    "math500": ["\\left( 3, \\frac{\\pi}{2} \\right)", "\\frac{14}{3}", "(-\\infty,-2] \\cup [2,\\infty)"],
    "gsm8k": ["1200", "18"],
    "amc23": ["27", "0.5"],
    "minerva": ["30 \\text{ km}", "\\frac{\\sqrt{3}}{2}"],
    "olympiadbench": ["$(-\\infty, 1]$", "$\\frac{1}{2}$"],
    "aime24": ["33"],
    "aime25": ["70"],
    "mmlu-pro": ["I", "C", "J"],
    "supergpqa": ["G"],
    "bbeh": ["(a)", "False", "3"],
}


def test_every_preset_reads_its_published_layout_and_golds(tmp_path):
    files = write_all_published(tmp_path)  # GSM8K and MMLU-Pro as Parquet, as the Hub has them
    assert set(files) == set(PRESETS)
    for name, path in files.items():
        benchmark = load_benchmark(BenchmarkSpec(preset=name, path=str(path)))
        preset = PRESETS[name]
        assert benchmark.name == name and benchmark.preset is preset
        assert [item.gold for item in benchmark.items] == EXPECTED_GOLDS[name], name
        assert [item.question for item in benchmark.items] == [row[preset.question_field] for row in PUBLISHED_ROWS[name]]
        assert [item.id for item in benchmark.items] == [f"{name}-{i:05d}" for i in range(len(benchmark.items))]
        if preset.options_field:
            assert [list(item.options) for item in benchmark.items] == [row["options"] for row in PUBLISHED_ROWS[name]]


@pytest.mark.parametrize(
    ("preset", "drop", "message"),
    [
        ("mmlu-pro", "options", r"line 1: missing field 'options' \(preset mmlu-pro expects the layout of TIGER-Lab/MMLU-Pro: question, options, answer\)"),
        ("supergpqa", "answer_letter", r"missing field 'answer_letter'"),
        ("olympiadbench", "final_answer", r"missing field 'final_answer'"),
        ("math500", "problem", r"missing field 'problem'"),
    ],
)
def test_a_file_without_a_field_of_its_presets_layout_is_refused_naming_the_field(tmp_path, preset, drop, message):
    rows = [{key: value for key, value in row.items() if key != drop} for row in PUBLISHED_ROWS[preset]]
    path = write_published(tmp_path, preset, rows)
    with pytest.raises(BenchmarkError, match=message):
        load_benchmark(BenchmarkSpec(preset=preset, path=str(path)))


def test_another_benchmarks_file_is_refused(tmp_path):
    """The commonest mistake: a well-formed file, but the wrong benchmark's."""
    path = write_published(tmp_path, "gsm8k")
    with pytest.raises(BenchmarkError, match=r"benchmark 'math500' .*line 1: missing field 'problem'"):
        load_benchmark(BenchmarkSpec(preset="math500", path=str(path)))


@pytest.mark.parametrize(
    ("preset", "field", "value", "message"),
    [
        ("mmlu-pro", "answer", "K", r"field 'answer' is 'K' but the row has only 10 options"),
        ("mmlu-pro", "answer", "9", r"field 'answer' is '9', not an option letter"),
        ("mmlu-pro", "options", "A, B", r"field 'options' must be a non-empty list of option texts"),
        ("amc23", "answer", "twenty", r"field 'answer' is 'twenty', not a number"),
        ("olympiadbench", "final_answer", "1/2", r"field 'final_answer' is not a non-empty list"),
        ("gsm8k", "answer", "no hashes", r"field 'answer' has no gsm8k answer"),
    ],
)
def test_a_gold_field_of_the_wrong_kind_is_refused(tmp_path, preset, field, value, message):
    rows = [dict(PUBLISHED_ROWS[preset][0], **{field: value})]
    path = write_published(tmp_path, preset, rows)
    with pytest.raises(BenchmarkError, match=message):
        load_benchmark(BenchmarkSpec(preset=preset, path=str(path)))


def test_an_empty_or_unparsable_file_is_refused(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(BenchmarkError, match="no rows"):
        load_benchmark(BenchmarkSpec(preset="gsm8k", path=str(empty)))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(BenchmarkError, match="not a readable Parquet file"):
        load_benchmark(BenchmarkSpec(preset="gsm8k", path=str(broken)))


def test_a_preset_file_is_read_from_s3(s3_location, tmp_path):
    bucket = s3_location.uri[len("s3://") :].split("/")[0]
    storage = open_storage(s3_location.model_copy(update={"uri": f"s3://{bucket}"}))
    storage.put_file("benchmarks/mmlu-pro.parquet", write_published(tmp_path, "mmlu-pro", fmt="parquet"))
    spec = BenchmarkSpec(preset="mmlu-pro", path=f"s3://{bucket}/benchmarks/mmlu-pro.parquet", limit=2)
    assert [item.gold for item in load_benchmark(spec, s3_location).items] == ["I", "C"]
