"""The model card (README.md) written beside an exported Solver: what it is and how it was made.

Plain text from plain data (`task.ModelCardData`): the base model, the iterations run, per iteration the
kept questions, the label accuracy with its interval and the evaluation scores, and the spec that
produced the model. Stdlib and PyYAML only.
"""

from __future__ import annotations

import re

import yaml

from rzero_worker.task import ModelCardData

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _front_matter(card: ModelCardData) -> str:
    meta: dict = {"library_name": "transformers", "tags": ["r-zero", "rzero", "self-evolving", "reasoning"]}
    if _HUB_ID.match(card.base_model):  # the Hub's base_model field takes a repository id only
        meta["base_model"] = card.base_model
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _accuracy_cell(row) -> str:
    if row.label_accuracy is None:
        return "–"
    low, high = row.label_accuracy_ci95 or (None, None)
    interval = f" [{_percent(low)}, {_percent(high)}]" if low is not None else ""
    return f"{_percent(row.label_accuracy)}{interval} (n={row.oracle_checked}, {row.oracle})"


def iteration_table(card: ModelCardData) -> list[str]:
    benchmarks = sorted({name for row in card.rows for name in row.scores})
    header = ["iteration", "kept questions", "label accuracy % [95% CI]", "mean score %", *benchmarks]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in sorted(card.rows, key=lambda r: r.iteration):
        cells = [str(row.iteration), "–" if row.kept is None else str(row.kept), _accuracy_cell(row),
                 _percent(row.mean_score), *(_percent(row.scores.get(name)) for name in benchmarks)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_model_card(card: ModelCardData, run: str, role: str, iteration: int, *, best: int, last: int) -> str:
    """README.md of the exported Solver `role` ("best" or "last") of `iteration`."""
    what = []
    if iteration == best:
        what.append("the **best** iteration by mean evaluation score")
    if iteration == last:
        what.append("the **last** Solver " + ("the run trained" if last > 0 else "(the run trained none)"))
    warmed = bool((card.spec.get("warmup") or {}).get("enabled"))
    base = "the base model after the format warm-up" if warmed else "the base model itself"
    source = f"{base} (no trained Solver scored higher)" if iteration == 0 else f"iteration {iteration}"
    lines = [
        _front_matter(card),
        f"# {run}: R-Zero Solver, {source}",
        "",
        f"This is {' and '.join(what) or role} of the rzero run `{run}`: R-Zero self-evolving training "
        "(a Challenger writes questions, the Solver learns from its own majority-vote pseudo-labels; "
        "arXiv 2508.05004). A plain Hugging Face directory: load it with `AutoModelForCausalLM.from_pretrained`.",
        "",
        f"- base model: `{card.base_model}`",
        f"- iterations: {max((r.iteration for r in card.rows), default=0)} run of {card.iterations} asked for",
        f"- best iteration: {best}; last trained Solver: iteration {last}",
    ]
    if card.stopped:
        lines.append(f"- stopped early: {card.stopped}")
    lines += [
        "", "## Iterations", "",
        "Iteration 0 is the base model. Label accuracy is the share of the iteration's pseudo-labels an "
        "oracle agreed with (n checked; 95% Wilson interval); scores are greedy accuracy on the run's benchmarks.",
        "", *iteration_table(card),
        "", "## The RZeroRun spec that produced it", "", "```yaml",
        yaml.safe_dump(card.spec, sort_keys=False).rstrip(), "```", "",
    ]
    return "\n".join(lines)
