"""Phase `generate`: shard shares, parsing/deduplication, and the phase end to end on the tiny model."""

import json

import pytest

from rzero_worker.phases.generate import parse_outputs, shard_share
from rzero_worker.phases.runner import run_phase
from rzero_worker.phases import load_phase
from rzero_worker.storage import is_committed, join_key, open_storage
from rzero_worker.task import GenerateTask, GenerationSettings, ModelInput, Sampling, Shard
from support.artefacts import read_jsonl, summary_metrics
from support.grounded import PassageEcho, write_anchors, write_corpus


def generate_task(location, model_dir, *, num_questions=3, shard=Shard(), seed=0) -> GenerateTask:
    return GenerateTask(
        run="demo",
        iteration=1,
        storage=location,
        output=join_key("iter-001/generate", shard.key),
        seed=seed,
        challenger=ModelInput(source=str(model_dir)),
        shard=shard,
        settings=GenerationSettings(
            num_questions=num_questions, batch_size=2, sampling=Sampling(temperature=1.0, top_p=0.95, max_tokens=16)
        ),
    )




def test_shard_shares_add_up_to_the_requested_number():
    assert [shard_share(10, i, 3) for i in range(3)] == [4, 3, 3]
    assert sum(shard_share(8000, i, 7) for i in range(7)) == 8000
    assert shard_share(2, 4, 5) == 0


OUTPUTS = [
    "<question>\nWhat is 2+2?\n</question>\n\n\\boxed{4}",
    "no tags at all \\boxed{3}",
    "<question>What   is 2+2?</question> \\boxed{5}",  # same question after whitespace normalisation
    "<question>Find x if x^2 = 9 and x > 0.</question>",  # valid question, no answer
    "<question>Compute 1/2 + 1/3.</question> \\boxed{\\frac{5}{6}}",
]


def test_boxed_only_parses_outputs_into_valid_invalid_and_duplicate_questions():
    questions, invalid, duplicates = parse_outputs(OUTPUTS, "i001-s00000", "boxed-only")

    assert questions == [
        {"id": "i001-s00000-000000", "question": "What is 2+2?", "answer": "4"},
        {"id": "i001-s00000-000003", "question": "Find x if x^2 = 9 and x > 0.", "answer": None},
        {"id": "i001-s00000-000004", "question": "Compute 1/2 + 1/3.", "answer": "\\frac{5}{6}"},
    ]
    assert invalid == [{"id": "i001-s00000-000001", "output": "no tags at all \\boxed{3}", "reason": "no_question"}]
    assert duplicates == 1


def test_reference_mode_keeps_duplicates_and_needs_a_box_as_the_reference_question_generation():
    questions, invalid, duplicates = parse_outputs(OUTPUTS, "i001-s00000", "reference")

    assert [(q["id"][-1], q["question"], q["answer"]) for q in questions] == [
        ("0", "What is 2+2?", "4"), ("2", "What   is 2+2?", "5"), ("4", "Compute 1/2 + 1/3.", "\\frac{5}{6}"),
    ]
    assert [(row["id"][-1], row["reason"]) for row in invalid] == [("1", "no_question"), ("3", "no_box")]
    assert duplicates == 0


@pytest.mark.parametrize(
    ("text", "reference", "boxed_only"),
    [
        # question_generate.py keeps these (any `\\boxed{`, the last one's content, blank questions too) ...
        ("<question>Q?</question> \\boxed{}", ("Q?", ""), ("Q?", None)),
        ("<question>Q?</question> \\boxed{None}", ("Q?", "None"), ("Q?", None)),
        ("<question>Q?</question> \\boxed{12", ("Q?", "1"), ("Q?", None)),  # unclosed: to the end, less one character
        ("<question>  </question> \\boxed{3}", ("", "3"), None),
        # ... and drops this one (no `\\boxed{`), which rzero's own reading takes
        ("<question>Q?</question> \\boxed {42}", None, ("Q?", "42")),
    ],
)
def test_which_candidates_each_reading_keeps(text, reference, boxed_only):
    for mode, expected in (("reference", reference), ("boxed-only", boxed_only)):
        questions, _, _ = parse_outputs([text], "p", mode)
        assert [(q["question"], q["answer"]) for q in questions] == ([expected] if expected else [])


