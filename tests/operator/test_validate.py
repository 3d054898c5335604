"""Offline validation: messages a person can act on, naming the field by its manifest (camelCase) path."""

from __future__ import annotations

import pytest
import yaml

from rzero_operator.validate import InvalidManifest, validate_file, validate_manifest


def manifest(**spec) -> dict:
    body = {"model": "builtin:smollm2-135m-instruct", "storage": {"uri": "rzero-runs"}}
    body.update(spec)
    return {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "demo"}, "spec": body}


def errors_of(doc: dict) -> list[str]:
    with pytest.raises(InvalidManifest) as caught:
        validate_manifest(doc)
    return caught.value.errors


def test_a_minimal_manifest_is_valid_and_gets_the_reference_defaults():
    run = validate_manifest(manifest())
    assert run.metadata.name == "demo" and run.spec.iterations == 3
    assert run.spec.challenger.grpo.group_size == 4 and run.spec.retry.max_attempts == 3


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"labeling": {"minScore": 0.8, "maxScore": 0.5}}, "spec.labeling: band minScore 0.8 must be below maxScore 0.5"),
        ({"iterations": 0}, "spec.iterations: must be >= 1, got 0"),
        ({"iterations": 101}, "spec.iterations: must be <= 100, got 101"),
        ({"labeling": {"band": "wide"}}, "spec.labeling.band: must be one of 'paper' or 'code', got 'wide'"),
        ({"sharding": {"generate": 5}, "generation": {"numQuestions": 2}}, "spec.sharding.generate: must not exceed"),
        ({"storage": {"uri": "gs://b/p"}}, "spec.storage.uri: 'gs://b/p' is not s3://bucket/prefix or a local path"),
        ({"storage": {"uri": "local", "secretRef": {"name": "s3"}}}, "spec.storage.secretRef: applies only to s3://"),
        ({"resources": {"memory": "16 GB"}}, "spec.resources.memory: '16 GB' is not a Kubernetes quantity"),
        ({"resources": {"image": "Bad Image"}}, "spec.resources.image: 'Bad Image' is not an image reference"),
        ({"resources": {"serviceAccountName": "Not_OK"}}, "spec.resources.serviceAccountName: 'Not_OK' is not a DNS"),
        ({"queueName": "UPPER"}, "spec.queueName: 'UPPER' is not a DNS label"),
        ({"resources": {"nodes": 2, "gpus": 0}}, "spec.resources.nodes: multi-node training needs gpus >= 1"),
        ({"retry": {"backoffSeconds": 60, "maxBackoffSeconds": 10}}, "spec.retry.maxBackoffSeconds: must be at least"),
        ({"resources": {"env": [{"name": "A", "valueFrom": {}}]}},
         "spec.resources.env[0].valueFrom: must set exactly one of secretKeyRef or configMapKeyRef"),
        ({"evaluation": {"benchmarks": [{"name": "gsm8k"}]}}, "spec.evaluation.benchmarks[0]: benchmark 'gsm8k': kind jsonl needs a path"),
        ({"modle": "typo"}, "spec.modle: unknown field"),
        ({"labeling": {"verifier": "judge"}}, "spec.labeling.verifier: must be one of 'off' or 'veto', got 'judge'"),
        ({"verifier": {"mode": "learned"}}, "spec.verifier.mode: must be one of 'frozen' or 'trained', got 'learned'"),
        ({"verifier": {"mode": "trained"}}, "spec.verifier.mode: a trained Verifier is used by the veto; set labeling.verifier: veto"),
        ({"verifier": {"model": "m", "endpoint": {"url": "http://v:8000/v1", "model": "j"}}},
         "spec.verifier.endpoint: set model or endpoint, not both"),
        ({"verifier": {"endpoint": {"url": "ftp://v", "model": "j"}}}, "spec.verifier.endpoint.url:"),
        ({"oracle": {"endpoint": {"url": "http://o/v1", "model": "o", "apiKeySecret": {"name": "a", "key": "k"}}},
          "verifier": {"endpoint": {"url": "http://v/v1", "model": "v", "apiKeySecret": {"name": "b", "key": "k"}}}},
         "spec.verifier.endpoint.apiKeyEnv: the oracle endpoint reads another Secret key into the same variable"),
        ({"corpus": {"uri": "docs", "passageChars": 500, "overlapChars": 300}},
         "spec.corpus.overlapChars: must be at most half of passageChars"),
        ({"corpus": {"uri": "https://example.com/docs"}}, "spec.corpus.uri: 'https://example.com/docs' is not s3://"),
        ({"corpus": {"passageChars": 500}}, "spec.corpus.uri: is required"),
        ({"corpus": {"uri": "docs", "format": "csv"}}, "spec.corpus.format: must be one of"),
        ({"corpus": {"uri": "docs", "passageChars": 50}}, "spec.corpus.passageChars: must be >= 100"),
        ({"labeling": {"label": "document"}}, "spec.labeling.label: document labels are the grounded Challenger's"
         " answers; they need spec.corpus"),
        ({"labeling": {"label": "oracle"}}, "spec.labeling.label: must be one of 'vote' or 'document'"),
        ({"challenger": {"objective": "variance"}}, "spec.challenger.objective: the variance reward scores the "
         "Solver's pass rate against the Challenger's document answer; it needs spec.corpus"),
        ({"challenger": {"objective": "spread"}},
         "spec.challenger.objective: must be one of 'uncertainty' or 'variance'"),
        ({"anchors": {"examples": 2}}, "spec.anchors.uri: is required"),
        ({"anchors": {"uri": "anchors.jsonl", "examples": 17}}, "spec.anchors.examples: must be <= 16"),
        ({"anchors": {"uri": "anchors.jsonl", "mixRatio": -0.1}}, "spec.anchors.mixRatio: must be >= 0"),
        ({"anchors": {"uri": "https://example.com/a.jsonl"}}, "spec.anchors.uri: 'https://example.com/a.jsonl' is not"),
    ],
)
def test_errors_name_the_field_by_its_camel_case_path(spec, expected):
    errors = errors_of(manifest(**spec))
    assert any(e.startswith(expected) for e in errors), errors


