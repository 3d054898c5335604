"""Generate the RZeroRun CustomResourceDefinition from the pydantic types (one source of truth).

    render_crd_yaml() -> str     # what `rzero crd` prints and crds/rzeroruns.rzero.dev.yaml holds

pydantic's JSON schema is converted into a Kubernetes *structural* OpenAPI v3 schema: $refs inlined,
`X | None` written as plain X (not `nullable`: the API server then prunes an explicit null, so null means
"unset" on the cluster exactly as it does for the pydantic models and CEL's `has()` stays null-safe), `const` as a one-value enum, draft-2020
`exclusiveMinimum: n` as OpenAPI 3.0's `minimum: n, exclusiveMinimum: true`, no `title`s, no
`additionalProperties: false` (structural schemas forbid it beside `properties`; the API server prunes
unknown fields instead). Defaults are kept, including those of nested objects built by default factories,
so `kubectl get -o yaml` shows the effective settings. Cross-field checks that a schema cannot express are
CEL rules (`x-kubernetes-validations`); each mirrors a pydantic validator so `rzero validate` agrees.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, NoDefault

from . import API_VERSION, GENERATE_NAME, GROUP, KIND, PLURAL, RUN_NAME, SHORT_NAMES, SINGULAR, VERSION
from .spec import RZeroRunSpec
from .status import RZeroRunStatus

Schema = dict[str, Any]

# The batch geometry of a GRPO block must divide (task.GRPOSettings._geometry_divides).
GRPO_GEOMETRY_RULES = [
    {"rule": "self.rolloutBatchSize % self.updateBatchSize == 0",
     "message": "updateBatchSize must divide rolloutBatchSize (each rollout step is split into whole optimizer updates)",
     "fieldPath": ".updateBatchSize"},
    {"rule": "self.microBatchSize == 0 || (self.updateBatchSize * self.groupSize) % self.microBatchSize == 0",
     "message": "microBatchSize must divide updateBatchSize x groupSize (completions per optimizer update)",
     "fieldPath": ".microBatchSize"},
]

# CEL rules by pydantic model name. Defaults are applied before validation, so defaulted fields exist.
CEL_RULES: dict[str, list[dict[str, str]]] = {
    "RZeroRunSpec": [
        {
            "rule": "self.sharding.generate <= self.generation.numQuestions",
            "message": "sharding.generate must not exceed generation.numQuestions (a shard would be empty)",
            "fieldPath": ".sharding.generate",
        },
        {"rule": "!self.warmup.enabled || !has(self.solverSource)",
         "message": "the warm-up trains the one base model of both roles; it cannot be combined with solverSource",
         "fieldPath": ".warmup.enabled"},
        {"rule": "self.labeling.label != 'document' || has(self.corpus)",
         "message": "document labels are the grounded Challenger's answers; they need spec.corpus",
         "fieldPath": ".labeling.label"},
        {"rule": "self.challenger.objective != 'variance' || has(self.corpus)",
         "message": "the variance reward scores the Solver's pass rate against the Challenger's document answer; "
                    "it needs spec.corpus",
         "fieldPath": ".challenger.objective"},
    ],
    "ChallengerGRPOSettings": GRPO_GEOMETRY_RULES,
    "SolverGRPOSettings": GRPO_GEOMETRY_RULES,
    "StorageSpec": [
        {"rule": "self.uri.startsWith('s3://') || !has(self.secretRef)",
         "message": "secretRef applies only to s3:// storage", "fieldPath": ".secretRef"},
        {"rule": "self.uri.startsWith('s3://') || !has(self.endpoint)",
         "message": "endpoint applies only to s3:// storage", "fieldPath": ".endpoint"},
    ],
    "LabelingSettings": [
        {
            "rule": "(has(self.minScore) ? self.minScore : (self.band == 'code' ? 0.3 : 0.25))"
            " < (has(self.maxScore) ? self.maxScore : (self.band == 'code' ? 0.8 : 0.75))",
            "message": "the agreement band's minScore must be below its maxScore",
            "fieldPath": ".minScore",
        },
    ],
    "CorpusSettings": [
        {"rule": "2 * self.overlapChars <= self.passageChars",
         "message": "overlapChars must be at most half of passageChars (each passage moves on by at least half its size)",
         "fieldPath": ".overlapChars"},
    ],
    "RetrySpec": [
        {"rule": "self.maxBackoffSeconds >= self.backoffSeconds",
         "message": "maxBackoffSeconds must be at least backoffSeconds", "fieldPath": ".maxBackoffSeconds"},
    ],
    "ResourcesSpec": [
        {"rule": "self.nodes <= 1 || self.gpus >= 1", "message": "multi-node training needs gpus >= 1",
         "fieldPath": ".nodes"},
    ],
    "PodResources": [
        {"rule": "!has(self.nodes) || self.nodes <= 1 || !has(self.gpus) || self.gpus >= 1",
         "message": "multi-node training needs gpus >= 1", "fieldPath": ".nodes"},
    ],
    "EnvVar": [
        {"rule": "!(has(self.value) && has(self.valueFrom))", "message": "set value or valueFrom, not both"},
    ],
    "EnvValueFrom": [
        {"rule": "has(self.secretKeyRef) != has(self.configMapKeyRef)",
         "message": "set exactly one of secretKeyRef or configMapKeyRef"},
    ],
    "VerifierSettings": [
        {"rule": "!has(self.mode) || self.mode != 'trained' || !has(self.endpoint)",
         "message": "a trained Verifier is a model; an endpoint cannot be trained", "fieldPath": ".mode"},
        {"rule": "!has(self.gpus) || self.gpus == 0 || !has(self.endpoint)",
         "message": "an endpoint Verifier runs on no GPU of the run; set gpus: 0 or a model Verifier",
         "fieldPath": ".gpus"},
    ],
    "GuardSpec": [
        {"rule": "has(self.minLabelAccuracy) || has(self.maxScoreDrop) || has(self.minVerifierAccuracy)",
         "message": "set minLabelAccuracy, maxScoreDrop or minVerifierAccuracy (a guard with none never acts)",
         "fieldPath": ".minLabelAccuracy"},
    ],
    "BenchmarkSpec": [
        {"rule": "self.kind != 'jsonl' || (has(self.path) && size(self.path) > 0)",
         "message": "a jsonl benchmark needs a path", "fieldPath": ".path"},
        {"rule": "has(self.name) || has(self.preset)", "message": "name is required unless preset is set",
         "fieldPath": ".name"},
        {"rule": "!has(self.preset) || (self.kind == 'jsonl' && self.questionField == 'question'"
                 " && self.answerField == 'answer' && self.answerFormat == 'plain' && self.answerType == 'math'"
                 " && self.optionsField == 'options')",
         "message": "a preset fixes the layout: remove kind, questionField, answerField, answerFormat, answerType "
                    "and optionsField",
         "fieldPath": ".preset"},
        {"rule": "self.answerType != 'choice' || self.answerFormat == 'plain'",
         "message": "answerType choice reads the gold as a letter or an option's text; remove answerFormat",
         "fieldPath": ".answerFormat"},
    ],
    # The API server's own checks of a Pod's tolerations, so a run that would make a Job the server
    # refuses is refused when it is applied.
    "Toleration": [
        {"rule": "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || size(self.value) == 0",
         "message": "value must be empty when operator is Exists", "fieldPath": ".value"},
        {"rule": "(has(self.key) && size(self.key) > 0) || (has(self.operator) && self.operator == 'Exists')",
         "message": "operator must be Exists when key is empty", "fieldPath": ".operator"},
        {"rule": "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
         "message": "effect must be NoExecute when tolerationSeconds is set", "fieldPath": ".effect"},
    ],
}

# Rules on single fields by (model name, property). Transition rules compare with the stored object.
FIELD_RULES: dict[tuple[str, str], list[dict[str, str]]] = {
    ("StorageSpec", "uri"): [
        {"rule": "self == oldSelf", "message": "storage.uri is immutable: the run's artefacts live there"},
    ],
}

# Run names become Job names, labels and storage keys.
ROOT_RULES = [
    {"rule": "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 63",
     "message": "metadata.name must be a DNS label (lowercase letters, digits and '-', at most 63 characters)"},
]

PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Run phase."},
    {"name": "Iteration", "type": "string", "jsonPath": ".status.progress", "description": "Iteration i/N."},
    {"name": "Stage", "type": "string", "jsonPath": ".status.stage", "description": "What runs now."},
    {"name": "Kept", "type": "integer", "jsonPath": ".status.keptQuestions",
     "description": "Questions kept by the latest labeling."},
    {"name": "Score", "type": "number", "jsonPath": ".status.latestScore",
     "description": "Mean accuracy of the latest evaluation."},
    {"name": "LabelAcc", "type": "number", "jsonPath": ".status.latestLabelAccuracy",
     "description": "Oracle-checked accuracy of the latest pseudo-labels."},
    {"name": "VerifierAcc", "type": "number", "jsonPath": ".status.latestVerifierAccuracy", "priority": 1,
     "description": "Held-out accuracy of the latest trained Verifier (spec.verifier.mode trained)."},
    {"name": "Best", "type": "integer", "jsonPath": ".status.bestIteration.iteration",
     "description": "Iteration with the best mean evaluation score."},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


class _FactoryDefaults(GenerateJsonSchema):
    """Also emit defaults made by default factories (pydantic leaves them out), in wire form."""

    def get_default_value(self, schema: Any) -> Any:
        if "default_factory" in schema and not schema.get("default_factory_takes_data"):
            value = schema["default_factory"]()
        else:
            value = schema.get("default", NoDefault)
        return _wire(value)


def _wire(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, list):
        return [_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    return value


def json_schema(model: type[BaseModel]) -> Schema:
    """pydantic's JSON schema of `model` (camelCase, validation mode, factory defaults included)."""
    return model.model_json_schema(by_alias=True, mode="validation", schema_generator=_FactoryDefaults)


