"""Label accuracy: the share of pseudo-labels an oracle agrees with, with its 95% interval.

An oracle answer counts as the gold answer; a pseudo-label is right when math-verify finds it equivalent
(the grading pool, gold first). Questions the oracle cannot answer are not checked: the accuracy is over
`checked` questions, and `checked` is reported beside it so a reader sees how much it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rzero_worker.benchmarks.scoring import wilson_interval
from rzero_worker.grading import grade


@dataclass
class LabelCheck:
    oracle: str
    checked: int = 0
    correct: int = 0
    verdicts: list[bool | None] = field(default_factory=list)  # per row: None = not checked
    answers: list[str | None] = field(default_factory=list)  # per row: the oracle's answer

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.checked if self.checked else None

    def metrics(self) -> dict:
        low, high = wilson_interval(self.correct, self.checked)
        return {
            "oracle": self.oracle,
            "oracle_checked": self.checked,
            "oracle_correct": self.correct,
            "label_accuracy": self.accuracy,
            "label_accuracy_ci95": [low, high] if self.checked else None,
        }


def check_labels(rows: list[dict], oracle, pool) -> LabelCheck:
    """Compare each row's `label` with `oracle`'s answer to its `question`."""
    answers = oracle.answer([row["question"] for row in rows]) if rows else []
    checked = [index for index, answer in enumerate(answers) if answer is not None]
    verdicts: list[bool | None] = [None] * len(rows)
    if checked:
        results = grade([rows[i]["label"] for i in checked], [answers[i] for i in checked], pool)
        for index, verdict in zip(checked, results):
            verdicts[index] = verdict is True
    correct = sum(1 for verdict in verdicts if verdict)
    return LabelCheck(oracle=oracle.name, checked=len(checked), correct=correct, verdicts=verdicts, answers=answers)
