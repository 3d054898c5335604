"""The configuration reference (docs/configuration.md), generated from the CRD's spec schema.

    render_configuration_reference() -> str

Walking the same structural schema the CRD carries keeps the docs, `kubectl explain` and validation in
step; a test fails when the committed docs/configuration.md is stale.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from .crd import spec_schema

Row = tuple[str, str, str, str]  # (path, type, default, description)

HEADER = """# RZeroRun configuration reference

Generated from the API types (`rzero_operator.api`); do not edit. Regenerate with
`python -c "from rzero_operator.api.reference import render_configuration_reference as r; print(r(), end='')" > docs/configuration.md`.

Every field below is under `spec`. Paths use the manifest's camelCase names; `[]` marks list items and
`{}` map values. `rzero validate FILE` checks a manifest offline with the same rules the cluster applies.
"""


def _type_text(schema: dict[str, Any]) -> str:
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
    if schema.get("nullable"):
        text += ", optional"
    return text


def _default_text(schema: dict[str, Any]) -> str:
    if "default" not in schema:
        return ""
    value = schema["default"]
    if isinstance(value, (dict, list)) and schema.get("properties"):
        return "(see fields)"
    text = json.dumps(value, separators=(", ", ": "))
    return f"`{text}`" if len(text) <= 60 else "(see fields)"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(schema: dict[str, Any], path: str) -> Iterator[Row]:
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        here = f"{path}.{name}" if path else name
        description = prop.get("description", "")
        if name in required and "default" not in prop:
            description = "**Required.** " + description
        rules = [r["message"] for r in prop.get("x-kubernetes-validations", [])]
        if rules:
            description += " Rules: " + "; ".join(rules) + "."
        yield here, _type_text(prop), _default_text(prop), description
        yield from _nested_rows(prop, here)


def _nested_rows(prop: dict[str, Any], here: str) -> Iterator[Row]:
    if prop.get("properties"):
        yield from _rows(prop, here)
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
    spec = spec_schema()
    scalars: list[Row] = []
    sections: list[str] = []
    for name, prop in spec["properties"].items():
        if prop.get("properties"):
            rows = list(_rows(prop, name))
            rules = [r["message"] for r in prop.get("x-kubernetes-validations", [])]
            intro = " ".join(prop.get("description", "").split())
            if rules:
                intro += "\n\nCross-field rules: " + "; ".join(rules) + "."
            sections.append(f"## `{name}`\n\n{intro}\n\n{_table(rows)}\n")
        else:
            scalars.extend(_rows({"properties": {name: prop}, "required": spec.get("required", [])}, ""))
    spec_rules = "; ".join(r["message"] for r in spec.get("x-kubernetes-validations", []))
    top = f"## Top level\n\n{_table(scalars)}\n"
    if spec_rules:
        top += f"\nCross-field rules: {spec_rules}.\n"
    return "\n".join([HEADER, top, *sections])
