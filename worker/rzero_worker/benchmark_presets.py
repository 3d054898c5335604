r"""The paper's ten benchmarks as data: where each one comes from, what its file looks like, how its gold
answer is read, how a prediction is pulled out of the model's text, how it is graded and how it is asked.

R-Zero (arXiv 2508.05004) reports seven maths benchmarks (its Table 1) and three general-reasoning ones
(its Table 2). The sources, splits, fields and prompts below are the ones the reference code reads
(Chengsong-Huang/R-Zero, `evaluation/datasets_loader.py`, `generate.py`, `eval_mmlupro.py`,
`eval_supergpqa.py`, `eval_bbeh.py`; `evaluate.bash` runs the three general ones on their full sets).
Where we differ from that code, the preset's `note` says so.

A preset fixes a file's *layout*: the fields a row must have. `rzero benchmarks prepare` writes each
benchmark as JSONL with the published fields unchanged; a Parquet file as published on the Hub reads
the same way. Revisions: no commit is pinned here (we could not check them offline); `prepare` records
the commit it actually downloaded, with each file's sha256, in the manifest beside the files.

Stdlib only: the task contract (rzero_worker.task) and the control plane's report import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .prompts import SOLVER_SYSTEM_PROMPT

GoldReading = Literal["plain", "gsm8k", "boxed", "numeric", "first", "letter"]
Scoring = Literal["math", "choice", "short"]
# Your own files (a benchmark without a preset): its `answerType` names how it is scored (benchmarks.custom).
AnswerType = Literal["math", "text", "choice"]
ANSWER_TYPE_SCORINGS: dict[str, str] = {"math": "math", "text": "text", "choice": "options"}
Group = Literal["maths", "general"]

# How each gold reading turns a dataset field into the gold answer string (benchmarks.answers).
GOLD_READINGS: dict[str, str] = {
    "plain": "the field's text, stripped",
    "gsm8k": "the text after the last '####', thousands commas removed",
    "boxed": "the content of the field's last \\boxed{}",
    "numeric": "a number (JSON number or numeric text) written canonically: 27.0 -> 27",
    "first": "the first element of a list field (OlympiadBench's final_answer)",
    "letter": "an option letter A, B, ... within the row's options",
}

# How a prediction is extracted and graded, per scoring (benchmarks.answers).
SCORINGS: dict[str, str] = {
    "math": "last \\boxed{} of the output; equivalent to the gold by math-verify (gold first, as the reference)",
    "choice": "option letter read from the last \\boxed{} (else a 'Final Answer:' / 'The answer is:' line); "
    "exact letter match. No letter: a seeded guess among the options (the reference guesses at random) "
    "or wrong, per evaluation.choiceFallback",
    "short": "BBEH's own matching: last \\boxed{} (else the answer line), lower-cased, LaTeX wrappers "
    "dropped; equal, '(a)' = 'a', equal as numbers, or equal without quotes or brackets",
    "text": "your own free-form answers (answerType text): last \\boxed{} (else the answer line); equal after "
    "unwrapping markup (LaTeX text, reST roles, backticks, bold, quotes), a final full stop and a trailing () "
    "dropped, whitespace collapsed and case folded; a number gold: math-verify",
    "options": "your own multiple choice (answerType choice): gold a letter or an option's text; the answer's "
    "letter, or the text of exactly one option, or a leading 'B.' label, or its one standalone option letter "
    "(several different letters: none); exact letter match; no option named: evaluation.choiceFallback",
}

MMLU_PRO_INSTRUCTION = (
    "Please reason step by step, and put your final answer option within \\boxed{}. "
    "Only put the option letter in the box, e.g. \\boxed{A}. There is only one correct answer."
)
SUPERGPQA_INSTRUCTION = (
    "Please reason step by step, and put your final answer option within \\boxed{}. "
    "Only put the letter in the box, e.g. \\boxed{A}. There is only one correct answer."
)
# Your own multiple choice (answerType choice): the Solver's system prompt, the options as the general presets
# show them, and this instruction.
CHOICE_INSTRUCTION = "Put only the letter of the correct option in the box, e.g. \\boxed{A}."
BBEH_INSTRUCTION = "Please reason step by step, and put your final answer option within \\boxed{}."


@dataclass(frozen=True)
class HubSource:
    """Where `rzero benchmarks prepare` downloads a benchmark from (Hugging Face Hub datasets)."""

    repo: str
    split: str
    config: str | None = None
    revision: str | None = None  # None: the default branch at prepare time (the manifest records the commit)


@dataclass(frozen=True)
class Prompt:
    """How an item is asked. system=None: a single user turn, as the reference's general-reasoning
    scripts. The user turn is the question, then the options (if any) as '(A): ...' lines, then the
    instruction, laid out exactly as the reference builds it."""

    system: str | None = None
    instruction: str | None = None


SOLVER_PROMPT = Prompt(system=SOLVER_SYSTEM_PROMPT)
CHOICE_PROMPT = Prompt(system=SOLVER_SYSTEM_PROMPT, instruction=CHOICE_INSTRUCTION)


@dataclass(frozen=True)
class Preset:
    name: str  # preset key and default benchmark name
    title: str  # column header, as the paper names it
    group: Group
    source: HubSource
    question_field: str
    gold_field: str
    gold_reading: GoldReading
    scoring: Scoring
    max_tokens: int  # the reference's response limit (4,096 maths; 8,192 general reasoning)
    prompt: Prompt = SOLVER_PROMPT
    options_field: str | None = None
    note: str = ""

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields every row must have (its layout)."""
        extra = (self.options_field,) if self.options_field else ()
        return (self.question_field, *extra, self.gold_field)


