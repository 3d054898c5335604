"""The run report: PNG plots and a short Markdown summary of a run's iterations.

Inputs are plain data, so the report works the same for a local run and a cluster run:
- the RZeroRun status as stored (camelCase dict): its `iterationHistory` gives questions generated and
  kept, mean agreement, drop reasons, the label-drift signal and evaluation scores per iteration;
- the label phase's agreement-score histograms per iteration (10 bins over [0, 1], summed over shards),
  read from the committed label summaries by `read_label_histograms`;
- optionally the evaluation's full score entries (interval, n, avg@k, guesses) merged over shards,
  read from the committed evaluate summaries by `read_evaluation`.

The score table follows the paper's layout (see scoretable.py).

matplotlib is imported only when plots are drawn, with the non-interactive Agg backend (no display).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .labelreport import PLOT_FILE as LABEL_PLOT, label_section, plot_label_accuracy, verifier_section
from .scoretable import score_columns, score_table

HISTOGRAM_BINS = 10


@dataclass(frozen=True)
class IterationRow:
    """One iteration's figures, flattened from the status history (missing figures are None)."""

    iteration: int
    generated: int | None
    valid: int | None  # parsed (<question> + \\boxed{}) and not duplicated
    kept: int | None
    mean_agreement: float | None
    label_matches_challenger: float | None
    scores: dict[str, float]
    drop_reasons: dict[str, int]
    math_average: float | None = None
    overall_average: float | None = None
    label_accuracy: float | None = None  # oracle-checked share of right pseudo-labels (labelreport.py)
    label_accuracy_ci95: list[float] | None = None
    oracle_checked: int | None = None
    label_oracle: str | None = None
    answer_entropy: float | None = None  # proxies when no oracle checked anything
    band_edge_share: float | None = None
    mean_score: float | None = None
    win_rate: float | None = None  # spec.task open-ended: against iteration 0 (api/openended.py)
    win_rate_ci95: list[float] | None = None


def _accuracy(value: Any) -> float | None:
    """A score entry may be a bare accuracy or {"accuracy": ..., ...}."""
    if isinstance(value, dict):
        value = value.get("accuracy")
    return float(value) if isinstance(value, (int, float)) else None


def iteration_rows(status: dict) -> list[IterationRow]:
    """The status history as rows ordered by iteration."""
    rows = []
    for entry in status.get("iterationHistory") or []:
        scores = {name: acc for name, raw in (entry.get("scores") or {}).items() if (acc := _accuracy(raw)) is not None}
        rows.append(
            IterationRow(
                iteration=int(entry.get("iteration", 0)),
                generated=entry.get("questionsGenerated"),
                valid=entry.get("questionsValid"),
                kept=entry.get("questionsKept"),
                mean_agreement=entry.get("meanAgreement"),
                label_matches_challenger=entry.get("labelMatchesChallenger"),
                scores=scores,
                drop_reasons=dict(entry.get("dropReasons") or {}),
                math_average=entry.get("mathAverage"),
                overall_average=entry.get("overallAverage"),
                label_accuracy=entry.get("labelAccuracy"),
                label_accuracy_ci95=entry.get("labelAccuracyCi95"),
                oracle_checked=entry.get("oracleChecked"),
                label_oracle=entry.get("labelOracle"),
                answer_entropy=entry.get("answerEntropy"),
                band_edge_share=entry.get("bandEdgeShare"),
                mean_score=entry.get("meanScore"),
                win_rate=(entry.get("winRate") or {}).get("winRate"),
                win_rate_ci95=(entry.get("winRate") or {}).get("winRateCi95"),
            )
        )
    return sorted(rows, key=lambda row: row.iteration)


def sum_histograms(histograms: Iterable[list[int]]) -> list[int]:
    """Add shard histograms bin by bin (all have HISTOGRAM_BINS bins)."""
    total = [0] * HISTOGRAM_BINS
    for histogram in histograms:
        if len(histogram) != HISTOGRAM_BINS:
            raise ValueError(f"score_histogram must have {HISTOGRAM_BINS} bins, got {len(histogram)}")
        total = [a + int(b) for a, b in zip(total, histogram)]
    return total


def committed_shard_summaries(storage, prefix: str) -> dict[str, dict]:
    """{shard name: summary} of the committed `shard-*` outputs under a phase prefix, in shard order.

    `storage` is an rzero_worker.storage Storage rooted at the run root."""
    from rzero_worker.storage import is_committed
    from rzero_worker.summary import read_summary

    # list() returns run-relative keys: <prefix>/shard-IIIII-of-KKKKK/<file>
    relative = (key[len(prefix) + 1 :] for key in storage.list(prefix))
    shards = sorted({rel.split("/")[0] for rel in relative if rel.startswith("shard-")})
    return {shard: read_summary(storage, f"{prefix}/{shard}") or {} for shard in shards
            if is_committed(storage, f"{prefix}/{shard}")}


