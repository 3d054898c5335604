"""A generated corpus of RZeroRun manifests, valid and invalid, for comparing `rzero validate` with an API
server (the offline model in tests/operator/test_manifest_corpus.py, the real one in
tests/operator/kube/server/test_validate_vs_server.py).

    for label, doc in corpus():   # ("iterations='3'", {...manifest...}), ...
    sample(corpus(), per_field=3, seed=17)   # a third of it, every field still mutated

The corpus: a rich valid manifest (every block set), then, for every field the CRD declares, mutations
chosen by the field's schema (bounds and one past them, wrong JSON types such as "3" for an integer or 1
for a boolean, integers beyond int64, too-long and malformed strings, unknown enum values, null, removal,
unknown fields), plus every case issue 13 reported by hand.
"""

from __future__ import annotations

import copy
import random
from typing import Any, Iterator

from rzero_operator.api.crd import build_crd

RICH_SPEC: dict[str, Any] = {
    "model": "builtin:smollm2-135m-instruct",
    "solverSource": "s3://models/solver",
    "iterations": 3,
    "seed": 7,
    "storage": {"uri": "s3://runs/rzero", "endpoint": "http://minio:9000", "region": "us-east-1",
                "secretRef": {"name": "s3", "accessKeyIdKey": "AK", "secretAccessKeyKey": "SK",
                              "sessionTokenKey": "ST"}},
    "challenger": {"grpo": {"steps": 5, "learningRate": 1e-6}, "solverSamples": 10,
                   "solverSampling": {"temperature": 1.0, "topP": 1.0, "topK": 40, "maxTokens": 512},
                   "reward": "paper", "repetitionWeight": 1.0, "bleuDistanceThreshold": 0.5},
    "generation": {"numQuestions": 100, "sampling": {"temperature": 1.0, "topP": 0.95}, "batchSize": 8},
    "corpus": {"uri": "s3://docs/library", "format": "jsonl", "textField": "body", "idField": "key",
               "passageChars": 1000, "overlapChars": 100, "maxDocumentBytes": 1048576},
    "labeling": {"samples": 10, "band": "code", "minScore": 0.3, "maxScore": 0.8, "gradingTimeoutS": 5.0,
                 "gradingWorkers": 2, "auditSize": 10, "sampling": {"topK": 40}},
    "solver": {"grpo": {"steps": 15, "groupSize": 5}, "formatWeight": 0.1},
    "evaluation": {"benchmarks": [
        {"name": "gsm8k", "kind": "jsonl", "path": "s3://data/gsm8k.jsonl", "questionField": "question",
         "answerField": "answer", "answerFormat": "gsm8k", "limit": 100},
        {"name": "arith", "kind": "arithmetic", "size": 50, "seed": 3}], "maxTokens": 512, "batchSize": 8},
    "sharding": {"generate": 2, "label": 2},
    "resources": {
        "image": "registry.example.com:5000/team/rzero-worker:0.1.0", "imagePullPolicy": "Always",
        "gpus": 1, "cpu": "500m", "memory": "16Gi", "nodes": 1,
        "nodeSelector": {"nvidia.com/gpu.product": "H100"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "spot", "operator": "Equal", "value": "true", "effect": "NoExecute",
                         "tolerationSeconds": 30}],
        "affinity": {"nodeAffinity": {}}, "priorityClassName": "high", "serviceAccountName": "trainer",
        "env": [{"name": "HF_HOME", "value": "/cache"},
                {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token", "optional": True}}},
                {"name": "EXTRA", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}],
        "phases": {"solver": {"gpus": 2, "nodes": 2, "cpu": "8", "memory": "64Gi",
                              "nodeSelector": {"pool": "a100"}, "tolerations": [{"operator": "Exists"}]}},
    },
    "device": {"device": "auto", "dtype": "bfloat16", "backend": "transformers", "gpuMemoryUtilization": 0.8},
    "queueName": "gpu-queue",
    "suspend": False,
    "stopRunningOnSuspend": True,
    "retry": {"maxAttempts": 3, "backoffSeconds": 30, "maxBackoffSeconds": 900},
    "phaseDeadlineSeconds": 3600,
}


