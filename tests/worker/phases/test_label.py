"""Phase `label`: the band, the drop reasons and the statistics, and the phase end to end."""

import json

import pytest

from rzero_worker.grading import GradingPool, vote_many
from rzero_worker.phases import load_phase
from rzero_worker.phases.context import InputNotReadyError
from rzero_worker.phases.label import (
    DROP_REASONS,
    apply_band,
    challenger_agreement,
    label_stats,
    labelled_row,
    reference_question_filter,
)
from rzero_worker.phases.runner import run_phase
from rzero_worker.storage import is_committed, join_key, open_storage
from rzero_worker.task import LabelingSettings, LabelTask, ModelInput, Sampling, Shard
from support.artefacts import commit_jsonl_shards, read_jsonl

HANG = r"\dfrac{5^{5^{5^{5^5}}}}{5^{5^{5^5}}}"


def label_task(location, model_dir, *, shard=Shard(), audit_size=50) -> LabelTask:
    return LabelTask(
        run="demo",
        iteration=1,
        storage=location,
        output=join_key("iter-001/label", shard.key),
        solver=ModelInput(source=str(model_dir)),
        questions="iter-001/generate",
        shard=shard,
        settings=LabelingSettings(
            samples=3, sampling=Sampling(max_tokens=12), grading_workers=1, audit_size=audit_size
        ),
    )






@pytest.fixture(scope="module")
def pool():
    with GradingPool(workers=1, timeout_s=2.0) as grading_pool:
        yield grading_pool


def vote_rows(questions, answers, pool, mode):
    votes = vote_many(answers, pool, mode)
    return [labelled_row(q, a, v, mode) for q, a, v in zip(questions, answers, votes)]


def fresh_drops():
    return dict.fromkeys(DROP_REASONS, 0)


def test_band_reasons_and_statistics_on_hand_made_answers_boxed_only(pool):
    questions = [
        {"id": "q1", "question": "half?", "answer": "0.5"},
        {"id": "q2", "question": "seven?", "answer": "7"},
        {"id": "q3", "question": "nothing?", "answer": "1"},
        {"id": "q4", "question": "two?", "answer": "3"},
        {"id": "q5", "question": "hang?", "answer": None},
    ]
    answers = [
        ["1/2", "0.5", "\\frac{1}{2}", "3"],  # one class of 3 + "3": score 3/4, inside the paper band
        ["7", "7", "7", "7"],  # score 1: too easy
        [None, "None", "", None],  # no answer at all
        ["2", "3", None, None],  # tie 1-1: earliest class wins, score 1/4 = the band's lower edge
        [HANG, "3", "3", "4"],  # math-verify cannot place the hang input in time
    ]
    rows = vote_rows(questions, answers, pool, "boxed-only")
    dropped = fresh_drops()

    kept = apply_band(rows, LabelingSettings(vote="boxed-only").band_edges(), dropped)
    matches = challenger_agreement(kept, pool)
    stats = label_stats(rows, kept, dropped, matches)

    assert [(row["id"], row["label"], row["score"]) for row in kept] == [("q1", "1/2", 0.75), ("q4", "2", 0.25)]
    assert {reason: n for reason, n in dropped.items() if n} == {"no_answer": 1, "ungradable": 1, "out_of_band": 1}
    assert matches == [True, False]  # 1/2 ~ the Challenger's 0.5; 2 is not its 3
    assert stats["kept"] == 2
    assert stats["label_matches_challenger"] == 0.5
    # scores of the questions that got a label: 0.75, 1.0, 0.25, 0.5 (q5: "3" twice out of 4)
    assert stats["score_histogram"] == [0, 0, 1, 0, 0, 1, 0, 1, 0, 1]
    assert stats["mean_agreement"] == pytest.approx((0.75 + 1.0 + 0.25 + 0.5) / 4)


