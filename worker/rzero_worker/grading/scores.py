r"""Reading the open-ended judge's outputs (prompts_openended.py): rubric scores and pairwise preferences.

Scores (`parse_scores`). The judge ends with one `\boxed{}` holding one `criterion: score` entry per rubric
criterion, entries separated by new lines or `;`, each score an integer from 1 to 10, e.g.
`\boxed{clarity: 7; accuracy: 4}`. The last complete box is read. Criterion names match case-insensitively
and ignoring surrounding spaces; `7/10` reads as 7. The output is *unparsable* (None) when there is no box, an
entry is not `name: integer`, a criterion is missing, repeated or unknown, or a score is outside 1..10. Callers
count an unparsable output and never read it as a high score (rewards_openended.py gives it 0).

Preferences (`parse_preference`). The pairwise judge ends with `\boxed{A}`, `\boxed{B}` or `\boxed{tie}`
(case and one `\text{}` wrapper ignored); anything else is None (unparsable).
"""

from __future__ import annotations

import re

from .extract import extract_boxed

MIN_SCORE, MAX_SCORE = 1, 10
_ENTRY = re.compile(r"^\s*([A-Za-z][A-Za-z0-9 _-]*?)\s*[:=]\s*(\d{1,3})\s*(?:/\s*10\s*)?\.?\s*$")
_SEPARATORS = re.compile(r"[;\n]")
_WRAPPER = re.compile(r"^\\(?:text|textbf|mathrm|textit)\s*\{(.*)\}$", re.DOTALL)
PREFERENCES = {"a": "A", "b": "B", "tie": "tie"}


def parse_scores(text: str | None, criteria: tuple[str, ...] | list[str]) -> dict[str, int] | None:
    """{criterion: score} for every criterion, or None when the output is unparsable (module notes)."""
    content = extract_boxed(text)
    if content is None:
        return None
    wanted = {criterion.strip().lower(): criterion for criterion in criteria}
    scores: dict[str, int] = {}
    for part in _SEPARATORS.split(content):
        if not part.strip():
            continue
        match = _ENTRY.match(part)
        if match is None:
            return None
        name, value = match.group(1).strip().lower(), int(match.group(2))
        if name not in wanted or wanted[name] in scores or not MIN_SCORE <= value <= MAX_SCORE:
            return None
        scores[wanted[name]] = value
    return scores if len(scores) == len(wanted) else None


def normalised_score(scores: dict[str, int] | None) -> float | None:
    """The mean criterion score mapped from 1..10 onto 0..1; None for an unparsable output."""
    if not scores:
        return None
    mean = sum(scores.values()) / len(scores)
    return (mean - MIN_SCORE) / (MAX_SCORE - MIN_SCORE)


def parse_preference(text: str | None) -> str | None:
    """'A', 'B' or 'tie' from the pairwise judge's last box; None when unparsable."""
    content = extract_boxed(text)
    if content is None:
        return None
    wrapped = _WRAPPER.match(content.strip())
    word = (wrapped.group(1) if wrapped else content).strip().rstrip(".").strip().lower()
    return PREFERENCES.get(word)
