"""What a loaded benchmark is: its items, and how they are asked and scored."""

from __future__ import annotations

from dataclasses import dataclass

from ..benchmark_presets import SOLVER_PROMPT, Preset, Prompt



@dataclass(frozen=True)
class BenchmarkItem:
    id: str
    question: str
    gold: str
    options: tuple[str, ...] = ()  # multiple choice: the option texts, lettered A, B, ...


@dataclass(frozen=True)
class Benchmark:
    """A loaded benchmark: its items and how they are asked and scored (a preset's way, or maths with the
    Solver prompt for custom files and the arithmetic set)."""

    name: str
    items: list[BenchmarkItem]
    preset: Preset | None = None

    @property
    def scoring(self) -> str:
        return self.preset.scoring if self.preset else "math"

    @property
    def prompt(self) -> Prompt:
        return self.preset.prompt if self.preset else SOLVER_PROMPT


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
