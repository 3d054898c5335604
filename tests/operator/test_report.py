"""The run report: plots and Markdown built from the status history and the committed label summaries."""

from __future__ import annotations

import json

import pytest

from rzero_operator.api import IterationRecord, RZeroRunStatus
from rzero_operator.report import (
    iteration_rows,
    read_evaluation,
    read_label_histograms,
    sum_histograms,
    write_report,
)
from rzero_worker.benchmarks import score_entry
from rzero_worker.storage import LocalStorage, commit

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def status_with_two_iterations() -> dict:
    """A status as the plan writes it (camelCase wire form)."""
    return RZeroRunStatus(
        phase="Succeeded",
        stage="Done",
        message="all 2 iteration(s) done",
        iteration_history=[
            IterationRecord(iteration=0, scores={"arithmetic": 0.10, "gsm8k": 0.05}),
            IterationRecord(
                iteration=1, questions_generated=16, questions_valid=9, questions_kept=5, mean_agreement=0.61,
                drop_reasons={"out_of_band": 9, "no_answer": 2}, label_matches_challenger=0.4,
                oracle_checked=10, label_accuracy=0.8, label_accuracy_ci95=[0.49, 0.94],
                scores={"arithmetic": 0.15, "gsm8k": 0.07},
            ),
            IterationRecord(iteration=2, questions_generated=16, questions_kept=7, mean_agreement=0.55,
                            scores={"arithmetic": 0.2}),
        ],
    ).wire()


def test_rows_follow_the_status_history_in_iteration_order():
    status = status_with_two_iterations()
    status["iterationHistory"].reverse()
    rows = iteration_rows(status)
    assert [row.iteration for row in rows] == [0, 1, 2]
    assert rows[1].kept == 5 and rows[1].generated == 16 and rows[1].valid == 9 and rows[1].scores == {"arithmetic": 0.15, "gsm8k": 0.07}
    assert rows[0].kept is None and rows[2].scores == {"arithmetic": 0.2}


def test_score_entries_with_confidence_intervals_are_read_as_their_accuracy():
    status = {"iterationHistory": [{"iteration": 1, "scores": {"gsm8k": {"accuracy": 0.5, "ci95": [0.4, 0.6]}}}]}
    assert iteration_rows(status)[0].scores == {"gsm8k": 0.5}


def test_report_writes_four_png_plots_and_a_markdown_summary(tmp_path):
    histograms = {1: [0, 1, 2, 3, 1, 2, 3, 2, 1, 1], 2: [1, 0, 0, 4, 4, 4, 1, 1, 1, 0]}
    report = write_report(tmp_path, "demo", status_with_two_iterations(), histograms, band=(0.25, 0.75))
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["agreement-histograms.png", "evaluation-scores.png", "kept-questions.png", "label-accuracy.png"]
    for name in pngs:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000  # a real image, not an empty canvas
    text = report.read_text()
    assert text.startswith("# R-Zero run `demo`")
    assert "| 1 | 16 | 9 | 5 | 0.610 | 0.80 (0.49–0.94, 10 checked) | 0.40 |" in text
    assert "| 2 | 16 | – | 7 | 0.550 | – | – |" in text
    # Scores: the paper's benchmarks first (GSM8K), others after; percent, change from iteration 0.
    assert "| iteration | GSM8K | arithmetic |" in text
    assert "| 0 | 5.00 | 10.00 |" in text
    assert "| 1 | 7.00 (+2.00) | 15.00 (+5.00) |" in text
    assert "| 2 | – | 20.00 (+10.00) |" in text
    assert "iteration 1: no_answer 2, out_of_band 9" in text
    for name in pngs:
        assert f"]({name})" in text


def test_training_curves_of_both_roles_are_plotted_from_the_training_summaries(tmp_path):
    from rzero_operator.report_training import read_training_curves

    storage = LocalStorage(tmp_path / "run")
    for role, rewards in (("challenger", [0.1, 0.3]), ("solver", [0.5, 0.6, 0.8])):
        summary = {"apiVersion": "rzero.dev/summary-v1", "phase": role,
                   "metrics": {"rewards": rewards, "reward_stds": [0.2] * len(rewards)}}
        storage.put_bytes(f"iter-001/{role}/summary.json", json.dumps(summary).encode())
        commit(storage, f"iter-001/{role}")
    curves = read_training_curves(storage, [1, 2])  # iteration 2 has nothing committed
    assert curves == {"challenger": {1: {"rewards": [0.1, 0.3], "reward_stds": [0.2, 0.2]}},
                      "solver": {1: {"rewards": [0.5, 0.6, 0.8], "reward_stds": [0.2, 0.2, 0.2]}}}

    write_report(tmp_path / "report", "demo", status_with_two_iterations(), {}, training=curves)

    image = tmp_path / "report" / "training-rewards.png"
    assert image.read_bytes().startswith(PNG_MAGIC) and image.stat().st_size > 5000
    assert "](training-rewards.png)" in (tmp_path / "report" / "report.md").read_text()


