"""The preset table: the paper's ten benchmarks, their places in its tables, and the prompts as the
reference code builds them."""

import pytest
from pydantic import ValidationError

from rzero_worker.benchmark_presets import GENERAL_ORDER, MATHS_ORDER, PRESETS, describe_presets
from rzero_worker.benchmarks import prompt_messages
from rzero_worker.prompts import SOLVER_SYSTEM_PROMPT
from rzero_worker.task import BenchmarkSpec, EvaluationSettings


def test_the_ten_benchmarks_of_the_paper_in_its_column_order():
    assert MATHS_ORDER == ("amc23", "minerva", "math500", "gsm8k", "olympiadbench", "aime25", "aime24")
    assert GENERAL_ORDER == ("supergpqa", "mmlu-pro", "bbeh")
    assert {PRESETS[name].group for name in MATHS_ORDER} == {"maths"}
    assert {PRESETS[name].group for name in GENERAL_ORDER} == {"general"}
    assert {PRESETS[name].max_tokens for name in MATHS_ORDER} == {4096}
    assert {PRESETS[name].max_tokens for name in GENERAL_ORDER} == {8192}


def test_maths_presets_ask_with_the_solver_prompt():
    assert prompt_messages(PRESETS["gsm8k"].prompt, "What is 2+2?") == [
        {"role": "system", "content": SOLVER_SYSTEM_PROMPT},
        {"role": "user", "content": "What is 2+2?"},
    ]


def test_multiple_choice_is_asked_as_the_reference_asks_it():
    [message] = prompt_messages(PRESETS["mmlu-pro"].prompt, "Pick one.", ("red", "blue"))
    assert message == {"role": "user", "content": (
        "Pick one.\nOptions are:\n(A): red\n(B): blue\n\n\n"
        "Please reason step by step, and put your final answer option within \\boxed{}. "
        "Only put the option letter in the box, e.g. \\boxed{A}. There is only one correct answer.")}
    [message] = prompt_messages(PRESETS["supergpqa"].prompt, "Pick one.", ("red",))
    assert "Only put the letter in the box" in message["content"]


def test_bbeh_is_asked_with_its_short_instruction():
    assert prompt_messages(PRESETS["bbeh"].prompt, "Q?") == [{"role": "user", "content": (
        "Q?\n\nPlease reason step by step, and put your final answer option within \\boxed{}.")}]


def test_a_preset_benchmark_is_named_after_its_preset_unless_named():
    assert BenchmarkSpec(preset="aime24", path="a.jsonl").name == "aime24"
    assert BenchmarkSpec(name="aime-2024", preset="aime24", path="a.jsonl").name == "aime-2024"


@pytest.mark.parametrize("field", [{"answerFormat": "gsm8k"}, {"questionField": "problem"}, {"kind": "arithmetic"}])
def test_a_preset_fixes_the_layout(field):
    with pytest.raises(ValidationError, match="preset 'gsm8k' fixes the layout; remove"):
        BenchmarkSpec.model_validate({"preset": "gsm8k", "path": "g.jsonl", **field})


def test_specs_need_a_name_or_a_preset_and_names_must_differ():
    with pytest.raises(ValidationError, match="name: required unless preset is set"):
        BenchmarkSpec(path="x.jsonl")
    with pytest.raises(ValidationError, match="names must be unique, repeated: gsm8k"):
        EvaluationSettings(benchmarks=[BenchmarkSpec(preset="gsm8k", path="a"), BenchmarkSpec(preset="gsm8k", path="b")])


def test_a_spec_survives_the_task_file_round_trip():
    spec = BenchmarkSpec(preset="mmlu-pro", path="s3://b/mmlu-pro.jsonl", samples=4)
    assert BenchmarkSpec.model_validate(spec.wire()) == spec


def test_the_list_names_every_source():
    text = describe_presets()
    for preset in PRESETS.values():
        assert f"{preset.name} ({preset.title}" in text and preset.source.repo in text