def to_structural(schema: Schema) -> Schema:
    """Convert a pydantic JSON schema (with $defs) into a structural OpenAPI v3 schema."""
    defs = schema.get("$defs", {})
    root = {k: v for k, v in schema.items() if k != "$defs"}
    return _convert(root, defs, model_name=schema.get("title"))


def _convert(node: Schema, defs: dict[str, Schema], model_name: str | None = None) -> Schema:
    node = dict(node)
    ref = node.pop("$ref", None)
    if ref is None and len(node.get("allOf", [])) == 1:
        ref = node.pop("allOf")[0]["$ref"]
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        return {**_convert(defs[name], defs, model_name=name), **_convert(node, defs)}
    if "anyOf" in node:
        return _convert_optional(node, defs)
    out: Schema = {}
    key_names: Schema = {}
    for key, value in node.items():
        if key in ("title", "$defs") or (key == "default" and value is None):
            continue
        if key == "description":
            out[key] = " ".join(str(value).split())  # docstrings wrap; kubectl explain re-wraps
        elif key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out[key] = _convert(value, defs)
        elif key == "properties":
            out[key] = {name: _convert(prop, defs) for name, prop in value.items()}
            for name in out[key]:
                if (model_name, name) in FIELD_RULES:
                    out[key][name]["x-kubernetes-validations"] = copy.deepcopy(FIELD_RULES[(model_name, name)])
        elif key == "items":
            out[key] = _convert(value, defs)
        elif key == "propertyNames":  # map keys: structural schemas have neither form; a CEL rule checks them
            key_names.update(value)
        elif key == "patternProperties":
            ((pattern, values),) = value.items()
            key_names["pattern"] = pattern
            out["additionalProperties"] = _convert(values, defs)
        else:
            out[key] = copy.deepcopy(value)
    if model_name in CEL_RULES:
        out["x-kubernetes-validations"] = copy.deepcopy(CEL_RULES[model_name])
    if key_names:
        out.setdefault("x-kubernetes-validations", []).append(_key_rule(key_names))
    return out