def test_a_run_with_only_the_base_evaluation_gets_just_the_score_plot(tmp_path):
    status = {"phase": "Running", "iterationHistory": [{"iteration": 0, "scores": {"arithmetic": 0.1}}]}
    write_report(tmp_path, "demo", status, {})
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["evaluation-scores.png"]


def _label_shard(storage: LocalStorage, key: str, histogram: list[int], committed: bool = True) -> None:
    summary = {"apiVersion": "rzero.dev/summary-v1", "phase": "label", "metrics": {"score_histogram": histogram}}
    storage.put_bytes(f"{key}/summary.json", json.dumps(summary).encode())
    if committed:
        commit(storage, key)


def test_label_histograms_are_summed_over_committed_shards_only(tmp_path):
    storage = LocalStorage(tmp_path)
    _label_shard(storage, "iter-001/label/shard-00000-of-00002", [1] * 10)
    _label_shard(storage, "iter-001/label/shard-00001-of-00002", [0, 2, 0, 0, 0, 0, 0, 0, 0, 3])
    _label_shard(storage, "iter-002/label/shard-00000-of-00001", [5] * 10, committed=False)
    histograms = read_label_histograms(storage, [1, 2, 3])
    assert histograms == {1: [1, 3, 1, 1, 1, 1, 1, 1, 1, 4]}


def test_a_histogram_with_the_wrong_number_of_bins_is_refused():
    with pytest.raises(ValueError, match="10 bins"):
        sum_histograms([[1, 2, 3]])


def paper_status() -> dict:
    """Qwen3-4B-Base in the paper's Table 2: the base model and R-Zero iteration 3."""
    return RZeroRunStatus(iteration_history=[
        IterationRecord(iteration=0, scores={"supergpqa": 0.2088, "mmlu-pro": 0.3738, "bbeh": 0.0757, "gsm8k": 0.80},
                        math_average=0.4258, overall_average=0.2710),
        IterationRecord(iteration=3, scores={"supergpqa": 0.2755, "mmlu-pro": 0.5153, "bbeh": 0.1042, "gsm8k": 0.85},
                        math_average=0.4907, overall_average=0.3464),
    ]).wire()


def test_the_score_table_has_the_papers_columns_and_its_gains(tmp_path):
    text = write_report(tmp_path, "paper", paper_status(), {}).read_text()
    assert "| iteration | Overall AVG | MATH AVG | GSM8K | SuperGPQA | MMLU-Pro | BBEH |" in text
    assert "| 0 | 27.10 | 42.58 | 80.00 | 20.88 | 37.38 | 7.57 |" in text
    assert "| 3 | 34.64 (+7.54) | 49.07 (+6.49) | 85.00 (+5.00) | 27.55 (+6.67) | 51.53 (+14.15) | 10.42 (+2.85) |" in text


def _evaluate_shard(storage: LocalStorage, key: str, scores: dict, committed: bool = True) -> None:
    summary = {"apiVersion": "rzero.dev/summary-v1", "phase": "evaluate", "metrics": {"scores": scores}}
    storage.put_bytes(f"{key}/summary.json", json.dumps(summary).encode())
    if committed:
        commit(storage, key)


def test_evaluation_details_are_merged_over_the_shards_of_a_complete_split(tmp_path):
    storage = LocalStorage(tmp_path / "run")
    _evaluate_shard(storage, "iter-000/evaluate/shard-00000-of-00002",
                    {"mmlu-pro": score_entry(3, 5, preset="mmlu-pro", guessed=1)})
    _evaluate_shard(storage, "iter-000/evaluate/shard-00001-of-00002",
                    {"mmlu-pro": score_entry(1, 5, preset="mmlu-pro", guessed=2)})
    _evaluate_shard(storage, "iter-001/evaluate/shard-00000-of-00002", {"mmlu-pro": score_entry(5, 5)})
    _evaluate_shard(storage, "iter-001/evaluate/shard-00001-of-00002", {"mmlu-pro": score_entry(5, 5)}, committed=False)

    evaluation = read_evaluation(storage, [0, 1, 2])

    assert evaluation == {0: {"mmlu-pro": score_entry(4, 10, preset="mmlu-pro", guessed=3)}}
    status = {"iterationHistory": [{"iteration": 0, "scores": {"mmlu-pro": 0.4}}]}
    text = write_report(tmp_path / "report", "demo", status, {}, evaluation=evaluation).read_text()
    low, high = evaluation[0]["mmlu-pro"]["ci95"]
    assert f"| mmlu-pro | 40.00 | {100 * low:.1f}–{100 * high:.1f} | 10 | – | 3 |" in text