def test_generate_commits_the_shard_with_every_candidate_accounted_for(storage_location, tiny_model_dir, tmp_path):
    """The tiny random model writes garbage: no valid question, and the phase still commits cleanly."""
    task = generate_task(storage_location, tiny_model_dir, num_questions=5, shard=Shard(index=1, count=2))

    assert run_phase(task, load_phase("generate"), cache_dir=tmp_path / "cache") == 0

    storage = open_storage(storage_location)
    assert is_committed(storage, task.output)
    summary = json.loads(storage.get_bytes(join_key(task.output, "summary.json")))
    metrics = summary["metrics"]
    assert metrics["requested"] == 2  # shard 1 of 2 gets 5 // 2
    assert metrics["valid"] + metrics["invalid"] + metrics["duplicates"] == 2
    questions = read_jsonl(storage, join_key(task.output, "questions.jsonl"))
    invalid = read_jsonl(storage, join_key(task.output, "invalid.jsonl"))
    assert len(questions) == metrics["valid"] and len(invalid) == metrics["invalid"]
    assert all(row["id"].startswith("i001-s00001-") for row in questions + invalid)
    assert all(isinstance(row["output"], str) for row in invalid)


def test_generation_is_deterministic_per_shard_seed(local_location, tiny_model_dir, tmp_path):
    first = generate_task(local_location, tiny_model_dir, num_questions=2, seed=5)
    second = first.model_copy(update={"output": "iter-001/generate-again/shard-00000-of-00001"})
    for task in (first, second):
        run_phase(task, load_phase("generate"), cache_dir=tmp_path / "cache")

    storage = open_storage(local_location)
    assert storage.get_bytes(join_key(first.output, "invalid.jsonl")) == storage.get_bytes(
        join_key(second.output, "invalid.jsonl")
    )


def test_a_committed_shard_is_not_generated_again(local_location, tiny_model_dir, tmp_path, capsys):
    task = generate_task(local_location, tiny_model_dir, num_questions=1)
    run_phase(task, load_phase("generate"), cache_dir=tmp_path / "cache")
    storage = open_storage(local_location)
    committed = storage.get_bytes(join_key(task.output, "_MANIFEST.json"))

    def must_not_run(ctx):
        raise AssertionError("a committed phase ran again")

    capsys.readouterr()
    assert run_phase(task, must_not_run, cache_dir=tmp_path / "cache") == 0
    assert storage.get_bytes(join_key(task.output, "_MANIFEST.json")) == committed
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["metrics"]["requested"] == 1


@pytest.mark.parametrize("field", ["challenger"])
def test_a_missing_model_is_a_configuration_error_naming_the_field(local_location, tmp_path, field):
    from rzero_worker.models import ModelSourceError

    task = generate_task(local_location, tmp_path / "no-such-model")
    with pytest.raises(ModelSourceError, match=f"{field}.source"):
        run_phase(task, load_phase("generate"), cache_dir=tmp_path / "cache")


# --------------------------------------------------------------------------------------------------
# Grounded in spec.corpus


def test_with_a_corpus_each_candidate_asks_about_its_own_passage_and_keeps_its_provenance(
    local_location, tmp_path, monkeypatch
):
    from rzero_worker import generation, models
    from rzero_worker.corpus import read_corpus
    from rzero_worker.prompts import GROUNDED_CHALLENGER_SYSTEM_PROMPT

    challenger = PassageEcho()
    monkeypatch.setattr(models, "resolve_model", lambda *args, **kwargs: None)
    monkeypatch.setattr(generation, "make_generator", lambda *args, **kwargs: challenger)
    corpus_settings = write_corpus(tmp_path / "docs")
    task = generate_task(local_location, "unused", num_questions=7).model_copy(update={"corpus": corpus_settings})
    task.settings.batch_size = 3

    assert run_phase(task, load_phase("generate"), cache_dir=tmp_path / "cache") == 0

    storage = open_storage(local_location)
    questions = read_jsonl(storage, join_key(task.output, "questions.jsonl"))
    corpus = read_corpus(corpus_settings)
    expected = [corpus.sample(task.seed, task.iteration, i) for i in range(7)]
    assert [row["provenance"] for row in questions] == [p.provenance() for p in expected]
    assert [row["passage"] for row in questions] == [p.text for p in expected]
    assert all(row["question"].startswith(f"Which number does '{row['passage'][:10]}'") for row in questions)
    assert [prompt[0]["content"] for prompt in challenger.prompts] == [GROUNDED_CHALLENGER_SYSTEM_PROMPT] * 7
    assert summary_metrics(storage, task.output)["corpus"]["passages"] == len(corpus.passages)


