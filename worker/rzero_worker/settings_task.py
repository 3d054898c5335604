"""spec.task: what kind of task the run learns (rzero_worker/openended/). Re-exported by `rzero_worker.task`.

`verifiable` (the default) is R-Zero's loop: maths questions, majority-vote pseudo-labels, equivalence rewards.
`open-ended` replaces the vote by a judge (DESIGN.md §5, the Verifier): the Challenger writes an instruction in
the domain `description` names, the Solver writes m responses, the frozen Verifier scores each response per
rubric criterion (grading/scores.py). See docs/open-ended.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from .settings_common import ModelInput, Schema
from .settings_data import LOCATION_URI
from .settings_oversight import VerifierInput

TaskKind = Literal["verifiable", "open-ended"]
# A criterion is written into the judge's prompt and read back as `criterion: score`: one line of plain words.
CRITERION = r"^[A-Za-z][A-Za-z0-9 _-]{0,47}$"
Criterion = Annotated[str, StringConstraints(max_length=48, pattern=CRITERION)]
DEFAULT_CRITERIA = ("overall",)  # an open-ended task without a rubric is scored on one criterion


class HeldOutSettings(Schema):
    """Held-out tasks for the win-rate evaluation of an open-ended run (openended/winrate.py)."""

    uri: str = Field(
        min_length=1, max_length=1024, pattern=LOCATION_URI,
        description="A JSONL file (one task per line, in the field `field`) or a text file (one task per line): "
        "s3://bucket/key (the run's storage credentials) or a local path (`rzero run`).",
    )
    field: str = Field(default="task", min_length=1, max_length=256, description="JSONL field holding a task.")
    size: int | None = Field(default=None, ge=1, le=100000, description="Use the first `size` tasks (unset: all).")
    max_tokens: int = Field(default=1024, ge=1, le=65536, description="New tokens per Solver response (greedy).")


class TaskSettings(Schema):
    """spec.task: verifiable (R-Zero's maths loop, the default) or open-ended (a judge scores free-form responses)."""

    kind: TaskKind = Field(
        default="verifiable",
        description="verifiable: questions with a checkable answer, majority-vote labels (R-Zero). open-ended: "
        "the Challenger writes instructions in the described domain, the frozen Verifier (spec.verifier) scores "
        "each Solver response per rubric criterion, and both roles are rewarded by those scores.",
    )
    description: str | None = Field(
        default=None, min_length=1, max_length=4000,
        description="open-ended: the domain in words, shown to the Challenger (e.g. 'short persuasive emails "
        "to a landlord'). Required for open-ended.",
    )
    rubric: list[Criterion] = Field(
        default_factory=list, max_length=10,
        description="open-ended: the criteria the Verifier scores each response on, 1 to 10 each (short names: a "
        "letter, then letters, digits, spaces, '-' or '_'; at most 48 characters). Empty: one criterion, overall.",
    )
    min_spread: float = Field(
        default=0.1, ge=0, le=1,
        description="open-ended label band: keep a task whose score spread (the normalised standard deviation of "
        "its m responses' scores, 0 to 1) is at least this (near 0: the judge scores every response alike).",
    )
    max_spread: float = Field(
        default=0.9, ge=0, le=1,
        description="open-ended label band: keep a task whose score spread is at most this (near 1: saturated, "
        "half the responses at the bottom and half at the top).",
    )
    held_out: HeldOutSettings | None = Field(
        default=None,
        description="open-ended: held-out tasks; each iteration's evaluation then reports the win rate of its "
        "Solver against iteration 0's, judged by the oracle (oracle.model or oracle.endpoint) in both orders.",
    )

    @model_validator(mode="after")
    def _open_ended_fields(self) -> "TaskSettings":
        if self.kind == "verifiable":
            for name, value in (("description", self.description), ("rubric", self.rubric),
                                ("heldOut", self.held_out)):
                if value:
                    raise ValueError(f"{name}: applies only to kind open-ended")
            return self
        if self.description is None or not self.description.strip():
            raise ValueError("description: an open-ended task needs a description of its domain")
        lowered = [criterion.strip().lower() for criterion in self.rubric]
        repeated = sorted({c for c in lowered if lowered.count(c) > 1})
        if repeated:
            raise ValueError(f"rubric: criteria must be unique, repeated: {', '.join(repeated)}")
        if self.min_spread >= self.max_spread:
            raise ValueError("maxSpread: must be above minSpread")
        return self

    @property
    def open_ended(self) -> bool:
        return self.kind == "open-ended"

    @property
    def criteria(self) -> tuple[str, ...]:
        return tuple(criterion.strip() for criterion in self.rubric) or DEFAULT_CRITERIA


class OpenEndedInput(Schema):
    """An open-ended phase's task settings and its judge (the frozen Verifier), resolved by the operator."""

    task: TaskSettings = Field(description="The run's spec.task (kind open-ended).")
    judge: VerifierInput = Field(description="The Verifier that scores the Solver's responses.")

    @model_validator(mode="after")
    def _open_ended(self) -> "OpenEndedInput":
        if not self.task.open_ended:
            raise ValueError("task.kind: must be open-ended")
        return self


class WinRateInput(Schema):
    """The evaluate task's win-rate comparison: this iteration's Solver against `baseline` on held-out tasks."""

    task: TaskSettings = Field(description="The run's spec.task (kind open-ended, with heldOut).")
    baseline: ModelInput = Field(description="Iteration 0's Solver.")
    judge: VerifierInput = Field(description="The oracle model or endpoint that compares two responses.")

    @model_validator(mode="after")
    def _held_out(self) -> "WinRateInput":
        if self.task.held_out is None:
            raise ValueError("task.heldOut: the win rate needs held-out tasks")
        return self