def read_label_histograms(storage, iterations: Iterable[int]) -> dict[int, list[int]]:
    """Agreement histograms per iteration from the committed label shards' summary.json files; iterations
    whose labels are not committed yet are left out."""
    result: dict[int, list[int]] = {}
    for iteration in iterations:
        summaries = committed_shard_summaries(storage, f"iter-{iteration:03d}/label").values()
        histograms = [s.get("metrics", {}).get("score_histogram") or [0] * HISTOGRAM_BINS for s in summaries]
        if histograms:
            result[iteration] = sum_histograms(histograms)
    return result


def read_evaluation(storage, iterations: Iterable[int]) -> dict[int, dict[str, dict]]:
    """Full score entries per iteration, merged over the evaluate shards of one complete attempt (all K
    shards of a K-shard split committed: a partial merge would understate n)."""
    from rzero_worker.benchmarks.scoring import merge_scores

    result = {}
    for iteration in iterations:
        by_count: dict[int, list[dict]] = {}
        for shard, summary in committed_shard_summaries(storage, f"iter-{iteration:03d}/evaluate").items():
            by_count.setdefault(int(shard.rsplit("-of-", 1)[1]), []).append(summary)
        complete = [summaries for count, summaries in by_count.items() if len(summaries) == count]
        if complete:
            result[iteration] = merge_scores(s.get("metrics", {}).get("scores") for s in complete[-1])
    return result