def test_the_reference_vote_counts_unboxed_answers_as_the_class_none(pool):
    """4 x "5" + 6 unboxed: the reference drops the question ("None" wins with 6/10); boxed-only keeps "5"
    with score 0.4. 5 x "5" + 3 unboxed + 2 empty boxes: "5" wins with 5 of the 8 non-empty answers."""
    questions = [{"id": "q1", "question": "five?", "answer": "5"}, {"id": "q2", "question": "five again?", "answer": "5"}]
    answers = [["5"] * 4 + [None] * 6, ["5"] * 5 + [None] * 3 + ["", ""]]

    reference, dropped = vote_rows(questions, answers, pool, "reference"), fresh_drops()
    kept = apply_band(reference, LabelingSettings().band_edges(), dropped)
    assert [(row["id"], row["label"], row["score"]) for row in kept] == [("q2", "5", 5 / 8)]
    assert dropped["majority_none"] == 1 and reference[0]["score"] == 0.6

    boxed, dropped = vote_rows(questions, answers, pool, "boxed-only"), fresh_drops()
    kept = apply_band(boxed, LabelingSettings().band_edges(), dropped)
    assert [(row["id"], row["label"], row["score"]) for row in kept] == [("q1", "5", 0.4), ("q2", "5", 0.5)]


def test_the_reference_filters_questions_and_labels_it_cannot_grade(pool):
    questions = [
        {"id": "proof", "question": "证明 that 2 is prime.", "answer": "2"},
        {"id": "box", "question": "How many balls fit in the Box?", "answer": "3"},
        {"id": "unanswered", "question": "What is 1+1?", "answer": None},
        {"id": "ok", "question": "What is 2+2?", "answer": "4"},
        {"id": "words", "question": "Which colour?", "answer": "red"},
    ]
    dropped = fresh_drops()

    remaining = reference_question_filter(questions, dropped)

    assert [q["id"] for q in remaining] == ["ok", "words"]
    assert (dropped["reference_filter"], dropped["no_challenger_answer"]) == (2, 1)
    answers = [["4", "4", "5", None], ["\\text{red}", "\\text{red}", "blue", "blue"]]
    kept = apply_band(vote_rows(remaining, answers, pool, "reference"), LabelingSettings().band_edges(), dropped)
    assert [row["id"] for row in kept] == ["ok"] and dropped["reference_filter"] == 3  # a label with "text"


def test_the_code_band_keeps_0_3_to_0_8(pool):
    answers = [["1", "1", "1", "2", "3"], ["1", "1", "1", "1", "2"]]  # scores 0.6 and 0.8
    rows = vote_rows([{"id": str(i), "question": "q"} for i in range(2)], answers, pool, "reference")

    kept = apply_band(rows, LabelingSettings(band="code").band_edges(), fresh_drops())
    assert [row["score"] for row in kept] == [0.6, 0.8]
    dropped = fresh_drops()
    kept = apply_band(rows, LabelingSettings(band="paper").band_edges(), dropped)
    assert [row["score"] for row in kept] == [0.6] and dropped["out_of_band"] == 1


def test_label_reads_every_committed_shard_and_commits_its_slice(storage_location, tiny_model_dir, tmp_path):
    """The tiny random model never boxes an answer: every question is dropped as no_answer, cleanly."""
    commit_question_shards(
        storage_location,
        [
            [{"id": "a0", "question": "What is 2+2?", "answer": "4"}, {"id": "a1", "question": "1+1?", "answer": "2"}],
            [{"id": "b0", "question": "What is 3*3?", "answer": "9"}],
        ],
    )
    task = label_task(storage_location, tiny_model_dir, shard=Shard(index=0, count=2))

    assert run_phase(task, load_phase("label"), cache_dir=tmp_path / "cache") == 0

    storage = open_storage(storage_location)
    assert is_committed(storage, task.output)
    metrics = json.loads(storage.get_bytes(join_key(task.output, "summary.json")))["metrics"]
    # questions a0, a1, b0 in shard order; shard 0 of 2 takes every second one: a0 and b0
    assert metrics["questions"] == 2
    assert metrics["kept"] + sum(metrics["dropped"].values()) == 2
    stats = json.loads(storage.get_bytes(join_key(task.output, "stats.json")))
    assert stats == {key: metrics[key] for key in stats}
    assert set(stats) == {"kept", "dropped", "mean_agreement", "score_histogram", "label_matches_challenger",
                          "answer_entropy", "band_edge_share", "oracle", "oracle_checked", "oracle_correct",
                          "label_accuracy", "label_accuracy_ci95", "oracles"}
    assert metrics["output_bytes"] > 0
    train = read_jsonl(storage, join_key(task.output, "train.jsonl"))
    audit = read_jsonl(storage, join_key(task.output, "audit.jsonl"))
    assert len(train) == metrics["kept"] and len(audit) == min(metrics["kept"], 50)
    assert {row["id"] for row in train} <= {"a0", "b0"}


