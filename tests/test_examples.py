"""The example manifests: both validate offline and against the committed CRD; the demo really runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from rzero_operator.validate import validate_file, validate_manifest
from support.schemas import openapi_to_json_schema

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
CRD_FILE = REPO / "crds" / "rzeroruns.rzero.dev.yaml"
DEMO = EXAMPLES / "local-demo.yaml"
PAPER = EXAMPLES / "qwen3-4b-base.yaml"
WATCH = EXAMPLES / "watch-labels.yaml"
OPEN_ENDED = EXAMPLES / "open-ended.yaml"
TRAINED_VERIFIER = EXAMPLES / "trained-verifier.yaml"
DOCS_LOCAL = EXAMPLES / "python-docs-local.yaml"
DOCS_CLUSTER = EXAMPLES / "python-docs-cluster.yaml"
EVERY = [DEMO, PAPER, WATCH, OPEN_ENDED, TRAINED_VERIFIER, DOCS_LOCAL, DOCS_CLUSTER]
# The shared data sits beside the repository (../shared/data, in CI too); examples name it relatively.
PYTHON_LIBRARY = REPO.parent / "shared" / "data" / "python-3.11-library.jsonl"


def crd_schema() -> dict:
    crd = yaml.safe_load(CRD_FILE.read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return openapi_to_json_schema(version["schema"]["openAPIV3Schema"])


@pytest.mark.parametrize("example", EVERY, ids=lambda p: p.name)
def test_example_validates_offline(example):
    assert validate_file(example) == []


@pytest.mark.parametrize("example", EVERY, ids=lambda p: p.name)
def test_example_validates_against_the_committed_crd_schema(example):
    jsonschema.validate(yaml.safe_load(example.read_text()), crd_schema())


def test_the_trained_verifier_example_is_the_papers_maths_run_with_the_veto_and_a_verifier_phase_each_iteration():
    from rzero_operator.plan import run_steps
    from rzero_operator.sizing import check

    spec = validate_manifest(yaml.safe_load(TRAINED_VERIFIER.read_text())).spec
    assert spec.model == "Qwen/Qwen3-4B-Base" and spec.labeling.verifier == "veto" and spec.verifier.mode == "trained"
    assert spec.oracle.arithmetic and spec.guard.min_verifier_accuracy and spec.approval.after == ["label"]
    assert [phase for i, phase in run_steps(spec) if i == 1] == [
        "challenger", "generate", "label", "verifier", "solver", "evaluate"]
    assert spec.resources.for_phase("verifier").gpus == spec.resources.for_phase("solver").gpus == 8
    assert check(spec) == []  # sized like the Solver's phase: nothing refused, nothing idle


def test_the_crd_schema_check_would_catch_a_bad_example():
    bad = yaml.safe_load(DEMO.read_text())
    bad["spec"]["iterations"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, crd_schema())


def test_the_demo_uses_the_builtin_model_and_local_storage_with_tiny_budgets():
    spec = validate_manifest(yaml.safe_load(DEMO.read_text())).spec
    assert spec.model == "builtin:smollm2-135m-instruct"
    assert not spec.storage.uri.startswith("s3://") and not Path(spec.storage.uri).is_absolute()
    assert spec.iterations <= 2 and spec.device.device == "cpu"
    assert spec.warmup.enabled  # a 135M model needs the format warm-up to take part at all
    assert spec.oracle.arithmetic and spec.labeling.vote == "reference"
    assert spec.generation.num_questions <= 64 and spec.labeling.samples <= 8
    assert spec.challenger.grpo.steps <= 2 and spec.solver.grpo.steps <= 2
    for grpo in (spec.challenger.grpo, spec.solver.grpo):
        assert grpo.save_every >= grpo.steps  # no resume checkpoint uploaded in a short run


def test_the_paper_example_has_the_papers_settings_on_s3_with_a_secret_reference():
    spec = validate_manifest(yaml.safe_load(PAPER.read_text())).spec
    assert spec.model == "Qwen/Qwen3-4B-Base" and spec.iterations == 3
    assert spec.generation.num_questions == 8000
    assert spec.challenger.solver_samples == 10 and spec.labeling.samples == 10
    geometry = lambda g: (g.steps, g.rollout_batch_size, g.group_size, g.update_batch_size, g.micro_batch_size)
    assert geometry(spec.challenger.grpo) == (5, 512, 4, 16, 2) and spec.challenger.grpo.total_updates == 160
    assert geometry(spec.solver.grpo) == (15, 512, 5, 128, 1) and spec.solver.grpo.total_updates == 60
    for grpo in (spec.challenger.grpo, spec.solver.grpo):
        assert (grpo.max_prompt_tokens, grpo.max_completion_tokens, grpo.top_p, grpo.loss_aggregation) == (
            2048, 4096, 0.99, "verl")
    assert spec.device.dtype == "bfloat16"  # compute dtype; the trainable weights stay float32
    assert spec.labeling.vote == "reference" and spec.labeling.sampling.max_tokens == 4096
    assert spec.challenger.reward == "paper" and spec.labeling.band == "paper"
    assert spec.storage.uri.startswith("s3://") and spec.storage.secret_ref.name
    assert spec.sharding.generate > 1 and spec.sharding.label > 1 and spec.resources.gpus >= 1
    assert spec.sharding.evaluate > 1


def test_the_paper_example_evaluates_the_papers_ten_benchmarks_from_one_staged_location():
    from rzero_worker.benchmark_presets import PRESETS

    spec = validate_manifest(yaml.safe_load(PAPER.read_text())).spec
    benchmarks = spec.evaluation.benchmarks
    assert [b.preset for b in benchmarks] == list(PRESETS)
    assert [b.path for b in benchmarks] == [f"s3://rzero/benchmarks/r-zero/{name}.jsonl" for name in PRESETS]
    assert spec.evaluation.max_tokens is None  # each preset's reference answer length
    assert {b.name for b in benchmarks if b.samples} == {"amc23", "aime24", "aime25"}
    assert "rzero benchmarks prepare all --out s3://rzero/benchmarks/r-zero" in PAPER.read_text()


def test_the_python_docs_example_runs_locally_grounded_in_the_shared_corpus_with_document_labels():
    from rzero_operator.local.executor import load_run, resolve_paths

    spec = validate_manifest(yaml.safe_load(DOCS_LOCAL.read_text())).spec
    assert spec.model == "builtin:smollm2-135m-instruct" and spec.device.device == "cpu" and spec.iterations == 1
    assert spec.corpus.uri == "../shared/data/python-3.11-library.jsonl"  # relative: never a copy in the repository
    assert spec.labeling.label == "document"
    demo = validate_manifest(yaml.safe_load(DEMO.read_text())).spec
    assert spec.warmup == demo.warmup  # the demo's warm-up: one cached warm-up serves both
    assert spec.generation.num_questions <= 64 and spec.labeling.samples <= 8
    assert spec.challenger.grpo.steps <= 2 and spec.solver.grpo.steps <= 2
    assert [(b.name, b.answer_type, b.path) for b in spec.evaluation.benchmarks] == [
        ("python-docs", "text", "examples/python-docs-questions.jsonl"),
        ("python-docs-choice", "choice", "examples/python-docs-questions.jsonl")]
    # `rzero run` from the repository root resolves both as it resolves storage.uri
    run = load_run(DOCS_LOCAL)
    resolve_paths(run, REPO)
    assert Path(run.spec.corpus.uri) == PYTHON_LIBRARY.resolve()
    assert Path(run.spec.evaluation.benchmarks[0].path) == (EXAMPLES / "python-docs-questions.jsonl").resolve()
    assert Path(run.spec.anchors.uri) == (EXAMPLES / "python-docs-anchors.jsonl").resolve()


def test_the_python_docs_anchors_are_read_whole_and_none_is_a_held_out_question():
    from rzero_operator.local.executor import load_run, resolve_paths
    from rzero_operator.tasks import anchor_input
    from rzero_worker.anchors import read_anchors

    run = load_run(DOCS_LOCAL)
    resolve_paths(run, REPO)
    anchors = read_anchors(anchor_input(run.spec))  # with the example's held-out benchmarks: none of theirs
    assert len(anchors.rows) == 12 and sum(anchors.skipped.values()) == 0
    assert anchors.stats()["skipped"]["in_evaluation"] == 0


@pytest.mark.skipif(not PYTHON_LIBRARY.is_file(), reason="../shared/data/python-3.11-library.jsonl is not here")
def test_the_python_docs_example_reads_the_shared_corpus_at_its_passage_size():
    from rzero_operator.local.executor import load_run, resolve_paths
    from rzero_worker.corpus import read_corpus

    run = load_run(DOCS_LOCAL)
    resolve_paths(run, REPO)
    stats = read_corpus(run.spec.corpus).stats()
    assert stats["documents"] == 1797 and set(stats["skipped"].values()) == {0}
    assert stats["passages"] > 1797


def test_the_held_out_python_questions_grade_as_free_form_and_as_multiple_choice():
    from rzero_worker.benchmarks import load_benchmark

    spec = validate_manifest(yaml.safe_load(DOCS_LOCAL.read_text())).spec
    text, choice = (load_benchmark(b.model_copy(update={"path": str(REPO / b.path)})) for b in spec.evaluation.benchmarks)
    assert len(text.items) == len(choice.items) == 16 and (text.scoring, choice.scoring) == ("text", "options")
    for free, lettered in zip(text.items, choice.items):
        assert len(lettered.options) == 4
        assert lettered.options["ABCD".index(lettered.gold)] == free.gold  # the gold is the option's text
    assert {item.gold for item in text.items} >= {"str.join", "False", "KeyError", "(3, 2)"}


def test_the_python_docs_cluster_form_reads_the_corpus_from_s3_on_gpus_beside_the_papers_benchmarks():
    spec = validate_manifest(yaml.safe_load(DOCS_CLUSTER.read_text())).spec
    local = validate_manifest(yaml.safe_load(DOCS_LOCAL.read_text())).spec
    assert spec.model == "Qwen/Qwen3-4B-Base" and spec.device.device == "cuda" and spec.resources.gpus >= 1
    assert spec.corpus.uri.startswith("s3://") and spec.storage.uri.startswith("s3://") and spec.storage.secret_ref.name
    assert spec.labeling.label == local.labeling.label == "document" and not spec.warmup.enabled
    benchmarks = spec.evaluation.benchmarks
    assert [(b.name, b.answer_type) for b in benchmarks[:2]] == [(b.name, b.answer_type) for b in local.evaluation.benchmarks]
    assert all(b.path.startswith("s3://") for b in benchmarks)
    assert [b.preset for b in benchmarks[2:]] == ["gsm8k", "math500", "mmlu-pro"]


def test_the_open_ended_example_scores_with_the_verifier_and_judges_the_win_rate_with_the_oracle():
    spec = validate_manifest(yaml.safe_load(OPEN_ENDED.read_text())).spec
    assert spec.task.open_ended and spec.task.criteria == ("helpfulness", "clarity", "tone")
    assert spec.verifier.endpoint.api_key_secret and spec.oracle.endpoint.api_key_secret
    assert spec.task.held_out.uri.startswith("s3://") and spec.labeling.verifier == "off"


@pytest.mark.demo
def test_the_demo_shows_every_part_of_r_zero_acting(smollm2_gguf):
    """The README's first command, end to end, through bench/demo.py (which also times it): valid questions,
    reward spread in both roles, kept questions, oracle-checked labels, a base score above zero."""
    done = subprocess.run([sys.executable, str(REPO / "bench" / "demo.py"), "--no-rerun"],
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["succeeded"]
    assert figures["valid_share"] >= 0.5 and figures["kept"] >= 8
    assert figures["oracle_checked"] > 0 and figures["label_accuracy"] is not None
    assert figures["challenger_reward_std"] > 0 and figures["solver_reward_std"] > 0
    assert figures["eval_accuracy_base"] > 0
    # every phase left its TensorBoard run in its committed output (tracking.py), both roles included
    assert {"iter-001/challenger", "iter-001/solver", "iter-000/warmup"} <= figures["tensorboard_runs"].keys()
    # Issue 9 asked for 3 GB of worker memory; full fine-tuning of 135M parameters in float32 holds 2.2 GB of
    # weights, gradients and AdamW state plus the frozen Solver (0.5 GB) before any activation: measured 4.8 GB
    # in the Challenger phase. This bound catches a regression (8.6 GB with whole-batch forward passes).
    assert figures["worker_peak_rss_mb"] <= 5632 and figures["run_dir_mb"] <= 3072