def test_label_accuracy_by_iteration_is_plotted_beside_the_evaluation_score_and_tabled(tmp_path):
    status = RZeroRunStatus(iteration_history=[
        IterationRecord(iteration=0, mean_score=0.30, scores={"arithmetic": 0.30}),
        IterationRecord(iteration=1, label_accuracy=0.79, label_accuracy_ci95=[0.70, 0.86], oracle_checked=64,
                        label_oracle="endpoint", answer_entropy=1.1, band_edge_share=0.3, mean_score=0.36,
                        scores={"arithmetic": 0.36}),
        IterationRecord(iteration=2, label_accuracy=0.63, label_accuracy_ci95=[0.51, 0.74], oracle_checked=64,
                        label_oracle="endpoint", answer_entropy=1.4, band_edge_share=0.4, mean_score=0.35,
                        scores={"arithmetic": 0.35}),
    ]).wire()
    report = write_report(tmp_path, "demo", status, {})
    assert (tmp_path / "label-accuracy.png").read_bytes().startswith(PNG_MAGIC)
    text = report.read_text()
    assert "## Label drift" in text and "![label-accuracy](label-accuracy.png)" in text
    assert "0.79 (0.70–0.86, 64 checked)" in text  # in the first table
    assert "| 1 | endpoint | 1.10 | 0.30 | 36.0 |" in text and "| 2 | endpoint | 1.40 | 0.40 | 35.0 |" in text


def test_labels_all_wrong_or_all_right_plot_with_their_one_sided_intervals(tmp_path):
    from rzero_worker.benchmarks.scoring import wilson_interval

    assert wilson_interval(0, 6)[0] == 0.0 and wilson_interval(6, 6)[1] == 1.0
    status = RZeroRunStatus(iteration_history=[  # the demo's first iteration: 0 of 6 labels right
        IterationRecord(iteration=1, label_accuracy=0.0, label_accuracy_ci95=[2.8e-17, 0.39], oracle_checked=6),
        IterationRecord(iteration=2, label_accuracy=1.0, label_accuracy_ci95=[0.61, 1.0 - 1e-16], oracle_checked=6),
    ]).wire()
    write_report(tmp_path, "demo", status, {})
    assert (tmp_path / "label-accuracy.png").read_bytes().startswith(PNG_MAGIC)


def test_without_oracle_checks_the_report_tables_the_proxies_and_draws_no_accuracy_plot(tmp_path):
    status = RZeroRunStatus(iteration_history=[IterationRecord(iteration=1, answer_entropy=0.9, band_edge_share=0.5)]).wire()
    text = write_report(tmp_path, "demo", status, {}).read_text()
    assert "| 1 | – | 0.90 | 0.50 | – |" in text and not (tmp_path / "label-accuracy.png").exists()


def test_a_trained_verifier_gets_a_table_of_its_held_out_accuracy_before_and_after_training(tmp_path):
    from rzero_operator.api.oversight import VerifierTrainingRecord

    status = RZeroRunStatus(iteration_history=[
        IterationRecord(iteration=0),
        IterationRecord(iteration=1, verifier_training=VerifierTrainingRecord(
            examples=50, train_examples=40, held_out=10, accuracy_before=0.4, accuracy_after=0.7, oracle_held_out=2,
            oracle_accuracy_before=0.5, oracle_accuracy_after=1.0, reward_std=0.31, weight_change=2e-4)),
        IterationRecord(iteration=2, verifier_training=VerifierTrainingRecord(examples=0, steps=0, skipped="none")),
    ]).wire()
    text = write_report(tmp_path, "demo", status, {}).read_text()
    assert "## Trained Verifier" in text
    assert "| 1 | 50 (40 / 10) | 0.40 | 0.70 | 0.50 / 1.00 (n=2) | 0.310 | 2.00e-04 |" in text
    assert "| 2 | 0 (0 / 0) | – | – | – / – (n=0) | – | – |" in text
    plain = write_report(tmp_path / "plain", "demo", status_with_two_iterations(), {}).read_text()
    assert "Trained Verifier" not in plain