def manifest(spec: dict | None = None, **top: Any) -> dict:
    body = {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun",
            "metadata": {"name": "demo", "labels": {"team": "ml"}, "annotations": {"rzero.dev/note": "x"}},
            "spec": copy.deepcopy(RICH_SPEC if spec is None else spec)}
    body.update(top)
    return body


# ------------------------------------------------------------------------------------- generation


def _string_values(schema: dict) -> list[Any]:
    values: list[Any] = [3, True, ""]
    if "maxLength" in schema:
        values.append("a" * (schema["maxLength"] + 1))
        values.append("a" * schema["maxLength"])
    if "pattern" in schema:
        values += ["Bad Value!", "UPPER", "a" + "\x00"]
    return values


def mutations_for(schema: dict) -> list[Any]:
    """Values to try in a field of this schema: edges, one past them, and the wrong JSON types."""
    kind = schema.get("type")
    values: list[Any] = []
    if "enum" in schema:
        values += ["NotAValue", schema["enum"][-1]]
    if kind == "integer":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        values += [v for v in (lo, hi) if v is not None]
        values += [v for v in ((lo - 1) if lo is not None else None, (hi + 1) if hi is not None else None) if v is not None]
        # 1.0 for an integer: the server takes an integral float for an integer (and stores an integer)
        values += ["3", True, 1.5, float(lo if lo is not None else 3), 2**63, -(2**63) - 1, 2**63 - 1]
    elif kind == "number":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        values += [v for v in (lo, hi) if v is not None]
        values += [lo - 0.5 if lo is not None else -1e30, hi + 0.5 if hi is not None else 1e30]
        values += ["0.5", "1e-6", True, 1, 2**63]
    elif kind == "boolean":
        values += ["true", "yes", 1, 0, None]
    elif kind == "string" and "enum" not in schema:
        values += _string_values(schema)
    elif kind == "object":
        values += ["x", [], {"unknownField": 1}]
    elif kind == "array":
        values += ["x", {}]
        if "maxItems" in schema:
            values.append([] if schema["maxItems"] == 0 else None)
    values.append(None)
    return values


def _fields(schema: dict, path: tuple) -> Iterator[tuple[tuple, dict]]:
    for name, prop in schema.get("properties", {}).items():
        yield path + (name,), prop
        yield from _fields(prop, path + (name,))
    if "items" in schema:
        yield from _fields(schema["items"], path + (0,))
    if isinstance(schema.get("additionalProperties"), dict) and schema["additionalProperties"].get("properties"):
        yield from _fields(schema["additionalProperties"], path + ("key",))


_DELETE = object()


def _set(doc: dict, path: tuple, value: Any) -> bool:
    """Set (or delete) doc[path]; False when a parent along the path is missing."""
    node: Any = doc
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
        if not isinstance(node, (dict, list)):
            return False
    if isinstance(node, list) and not (isinstance(path[-1], int) and path[-1] < len(node)):
        return False
    if value is _DELETE:
        if isinstance(node, dict):
            node.pop(path[-1], None)
        return True
    node[path[-1]] = value
    return True


def _label(path: tuple, value: Any) -> str:
    text = "gone" if value is _DELETE else repr(value)
    return ".".join(str(p) for p in path) + "=" + (text if len(text) <= 24 else text[:21] + "...")


def generated_cases() -> list[tuple[str, dict]]:
    spec_schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    cases = [("rich", manifest()), ("minimal", manifest({"model": "m", "storage": {"uri": "s3://runs/x"}}))]
    for path, schema in _fields(spec_schema, ()):
        for value in [*mutations_for(schema), _DELETE]:
            doc = manifest()
            if _set(doc["spec"], path, value):
                cases.append((_label(path, value), doc))
    return cases


