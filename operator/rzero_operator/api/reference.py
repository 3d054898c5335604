"""The configuration reference (docs/configuration.md), generated from the CRD's spec schema.

    render_configuration_reference() -> str
    effective_defaults() -> dict     # the spec a manifest with only the required fields gets

Walking the same structural schema the CRD carries keeps the docs, `kubectl explain` and validation in
step; a test fails when the committed docs/configuration.md is stale. The Default column is the
*effective* value, read from a spec instantiated with only its required fields: a block's default (e.g.
`labeling.sampling`, built by a factory with `topK: 40`) wins over its type's field default (`-1`), which
applies only when the block is given without that field; the row then says both.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from .crd import spec_schema
from .spec import RZeroRunSpec

_ABSENT = object()

Row = tuple[str, str, str, str]  # (path, type, default, description)

HEADER = """# RZeroRun configuration reference

Generated from the API types (`rzero_operator.api`); do not edit. Regenerate with
`python -c "from rzero_operator.api.reference import render_configuration_reference as r; print(r(), end='')" > docs/configuration.md`.

Every field below is under `spec`. Paths use the manifest's camelCase names; `[]` marks list items and
`{}` map values. `rzero validate FILE` checks a manifest offline with the same rules the cluster applies.
"""


def _type_text(schema: dict[str, Any], optional: bool = False) -> str:
    kind = schema.get("type", "object" if schema.get("x-kubernetes-preserve-unknown-fields") else "any")
    if kind == "array":
        text = f"list of {_type_text(schema.get('items', {}))}"
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        text = f"map of {_type_text(schema['additionalProperties'])}"
    else:
        text = kind
    if "enum" in schema:
        text += " (" + " \\| ".join(f"`{v}`" for v in schema["enum"]) + ")"
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None or hi is not None:
        left = "(" if schema.get("exclusiveMinimum") else "["
        right = ")" if schema.get("exclusiveMaximum") else "]"
        text += f" {left}{'' if lo is None else lo}, {'' if hi is None else hi}{right}"
    if optional:
        text += ", optional"
    return text


def effective_defaults() -> dict[str, Any]:
    """The spec (wire form) of a manifest giving only the required fields."""
    required = {"model": "base-model", "storage": {"uri": "s3://bucket/prefix"}}
    return RZeroRunSpec.model_validate(required).model_dump(mode="json", by_alias=True)


def _value_text(value: Any, schema: dict[str, Any]) -> str:
    if isinstance(value, (dict, list)) and schema.get("properties"):
        return "(see fields)"
    text = json.dumps(value, separators=(", ", ": "))
    return f"`{text}`" if len(text) <= 60 else "(see fields)"


def _default_text(schema: dict[str, Any], effective: Any, parent: str) -> str:
    """The effective default; the type's own default too where a partly given block would get another."""
    own = schema.get("default", _ABSENT)
    if effective is _ABSENT or effective is None:
        return "" if own is _ABSENT else _value_text(own, schema)
    text = _value_text(effective, schema)
    if own is not _ABSENT and own != effective and _value_text(own, schema) != text:
        text += f"; {_value_text(own, schema)} if `{parent}` is given without it"
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(schema: dict[str, Any], path: str, effective: Any = _ABSENT) -> Iterator[Row]:
    """Rows of `schema`'s fields; `effective`: the effective value of `schema` itself (_ABSENT under a
    list or map, where only the type's defaults apply)."""
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        here = f"{path}.{name}" if path else name
        value = effective.get(name) if isinstance(effective, dict) and name not in required else _ABSENT
        description = prop.get("description", "")
        if name in required and "default" not in prop:
            description = "**Required.** " + description
        rules = [r["message"] for r in prop.get("x-kubernetes-validations", [])]
        if rules:
            description += " Rules: " + "; ".join(rules) + "."
        optional = name not in required and "default" not in prop
        yield here, _type_text(prop, optional), _default_text(prop, value, path), description
        yield from _nested_rows(prop, here, value)


def _nested_rows(prop: dict[str, Any], here: str, effective: Any) -> Iterator[Row]:
    if prop.get("properties"):
        yield from _rows(prop, here, effective if isinstance(effective, dict) else {})
    elif prop.get("type") == "array" and prop.get("items", {}).get("properties"):
        yield from _rows(prop["items"], here + "[]")
    elif isinstance(prop.get("additionalProperties"), dict) and prop["additionalProperties"].get("properties"):
        yield from _rows(prop["additionalProperties"], here + "{}")


def _table(rows: list[Row]) -> str:
    lines = ["| Field | Type | Default | Description |", "|---|---|---|---|"]
    lines += [f"| `{p}` | {_cell(t)} | {_cell(d)} | {_cell(text)} |" for p, t, d, text in rows]
    return "\n".join(lines)


def render_configuration_reference() -> str:
    """Markdown: one table of top-level scalars, then one section per spec block."""
    spec, effective = spec_schema(), effective_defaults()
    scalars: list[Row] = []
    sections: list[str] = []
    for name, prop in spec["properties"].items():
        if prop.get("properties"):
            rows = list(_rows(prop, name, effective.get(name, {})))
            rules = [r["message"] for r in prop.get("x-kubernetes-validations", [])]
            intro = " ".join(prop.get("description", "").split())
            if rules:
                intro += "\n\nCross-field rules: " + "; ".join(rules) + "."
            sections.append(f"## `{name}`\n\n{intro}\n\n{_table(rows)}\n")
        else:
            scalars.extend(_rows({"properties": {name: prop}, "required": spec.get("required", [])}, "", effective))
    spec_rules = "; ".join(r["message"] for r in spec.get("x-kubernetes-validations", []))
    top = f"## Top level\n\n{_table(scalars)}\n"
    if spec_rules:
        top += f"\nCross-field rules: {spec_rules}.\n"
    return "\n".join([HEADER, top, *sections])