def _key_rule(names: Schema) -> dict[str, str]:
    """A CEL rule checking the length of every key of a map (pydantic's `propertyNames`). Only lengths:
    `size()` costs the same for any key, while a regex over keys, whose length the API server cannot
    bound, exceeds its CEL cost budget and would make it refuse the whole CRD."""
    if set(names) - {"minLength", "maxLength", "type"}:
        raise ValueError(f"map keys can only be length-checked in a CRD (CEL cost budget): {names}")
    low, high = names.get("minLength", 0), names.get("maxLength")
    checks = ([f"size(k) >= {low}"] if low else []) + ([f"size(k) <= {high}"] if high is not None else [])
    words = " and ".join(([f"at least {low}"] if low else []) + ([f"at most {high}"] if high is not None else []))
    return {"rule": f"self.all(k, {' && '.join(checks)})", "message": f"keys must have {words} characters"}


def _convert_optional(node: Schema, defs: dict[str, Schema]) -> Schema:
    """`X | None` -> X (a null is pruned by the server: unset). Other unions have no structural form."""
    options = [o for o in node.pop("anyOf") if o != {"type": "null"}]
    if len(options) != 1:
        raise ValueError(f"unions other than X | None cannot be expressed in a CRD: {options}")
    merged = {**_convert(options[0], defs), **_convert(node, defs)}
    return merged


def spec_schema() -> Schema:
    return to_structural(json_schema(RZeroRunSpec))


def status_schema() -> Schema:
    return to_structural(json_schema(RZeroRunStatus))


def open_api_schema() -> Schema:
    """The CRD version's openAPIV3Schema."""
    return {
        "type": "object",
        "description": "An R-Zero self-evolving training run: a Challenger writes hard questions, a Solver "
        "learns from its own majority-vote pseudo-labels; one Job per phase per iteration.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "rzero.dev/v1alpha1"},
            "kind": {"type": "string", "description": "RZeroRun"},
            "metadata": {"type": "object", "properties": {
                "name": {"type": "string", "maxLength": 63, "pattern": RUN_NAME},
                "generateName": {"type": "string", "maxLength": 58, "pattern": GENERATE_NAME},
            }},
            "spec": spec_schema(),
            "status": status_schema(),
        },
        "x-kubernetes-validations": copy.deepcopy(ROOT_RULES),
    }


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition as a dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "rzero"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL, "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES), "categories": ["rzero"],
            },
            "versions": [
                {
                    "name": VERSION, "served": True, "storage": True,
                    "schema": {"openAPIV3Schema": open_api_schema()},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": copy.deepcopy(PRINTER_COLUMNS),
                }
            ],
        },
    }


def render_crd_yaml() -> str:
    """The CRD as YAML, exactly as committed in crds/rzeroruns.rzero.dev.yaml."""
    header = (
        f"# Generated from rzero_operator.api ({API_VERSION} {KIND}); do not edit.\n"
        "# Regenerate: rzero crd > crds/rzeroruns.rzero.dev.yaml\n"
    )
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=100, allow_unicode=True)
