"""The score table: the paper's column order, percentages, and the change from iteration 0."""

from rzero_operator.report import IterationRow
from rzero_operator.scoretable import score_columns, score_table


def row(iteration: int, scores: dict, math_average=None, overall_average=None) -> IterationRow:
    return IterationRow(iteration=iteration, generated=None, valid=None, kept=None, mean_agreement=None,
                        label_matches_challenger=None, scores=scores, drop_reasons={},
                        math_average=math_average, overall_average=overall_average)


def test_columns_follow_the_papers_tables_then_other_benchmarks_by_name():
    every = {name: 0.5 for name in ("bbeh", "zeta", "aime24", "mmlu-pro", "gsm8k", "amc23", "supergpqa", "math500",
                                    "alpha", "olympiadbench", "minerva", "aime25")}
    titles = [column.title for column in score_columns([row(0, every, 0.5, 0.5)])]
    assert titles == ["Overall AVG", "MATH AVG", "AMC23", "Minerva", "MATH-500", "GSM8K", "OlympiadBench", "AIME25",
                      "AIME24", "SuperGPQA", "MMLU-Pro", "BBEH", "alpha", "zeta"]


def test_cells_show_the_change_from_iteration_0_only_where_iteration_0_has_a_value():
    header, body = score_table([row(0, {"gsm8k": 0.5}), row(1, {"gsm8k": 0.625, "aime24": 0.1}), row(2, {})], digits=1)
    assert header == ["iteration", "GSM8K", "AIME24"]
    assert body == [["0", "50.0", "–"], ["1", "62.5 (+12.5)", "10.0"]]  # iteration 2 has no scores yet


def test_no_scores_no_table():
    assert score_table([row(1, {})]) == (["iteration"], [])


def test_a_runs_own_benchmarks_stand_beside_the_papers_and_stay_out_of_its_averages():
    from rzero_worker.benchmarks import merge_scores, paper_averages, score_entry

    shards = [  # two evaluate shards' scores, as their summaries carry them
        {"gsm8k": score_entry(3, 4, preset="gsm8k"), "mmlu-pro": score_entry(1, 4, preset="mmlu-pro", guessed=1),
         "python-docs": score_entry(1, 8), "python-docs-choice": score_entry(4, 8, guessed=2)},
        {"gsm8k": score_entry(1, 4, preset="gsm8k"), "mmlu-pro": score_entry(1, 4, preset="mmlu-pro", guessed=0),
         "python-docs": score_entry(2, 8), "python-docs-choice": score_entry(2, 8, guessed=0)},
    ]
    scores = merge_scores(shards)
    averages = paper_averages(scores)
    assert averages == {"math_average": 0.5, "overall_average": 0.375}  # GSM8K 4/8, MMLU-Pro 2/8: no python-docs
    assert scores["python-docs-choice"] == score_entry(6, 16, guessed=2)

    accuracies = {name: entry["accuracy"] for name, entry in scores.items()}
    header, body = score_table([row(0, accuracies, **averages)], digits=1)
    assert header == ["iteration", "Overall AVG", "MATH AVG", "GSM8K", "MMLU-Pro", "python-docs", "python-docs-choice"]
    assert body == [["0", "37.5", "50.0", "50.0", "25.0", "18.8", "37.5"]]
