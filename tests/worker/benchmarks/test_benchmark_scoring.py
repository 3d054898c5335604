"""Scores: Wilson intervals, avg@k, shards merged from their counts, and the paper's two averages."""

import pytest

from rzero_worker.benchmarks import merge_scores, paper_averages, rows_score, score_entry, wilson_interval
from rzero_worker.benchmarks.scoring import mean_accuracy


@pytest.mark.parametrize(
    ("correct", "n", "expected"),
    [
        (8, 10, (0.4902, 0.9433)),
        (50, 100, (0.4038, 0.5962)),
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (0, 0, (0.0, 1.0)),
    ],
)
def test_wilson_interval_matches_the_textbook_values(correct, n, expected):
    low, high = wilson_interval(correct, n)
    assert (round(low, 4), round(high, 4)) == expected


def test_a_score_entry_carries_its_counts_and_interval():
    rows = [{"correct": True, "guessed": False, "samples_correct": 3}, {"correct": False, "guessed": True,
                                                                       "samples_correct": 1}]
    entry = rows_score(rows, preset="mmlu-pro", multiple_choice=True, k=4)
    assert entry == {
        "accuracy": 0.5, "ci95": [round(v, 6) for v in wilson_interval(1, 2)], "n": 2, "correct": 1,
        "preset": "mmlu-pro", "guessed": 1, "k": 4, "samples_correct": 4, "avg_at_k": 0.5,
    }
    assert rows_score([])["accuracy"] is None


def test_shards_merge_by_summing_counts_not_averaging_accuracies():
    # 1/1 on one shard and 1/3 on the other is 2/4 overall (an average of accuracies would say 2/3).
    shard_a = {"gsm8k": score_entry(1, 1, preset="gsm8k"), "aime24": score_entry(0, 0, preset="aime24", k=8)}
    shard_b = {"gsm8k": score_entry(1, 3, preset="gsm8k"), "aime24": score_entry(1, 2, preset="aime24", k=8,
                                                                                  samples_correct=5)}
    merged = merge_scores([shard_a, shard_b])
    assert merged["gsm8k"] == score_entry(2, 4, preset="gsm8k")
    assert merged["aime24"] == score_entry(1, 2, preset="aime24", k=8, samples_correct=5)
    assert merged["aime24"]["avg_at_k"] == round(5 / 16, 6)


def test_older_entries_without_counts_merge_from_accuracy_and_n():
    merged = merge_scores([{"arithmetic": {"accuracy": 0.25, "ci95": [0, 1], "n": 8}}, {"arithmetic": "junk"}, None])
    assert merged == {"arithmetic": score_entry(2, 8)}


def entry(accuracy: float, preset: str | None) -> dict:
    return {"accuracy": accuracy, "n": 100, "correct": round(accuracy * 100), "preset": preset}


def test_the_papers_averages_reproduce_its_qwen3_4b_base_row():
    """Table 2, Qwen3-4B-Base base model: MATH AVG 42.58, SuperGPQA 20.88, MMLU-Pro 37.38, BBEH 7.57 ->
    Overall AVG 27.10 (the mean of the four)."""
    maths = {name: entry(0.4258, name) for name in
             ("amc23", "minerva", "math500", "gsm8k", "olympiadbench", "aime25", "aime24")}
    general = {"supergpqa": entry(0.2088, "supergpqa"), "mmlu-pro": entry(0.3738, "mmlu-pro"),
               "bbeh": entry(0.0757, "bbeh")}
    averages = paper_averages({**maths, **general, "custom": entry(0.99, None)})
    assert averages["math_average"] == pytest.approx(0.4258)
    assert round(averages["overall_average"] * 100, 2) == 27.10


def test_averages_cover_the_presets_evaluated_and_count_each_preset_once():
    scores = {"gsm8k": entry(0.5, "gsm8k"), "gsm8k-again": entry(0.1, "gsm8k"), "aime24": entry(0.1, "aime24")}
    assert paper_averages(scores) == {"math_average": 0.3, "overall_average": None}
    assert paper_averages({"bbeh": entry(0.2, "bbeh")}) == {"math_average": None, "overall_average": 0.2}
    assert paper_averages({"custom": entry(0.5, None)}) == {"math_average": None, "overall_average": None}


def test_the_plain_mean_is_over_every_benchmark_with_an_accuracy():
    assert mean_accuracy({"a": entry(0.5, None), "b": entry(0.25, "gsm8k"), "empty": score_entry(0, 0)}) == 0.375
    assert mean_accuracy({}) is None


def test_a_shard_summary_of_all_ten_presets_fits_the_pods_termination_message():
    """The operator reads evaluate summaries from the 4 KiB termination message: scores must not be trimmed."""
    from rzero_worker.benchmark_presets import PRESETS
    from rzero_worker.summary import TERMINATION_LOG_LIMIT, encode_summary, fit_summary

    scores = {name: score_entry(12345, 26529, preset=name, guessed=1234 if PRESETS[name].scoring == "choice" else None,
                                k=32 if name.startswith(("aime", "amc")) else 0, samples_correct=777)
              for name in PRESETS}
    summary = {"apiVersion": "rzero.dev/summary-v1", "run": "qwen3-4b-base", "phase": "evaluate", "iteration": 3,
               "output": "iter-003/evaluate/shard-00007-of-00008", "seconds": 12345.678,
               "metrics": {"scores": scores, "mean_accuracy": mean_accuracy(scores), **paper_averages(scores)}}
    assert len(encode_summary(summary)) < TERMINATION_LOG_LIMIT // 2
    assert fit_summary(summary) == summary
