"""What a loaded benchmark is: its items, and how they are asked and scored."""

from __future__ import annotations

from dataclasses import dataclass

from ..benchmark_presets import ANSWER_TYPE_SCORINGS, CHOICE_PROMPT, SOLVER_PROMPT, Preset, Prompt



@dataclass(frozen=True)
class BenchmarkItem:
    id: str
    question: str
    gold: str
    options: tuple[str, ...] = ()  # multiple choice: the option texts, lettered A, B, ...


@dataclass(frozen=True)
class Benchmark:
    """A loaded benchmark: its items and how they are asked and scored (a preset's way; for your own files
    their `answerType`: math and text with the Solver prompt, choice with the options shown; the arithmetic
    set as maths)."""

    name: str
    items: list[BenchmarkItem]
    preset: Preset | None = None
    answer_type: str = "math"  # a benchmark without a preset: BenchmarkSpec.answer_type

    @property
    def scoring(self) -> str:
        return self.preset.scoring if self.preset else ANSWER_TYPE_SCORINGS[self.answer_type]

    @property
    def multiple_choice(self) -> bool:
        return self.scoring in ("choice", "options")

    @property
    def prompt(self) -> Prompt:
        if self.preset:
            return self.preset.prompt
        return CHOICE_PROMPT if self.answer_type == "choice" else SOLVER_PROMPT


class BenchmarkError(ValueError):
    """A benchmark file or item that cannot be used; the message names the benchmark and the field."""


def prompt_messages(prompt: Prompt, question: str, options: tuple[str, ...] = ()) -> list[dict]:
    """The chat an item is asked as. The user turn is laid out as the reference builds it: the question,
    a newline, the options block ('Options are:' and one '(A): ...' line each) with a blank line after it,
    a newline, then the instruction."""
    if prompt.instruction is None:
        user = question
    else:
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        block = "Options are:\n" + "".join(f"({letters[i]}): {text}\n" for i, text in enumerate(options)) + "\n"
        user = f"{question}\n{block if options else ''}\n{prompt.instruction}"
    system = [{"role": "system", "content": prompt.system}] if prompt.system else []
    return system + [{"role": "user", "content": user}]