def test_label_with_no_questions_commits_an_empty_training_set(local_location, tiny_model_dir, tmp_path):
    commit_question_shards(local_location, [[]])
    task = label_task(local_location, tiny_model_dir)

    run_phase(task, load_phase("label"), cache_dir=tmp_path / "cache")

    storage = open_storage(local_location)
    metrics = json.loads(storage.get_bytes(join_key(task.output, "summary.json")))["metrics"]
    assert metrics["questions"] == 0 and metrics["kept"] == 0
    assert metrics["score_histogram"] == [0] * 10
    assert storage.get_bytes(join_key(task.output, "train.jsonl")) == b""


def test_label_fails_clearly_when_no_question_shard_is_committed(local_location, tiny_model_dir, tmp_path):
    task = label_task(local_location, tiny_model_dir)
    with pytest.raises(InputNotReadyError, match="iter-001/generate"):
        run_phase(task, load_phase("label"), cache_dir=tmp_path / "cache")
    assert not is_committed(open_storage(local_location), task.output)


def commit_question_shards(location, shards: list[list[dict]]) -> None:
    commit_jsonl_shards(location, "iter-001/generate", "questions.jsonl", shards)


MATHRULER_HANG = "10**10**10"  # mathruler hands it to sympy, which computes the power in C


@pytest.fixture(scope="module")
def ruler():
    with GradingPool(workers=1, timeout_s=2.0, checker="mathruler") as grading_pool:
        yield grading_pool


def test_a_timed_out_comparison_skips_the_pair_in_reference_mode_and_drops_the_question_in_boxed_only(ruler):
    questions = [{"id": "skip", "question": "q1", "answer": "1"}, {"id": "hang wins", "question": "q2", "answer": "1"}]
    answers = [["x+1", "x+1", "x+1", MATHRULER_HANG], [MATHRULER_HANG] * 3 + ["x+1"]]
    band = LabelingSettings().band_edges()

    dropped = fresh_drops()
    kept = apply_band(vote_rows(questions, answers, ruler, "reference"), (0.25, 1.0), dropped)
    # the reference skips the timed-out pair: "x+1" wins 3/4; an undecidable answer never becomes a label
    assert [(row["id"], row["label"], row["score"]) for row in kept] == [("skip", "x+1", 0.75)]
    assert dropped["ungradable"] == 1

    dropped = fresh_drops()
    assert apply_band(vote_rows(questions, answers, ruler, "boxed-only"), band, dropped) == []
    assert dropped["ungradable"] == 2


def test_the_reference_reading_with_mathruler_drops_a_none_majority_and_keeps_an_empty_challenger_answer(ruler):
    questions = [{"id": "none", "question": "q1", "answer": ""}, {"id": "five", "question": "q2", "answer": ""}]
    assert len(reference_question_filter(questions, fresh_drops())) == 2  # `\boxed{}`: the reference keeps it
    answers = [["None", "none", "None", "5"], ["None", "5", "5", "05"]]
    dropped = fresh_drops()
    kept = apply_band(vote_rows(questions, answers, ruler, "reference"), LabelingSettings().band_edges(), dropped)
    assert [(row["id"], row["label"], row["score"]) for row in kept] == [("five", "5", 0.75)]
    assert dropped["majority_none"] == 1