def reported_cases() -> list[tuple[str, dict]]:
    """Issue 13 item 4 by hand, and the neighbours of each."""
    def spec(**changes: Any) -> dict:
        body = {"model": "m", "storage": {"uri": "s3://runs/x"}}
        body.update(changes)
        return body

    exists_with_value = {"key": "nvidia.com/gpu", "operator": "Exists", "value": "x", "effect": "NoSchedule"}
    cases = {
        "iterations '3'": manifest(spec(iterations="3")),
        "iterations true": manifest(spec(iterations=True)),
        "suspend 'true'": manifest(spec(suspend="true")),
        "suspend 1": manifest(spec(suspend=1)),
        "gpus '1'": manifest(spec(resources={"gpus": "1"})),
        "learningRate '1e-6'": manifest(spec(solver={"grpo": {"learningRate": "1e-6"}})),
        "temperature '0.5'": manifest(spec(generation={"sampling": {"temperature": "0.5"}})),
        "seed beyond int64": manifest(spec(evaluation={"benchmarks": [{"name": "a", "kind": "arithmetic",
                                                                       "seed": 2**64}]})),
        "generateName without name": manifest(spec(), metadata={"generateName": "demo-"}),
        "neither name nor generateName": manifest(spec(), metadata={"labels": {"a": "b"}}),
        "generateName too long": manifest(spec(), metadata={"generateName": "a" * 59}),
        "status block": manifest(spec(), status={"phase": "Running", "iteration": 2,
                                                 "conditions": [{"type": "Ready", "status": "False",
                                                                 "lastTransitionTime": "2025-01-01T00:00:00Z"}]}),
        "garbage status block": manifest(spec(), status={"phase": 5}),
        "jsonl path ''": manifest(spec(evaluation={"benchmarks": [{"name": "g", "kind": "jsonl", "path": ""}]})),
        "jsonl without path": manifest(spec(evaluation={"benchmarks": [{"name": "g", "kind": "jsonl"}]})),
        "toleration Exists with a value": manifest(spec(resources={"tolerations": [exists_with_value]})),
        "toleration Equal without key": manifest(spec(resources={"tolerations": [{"operator": "Equal", "value": "x"}]})),
        "toleration seconds without NoExecute": manifest(spec(resources={"tolerations": [
            {"key": "k", "operator": "Exists", "tolerationSeconds": 5}]})),
        "nodeSelector key not a label key": manifest(spec(resources={"nodeSelector": {"not a key": "x"}})),
        "nodeSelector value not a label value": manifest(spec(resources={"nodeSelector": {"pool": "a b"}})),
        "phase nodeSelector bad key": manifest(spec(resources={"phases": {"label": {"nodeSelector": {"-x": "y"}}}})),
        "nodeSelector empty key": manifest(spec(resources={"nodeSelector": {"": "y"}})),
        "nodeSelector key too long": manifest(spec(resources={"nodeSelector": {"k" * 318: "y"}})),
        "label value too long": manifest(spec(), metadata={"name": "demo", "labels": {"a": "x" * 64}}),
        "annotation key bad": manifest(spec(), metadata={"name": "demo", "annotations": {"a b": "x"}}),
        "annotations over 256 KiB": manifest(spec(), metadata={"name": "demo", "annotations": {"a": "x" * 262145}}),
        "name with NUL": manifest(spec(), metadata={"name": "de\x00mo"}),
        "name with a dot": manifest(spec(), metadata={"name": "de.mo"}),
        "unknown top-level field": manifest(spec(), extra=1),
        "document labels without a corpus": manifest(spec(labeling={"label": "document"})),
    }
    return list(cases.items())



def corpus() -> list[tuple[str, dict]]:
    """Every case, generated and reported (about 1,600), in a stable order."""
    return generated_cases() + reported_cases()


def field_of(label: str) -> str | None:
    """The spec field a generated case mutates ("iterations" for "iterations='3'"); None for the rich and
    minimal manifests and the reported cases."""
    return label.split("=", 1)[0] if "=" in label else None


def sample(cases: list[tuple[str, dict]], per_field: int, seed: int,
           keep: frozenset[str] = frozenset()) -> list[tuple[str, dict]]:
    """Up to `per_field` generated cases of every field (chosen with `seed`), every case that mutates no
    single field (rich, minimal, reported) and every case labelled in `keep`; in corpus order."""
    by_field: dict[str, list[str]] = {}
    for label, _ in cases:
        if (field := field_of(label)) is not None:
            by_field.setdefault(field, []).append(label)
    rng = random.Random(seed)
    chosen = set(keep)
    for labels in by_field.values():
        chosen.update(rng.sample(labels, min(per_field, len(labels))))
    return [(label, doc) for label, doc in cases if field_of(label) is None or label in chosen]
