"""The CRD is generated from the API types, is a valid structural CRD, and accepts what validation accepts."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from rzero_operator.api.crd import CEL_RULES, build_crd, open_api_schema, render_crd_yaml
from rzero_operator.api.reference import render_configuration_reference
from rzero_operator.validate import InvalidManifest, validate_manifest
from support.crd_server import bound_is_int64
from support.schemas import openapi_to_json_schema

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "rzeroruns.rzero.dev.yaml"
REGENERATE = (
    ".venv/bin/python -c \"from rzero_operator.api.crd import render_crd_yaml; "
    "print(render_crd_yaml(), end='')\" > crds/rzeroruns.rzero.dev.yaml"
)


def manifest(**spec) -> dict:
    body = {"model": "builtin:smollm2-135m-instruct", "storage": {"uri": "s3://runs/rzero"}}
    body.update(spec)
    return {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "demo"}, "spec": body}


def schema_nodes(node, path="$"):
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from schema_nodes(child, f"{path}.{name}")
    if "items" in node:
        yield from schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}{{}}")


def test_committed_crd_file_equals_the_generated_one():
    assert CRD_FILE.read_text() == render_crd_yaml(), f"CRD drifted from the API types; regenerate: {REGENERATE}"


def test_committed_configuration_reference_is_up_to_date():
    committed = (REPO / "docs" / "configuration.md").read_text()
    assert committed == render_configuration_reference(), "docs/configuration.md is stale; regenerate it"


def test_crd_has_the_fixed_names_scope_and_status_subresource():
    crd = build_crd()
    spec = crd["spec"]
    assert crd["metadata"]["name"] == "rzeroruns.rzero.dev"
    assert spec["group"] == "rzero.dev" and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "RZeroRun" and spec["names"]["plural"] == "rzeroruns"
    assert spec["names"]["singular"] == "rzerorun" and spec["names"]["shortNames"] == ["rzr"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_printer_columns_show_phase_iteration_stage_kept_score_label_accuracy_best_and_age():
    (version,) = build_crd()["spec"]["versions"]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Phase": ".status.phase", "Iteration": ".status.progress", "Stage": ".status.stage",
        "Kept": ".status.keptQuestions", "Score": ".status.latestScore", "LabelAcc": ".status.latestLabelAccuracy",
        "VerifierAcc": ".status.latestVerifierAccuracy", "Best": ".status.bestIteration.iteration",
        "Age": ".metadata.creationTimestamp",
    }
    # the trained Verifier's accuracy is a wide column (kubectl get -o wide): most runs have none
    assert {c["name"]: c.get("priority", 0) for c in version["additionalPrinterColumns"]}["VerifierAcc"] == 1
    status_schema = open_api_schema()["properties"]["status"]
    for path in columns.values():
        if path.startswith(".status."):
            node = status_schema
            for part in path.removeprefix(".status.").split("."):
                node = node["properties"][part]


def test_crd_validates_against_the_real_kubernetes_schema():
    crd = yaml.safe_load(CRD_FILE.read_text())
    kubernetes_validate.validate(crd, kubernetes_validate.latest_version(), strict=True)


def test_kubernetes_validate_would_catch_a_malformed_crd():
    crd = build_crd()
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"][0]["bogus"] = 1
    with pytest.raises(Exception, match="bogus"):
        kubernetes_validate.validate(crd, kubernetes_validate.latest_version(), strict=True)


def test_schema_is_structural_no_refs_no_unions_every_node_typed():
    for path, node in schema_nodes(open_api_schema()):
        assert not {"$ref", "$defs", "anyOf", "oneOf", "allOf", "title", "const"} & node.keys(), path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not ("properties" in node and "additionalProperties" in node), path
        assert node.get("additionalProperties") is not False, path
        assert isinstance(node.get("nullable", False), bool), path
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert isinstance(node.get(bound, False), bool), f"{path}: OpenAPI 3.0 {bound} is a boolean"


def test_every_integer_bound_is_still_an_int64_when_the_server_reads_it_as_a_float64():
    """The API server holds `minimum`/`maximum` as float64: 2**63 - 1 becomes 2**63, no int64, and then every
    value of the field is refused ("Maximum boundary value must be of type integer"), the CRD accepted.
    (support.crd_server.bound_is_int64 is checked against the server in kube/server/test_validate_vs_server.py.)"""
    bad = [f"{path}.{bound}={node[bound]}" for path, node in schema_nodes(open_api_schema())
           if node.get("type") == "integer" for bound in ("minimum", "maximum")
           if bound in node and not bound_is_int64(node[bound])]
    assert bad == []
    assert not bound_is_int64(2**63 - 1) and not bound_is_int64(-(2**63)) and bound_is_int64(2**31 - 1)


def test_every_spec_field_has_a_description_for_kubectl_explain():
    spec = open_api_schema()["properties"]["spec"]
    missing = [path for path, node in schema_nodes(spec) if path != "$" and not node.get("description")
               and not path.endswith("[]") and not path.endswith("{}")]
    assert missing == []


def test_defaults_are_kept_and_nested_defaults_are_valid_against_their_schema():
    spec = open_api_schema()["properties"]["spec"]["properties"]
    assert spec["iterations"]["default"] == 3
    assert spec["retry"]["properties"]["maxAttempts"]["default"] == 3
    assert spec["challenger"]["default"]["grpo"]["groupSize"] == 4
    assert "nullable" not in spec["labeling"]["properties"]["minScore"]
    for path, node in schema_nodes(open_api_schema()):
        if "default" in node:
            jsonschema.validate(node["default"], openapi_to_json_schema(node))


def test_optional_fields_are_not_required_and_not_nullable_so_the_server_prunes_a_null():
    storage = open_api_schema()["properties"]["spec"]["properties"]["storage"]
    assert storage["required"] == ["uri"]
    assert not [path for path, node in schema_nodes(open_api_schema()) if node.get("nullable")]
    assert "default" not in storage["properties"]["secretRef"]


def test_cel_rules_each_have_a_message():
    rules = [r for _, node in schema_nodes(open_api_schema()) for r in node.get("x-kubernetes-validations", [])]
    assert len(rules) >= sum(len(v) for v in CEL_RULES.values())
    for rule in rules:
        assert rule["rule"] and rule["message"]


def test_labeling_band_rule_is_attached_to_the_labeling_block():
    labeling = open_api_schema()["properties"]["spec"]["properties"]["labeling"]
    assert any("minScore" in r["rule"] for r in labeling["x-kubernetes-validations"])


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"iterations": 5, "sharding": {"generate": 4, "label": 2}, "queueName": "gpu-queue"},
        {"storage": {"uri": "s3://runs/x", "endpoint": "http://minio:9000", "secretRef": {"name": "s3-creds"}}},
        {"resources": {"image": "registry.example.com:5000/team/rzero-worker:0.1.0", "cpu": "500m",
                       "memory": "16Gi", "gpus": 8, "nodes": 2,
                       "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}],
                       "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                       "phases": {"solver": {"gpus": 8, "nodes": 4}}}},
        {"labeling": {"band": "code", "minScore": 0.2}, "retry": {"maxAttempts": 5, "backoffSeconds": 10}},
    ],
)
def test_manifests_the_validator_accepts_also_pass_the_crd_schema(spec):
    doc = manifest(**spec)
    validate_manifest(doc)
    jsonschema.validate(doc, openapi_to_json_schema(open_api_schema()))


@pytest.mark.parametrize(
    "spec",
    [
        {"iterations": 0},
        {"resources": {"memory": "16 GB"}},
        {"resources": {"image": "Not An Image!"}},
        {"queueName": "Bad_Queue"},
        {"storage": {"uri": "gs://bucket/x"}},
        {"labeling": {"samples": 0}},
    ],
)
def test_manifests_the_crd_schema_rejects_are_also_rejected_by_the_validator(spec):
    doc = manifest(**spec)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, openapi_to_json_schema(open_api_schema()))
    with pytest.raises(InvalidManifest):
        validate_manifest(copy.deepcopy(doc))


def _documented_defaults() -> dict[str, str]:
    rows = {}
    for line in (REPO / "docs" / "configuration.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.split(" | ")]
        if line.startswith("| `") and len(cells) >= 4 and cells[2].startswith("`"):
            rows[cells[0].strip("|` ")] = cells[2].split("`")[1]
    return rows


def _at(value, path: str):
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return KeyError
        value = value[part]
    return value


def test_documented_defaults_are_what_a_manifest_without_the_field_gets():
    import json

    # Every block omitted: the effective value of each field, as the worker will see it.
    run = validate_manifest(manifest())
    effective = run.spec.model_dump(mode="json", by_alias=True)
    documented = {path: text for path, text in _documented_defaults().items() if "[]" not in path and "{}" not in path}
    assert len(documented) > 60
    for path, text in documented.items():
        if _at(effective, path.rpartition(".")[0] or path) in (None, KeyError):
            continue  # inside an optional block that is unset by default: the type's own default applies
        assert json.loads(text) == _at(effective, path), f"docs/configuration.md: {path} documents {text}"
    assert documented["labeling.sampling.topK"] == "40"  # the block's default, not Sampling's -1


def test_the_corpus_overlap_rule_refuses_in_the_words_rzero_validate_uses():
    pytest.importorskip("celpy", reason="evaluates the CRD's CEL rules with cel-python (test extra)")
    from support.crd_server import ApiServerModel

    doc = {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "demo"},
           "spec": {"model": "m", "storage": {"uri": "runs"}, "corpus": {"uri": "docs", "passageChars": 400,
                                                                          "overlapChars": 201}}}
    [server] = ApiServerModel(build_crd()).create(copy.deepcopy(doc))
    with pytest.raises(InvalidManifest) as caught:
        validate_manifest(doc)
    [ours] = caught.value.errors

    assert server.endswith("overlapChars must be at most half of passageChars (each passage moves on by at least "
                           "half its size)")
    assert ours == ("spec.corpus.overlapChars: must be at most half of passageChars (each passage moves on by at "
                    "least half its size)")
    doc["spec"]["corpus"]["overlapChars"] = 200
    assert ApiServerModel(build_crd()).create(copy.deepcopy(doc)) == [] and validate_manifest(doc)


def test_the_variance_objective_without_a_corpus_is_refused_by_both_in_the_same_words():
    pytest.importorskip("celpy", reason="evaluates the CRD's CEL rules with cel-python (test extra)")
    from support.crd_server import ApiServerModel

    words = "the variance reward scores the Solver's pass rate against the Challenger's document answer; it needs " \
            "spec.corpus"
    doc = {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "demo"},
           "spec": {"model": "m", "storage": {"uri": "runs"}, "challenger": {"objective": "variance"}}}
    [server] = ApiServerModel(build_crd()).create(copy.deepcopy(doc))
    with pytest.raises(InvalidManifest) as caught:
        validate_manifest(doc)

    assert server.endswith(words) and caught.value.errors == [f"spec.challenger.objective: {words}"]
    doc["spec"]["corpus"] = {"uri": "docs"}
    assert ApiServerModel(build_crd()).create(copy.deepcopy(doc)) == [] and validate_manifest(doc)


@pytest.mark.parametrize(("benchmark", "words"), [
    ({"name": "docs", "path": "q.jsonl", "answerType": "choice", "answerFormat": "boxed"},
     "answerType choice reads the gold as a letter or an option's text; remove answerFormat"),
    ({"preset": "gsm8k", "path": "q.jsonl", "answerType": "text"}, "remove "),
    ({"preset": "mmlu-pro", "path": "q.jsonl", "optionsField": "choices"}, "remove "),
])
def test_a_benchmark_field_that_does_not_apply_is_refused_by_both(benchmark, words):
    pytest.importorskip("celpy", reason="evaluates the CRD's CEL rules with cel-python (test extra)")
    from support.crd_server import ApiServerModel

    doc = {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "demo"},
           "spec": {"model": "m", "storage": {"uri": "runs"}, "evaluation": {"benchmarks": [benchmark]}}}
    [server] = ApiServerModel(build_crd()).create(copy.deepcopy(doc))
    with pytest.raises(InvalidManifest) as caught:
        validate_manifest(doc)

    [error] = caught.value.errors
    assert words in server and words in error
    if "answerFormat" in benchmark:
        assert server.endswith(words) and error.endswith(words)
    fixed = {key: value for key, value in benchmark.items() if key not in ("answerFormat", "answerType", "optionsField")}
    doc["spec"]["evaluation"]["benchmarks"] = [{**fixed, "answerType": "choice"} if "name" in fixed else fixed]
    assert ApiServerModel(build_crd()).create(copy.deepcopy(doc)) == [] and validate_manifest(doc)


def test_an_endpoint_verifier_with_gpus_is_refused_by_both_in_the_same_words():
    pytest.importorskip("celpy", reason="evaluates the CRD's CEL rules with cel-python (test extra)")
    from support.crd_server import ApiServerModel

    words = "an endpoint Verifier runs on no GPU of the run; set gpus: 0 or a model Verifier"
    doc = {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "demo"},
           "spec": {"model": "m", "storage": {"uri": "runs"}, "labeling": {"verifier": "veto"},
                    "verifier": {"gpus": 1, "endpoint": {"url": "http://judge:8000/v1", "model": "j"}}}}
    [server] = ApiServerModel(build_crd()).create(copy.deepcopy(doc))
    with pytest.raises(InvalidManifest) as caught:
        validate_manifest(doc)

    assert server.endswith(words) and caught.value.errors == [f"spec.verifier.gpus: {words}"]
    doc["spec"]["verifier"] = {"gpus": 1, "model": "builtin:smollm2-135m-instruct"}
    assert ApiServerModel(build_crd()).create(copy.deepcopy(doc)) == [] and validate_manifest(doc)
