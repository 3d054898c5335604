"""Offline validation of RZeroRun manifests with messages that name the field (camelCase paths).

    validate_manifest(doc) -> RZeroRun          # raises InvalidManifest(errors=[...])
    validate_file("run.yaml") -> list[str]      # every error of the file's one document; [] when valid
    load_manifest("run.yaml") -> RZeroRun       # raises InvalidManifest (what `rzero run` reads)

Validation agrees with the API server (the CRD generated from the same types): types are strict (`"3"`
is not an integer, `"true"` not a boolean, `1` not a boolean), integers stay within int64, an integral
number such as `3.0` is an integer (kubectl sends it as 3: rzero_worker.yaml_scalars), a `status:`
block is ignored (the server drops it on create: status is a subresource), a null field is unset (the
server prunes it), and `metadata.generateName`
may stand in for a name. Files are read by `rzero_worker.documents` (size limit, UTF-8, duplicate keys,
JSON/YAML 1.2 scalars); a file holds exactly one RZeroRun, for `validate` as for `run`.

Messages look like `spec.labeling.samples: must be >= 1` or `spec.sharding.generate: must not exceed
generation.numQuestions (...)`. A validator that blames a nested field raises "sub.path: message"; the
relative path is joined onto where the error was raised.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rzero_worker.documents import DocumentError, check_values, read_one_document
from rzero_worker.yaml_scalars import as_kubectl_sends

from .api import API_VERSION, GENERATE_NAME, KIND, RUN_NAME, RZeroRun
from .api import spec as spec_formats

# What each pattern means, for messages a person can act on.
_FORMATS = {
    spec_formats.QUANTITY: "a Kubernetes quantity such as '500m', '8' or '16Gi'",
    spec_formats.IMAGE: "an image reference such as 'registry.example.com/team/rzero-worker:0.1.0'",
    spec_formats.DNS_LABEL: "a DNS label (lowercase letters, digits and '-', at most 63)",
    spec_formats.DNS_SUBDOMAIN: "a DNS subdomain name (lowercase letters, digits, '-' and '.')",
    spec_formats.ENV_NAME: "an environment variable name",
    spec_formats.STORAGE_URI: "s3://bucket/prefix or a local path (no other scheme)",
    spec_formats.LABEL_KEY: "a label key such as 'nvidia.com/gpu.product' (optional DNS prefix, '/', name)",
    spec_formats.LABEL_VALUE: "a label value (at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends)",
    RUN_NAME: "a DNS label (lowercase letters, digits and '-', at most 63)",
    GENERATE_NAME: "a name prefix (lowercase letters, digits and '-', at most 58)",
}

# Strict types: what the API server accepts for `type: integer|number|boolean|string`.
_STRICT_TYPES = {
    "int_type": "an integer", "float_type": "a number", "bool_type": "a boolean (true or false)",
    "string_type": "a string", "dict_type": "a mapping", "list_type": "a list", "model_type": "a mapping",
    "int_from_float": "an integer",
}

_RELATIVE_PATH = re.compile(r"^([a-zA-Z][a-zA-Z0-9]*(?:\.[a-zA-Z][a-zA-Z0-9]*)*): (.+)$", re.S)
_PREFIXES = ("Value error, ", "Assertion failed, ")


class InvalidManifest(ValueError):
    """A manifest that is not a valid RZeroRun; `errors` holds one message per problem."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("invalid RZeroRun:\n" + "\n".join(f"  {e}" for e in errors))


def _join(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path


def _message(error: dict[str, Any]) -> str:
    """Human text for one pydantic error, without pydantic's jargon."""
    kind, ctx, msg = error["type"], error.get("ctx") or {}, error["msg"]
    for prefix in _PREFIXES:
        if msg.startswith(prefix):
            return msg[len(prefix):]
    if kind == "missing":
        return "is required"
    if kind in _STRICT_TYPES:
        return f"must be {_STRICT_TYPES[kind]}, got {_json_type(error.get('input'))} {_short(error.get('input'))}"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}, got {error.get('input')!r}"
    if kind == "string_pattern_mismatch":
        expected = _FORMATS.get(ctx.get("pattern", ""), f"the pattern {ctx.get('pattern')}")
        return f"{error.get('input')!r} is not {expected}"
    for bound, word in (("greater_than_equal", ">="), ("greater_than", ">"), ("less_than_equal", "<="), ("less_than", "<")):
        if kind == bound:
            limit = next(iter(ctx.values()), "")
            return f"must be {word} {limit}, got {error.get('input')!r}"
    return msg[0].lower() + msg[1:] if msg else kind


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (dict, "mapping"),
                       (list, "list")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def format_error(error: dict[str, Any]) -> str:
    """'path: message' for one pydantic error (loc already uses the camelCase keys of the input)."""
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    path, message = _join(loc), _message(error)
    relative = _RELATIVE_PATH.match(message)
    if relative and error["type"] == "value_error":
        path, message = (f"{path}.{relative.group(1)}" if path else relative.group(1)), relative.group(2)
    return f"{path}: {message}" if path else message


def _header_errors(doc: Any) -> list[str]:
    if not isinstance(doc, dict):
        return [f"document must be a mapping (an RZeroRun manifest), got {type(doc).__name__}"]
    errors = []
    if doc.get("apiVersion") != API_VERSION:
        errors.append(f"apiVersion: must be {API_VERSION}, got {doc.get('apiVersion')!r}")
    if doc.get("kind") != KIND:
        errors.append(f"kind: must be {KIND}, got {doc.get('kind')!r}")
    return errors


def _as_the_server_gets(value: Any) -> Any:
    """A field set to null is unset: the API server prunes nulls (no field of the CRD is nullable); and a
    number is what kubectl sends for it (`iterations: 3.0` arrives as 3)."""
    if isinstance(value, dict):
        return {k: _as_the_server_gets(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_as_the_server_gets(v) for v in value]
    return as_kubectl_sends(value) if isinstance(value, float) else value


def validate_manifest(doc: Any) -> RZeroRun:
    """Validate one manifest as the API server would; raises InvalidManifest naming each bad field.
    A `status` block is ignored (the server drops it on create); the returned run has no status."""
    errors = _header_errors(doc) or check_values(doc, nul=False)
    if errors:
        raise InvalidManifest(errors)
    try:
        return RZeroRun.model_validate(_as_the_server_gets({k: v for k, v in doc.items() if k != "status"}), strict=True)
    except ValidationError as error:
        raise InvalidManifest(sorted({format_error(e) for e in error.errors()})) from None


def load_manifest(path: str | Path) -> RZeroRun:
    """The one RZeroRun of a file, read safely; raises InvalidManifest (file problems name the file)."""
    try:
        doc = read_one_document(path, "manifest")
    except DocumentError as error:
        raise InvalidManifest([error.detail]) from None
    return validate_manifest(doc)


def validate_file(path: str | Path) -> list[str]:
    """Every error of the file's one RZeroRun document ([] when valid). A file with several documents is
    refused, as `rzero run` refuses it: one file, one run."""
    try:
        load_manifest(path)
    except InvalidManifest as invalid:
        return invalid.errors
    return []