# Answer length of benchmarks that are not presets (the reference's 4,096 for maths).
DEFAULT_MAX_TOKENS = 4096
_MATHS = dict(group="maths", scoring="math", max_tokens=4096)
_GENERAL = dict(group="general", max_tokens=8192)

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "math500", "MATH-500", source=HubSource("HuggingFaceH4/MATH-500", "test"),
            question_field="problem", gold_field="answer", gold_reading="plain", **_MATHS,
            note="the reference reads the same 500 problems from OpenAI's simple-evals CSV (Question/Answer)",
        ),
        Preset(
            "gsm8k", "GSM8K", source=HubSource("openai/gsm8k", "test", config="main"),
            question_field="question", gold_field="answer", gold_reading="gsm8k", **_MATHS,
        ),
        Preset(
            "amc23", "AMC23", source=HubSource("zwhe99/amc23", "test"),
            question_field="question", gold_field="answer", gold_reading="numeric", **_MATHS,
            note="the reference repeats each problem 32 times under greedy decoding (same answer each time); "
            "set samples: k for avg@k with sampling instead",
        ),
        Preset(
            "minerva", "Minerva", source=HubSource("zwhe99/simplerl-minerva-math", "test"),
            question_field="problem", gold_field="answer", gold_reading="plain", **_MATHS,
        ),
        Preset(
            "olympiadbench", "OlympiadBench", source=HubSource("zwhe99/simplerl-OlympiadBench", "test"),
            question_field="question", gold_field="final_answer", gold_reading="first", **_MATHS,
        ),
        Preset(
            "aime24", "AIME24", source=HubSource("HuggingFaceH4/aime_2024", "train"),
            question_field="problem", gold_field="answer", gold_reading="numeric", **_MATHS,
            note="the reference repeats each problem 32 times under greedy decoding",
        ),
        Preset(
            "aime25", "AIME25", source=HubSource("yentinglin/aime_2025", "train", config="default"),
            question_field="problem", gold_field="answer", gold_reading="numeric", **_MATHS,
            note="the reference repeats each problem 32 times under greedy decoding",
        ),
        Preset(
            "mmlu-pro", "MMLU-Pro", source=HubSource("TIGER-Lab/MMLU-Pro", "test"),
            question_field="question", options_field="options", gold_field="answer", gold_reading="letter",
            scoring="choice", prompt=Prompt(instruction=MMLU_PRO_INSTRUCTION), **_GENERAL,
            note="full test set, as eval_mmlupro.py (datasets_loader.py would sample 1,000)",
        ),
        Preset(
            "supergpqa", "SuperGPQA", source=HubSource("m-a-p/SuperGPQA", "train"),
            question_field="question", options_field="options", gold_field="answer_letter", gold_reading="letter",
            scoring="choice", prompt=Prompt(instruction=SUPERGPQA_INSTRUCTION), **_GENERAL,
            note="full set, as eval_supergpqa.py",
        ),
        Preset(
            "bbeh", "BBEH", source=HubSource("MrLight/bbeh-eval", "train"),
            question_field="question", gold_field="answer", gold_reading="plain",
            scoring="short", prompt=Prompt(instruction=BBEH_INSTRUCTION), **_GENERAL,
            note="full set, as eval_bbeh.py; graded with BBEH's fuzzy match, not math-verify",
        ),
    )
}

PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)

# The paper's column order: Table 1 (AVG, AMC, Minerva, MATH, GSM8K, Olympiad, AIME25, AIME24) then
# Table 2 (Overall AVG, MATH AVG, SuperGPQA, MMLU-Pro, BBEH).
MATHS_ORDER: tuple[str, ...] = ("amc23", "minerva", "math500", "gsm8k", "olympiadbench", "aime25", "aime24")
GENERAL_ORDER: tuple[str, ...] = ("supergpqa", "mmlu-pro", "bbeh")
MATH_AVERAGE, OVERALL_AVERAGE = "math_average", "overall_average"
AVERAGE_TITLES = {MATH_AVERAGE: "MATH AVG", OVERALL_AVERAGE: "Overall AVG"}

assert set(MATHS_ORDER + GENERAL_ORDER) == set(PRESETS), "every preset has a place in the paper's tables"


def preset_of(benchmark: str) -> Preset | None:
    """The preset a benchmark name refers to (benchmarks named after their preset), or None."""
    return PRESETS.get(benchmark)


def describe_presets() -> str:
    """A plain-text table of the presets (`rzero benchmarks list`)."""
    lines = []
    for preset in PRESETS.values():
        source = preset.source
        where = source.repo + (f" [{source.config}]" if source.config else "") + f" split {source.split}"
        lines += [
            f"{preset.name} ({preset.title}, {preset.group}): {where}",
            f"    fields {', '.join(preset.fields)}; gold: {preset.gold_field} read as {preset.gold_reading} "
            f"({GOLD_READINGS[preset.gold_reading]})",
            f"    scoring {preset.scoring}: {SCORINGS[preset.scoring]}; answers up to {preset.max_tokens} tokens",
        ]
        if preset.note:
            lines.append(f"    note: {preset.note}")
    return "\n".join(lines)
