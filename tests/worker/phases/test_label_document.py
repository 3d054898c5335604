"""Phase `label` with `labeling.label: document` (spec.corpus): the grounded Challenger's answer is the label, the
vote is still computed and still decides the band, and whether the two agree is recorded per question and counted."""

from __future__ import annotations

import json

import pytest

from rzero_worker import generation, models
from rzero_worker.grading import GradingPool
from rzero_worker.phases import label, load_phase
from rzero_worker.phases.label import drop_reason, reference_question_filter
from rzero_worker.phases.runner import run_phase
from rzero_worker.storage import join_key, open_storage
from rzero_worker.task import GenerateTask, GenerationSettings, LabelingSettings, LabelTask, ModelInput
from support.artefacts import read_jsonl
from support.grounded import PassageEcho, write_corpus

BAND = (0.5, 0.9)
# What the fake Solver answers per candidate (the document's answer is `d`): the vote and the document differ
# (kept: the vote's score 2/3 is in the band), agree (kept), agree too well (score 1: out of band), no answer.
SOLVER = [lambda d: ["99", "99", d], lambda d: [d, d, "-1"], lambda d: [d, d, d], lambda d: [None, None, None]]


@pytest.fixture
def grounded_questions(local_location, tmp_path, monkeypatch):
    """Four grounded questions of the generate phase (PassageEcho: the answer is the passage's digit)."""
    monkeypatch.setattr(models, "resolve_model", lambda *args, **kwargs: None)
    monkeypatch.setattr(generation, "make_generator", lambda *args, **kwargs: PassageEcho())
    generate = GenerateTask(run="demo", iteration=1, storage=local_location,
                            output="iter-001/generate/shard-00000-of-00001", challenger=ModelInput(source="unused"),
                            settings=GenerationSettings(num_questions=4), corpus=write_corpus(tmp_path / "docs"), seed=3)
    assert run_phase(generate, load_phase("generate"), cache_dir=tmp_path / "cache") == 0
    monkeypatch.setattr(label, "solver_answers", lambda ctx, questions, offset=0, engine=None: [
        SOLVER[(offset + i) % len(SOLVER)](q["answer"]) for i, q in enumerate(questions)])


def run_label(location, tmp_path, source: str) -> tuple[dict, list[dict], list[dict]]:
    task = LabelTask(run="demo", iteration=1, storage=location, output="iter-001/label/shard-00000-of-00001",
                     solver=ModelInput(source="unused"), questions="iter-001/generate",
                     settings=LabelingSettings(samples=3, grading_workers=1, min_score=BAND[0], max_score=BAND[1],
                                               label=source))
    assert run_phase(task, load_phase("label"), cache_dir=tmp_path / "cache") == 0
    storage = open_storage(location)
    stats = json.loads(storage.get_bytes(join_key(task.output, "stats.json")))
    return stats, read_jsonl(storage, join_key(task.output, "audit.jsonl")), read_jsonl(
        storage, join_key(task.output, "train.jsonl"))


def test_document_labels_are_the_challengers_answers_kept_by_the_votes_band(grounded_questions, local_location, tmp_path):
    stats, audit, train = run_label(local_location, tmp_path, "document")

    documents = [row["challenger_answer"] for row in audit]
    assert [row["label"] for row in train] == documents  # the document's answer, not the vote's "99"
    assert [row["vote_label"] for row in audit] == ["99", documents[1]]
    assert [row["document_agrees"] for row in audit] == [False, True]
    assert all(row["passage"] for row in audit)  # the audit shows the passage beside the label
    assert stats["dropped"]["out_of_band"] == 1 and stats["dropped"]["no_answer"] == 1  # the vote's score decides
    assert stats["dropped"]["no_document_answer"] == 0
    # the third question (the vote agrees, score 1) is out of band but still counted in the agreement
    assert (stats["document_compared"], stats["document_agree"], stats["document_agreement"]) == (3, 2, 2 / 3)
    assert stats["document_undecided"] == 0


def test_vote_labels_of_a_grounded_run_record_the_agreement_too(grounded_questions, local_location, tmp_path):
    stats, audit, train = run_label(local_location, tmp_path, "vote")

    assert [row["label"] for row in train] == ["99", audit[1]["challenger_answer"]]
    assert [row["document_agrees"] for row in audit] == [False, True] and "vote_label" not in audit[0]
    assert (stats["document_compared"], stats["document_agree"]) == (3, 2)
    assert "no_document_answer" not in stats["dropped"]


def test_a_blank_document_answer_is_dropped_before_the_solver_answers():
    questions = [{"id": "a", "question": "q?", "answer": ""}, {"id": "b", "question": "q?", "answer": "None"},
                 {"id": "c", "question": "q?", "answer": None}, {"id": "d", "question": "q?", "answer": "4"}]
    dropped = {"no_challenger_answer": 0, "reference_filter": 0, "no_document_answer": 0}

    kept = reference_question_filter(questions, dropped, "reference", "document")

    assert [q["id"] for q in kept] == ["d"]
    assert dropped == {"no_challenger_answer": 1, "reference_filter": 0, "no_document_answer": 2}
    assert len(reference_question_filter(questions[:1], dict(dropped), "reference", "vote")) == 1  # an answer there


def test_a_document_answer_not_comparable_with_the_vote_in_time_is_no_label():
    row = {"majority_none": False, "label": "4", "vote_label": "5", "ungradable": False, "reference_mode": False,
           "score": 0.6, "document_agrees": None}
    assert drop_reason(row, BAND) == "no_document_answer"
    assert drop_reason({**row, "document_agrees": False}, BAND) is None
    assert drop_reason({**row, "vote_label": None}, BAND) == "no_answer"  # the vote gave no score to band


def test_agreement_uses_the_runs_checker():
    rows = [{"passage": "p", "label": "1/2", "challenger_answer": "0.5", "ungradable": False},
            {"passage": "p", "label": "3", "challenger_answer": "4", "ungradable": False},
            {"label": "3", "challenger_answer": "3", "ungradable": False}]  # not grounded, vote labels: not compared
    with GradingPool(workers=1, timeout_s=5.0, checker="math-verify") as pool:
        stats = label.document_agreement(rows, pool)
    assert [row.get("document_agrees") for row in rows] == [True, False, None]
    assert "document_agrees" not in rows[2]
    assert (stats["document_compared"], stats["document_agree"], stats["document_agreement"]) == (2, 1, 0.5)


def test_free_form_answers_in_the_same_normal_form_agree_whatever_the_checker_makes_of_their_markup():
    rows = [{"passage": "p", "label": "``str.join``", "challenger_answer": "str.join", "ungradable": False},
            {"passage": "p", "label": "KeyError.", "challenger_answer": "keyerror", "ungradable": False},
            {"passage": "p", "label": "str.split", "challenger_answer": "str.join", "ungradable": False},
            {"passage": "p", "label": "1/2", "challenger_answer": "0.5", "ungradable": False}]
    with GradingPool(workers=1, timeout_s=5.0, checker="mathruler") as pool:
        assert not pool.equivalent([("``str.join``", "str.join")])[0]  # the checker alone calls it a disagreement
        stats = label.document_agreement(rows, pool)
    assert [row["document_agrees"] for row in rows] == [True, True, False, True]
    assert (stats["document_compared"], stats["document_agree"]) == (4, 3)
