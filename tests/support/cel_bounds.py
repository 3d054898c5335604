"""Which fields of a CRD schema leave a CEL rule's cost unbounded (the API server's estimate).

    unbounded_under_rules(schema) -> ["$.spec.evaluation.benchmarks", ...]

The API server estimates a rule's worst-case cost from the sizes the schema allows (each unbounded list, map
or string multiplies it) and refuses the whole CRD when a rule could exceed its budget. This check is offline
and stricter than the server: every list, map and string at or beneath a node with rules, and every list or
map above one, must have a bound.
"""

from __future__ import annotations


def _has_rules(node: dict) -> bool:
    if node.get("x-kubernetes-validations"):
        return True
    children = list(node.get("properties", {}).values())
    children += [node["items"]] if isinstance(node.get("items"), dict) else []
    children += [node["additionalProperties"]] if isinstance(node.get("additionalProperties"), dict) else []
    return any(_has_rules(child) for child in children)


def _bounded(node: dict) -> bool:
    kind = node.get("type")
    if kind == "array":
        return "maxItems" in node
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return "maxProperties" in node
    if kind == "string":
        return "maxLength" in node or "enum" in node or node.get("format") in {"date-time", "date", "duration"}
    return True


def unbounded_under_rules(schema: dict, path: str = "$", under_rule: bool = False) -> list[str]:
    """Paths of lists/maps (anywhere above or beneath a CEL rule) and strings (at or beneath one) without a
    bound, as `$.spec.evaluation.benchmarks`. The root object's apiVersion/kind/metadata are the server's."""
    under_rule = under_rule or bool(schema.get("x-kubernetes-validations"))
    out = []
    kind = schema.get("type")
    matters = under_rule if kind == "string" else (under_rule or _has_rules(schema))
    if path != "$" and matters and not _bounded(schema):
        out.append(path)
    for name, child in schema.get("properties", {}).items():
        if path == "$" and name in {"apiVersion", "kind", "metadata", "status"}:
            continue  # built-in fields and the status (no rules) are not costed against ours
        out += unbounded_under_rules(child, f"{path}.{name}", under_rule)
    if isinstance(schema.get("items"), dict):
        out += unbounded_under_rules(schema["items"], f"{path}[]", under_rule)
    if isinstance(schema.get("additionalProperties"), dict):
        out += unbounded_under_rules(schema["additionalProperties"], f"{path}{{}}", under_rule)
    return out
