"""Provenance of a grounded question (spec.corpus) end to end: generate keeps the passage and where it came from,
label keeps both in the audit sample and the provenance in the Solver's dataset; the Solver is never shown
the passage."""

from __future__ import annotations

from rzero_worker import generation, models
from rzero_worker.corpus import read_corpus
from rzero_worker.phases import label, load_phase
from rzero_worker.phases.context import PhaseContext
from rzero_worker.phases.runner import run_phase
from rzero_worker.phases.solver import read_training_rows
from rzero_worker.storage import join_key, open_storage
from rzero_worker.task import GenerateTask, GenerationSettings, LabelingSettings, LabelTask, ModelInput, SolverTask
from support.artefacts import read_jsonl
from support.grounded import PassageEcho, write_corpus


def test_provenance_goes_from_the_passage_to_the_audit_sample_and_the_solvers_dataset(
    local_location, tmp_path, monkeypatch
):
    corpus_settings = write_corpus(tmp_path / "docs")
    monkeypatch.setattr(models, "resolve_model", lambda *args, **kwargs: None)
    monkeypatch.setattr(generation, "make_generator", lambda *args, **kwargs: PassageEcho())
    generate = GenerateTask(run="demo", iteration=1, storage=local_location, output="iter-001/generate/shard-00000-of-00001",
                            challenger=ModelInput(source="unused"), settings=GenerationSettings(num_questions=4),
                            corpus=corpus_settings, seed=3)
    assert run_phase(generate, load_phase("generate"), cache_dir=tmp_path / "cache") == 0
    shown_to_solver = []

    def solver_answers(ctx, questions, offset=0, engine=None):
        shown_to_solver.extend(q["question"] for q in questions)
        return [[q["answer"], q["answer"], "-1"] for q in questions]

    monkeypatch.setattr(label, "solver_answers", solver_answers)
    labelling = LabelTask(run="demo", iteration=1, storage=local_location, output="iter-001/label/shard-00000-of-00001",
                          solver=ModelInput(source="unused"), questions="iter-001/generate",
                          settings=LabelingSettings(samples=3, grading_workers=1, min_score=0.5, max_score=0.9))
    assert run_phase(labelling, load_phase("label"), cache_dir=tmp_path / "cache") == 0

    corpus = read_corpus(corpus_settings)
    passages = [corpus.sample(3, 1, i) for i in range(4)]
    storage = open_storage(local_location)
    audit = read_jsonl(storage, join_key(labelling.output, "audit.jsonl"))
    assert [(row["passage"], row["provenance"]) for row in audit] == [(p.text, p.provenance()) for p in passages]
    assert [row["label"] for row in audit] == [p.text[9] for p in passages]  # the document's number
    solver = SolverTask(run="demo", iteration=1, storage=local_location, output="iter-001/solver",
                        solver=ModelInput(source="unused"), dataset="iter-001/label")
    dataset = read_training_rows(PhaseContext(task=solver, storage=storage, workdir=tmp_path, staging=tmp_path,
                                              cache_dir=tmp_path))
    assert [row["provenance"] for row in dataset] == [p.provenance() for p in passages]
    assert all("passage" not in row for row in dataset)
    assert not any(p.text in question for p in passages for question in shown_to_solver)
