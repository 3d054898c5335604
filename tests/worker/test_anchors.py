"""spec.anchors (rzero_worker/anchors.py): a few human question/answer pairs read from a local path or S3 as
untrusted input (every bad row skipped and counted, never fatal), none of them an evaluation question, sampled
per prompt and mixed into the Solver's training reproducibly; a file with no usable pair a configuration error
(exit 2) naming the location."""

from __future__ import annotations

import json

import pytest

from rzero_worker.anchors import MAX_ROWS, SKIP_REASONS, AnchorError, mix_count, read_anchors
from rzero_worker.phases.context import ConfigurationError
from rzero_worker.storage import open_storage
from rzero_worker.task import AnchorInput, AnchorSettings, BenchmarkSpec


def anchor_input(uri: str, benchmarks=(), **fields) -> AnchorInput:
    return AnchorInput(settings=AnchorSettings(uri=uri, **fields), benchmarks=list(benchmarks))


def line(**row) -> bytes:
    return json.dumps(row).encode()


GOOD = [line(question=f"What does os.path.join({i!r}) return?", answer=f"'{i}'") for i in range(3)]
MESSY = b"\n".join([
    GOOD[0],
    b"",  # a blank line is no row
    b"\xff\xfe not utf-8",  # not_utf8
    b'{"question": "a\x00b", "answer": "1"}',  # binary
    b"[1, 2, 3]",  # malformed_json (not an object)
    b'{"question": "truncated',  # malformed_json
    b'{"question": "Lone \\ud800 surrogate?", "answer": "x"}',  # lone_surrogate
    line(answer="4"),  # no_question
    line(question="   ", answer="4"),  # no_question (blank)
    line(question="What is six times seven?"),  # no_answer
    line(question="Is it true?", answer=True),  # no_answer (a bool is no answer)
    line(question="Q" * 4001, answer="1"),  # too_long
    line(question="WHAT does  os.path.join(0) return?", answer="'0'"),  # duplicate of GOOD[0] (case, spaces)
    GOOD[1],
    line(question="How many bits are in a byte?", answer=8),  # a number is an answer
]) + b"\n"
EXPECTED_SKIPS = {"not_utf8": 1, "binary": 1, "malformed_json": 2, "lone_surrogate": 1, "no_question": 2,
                  "no_answer": 2, "too_long": 1, "duplicate": 1}


def test_every_bad_row_is_skipped_and_counted_locally_and_on_s3(storage_location):
    storage = open_storage(storage_location)
    storage.put_bytes("anchors/messy.jsonl", MESSY)
    uri = storage.uri_for("anchors/messy.jsonl")

    anchors = read_anchors(anchor_input(uri), storage_location)

    assert [(a.question, a.answer) for a in anchors.rows] == [
        ("What does os.path.join(0) return?", "'0'"), ("What does os.path.join(1) return?", "'1'"),
        ("How many bits are in a byte?", "8")]
    assert anchors.stats() == {"lines": 14, "usable": 3,
                               "skipped": {reason: EXPECTED_SKIPS.get(reason, 0) for reason in SKIP_REASONS}}
    assert uri.startswith("s3://") == storage_location.uri.startswith("s3://")


def test_other_field_names_are_read(tmp_path):
    path = tmp_path / "anchors.jsonl"
    path.write_bytes(line(prompt="Name the module for regular expressions.", gold="re") + b"\n")
    anchors = read_anchors(anchor_input(str(path), question_field="prompt", answer_field="gold"))
    assert [(a.question, a.answer, a.line) for a in anchors.rows] == [("Name the module for regular expressions.",
                                                                        "re", 1)]


def test_rows_past_the_limit_are_counted_not_read(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_bytes(b"\n".join(line(question=f"Q{i}?", answer=str(i)) for i in range(MAX_ROWS + 5)))
    anchors = read_anchors(anchor_input(str(path)))
    assert len(anchors.rows) == MAX_ROWS and anchors.skipped["over_limit"] == 5


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    (b"not json\n\n[]\n", "no usable question/answer pair (2 rows; skipped: malformed_json 2)"),
    (b"x" * (1024 * 1024 + 1), "over 1048576 bytes"),
])
def test_an_unusable_file_is_a_configuration_error_naming_it(tmp_path, content, message):
    path = tmp_path / "anchors.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AnchorError) as caught:
        read_anchors(anchor_input(str(path)))
    assert isinstance(caught.value, ConfigurationError)  # exit 2, not retried
    assert str(caught.value).startswith(f"anchors.uri {str(path)!r}: ") and message in str(caught.value)


def test_anchors_that_are_evaluation_questions_are_dropped_and_counted(tmp_path):
    """Never in the evaluation: an anchor equal (whitespace and case aside) to a question of any evaluation
    benchmark, a JSONL file or the generated arithmetic set, is dropped."""
    from rzero_worker.benchmarks import load_benchmark

    arithmetic = BenchmarkSpec(name="arithmetic", kind="arithmetic", size=5, seed=1)
    generated = load_benchmark(arithmetic).items[2]
    held_out = tmp_path / "held-out.jsonl"
    held_out.write_bytes(line(question="What does os.path.join(1) return?", answer="'1'") + b"\n")
    path = tmp_path / "anchors.jsonl"
    path.write_bytes(b"\n".join([*GOOD, line(question=f"  {generated.question.upper()} ", answer=generated.gold)]))

    anchors = read_anchors(anchor_input(str(path), [arithmetic, BenchmarkSpec(name="mine", path=str(held_out))]))

    assert [a.question for a in anchors.rows] == ["What does os.path.join(0) return?",
                                                   "What does os.path.join(2) return?"]
    assert anchors.skipped["in_evaluation"] == 2
    with pytest.raises(AnchorError, match="in_evaluation 1"):
        path.write_bytes(GOOD[1])
        read_anchors(anchor_input(str(path), [BenchmarkSpec(name="mine", path=str(held_out))]))


def test_sampling_is_reproducible_distinct_and_differs_by_prompt(tmp_path):
    path = tmp_path / "anchors.jsonl"
    path.write_bytes(b"\n".join(line(question=f"Q{i}?", answer=str(i)) for i in range(10)))
    anchors = read_anchors(anchor_input(str(path)))

    draws = [anchors.sample(7, 1, index, 3) for index in range(20)]

    assert draws == [anchors.sample(7, 1, index, 3) for index in range(20)]  # a resumed phase draws the same
    assert all(len({a.question for a in draw}) == 3 for draw in draws)
    assert len({tuple(a.line for a in draw) for draw in draws}) > 10
    assert anchors.sample(7, 2, 0, 3) != draws[0] or anchors.sample(8, 1, 0, 3) != draws[0]
    assert len(anchors.sample(7, 1, 0, 50)) == 10  # k above the anchors: each once


def test_the_solver_mix_uses_every_anchor_once_before_repeating_it(tmp_path):
    path = tmp_path / "anchors.jsonl"
    path.write_bytes(b"\n".join(line(question=f"Q{i}?", answer=str(i)) for i in range(4)))
    anchors = read_anchors(anchor_input(str(path)))

    mixed = anchors.mixed(10, seed=3)

    assert [a.question for a in mixed] == [a.question for a in anchors.mixed(10, seed=3)]
    assert sorted(a.line for a in mixed[:4]) == [1, 2, 3, 4] and sorted(a.line for a in mixed[4:8]) == [1, 2, 3, 4]
    assert (mix_count(25, 0.1), mix_count(100, 0.25), mix_count(7, 0.0), mix_count(0, 2.0)) == (3, 25, 0, 0)
