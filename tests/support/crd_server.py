"""What a Kubernetes API server would say to `kubectl create -f` of a custom resource, offline.

    verdict = ApiServerModel(crd).create(manifest)   # [] when accepted, else the reasons

It does, in kubectl's and the API server's order, what matters for an RZeroRun: kubectl's re-encoding (an
integral float such as 3.0 is sent as the integer 3), JSON decoding (integers beyond int64 refused),
`status` dropped (a status subresource: the create ignores it), `generateName` turned into a name, the built-in metadata checks (name or generateName, DNS subdomain name, label keys and values,
annotation keys and total size), strict field validation (unknown fields are errors, kubectl's default
since 1.27), nulls pruned from fields that are not `nullable`, structural defaulting, the OpenAPI schema (jsonschema, via `schemas.openapi_to_json_schema`)
and the CEL rules (`x-kubernetes-validations`, evaluated with cel-python on values typed by the schema,
as the server types them: a `number` is a double even when written `1`; an evaluation error fails the
rule, as on the server). Transition rules (`oldSelf`) do not run on create.

Also as the server does: an integer bound (`minimum`/`maximum`) is read as a float64, and one that is then no
int64 (2**63 - 1 becomes 2**63; -2**63 is written -9223372036854776000) makes every value of the field
invalid ("Maximum boundary value must be of type integer"); the CRD itself is accepted. The real server
showed this, and kube/server/test_validate_vs_server.py checks the model against it.

Not modelled: CEL cost limits, `x-kubernetes-list-type`, formats; no rzero CRD uses them.
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from typing import Any, Iterator

import jsonschema

from rzero_worker.yaml_scalars import as_kubectl_sends as kubectl_number

from .schemas import openapi_to_json_schema

try:
    import celpy
    from celpy import celtypes
except ImportError:  # pragma: no cover - the test extra installs cel-python
    celpy = None

INT64 = (-(2**63), 2**63 - 1)
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
MAX_ANNOTATIONS = 256 * 1024


def _qualified_name_errors(key: Any) -> list[str]:
    if not isinstance(key, str):
        return ["not a string"]
    prefix, _, name = key.rpartition("/")
    errors = []
    if "/" in key and (not prefix or len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        errors.append("bad prefix")
    if not name or len(name) > 63 or not QUALIFIED_NAME.match(name):
        errors.append("bad name")
    return errors


def metadata_errors(meta: Any) -> list[str]:
    """The API server's own ObjectMeta validation of a namespaced object on create."""
    if not isinstance(meta, dict):
        return ["metadata: must be an object"]
    errors = []
    name = meta.get("name")
    if not name:
        return ["metadata.name: name or generateName is required"]
    if not isinstance(name, str) or len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        errors.append("metadata.name: a DNS subdomain")
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        return errors + ["metadata.labels: must be a map"]
    for key, value in labels.items():
        if _qualified_name_errors(key) or not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
            errors.append(f"metadata.labels: {key!r}: {value!r}")
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict):
        return errors + ["metadata.annotations: must be a map"]
    for key, value in annotations.items():
        if _qualified_name_errors(key) or not isinstance(value, str):
            errors.append(f"metadata.annotations: {key!r}")
    if sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items()) > MAX_ANNOTATIONS:
        errors.append("metadata.annotations: too long")
    return errors


