"""The one interface every oracle has (exact arithmetic here; a model or an HTTP endpoint alike)."""

from __future__ import annotations

from typing import Protocol


class Oracle(Protocol):
    """Answers questions independently of the Solver. `name` appears in the label phase's statistics."""

    name: str

    def answer(self, questions: list[str]) -> list[str | None]:
        """One answer per question, in order; None where this oracle cannot answer (that question is not
        checked, and does not count for or against the labels)."""
        ...
