"""Offline validation of RZeroRun manifests with messages that name the field (camelCase paths).

    validate_manifest(doc) -> RZeroRun          # raises InvalidManifest(errors=[...])
    validate_file("run.yaml") -> list[str]      # every error of every document; [] when all valid

Messages look like `spec.labeling.samples: must be >= 1` or `spec.sharding.generate: must not exceed
generation.numQuestions (...)`. A validator that blames a nested field raises "sub.path: message"; the
relative path is joined onto where the error was raised.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .api import API_VERSION, KIND, RUN_NAME, RZeroRun
from .api import spec as spec_formats

# What each pattern means, for messages a person can act on.
_FORMATS = {
    spec_formats.QUANTITY: "a Kubernetes quantity such as '500m', '8' or '16Gi'",
    spec_formats.IMAGE: "an image reference such as 'registry.example.com/team/rzero-worker:0.1.0'",
    spec_formats.DNS_LABEL: "a DNS label (lowercase letters, digits and '-', at most 63)",
    spec_formats.DNS_SUBDOMAIN: "a DNS subdomain name (lowercase letters, digits, '-' and '.')",
    spec_formats.ENV_NAME: "an environment variable name",
    spec_formats.STORAGE_URI: "s3://bucket/prefix or a local path (no other scheme)",
    RUN_NAME: "a DNS label (lowercase letters, digits and '-', at most 63)",
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


def validate_manifest(doc: Any) -> RZeroRun:
    """Validate one manifest; raises InvalidManifest naming each bad field."""
    errors = _header_errors(doc)
    if errors:
        raise InvalidManifest(errors)
    try:
        return RZeroRun.from_manifest(doc)
    except ValidationError as error:
        raise InvalidManifest(sorted({format_error(e) for e in error.errors()})) from None


def validate_file(path: str | Path) -> list[str]:
    """Every error in a (multi-document) YAML or JSON file, prefixed by the document when there are several."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        return [f"{path}: cannot read: {error.strerror or error}"]
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        return [f"{path}: not valid YAML: {error}"]
    if not docs:
        return [f"{path}: no RZeroRun document found"]
    errors: list[str] = []
    for index, doc in enumerate(docs):
        where = f"document {index + 1}: " if len(docs) > 1 else ""
        try:
            validate_manifest(doc)
        except InvalidManifest as invalid:
            errors.extend(where + e for e in invalid.errors)
    return errors
