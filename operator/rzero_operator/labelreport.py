"""The report's label-drift part: label accuracy (with its interval) and the evaluation score by iteration.

R-Zero's pseudo-labels get less accurate as the Challenger's questions get harder (the paper: ~79% in
iteration 1, ~63% in iteration 3); plotted beside the mean evaluation score, a reader sees whether the
Solver still learns from them. Without oracle checks the table shows the proxies instead (answer entropy,
share of kept questions at the band's edges).
"""

from __future__ import annotations

from pathlib import Path

PLOT_FILE = "label-accuracy.png"


def has_label_figures(rows) -> bool:
    return any(row.label_accuracy is not None or row.answer_entropy is not None for row in rows)


def plot_label_accuracy(rows, path: Path) -> None:
    """Label accuracy with its 95% interval (error bars) and the mean evaluation score, by iteration."""
    from .report import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    checked = [row for row in rows if row.label_accuracy is not None]
    if checked:
        xs = [row.iteration for row in checked]
        ys = [row.label_accuracy for row in checked]
        # max(0, ...): a Wilson bound rounds to a hair past its estimate at 0% and 100% (0 of 6: low 5e-18)
        lows = [max(0.0, y - (row.label_accuracy_ci95 or [y, y])[0]) for row, y in zip(checked, ys)]
        highs = [max(0.0, (row.label_accuracy_ci95 or [y, y])[1] - y) for row, y in zip(checked, ys)]
        ax.errorbar(xs, ys, yerr=[lows, highs], marker="o", capsize=4, label="label accuracy (95% CI)")
    scored = [row for row in rows if row.mean_score is not None]
    if scored:
        ax.plot([row.iteration for row in scored], [row.mean_score for row in scored], marker="s",
                linestyle="--", label="mean evaluation score")
    ax.set_xticks(sorted({row.iteration for row in rows}))
    ax.set_xlabel("iteration")
    ax.set_ylabel("share")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _cell(value, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def label_section(rows) -> list[str]:
    """Markdown: which oracle checked each iteration's labels, the proxies, and the mean score (the label
    accuracy itself is in the report's first table)."""
    rows = [row for row in rows if row.iteration > 0]
    if not rows or not has_label_figures(rows):
        return []
    lines = ["", "## Label drift", "",
             "Beside the label accuracy above: the oracle it comes from, and two proxies that need no oracle — the "
             "mean entropy (bits) of the kept questions' answers and the share of kept questions one vote from "
             "the band's edges — with the mean evaluation score of the Solver trained on those labels.",
             "", "| iteration | oracle | answer entropy | at band edges | mean score % |", "|---|---|---|---|---|"]
    for row in rows:
        score = None if row.mean_score is None else 100 * row.mean_score
        lines.append(f"| {row.iteration} | {row.label_oracle or '–'} | {_cell(row.answer_entropy, '{:.2f}')} | "
                     f"{_cell(row.band_edge_share, '{:.2f}')} | {_cell(score, '{:.1f}')} |")
    return lines


def verifier_section(status: dict) -> list[str]:
    """Markdown: the trained Verifier by iteration (spec.verifier.mode trained) — its examples, held-out accuracy
    before and after its GRPO phase, on the oracle-checked examples alone, reward spread and weight change (a
    Verifier that learned nothing shows a spread or a change of 0)."""
    entries = [(entry.get("iteration"), entry["verifierTraining"]) for entry in status.get("iterationHistory") or []
               if isinstance(entry.get("verifierTraining"), dict)]
    if not entries:
        return []
    lines = ["", "## Trained Verifier", "",
             "Accuracy of its greedy verdicts on held-out verification examples (unparsable = wrong), before and after "
             "each iteration's training; the next iteration's veto judges with the trained one.", "",
             "| iteration | examples (train / held out) | accuracy before | accuracy after | oracle-checked before / after "
             "| reward spread | weight change |", "|---|---|---|---|---|---|---|"]
    for iteration, trained in entries:
        oracle = (f"{_cell(trained.get('oracleAccuracyBefore'), '{:.2f}')} / "
                  f"{_cell(trained.get('oracleAccuracyAfter'), '{:.2f}')} (n={trained.get('oracleHeldOut') or 0})")
        lines.append(f"| {iteration} | {trained.get('examples', 0)} ({trained.get('trainExamples', 0)} / "
                     f"{trained.get('heldOut', 0)}) | {_cell(trained.get('accuracyBefore'), '{:.2f}')} | "
                     f"{_cell(trained.get('accuracyAfter'), '{:.2f}')} | {oracle} | "
                     f"{_cell(trained.get('rewardStd'), '{:.3f}')} | {_cell(trained.get('weightChange'), '{:.2e}')} |")
    return lines
