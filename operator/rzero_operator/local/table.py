"""The per-iteration status table printed by `rzero status` and at the end of `rzero run`."""

from __future__ import annotations

from rzero_operator.report import iteration_rows
from rzero_worker.task import PHASES


def _cell(value, pattern: str = "{}") -> str:
    return "-" if value is None else pattern.format(value)


def _phase_states(entry: dict) -> str:
    """Compact per-phase progress, e.g. 'challenger✓ generate✓ label… solver evaluate'."""
    marks = {"Succeeded": "✓", "Running": "…", "Failed": "✗", "Pending": ""}
    phases = entry.get("phases") or {}
    parts = []
    for phase in sorted(phases, key=lambda name: PHASES.index(name) if name in PHASES else len(PHASES)):
        state = (phases[phase] or {}).get("state", "")
        parts.append(phase + marks.get(state, ""))
    return " ".join(parts)


def format_status_table(run_name: str, status: dict) -> str:
    """A fixed-width table: one row per iteration with kept questions, agreement and scores."""
    rows = iteration_rows(status)
    history = {int(entry.get("iteration", 0)): entry for entry in status.get("iterationHistory") or []}
    benchmarks = sorted({name for row in rows for name in row.scores})
    header = ["iter", "generated", "valid", "kept", "agreement", "label=chal"] + benchmarks + ["phases"]
    body = []
    for row in rows:
        body.append(
            [
                str(row.iteration),
                _cell(row.generated),
                _cell(row.valid),
                _cell(row.kept),
                _cell(row.mean_agreement, "{:.3f}"),
                _cell(row.label_matches_challenger, "{:.2f}"),
                *[_cell(row.scores.get(name), "{:.3f}") for name in benchmarks],
                _phase_states(history.get(row.iteration, {})),
            ]
        )
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    render = lambda cells: "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()  # noqa: E731
    current = status.get("current") or {}
    lines = [
        f"run {run_name}: {status.get('phase', 'Pending')}"
        + (f", iteration {status['iteration']}" if status.get("iteration") is not None else "")
        + (f", stage {status['stage']}" if status.get("stage") else "")
        + (f" (attempt {current['attempt']})" if current.get("attempt", 1) not in (None, 1) else ""),
    ]
    if status.get("message"):
        lines.append(f"  {status['message']}")
    lines += ["", render(header), render(["-" * width for width in widths])]
    lines += [render(cells) for cells in body] or ["(no iteration recorded yet)"]
    return "\n".join(lines)
