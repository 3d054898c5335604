"""Worker tasks per (iteration, phase): which artefacts each phase reads and writes, shards and seeds."""

from __future__ import annotations

import pytest

from rzero_operator.api import RZeroRunSpec
from rzero_operator.tasks import build_tasks, derive_seed, run_root_for
from rzero_worker.task import parse_task

ROOT = "s3://runs/rzero/ns/demo/uid-1"


def make_spec(**fields) -> RZeroRunSpec:
    body = {"model": "base.gguf", "iterations": 3, "seed": 7,
            "storage": {"uri": "s3://runs/rzero", "endpoint": "http://minio:9000", "region": "eu-west-1"}}
    body.update(fields)
    return RZeroRunSpec.model_validate(body)


def one(phase: str, iteration: int, spec: RZeroRunSpec | None = None):
    (task,) = build_tasks(spec or make_spec(), ROOT, "demo", iteration, phase)
    return task


def test_run_root_is_uri_namespace_name_uid():
    assert run_root_for("s3://runs/rzero/", "ns", "demo", "uid-1") == ROOT


def test_tasks_carry_the_run_root_storage_and_device_but_no_credentials():
    task = one("solver", 1)
    assert (task.storage.uri, task.storage.endpoint_url, task.storage.region) == (
        ROOT, "http://minio:9000", "eu-west-1")
    assert task.run == "demo" and task.device.device == "auto"
    assert "secret" not in str(task.wire()).lower()


def test_base_evaluation_scores_the_solver_base_model():
    assert one("evaluate", 0).model.source == "base.gguf"
    assert one("evaluate", 0, make_spec(solverSource="solver-base")).model.source == "solver-base"
    assert one("evaluate", 0).output == "iter-000/evaluate/shard-00000-of-00001"


def test_first_challenger_trains_the_base_model_against_the_base_solver():
    task = one("challenger", 1, make_spec(solverSource="solver-base"))
    assert (task.challenger.source, task.solver.source, task.output) == ("base.gguf", "solver-base", "iter-001/challenger")


def test_with_a_warm_up_every_base_model_is_the_warmed_up_one():
    spec = make_spec(warmup={"enabled": True})
    assert one("evaluate", 0, spec).model.artifact == "iter-000/warmup"
    challenger = one("challenger", 1, spec)
    assert challenger.challenger.artifact == challenger.solver.artifact == "iter-000/warmup"
    assert one("label", 1, spec).solver.artifact == "iter-000/warmup"
    assert one("challenger", 2, spec).challenger.artifact == "iter-001/challenger"  # later: checkpoints as usual
    with pytest.raises(ValueError, match="warmup.enabled"):
        build_tasks(make_spec(), ROOT, "demo", 0, "warmup")


def test_a_warm_up_cannot_serve_two_base_models():
    with pytest.raises(ValueError, match="solverSource"):
        make_spec(warmup={"enabled": True}, solverSource="other")


def test_the_challengers_p_hat_uses_the_runs_labelling_vote():
    assert one("challenger", 1).grading.vote == "reference"
    assert one("challenger", 1, make_spec(labeling={"vote": "boxed-only"})).grading.vote == "boxed-only"


def test_every_grading_phase_reads_and_compares_answers_as_the_runs_labeling_block_says():
    spec = make_spec(labeling={"vote": "boxed-only", "checker": "math-verify", "gradingTimeoutS": 3})
    for phase in ("challenger", "generate", "solver"):
        assert one(phase, 1).grading.model_dump() == {"vote": "reference", "checker": "mathruler", "timeout_s": 10.0}
        assert one(phase, 1, spec).grading.model_dump() == {"vote": "boxed-only", "checker": "math-verify", "timeout_s": 3}
    assert one("label", 1, spec).settings.grading() == one("solver", 1, spec).grading


def test_later_challenger_continues_from_the_previous_checkpoints():
    task = one("challenger", 3)
    assert (task.challenger.artifact, task.solver.artifact) == ("iter-002/challenger", "iter-002/solver")