def _int64_errors(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _int64_errors(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _int64_errors(item, f"{path}[{index}]")
    elif isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
        yield f"{path}: integer beyond int64"


def _unknown_fields(value: Any, schema: dict, path: str) -> Iterator[str]:
    """Strict field validation: a field the schema does not declare is an error (not pruned)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                yield f"{path}.{key}: unknown field"
            else:
                yield from _unknown_fields(item, schema["properties"][key], f"{path}.{key}")
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            yield from _unknown_fields(item, schema["additionalProperties"], f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from _unknown_fields(item, schema["items"], f"{path}[{index}]")


def bound_is_int64(bound: float | int) -> bool:
    """The server holds a schema bound as a float64, writes it in the fewest digits that read back the same
    (Go's FormatFloat 'f', -1: -2**63 becomes -9223372036854776000) and parses that as an int64."""
    digits = Decimal(repr(float(bound)))
    return digits == digits.to_integral_value() and INT64[0] <= int(digits) <= INT64[1]


def bound_errors(value: Any, schema: dict, path: str = "") -> Iterator[str]:
    """An integer value under a bound the server cannot convert to int64: refused, whatever the value."""
    if isinstance(value, int) and not isinstance(value, bool) and schema.get("type") == "integer":
        for key, word in (("minimum", "Minimum"), ("maximum", "Maximum")):
            if key in schema and not bound_is_int64(schema[key]):
                yield f"{path}: {word} boundary value must be of type integer (default format)"
    elif isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key) or (extra if isinstance(extra, dict) else {})
            yield from bound_errors(item, sub, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from bound_errors(item, schema.get("items", {}), f"{path}[{index}]")


def as_kubectl_sends(value: Any) -> Any:
    """kubectl decodes a file and encodes it again (Go's JSON): an integral float arrives as an integer."""
    if isinstance(value, dict):
        return {key: as_kubectl_sends(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_kubectl_sends(item) for item in value]
    return kubectl_number(value) if isinstance(value, float) else value


def _strict_integers(validator_class: type) -> type:
    """jsonschema takes any integral float for `integer`; kubectl has made those ints (as_kubectl_sends),
    and the server's CEL rules refuse a float where they expect an int, so here an integer is an int."""
    checker = validator_class.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(validator_class, type_checker=checker)


def prune_nulls(value: Any, schema: dict) -> Any:
    """A null in a field that is not `nullable` is dropped before defaulting (Kubernetes >= 1.20)."""
    if isinstance(value, dict):
        props, extra = schema.get("properties"), schema.get("additionalProperties")
        result = {}
        for key, item in value.items():
            sub = (props or {}).get(key) or (extra if isinstance(extra, dict) else {})
            if item is None and not sub.get("nullable"):
                continue
            result[key] = prune_nulls(item, sub)
        return result
    if isinstance(value, list):
        return [prune_nulls(item, schema.get("items", {})) for item in value]
    return value


def apply_defaults(value: Any, schema: dict) -> Any:
    """Structural defaulting: a missing property with a default gets it, then defaults inside it."""
    if isinstance(value, dict) and "properties" in schema:
        for key, prop in schema["properties"].items():
            if key not in value and "default" in prop:
                value[key] = copy.deepcopy(prop["default"])
            if key in value:
                value[key] = apply_defaults(value[key], prop)
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key in value:
            value[key] = apply_defaults(value[key], schema["additionalProperties"])
    elif isinstance(value, list) and "items" in schema:
        return [apply_defaults(item, schema["items"]) for item in value]
    return value


def to_cel(value: Any, schema: dict) -> Any:
    """A JSON value as the server hands it to CEL: typed by the schema (number -> double)."""
    if value is None:
        return None
    kind = schema.get("type")
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        return celtypes.MapType({
            celtypes.StringType(k): to_cel(v, props.get(k) or (extra if isinstance(extra, dict) else {}))
            for k, v in value.items()
        })
    if isinstance(value, list):
        return celtypes.ListType([to_cel(v, schema.get("items", {})) for v in value])
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if kind == "number" or isinstance(value, float):
        return celtypes.DoubleType(float(value))
    if isinstance(value, int):
        return celtypes.IntType(value)
    return celtypes.StringType(value)


class ApiServerModel:
    """The create path of one CRD version (its openAPIV3Schema), offline."""

    def __init__(self, crd: dict):
        if celpy is None:
            raise RuntimeError("cel-python is not installed (pip install cel-python)")
        self.schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        self.validator = _strict_integers(jsonschema.Draft202012Validator)(openapi_to_json_schema(self.schema))
        self._env = celpy.Environment()
        self._programs: dict[str, Any] = {}

    def _program(self, rule: str):
        if rule not in self._programs:
            self._programs[rule] = self._env.program(self._env.compile(rule))
        return self._programs[rule]

    def _rule_holds(self, rule: str, value: Any, schema: dict) -> bool:
        try:
            result = self._program(rule).evaluate({"self": to_cel(value, schema)})
        except Exception:  # noqa: BLE001 - the server treats an evaluation error as a failed rule
            return False
        return isinstance(result, celtypes.BoolType) and bool(result)

    def cel_errors(self, value: Any, schema: dict, path: str = "") -> Iterator[str]:
        for rule in schema.get("x-kubernetes-validations", []):
            if "oldSelf" not in rule["rule"] and not self._rule_holds(rule["rule"], value, schema):
                yield f"{path or '<root>'}: {rule['message']}"
        if isinstance(value, dict) and "properties" in schema:
            for key, prop in schema["properties"].items():
                if value.get(key) is not None:
                    yield from self.cel_errors(value[key], prop, f"{path}.{key}")
        elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
            for key, item in value.items():
                if item is not None:
                    yield from self.cel_errors(item, schema["additionalProperties"], f"{path}.{key}")
        elif isinstance(value, list) and "items" in schema:
            for index, item in enumerate(value):
                if item is not None:
                    yield from self.cel_errors(item, schema["items"], f"{path}[{index}]")

    def create(self, manifest: Any) -> list[str]:
        """[] when the server would store the object, else why not."""
        if not isinstance(manifest, dict):
            return ["not an object"]
        errors = list(_int64_errors(manifest, ""))
        if errors:
            return errors
        body = as_kubectl_sends(manifest)
        body.pop("status", None)  # a status subresource: the create ignores the status
        meta = body.get("metadata")
        if isinstance(meta, dict) and not meta.get("name") and isinstance(meta.get("generateName"), str):
            meta["name"] = meta["generateName"] + "x7k2q"
        errors = metadata_errors(meta)
        errors += [f"{key}: unknown field" for key in body
                   if key not in self.schema["properties"] and key not in ("apiVersion", "kind", "metadata")]
        errors += list(_unknown_fields(body.get("spec"), self.schema["properties"]["spec"], "spec"))
        if errors:
            return errors
        body = apply_defaults(prune_nulls(body, self.schema), self.schema)
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in self.validator.iter_errors(body)]
        errors += list(bound_errors(body, self.schema))
        if errors:
            return errors
        return list(self.cel_errors(body, self.schema))