def test_a_grounded_shard_run_again_reads_the_same_passages(local_location, tiny_model_dir, tmp_path):
    corpus_settings = write_corpus(tmp_path / "docs", count=12)
    first = generate_task(local_location, tiny_model_dir, num_questions=3, seed=5).model_copy(
        update={"corpus": corpus_settings})
    second = first.model_copy(update={"output": "iter-001/generate-again/shard-00000-of-00001"})
    for task in (first, second):
        assert run_phase(task, load_phase("generate"), cache_dir=tmp_path / "cache") == 0

    storage = open_storage(local_location)
    rows = [read_jsonl(storage, join_key(task.output, "invalid.jsonl"))
            + read_jsonl(storage, join_key(task.output, "questions.jsonl")) for task in (first, second)]
    assert len(rows[0]) == 3 and rows[0] == rows[1]  # the tiny random model: outputs and passages alike
    assert all(row["provenance"]["source"].startswith(str(tmp_path / "docs")) for row in rows[0])


# --------------------------------------------------------------------------------------------------
# Anchors (spec.anchors)


class Recorder:
    """A Challenger that records its prompts and writes question i."""

    def __init__(self):
        self.prompts = []

    def generate(self, prompts, n, sampling, seed):
        self.prompts.extend(prompts)
        return [[f"<question>Generated question {len(self.prompts) - len(prompts) + i}?</question> \\boxed{{1}}"]
                for i in range(len(prompts))]


@pytest.mark.parametrize("grounded", [False, True])
def test_each_candidate_prompt_shows_its_own_seeded_anchors(local_location, tmp_path, monkeypatch, grounded):
    from rzero_worker import generation, models
    from rzero_worker.anchors import read_anchors
    from rzero_worker.prompts import CHALLENGER_USER_PROMPT, anchor_examples

    challenger = Recorder()
    monkeypatch.setattr(models, "resolve_model", lambda *args, **kwargs: None)
    monkeypatch.setattr(generation, "make_generator", lambda *args, **kwargs: challenger)
    anchors = write_anchors(tmp_path / "anchors.jsonl", count=5, examples=2)
    update = {"anchors": anchors, **({"corpus": write_corpus(tmp_path / "docs")} if grounded else {})}
    task = generate_task(local_location, "unused", num_questions=5, seed=4).model_copy(update=update)

    assert run_phase(task, load_phase("generate"), cache_dir=tmp_path / "cache") == 0

    rows = read_anchors(anchors)
    expected = [anchor_examples([(a.question, a.answer) for a in rows.sample(4, 1, i, 2)]) for i in range(5)]
    users = [prompt[-1]["content"] for prompt in challenger.prompts]
    assert len(users) == 5 and all(user.startswith(block) for user, block in zip(users, expected))
    assert len(set(expected)) > 1  # the anchors differ from prompt to prompt
    assert all(user.endswith(CHALLENGER_USER_PROMPT) for user in users) != grounded
    metrics = summary_metrics(open_storage(local_location), task.output)
    assert metrics["anchors_shown"] == 10 and metrics["valid"] == 5
    assert metrics["anchors"]["usable"] == 5 and metrics["anchors"]["skipped"]["malformed_json"] == 1


class DiesOnSecondBatch(PassageEcho):
    """PassageEcho that is killed (an exception no phase code catches) while generating its second batch."""

    def generate(self, prompts, n, sampling, seed):
        if self.prompts:
            raise SystemExit(137)
        return super().generate(prompts, n, sampling, seed)


def test_a_grounded_generation_killed_midway_commits_nothing_and_its_rerun_writes_the_uninterrupted_rows(
    local_location, tmp_path, monkeypatch
):
    from rzero_worker import generation, models

    corpus_settings = write_corpus(tmp_path / "docs", count=9)
    task = generate_task(local_location, "unused", num_questions=6).model_copy(update={"corpus": corpus_settings})
    task.settings.batch_size = 2
    uninterrupted = task.model_copy(update={"output": "iter-001/generate-whole/shard-00000-of-00001"})
    monkeypatch.setattr(models, "resolve_model", lambda *args, **kwargs: None)
    storage = open_storage(local_location)

    monkeypatch.setattr(generation, "make_generator", lambda *args, **kwargs: DiesOnSecondBatch())
    with pytest.raises(SystemExit):
        run_phase(task, load_phase("generate"), cache_dir=tmp_path / "cache")
    assert not is_committed(storage, task.output)

    monkeypatch.setattr(generation, "make_generator", lambda *args, **kwargs: PassageEcho())
    for attempt in (task, uninterrupted):
        assert run_phase(attempt, load_phase("generate"), cache_dir=tmp_path / "cache") == 0
    rerun, whole = (read_jsonl(storage, join_key(t.output, "questions.jsonl")) for t in (task, uninterrupted))
    assert len(rerun) == 6 and rerun == whole  # same passages, same provenance, same ids: the kill left no trace
    assert all(row["provenance"]["document_id"] for row in rerun)
