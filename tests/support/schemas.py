"""Test helpers for CRD schemas (a plain module, not a pytest plugin)."""

from __future__ import annotations


def openapi_to_json_schema(node):
    """OpenAPI 3.0 (as in a CRD) -> JSON Schema for jsonschema: nullable, boolean exclusive bounds."""
    if isinstance(node, list):
        return [openapi_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: openapi_to_json_schema(value) for key, value in node.items() if not key.startswith("x-kubernetes-")}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if out.get(flag) is True:
            out[flag] = out.pop(bound)
        elif out.get(flag) is False:
            out.pop(flag)
    return out