def test_generate_uses_this_iterations_challenger_one_task_per_shard():
    tasks = build_tasks(make_spec(sharding={"generate": 3}), ROOT, "demo", 2, "generate")
    assert [t.output for t in tasks] == [f"iter-002/generate/shard-0000{i}-of-00003" for i in range(3)]
    assert all(t.challenger.artifact == "iter-002/challenger" for t in tasks)
    assert [t.shard.index for t in tasks] == [0, 1, 2] and {t.shard.count for t in tasks} == {3}


def test_label_uses_the_previous_solver_and_this_iterations_questions():
    tasks = build_tasks(make_spec(sharding={"label": 2}), ROOT, "demo", 2, "label")
    assert all(t.solver.artifact == "iter-001/solver" and t.questions == "iter-002/generate" for t in tasks)
    assert one("label", 1).solver.source == "base.gguf"
    assert tasks[1].output == "iter-002/label/shard-00001-of-00002"


def test_the_veto_gives_the_label_task_a_verifier_by_default_a_copy_of_the_solvers_base_model():
    assert one("label", 2).verifier is None  # labeling.verifier is off by default
    veto = make_spec(labeling={"verifier": "veto"})
    assert one("label", 1, veto).verifier.model.source == "base.gguf"
    assert one("label", 3, veto).verifier.model.source == "base.gguf"  # the same judge in every iteration
    warmed = make_spec(labeling={"verifier": "veto"}, warmup={"enabled": True})
    assert one("label", 2, warmed).verifier.model.artifact == "iter-000/warmup"
    named = make_spec(labeling={"verifier": "veto"}, verifier={"model": "builtin:smollm2-135m-instruct", "maxTokens": 256})
    assert (one("label", 1, named).verifier.model.source, one("label", 1, named).verifier.max_tokens) == (
        "builtin:smollm2-135m-instruct", 256)
    endpoint = make_spec(labeling={"verifier": "veto"}, verifier={"endpoint": {"url": "http://judge/v1", "model": "j"}})
    task = one("label", 1, endpoint)
    assert task.verifier.model is None and task.verifier.endpoint.url == "http://judge/v1"
    assert parse_task(task.wire()).verifier == task.verifier


def test_a_veto_whose_verifier_is_the_warmed_up_model_gets_verifier_examples_in_the_warm_up_by_default():
    def share(**fields):
        return one("warmup", 0, make_spec(warmup={"enabled": True, **fields.pop("warmup", {})}, **fields)).settings

    assert share().verifier_examples is None and share().verifier_share() == 0  # no Verifier: the warm-up as before
    assert share(labeling={"verifier": "veto"}).verifier_examples == 0.3
    assert share(labeling={"verifier": "veto"}, warmup={"verifierExamples": 0.5}).verifier_examples == 0.5
    assert share(labeling={"verifier": "veto"}, warmup={"verifierExamples": 0}).verifier_share() == 0
    # a Verifier that is not the warmed-up model learns nothing from the warm-up
    assert share(labeling={"verifier": "veto"}, verifier={"model": "judge-dir"}).verifier_examples is None
    endpoint = {"endpoint": {"url": "http://judge/v1", "model": "j"}}
    assert share(labeling={"verifier": "veto"}, verifier=endpoint).verifier_examples is None
    assert share(warmup={"verifierExamples": 0.2}).verifier_examples == 0.2  # asked for: kept


def test_solver_trains_the_previous_solver_on_this_iterations_labels():
    task = one("solver", 2)
    assert (task.solver.artifact, task.dataset, task.output) == ("iter-001/solver", "iter-002/label", "iter-002/solver")


def test_evaluate_scores_this_iterations_solver():
    assert one("evaluate", 2).model.artifact == "iter-002/solver"


def test_evaluation_shards_like_generation_and_labelling():
    tasks = build_tasks(make_spec(sharding={"evaluate": 4}), ROOT, "demo", 0, "evaluate")
    assert [t.output for t in tasks] == [f"iter-000/evaluate/shard-0000{i}-of-00004" for i in range(4)]
    assert [(t.shard.index, t.shard.count) for t in tasks] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert {t.model.source for t in tasks} == {"base.gguf"}