# --------------------------------------------------------------------------------------------------
# Plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_histograms(histograms: dict[int, list[int]], path: Path, band: tuple[float, float] | None) -> None:
    """One panel per iteration: how many questions reached each agreement share."""
    plt = _pyplot()
    iterations = sorted(histograms)
    fig, axes = plt.subplots(1, len(iterations), figsize=(4 * len(iterations), 3.2), squeeze=False, sharey=True)
    edges = [i / HISTOGRAM_BINS for i in range(HISTOGRAM_BINS)]
    for ax, iteration in zip(axes[0], iterations):
        if band:
            ax.axvspan(band[0], band[1], color="tab:green", alpha=0.12, label="kept band")
        ax.bar(edges, histograms[iteration], width=1 / HISTOGRAM_BINS, align="edge", edgecolor="black")
        ax.set_title(f"iteration {iteration}")
        ax.set_xlabel("agreement (majority share)")
        ax.set_xlim(0, 1)
    axes[0][0].set_ylabel("questions")
    if band:
        axes[0][0].legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_kept(rows: list[IterationRow], path: Path) -> None:
    """Questions generated vs kept after the agreement filter, per iteration."""
    plt = _pyplot()
    rows = [row for row in rows if row.iteration > 0]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    xs = [row.iteration for row in rows]
    ax.bar([x - 0.27 for x in xs], [row.generated or 0 for row in rows], width=0.27, label="generated")
    ax.bar(xs, [row.valid or 0 for row in rows], width=0.27, label="valid")
    ax.bar([x + 0.27 for x in xs], [row.kept or 0 for row in rows], width=0.27, label="kept")
    ax.set_xticks(xs)
    ax.set_xlabel("iteration")
    ax.set_ylabel("questions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_scores(rows: list[IterationRow], path: Path) -> None:
    """Evaluation accuracy per benchmark by iteration (iteration 0 = the base model)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    benchmarks = [column.key for column in score_columns(rows) if column.key in {n for row in rows for n in row.scores}]
    for name in benchmarks:
        points = [(row.iteration, row.scores[name]) for row in rows if name in row.scores]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    ax.set_xticks(sorted({row.iteration for row in rows}))
    ax.set_xlabel("iteration")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    if benchmarks:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# Markdown


def _fmt(value: Any, pattern: str = "{}") -> str:
    return "–" if value is None else pattern.format(value)


def render_markdown(
    run_name: str, status: dict, rows: list[IterationRow], images: list[str],
    evaluation: dict[int, dict[str, dict]] | None = None,
) -> str:
    lines = [
        f"# R-Zero run `{run_name}`",
        "",
        f"Phase **{status.get('phase', 'Pending')}**"
        + (f", stage {status['stage']}" if status.get("stage") else "")
        + (f" — {status['message']}" if status.get("message") else ""),
        "",
        "| iteration | generated | valid | kept | mean agreement | label accuracy (95% interval, checked) "
        "| label = challenger's answer |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.iteration} | {_fmt(row.generated)} | {_fmt(row.valid)} | {_fmt(row.kept)} | "
            f"{_fmt(row.mean_agreement, '{:.3f}')} | {_label_accuracy(row)} | "
            f"{_fmt(row.label_matches_challenger, '{:.2f}')} |"
        )
    lines += _score_section(rows, evaluation or {})
    lines += label_section(rows)
    lines += verifier_section(status)
    drops = [row for row in rows if row.drop_reasons]
    if drops:
        lines += ["", "Dropped questions by reason:", ""]
        for row in drops:
            reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(row.drop_reasons.items()))
            lines.append(f"- iteration {row.iteration}: {reasons}")
    lines += [
        "",
        "The pseudo-labels are the Solver's own majority answers: a falling *label = challenger's answer* share "
        "is an early sign of label drift (the paper measures label accuracy falling from 79% to 63% over three "
        "iterations).",
        "",
    ]
    lines += [f"![{Path(image).stem}]({image})" for image in images]
    return "\n".join(lines) + "\n"


def _label_accuracy(row: IterationRow) -> str:
    """'0.83 (0.61–0.94, 12 checked)': the share of oracle-checked pseudo-labels that are right."""
    if row.label_accuracy is None:
        return "–" if not row.oracle_checked else f"– (0 of {row.oracle_checked})"
    low, high = row.label_accuracy_ci95 or (0.0, 1.0)
    return f"{row.label_accuracy:.2f} ({low:.2f}–{high:.2f}, {row.oracle_checked} checked)"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _score_section(rows: list[IterationRow], evaluation: dict[int, dict[str, dict]]) -> list[str]:
    """The paper-style score table, then the latest full evaluation's intervals."""
    header, body = score_table(rows)
    if not body:
        return []
    lines = [
        "", "## Evaluation", "",
        "Accuracy in percent; from iteration 1 on, the change from iteration 0 (the base model) in points. "
        "MATH AVG is the mean over the paper's maths benchmarks evaluated, Overall AVG the mean of MATH AVG "
        "and the general-reasoning ones (SuperGPQA, MMLU-Pro, BBEH), as in the paper's tables; the run's own "
        "benchmarks follow by name and are in neither average.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    if any(row.win_rate is not None for row in rows):  # spec.task open-ended with heldOut (docs/open-ended.md)
        lines += ["", "Win rate vs it. 0: the iteration's Solver against iteration 0's on the held-out tasks, judged by "
                  "the oracle in both orders; (wins + ties / 2) / judged tasks, with its 95% Wilson interval."]
    if evaluation:
        latest = max(evaluation)
        lines += ["", f"Iteration {latest} in detail:", "",
                  "| benchmark | accuracy % | 95% interval | n | avg@k % | guessed letters |", "|---|---|---|---|---|---|"]
        for name, entry in evaluation[latest].items():
            low, high = entry["ci95"]
            avg = f"{100 * entry['avg_at_k']:.2f} (k={entry['k']})" if entry.get("avg_at_k") is not None else "–"
            lines.append(f"| {name} | {_percent(entry['accuracy'])} | "
                         f"{100 * low:.1f}–{100 * high:.1f} | {entry['n']} | {avg} | {_fmt(entry.get('guessed'))} |")
    return lines


def write_report(
    out_dir: Path,
    run_name: str,
    status: dict,
    histograms: dict[int, list[int]],
    band: tuple[float, float] | None = None,
    evaluation: dict[int, dict[str, dict]] | None = None,
    training: dict | None = None,
) -> Path:
    """Write report.md and its PNG plots into out_dir; return the Markdown file's path. `evaluation`: full
    score entries by iteration (read_evaluation) for the interval table; `training`: reward curves by role
    (report_training.read_training_curves)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = iteration_rows(status)
    images = []
    if histograms:
        plot_histograms(histograms, out_dir / "agreement-histograms.png", band)
        images.append("agreement-histograms.png")
    if any(row.iteration > 0 for row in rows):
        plot_kept(rows, out_dir / "kept-questions.png")
        images.append("kept-questions.png")
    if any(row.scores for row in rows):
        plot_scores(rows, out_dir / "evaluation-scores.png")
        images.append("evaluation-scores.png")
    if training:
        from .report_training import plot_training_curves

        plot_training_curves(training, out_dir / "training-rewards.png")
        images.append("training-rewards.png")
    if any(row.label_accuracy is not None for row in rows):
        plot_label_accuracy(rows, out_dir / LABEL_PLOT)
        images.append(LABEL_PLOT)
    report = out_dir / "report.md"
    report.write_text(render_markdown(run_name, status, rows, images, evaluation), encoding="utf-8")
    return report