def test_document_labels_with_a_corpus_are_valid_and_vote_is_the_default():
    assert validate_manifest(manifest()).spec.labeling.label == "vote"
    run = validate_manifest(manifest(corpus={"uri": "docs"}, labeling={"label": "document"}))
    assert run.spec.labeling.label == "document"


def test_anchors_and_the_variance_objective_with_a_corpus_are_valid_and_uncertainty_is_the_default():
    assert validate_manifest(manifest()).spec.challenger.objective == "uncertainty"
    assert validate_manifest(manifest()).spec.anchors is None
    run = validate_manifest(manifest(corpus={"uri": "docs"}, challenger={"objective": "variance"},
                                     anchors={"uri": "s3://docs/anchors.jsonl"}))
    assert run.spec.challenger.objective == "variance"
    assert (run.spec.anchors.examples, run.spec.anchors.mix_ratio, run.spec.anchors.question_field) == (3, 0.1,
                                                                                                        "question")


def test_missing_required_fields_are_named():
    doc = manifest()
    del doc["spec"]["model"], doc["spec"]["storage"]
    assert errors_of(doc) == ["spec.model: is required", "spec.storage: is required"]


def test_wrong_kind_or_api_version_is_refused_before_the_body():
    doc = manifest()
    doc["apiVersion"], doc["kind"] = "v1", "Pod"
    assert errors_of(doc) == ["apiVersion: must be rzero.dev/v1alpha1, got 'v1'", "kind: must be RZeroRun, got 'Pod'"]


def test_run_names_must_be_dns_labels():
    doc = manifest()
    doc["metadata"]["name"] = "My_Run"
    assert any(e.startswith("metadata.name: 'My_Run' is not a DNS label") for e in errors_of(doc))


def test_secret_values_never_echo_in_messages():
    doc = manifest(resources={"env": [{"name": "TOKEN", "value": "hunter2-secret", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]})
    assert not any("hunter2" in e for e in errors_of(doc))


def test_a_file_holds_one_run_for_validate_as_for_run(tmp_path):
    from rzero_operator.local.executor import load_run

    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump_all([manifest(), manifest()]))
    assert validate_file(path) == ["holds 2 documents; a manifest file holds exactly one"]
    with pytest.raises(InvalidManifest) as caught:
        load_run(path)
    assert caught.value.errors == validate_file(path)


def test_validate_file_accepts_a_valid_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(manifest()))
    assert validate_file(path) == []


def test_validate_file_explains_unreadable_or_malformed_files(tmp_path):
    assert "cannot read" in validate_file(tmp_path / "missing.yaml")[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec: [unclosed")
    assert "not valid YAML" in validate_file(bad)[0]
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert validate_file(empty) == ["holds no document; a manifest file holds exactly one"]


def test_an_integral_number_is_an_integer_as_kubectl_sends_it():
    """kubectl sends 3.0 (and 30e-1) as the integer 3, and the server stores it; not 1.5, nor 1e21, which Go
    writes with an exponent (a float). Measured with kubectl 1.33 and kube-apiserver 1.36."""
    run = validate_manifest(manifest(iterations=3.0, seed=30e-1, challenger={"grpo": {"clipDual": 8}}))
    assert run.spec.iterations == 3 and isinstance(run.spec.iterations, int) and run.spec.seed == 3
    assert run.spec.challenger.grpo.clip_dual == 8.0
    assert errors_of(manifest(iterations=1.5)) == ["spec.iterations: must be an integer, got number 1.5"]
    assert errors_of(manifest(resources={"tolerations": [{"key": "k", "effect": "NoExecute",
                                                          "tolerationSeconds": 1e21}]}))


def test_a_corpus_gets_its_defaults_and_no_corpus_is_r_zero_as_it_is():
    assert validate_manifest(manifest()).spec.corpus is None
    corpus = validate_manifest(manifest(corpus={"uri": "s3://docs/library.jsonl"})).spec.corpus
    assert (corpus.format, corpus.text_field, corpus.id_field) == ("auto", "text", "id")
    assert (corpus.passage_chars, corpus.overlap_chars, corpus.max_document_bytes) == (1500, 200, 4 * 1024 * 1024)
