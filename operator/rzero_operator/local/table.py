"""The per-iteration status table printed by `rzero status` and at the end of `rzero run`: questions and
phases per iteration, then the evaluation in the paper's layout (scoretable.py)."""

from __future__ import annotations

from rzero_operator.report import iteration_rows
from rzero_operator.api.openended import open_ended_lines
from rzero_operator.scoretable import score_table
from rzero_worker.task import ALL_PHASES


def _cell(value, pattern: str = "{}") -> str:
    return "-" if value is None else pattern.format(value)


def _phase_states(entry: dict) -> str:
    """Compact per-phase progress, e.g. 'challenger✓ generate✓ label… solver evaluate'."""
    marks = {"Succeeded": "✓", "Running": "…", "Failed": "✗", "Pending": ""}
    phases = entry.get("phases") or {}
    parts = []
    for phase in sorted(phases, key=lambda name: ALL_PHASES.index(name) if name in ALL_PHASES else len(ALL_PHASES)):
        state = (phases[phase] or {}).get("state", "")
        parts.append(phase + marks.get(state, ""))
    return " ".join(parts)


def format_status_table(run_name: str, status: dict) -> str:
    """Fixed-width tables: one row per iteration with kept questions, agreement and phases; then scores."""
    rows = iteration_rows(status)
    history = {int(entry.get("iteration", 0)): entry for entry in status.get("iterationHistory") or []}
    header = ["iter", "generated", "valid", "kept", "agreement", "label=chal", "label-acc", "entropy", "edge", "phases"]
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
                label_accuracy_cell(row),
                _cell(row.answer_entropy, "{:.2f}"),
                _cell(row.band_edge_share, "{:.2f}"),
                _phase_states(history.get(row.iteration, {})),
            ]
        )
    current = status.get("current") or {}
    lines = [
        f"run {run_name}: {status.get('phase', 'Pending')}"
        + (f", iteration {status['iteration']}" if status.get("iteration") is not None else "")
        + (f", stage {status['stage']}" if status.get("stage") else "")
        + (f" (attempt {current['attempt']})" if current.get("attempt", 1) not in (None, 1) else ""),
    ]
    if status.get("message"):
        lines.append(f"  {status['message']}")
    lines += ["", *_columns(header, body)] + ([] if body else ["(no iteration recorded yet)"])
    lines += veto_lines(status)
    lines += open_ended_lines(status)  # spec.task open-ended: the judge report and the win rate
    lines += oversight_lines(status)
    score_header, score_body = score_table(rows, digits=1)
    if score_body:
        lines += ["", "accuracy % (change from iteration 0):"] + _columns(score_header, score_body)
    return "\n".join(lines)


def label_accuracy_cell(row) -> str:
    """'0.71[0.58-0.81]n=40' (oracle-checked label accuracy, its 95% interval and n), or '-'."""
    if row.label_accuracy is None:
        return "-"
    low, high = row.label_accuracy_ci95 or (0.0, 1.0)
    return f"{row.label_accuracy:.2f}[{low:.2f}-{high:.2f}]n={row.oracle_checked}"


def veto_lines(status: dict) -> list[str]:
    """One line per iteration whose labels the Verifier vetoed (labeling.verifier: veto)."""
    from rzero_operator.api.oversight import VerifierTrainingRecord, VetoRecord
    from rzero_operator.oversight import verifier_event, veto_text

    lines = []
    for entry in status.get("iterationHistory") or []:
        if isinstance(entry.get("verifier"), dict):
            veto = VetoRecord.model_validate(entry["verifier"])
            lines.append(f"veto, iteration {entry.get('iteration')}: {veto_text(veto)}")
        if isinstance(entry.get("verifierTraining"), dict):  # spec.verifier.mode trained
            trained = VerifierTrainingRecord.model_validate(entry["verifierTraining"])
            text = verifier_event(int(entry.get("iteration", 0)), trained)[2].split(": ", 1)[1]
            lines.append(f"verifier, iteration {entry.get('iteration')}: {text}")
    return [""] + lines if lines else []


def oversight_lines(status: dict) -> list[str]:
    """The best iteration, a waiting gate, an early stop, the export and storage, when there are any."""
    lines = []
    best = status.get("bestIteration")
    if best:
        lines.append(f"best iteration: {best['iteration']} (mean score {best['score']:.3f}), solver {best['solverCheckpoint']}")
    gate = status.get("approval")
    if gate:
        lines.append(f"waiting for approval: iteration {gate['iteration']} after {gate['after']}; audit sample "
                     f"{gate.get('auditSample', '')}; rzero approve FILE --iteration {gate['iteration']} [--reject]")
    for decision in status.get("approvals") or []:
        lines.append(f"gate {decision['gate']}: {decision['decision']} by {decision.get('by', '')} at "
                     f"{decision.get('at', '')}" + (f" ({decision['reason']})" if decision.get("reason") else ""))
    stopped = status.get("stopped")
    if stopped:
        lines.append(f"stopped in iteration {stopped['iteration']} ({stopped['reason']}): {stopped.get('message', '')}")
    exported = status.get("export")
    if exported:
        lines.append(f"exported: best {exported['best']['location']}, last {exported['last']['location']}")
    if status.get("storageBytes") is not None:
        lines.append(f"storage: {status['storageBytes'] / 1e6:.1f} MB in committed outputs")
    return [""] + lines if lines else []


def _columns(header: list[str], body: list[list[str]]) -> list[str]:
    """Fixed-width lines: header, rule, body."""
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    render = lambda cells: "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()  # noqa: E731
    return [render(header), render(["-" * width for width in widths])] + [render(cells) for cells in body]