def test_settings_come_from_the_spec_blocks():
    spec = make_spec(challenger={"reward": "code", "solverSamples": 9}, labeling={"samples": 9, "band": "code"},
                     solver={"formatWeight": 0.1}, generation={"numQuestions": 100})
    assert one("challenger", 1, spec).settings.reward == "code"
    assert one("label", 1, spec).settings.samples == 9
    assert one("solver", 1, spec).settings.format_weight == 0.1
    assert one("generate", 1, spec).settings.num_questions == 100


def test_every_generate_shard_carries_the_corpus_and_no_corpus_means_none():
    spec = make_spec(corpus={"uri": "s3://docs/library", "format": "jsonl", "passageChars": 800}, sharding={"generate": 2})
    tasks = build_tasks(spec, ROOT, "demo", 1, "generate")
    assert [(t.corpus.uri, t.corpus.format, t.corpus.passage_chars, t.corpus.overlap_chars) for t in tasks] == [
        ("s3://docs/library", "jsonl", 800, 200)] * 2
    assert all(parse_task(t.wire()) == t for t in tasks)
    assert one("generate", 1).corpus is None and "corpus" not in one("generate", 1).wire()


def test_anchors_reach_the_phases_that_use_them_with_the_evaluation_benchmarks():
    spec = make_spec(anchors={"uri": "s3://docs/anchors.jsonl", "examples": 2, "mixRatio": 0.2},
                     corpus={"uri": "s3://docs/library"}, challenger={"objective": "variance"},
                     evaluation={"benchmarks": [{"name": "mine", "path": "s3://docs/held-out.jsonl"}]})
    for phase in ("challenger", "generate", "solver"):
        task = one(phase, 1, spec)
        assert (task.anchors.settings.uri, task.anchors.settings.examples, task.anchors.settings.mix_ratio) == (
            "s3://docs/anchors.jsonl", 2, 0.2)
        assert [b.path for b in task.anchors.benchmarks] == ["s3://docs/held-out.jsonl"]
        assert parse_task(task.wire()) == task
    assert one("challenger", 1, spec).corpus.uri == "s3://docs/library"
    assert one("challenger", 1, spec).settings.objective == "variance"
    assert all(one(phase, 1).anchors is None for phase in ("challenger", "generate", "solver"))
    assert one("challenger", 1).corpus is None and "anchors" not in one("label", 1, spec).wire()


def test_seeds_differ_by_iteration_phase_and_shard_and_are_reproducible():
    tasks = build_tasks(make_spec(sharding={"generate": 2}), ROOT, "demo", 1, "generate")
    assert tasks[0].seed != tasks[1].seed
    assert tasks[0].seed == derive_seed(7, 1, "generate", 0)
    assert derive_seed(7, 1, "generate", 0) != derive_seed(8, 1, "generate", 0)
    assert derive_seed(7, 1, "label", 0) != derive_seed(7, 2, "label", 0)
    assert 0 <= derive_seed(7, 1, "generate", 0) < 2**31


@pytest.mark.parametrize("phase", ["challenger", "generate", "label", "solver", "evaluate"])
def test_every_task_survives_the_wire_round_trip_the_worker_does(phase):
    for task in build_tasks(make_spec(), ROOT, "demo", 1, phase):
        assert parse_task(task.wire()) == task


@pytest.mark.parametrize("iteration, phase", [(0, "challenger"), (1, "train"), (-1, "evaluate")])
def test_impossible_steps_are_refused(iteration, phase):
    with pytest.raises(ValueError):
        build_tasks(make_spec(), ROOT, "demo", iteration, phase)


def test_a_label_task_names_the_verifiers_own_gpus_and_only_on_gpu_pods():
    own = make_spec(labeling={"verifier": "veto"}, verifier={"gpus": 2}, resources={"gpus": 4})
    assert one("label", 1, own).verifier.gpus == 2
    assert parse_task(one("label", 1, own).wire()).verifier.gpus == 2
    assert one("label", 1, make_spec(labeling={"verifier": "veto"}, resources={"gpus": 4})).verifier.gpus == 0
    cpu = make_spec(labeling={"verifier": "veto"}, verifier={"gpus": 2}, resources={"gpus": 4},
                    device={"device": "cpu"})
    assert one("label", 1, cpu).verifier.gpus == 0  # on CPU the field changes nothing
