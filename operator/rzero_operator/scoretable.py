"""The evaluation table by iteration, laid out like the paper's so a run can be put next to it.

Columns: Overall AVG and MATH AVG (when the run evaluates presets), then the paper's benchmarks in the
order of its Table 1 (AMC23, Minerva, MATH-500, GSM8K, OlympiadBench, AIME25, AIME24) and Table 2
(SuperGPQA, MMLU-Pro, BBEH), then any other benchmark by name. Cells are accuracies in percent, as the
paper prints them; from iteration 1 on each cell also shows the change from iteration 0 (the base model)
in percentage points, the paper's "+6.49".

An open-ended run with held-out tasks (spec.task.heldOut) gets a last column, the win rate against iteration 0
with its 95% interval ("55.00 [40.1, 69.0]"); it has no change from iteration 0 (iteration 0 is the baseline).

Input is the status history as `report.IterationRow`s (plain data): `rzero report`, `rzero status` and
anything reading a cluster run's status get the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rzero_worker.benchmark_presets import AVERAGE_TITLES, GENERAL_ORDER, MATH_AVERAGE, MATHS_ORDER, OVERALL_AVERAGE, PRESETS


WIN_RATE = "winRate"  # the column key of the open-ended win rate (never a benchmark name: those are lowercase)
WIN_RATE_TITLE = "Win rate vs it. 0"


@dataclass(frozen=True)
class ScoreColumn:
    key: str  # a benchmark name, or MATH_AVERAGE / OVERALL_AVERAGE
    title: str


def row_values(row: Any) -> dict[str, float]:
    """An IterationRow's scores and paper averages, keyed by column."""
    values = dict(row.scores)
    for key, value in ((OVERALL_AVERAGE, row.overall_average), (MATH_AVERAGE, row.math_average)):
        if value is not None:
            values[key] = value
    if getattr(row, "win_rate", None) is not None:
        values[WIN_RATE] = row.win_rate
    return values


def score_columns(rows: list[Any]) -> list[ScoreColumn]:
    """The columns that have a value in some row, in the paper's order (other benchmarks after, by name)."""
    present = {key for row in rows for key in row_values(row)}
    ordered = [OVERALL_AVERAGE, MATH_AVERAGE, *MATHS_ORDER, *GENERAL_ORDER]
    columns = [ScoreColumn(key, AVERAGE_TITLES.get(key) or PRESETS[key].title) for key in ordered if key in present]
    others = [ScoreColumn(key, key) for key in sorted(present - set(ordered) - {WIN_RATE})]
    return columns + others + ([ScoreColumn(WIN_RATE, WIN_RATE_TITLE)] if WIN_RATE in present else [])


def score_table(rows: list[Any], digits: int = 2) -> tuple[list[str], list[list[str]]]:
    """(header, body): one line per iteration that has scores; cells 'acc' or 'acc (+delta)'."""
    columns = score_columns(rows)
    scored = [row for row in rows if row_values(row)]
    base = next((row_values(row) for row in scored if row.iteration == 0), {})
    body = []
    for row in scored:
        values = row_values(row)
        cells = [str(row.iteration)]
        for column in columns:
            value = values.get(column.key)
            if value is None:
                cells.append("–")
                continue
            cell = f"{100 * value:.{digits}f}"
            if column.key == WIN_RATE:
                cells.append(cell + _interval(getattr(row, "win_rate_ci95", None)))
                continue
            if row.iteration > 0 and column.key in base:
                cell += f" ({100 * (value - base[column.key]):+.{digits}f})"
            cells.append(cell)
        body.append(cells)
    return ["iteration", *(column.title for column in columns)], body


def _interval(ci95) -> str:
    """' [low, high]' in percent (one decimal), or nothing without an interval."""
    if not isinstance(ci95, (list, tuple)) or len(ci95) != 2:
        return ""
    return f" [{100 * ci95[0]:.1f}, {100 * ci95[1]:.1f}]"
