"""The Sprig/Helm functions our chart templates may call (see gotemplate.py); any other name is an error."""

from __future__ import annotations

import base64
import re
import secrets
import string
from typing import Any, Callable

import yaml

from .gotemplate import TemplateError, printable, truthy, walk_fields


def go_printf(fmt: str, *args: Any) -> str:
    values = iter(args)

    def one(match: re.Match) -> str:
        verb = match.group(0)
        if verb == "%%":
            return "%"
        value = next(values)
        if verb == "%d":
            return str(int(value))
        if verb == "%q":
            return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        return printable(value, "printf")

    return re.sub(r"%[sdvq%]", one, fmt)


def go_index(value: Any, keys: tuple) -> Any:
    """`index` over maps (by key) and lists (by position); a missing map key is nil, as in Go."""
    for key in keys:
        if isinstance(value, list):
            value = value[int(key)]
        else:
            value = walk_fields(value, [str(key)], "index")
    return value


def to_yaml(value: Any) -> str:
    """Like Helm's toYaml: sorted keys, block style, no trailing newline."""
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n").removesuffix("\n...")


def indent(width: int, text: str) -> str:
    pad = " " * width
    return pad + text.replace("\n", "\n" + pad)


def required(message: str, value: Any) -> Any:
    if not truthy(value) and value != 0:
        raise TemplateError(message)
    return value


def fail(message: str) -> None:
    raise TemplateError(message)


FUNCTIONS: dict[str, Callable] = {
    "include": None,  # bound per renderer
    "printf": go_printf,
    "default": lambda fallback, value=None: value if truthy(value) else fallback,
    "quote": lambda value: go_printf("%q", printable(value, "quote")),
    "toYaml": to_yaml,
    "indent": indent,
    "nindent": lambda width, text: "\n" + indent(width, text),
    "trunc": lambda length, text: text[:length],
    "trimSuffix": lambda suffix, text: text.removesuffix(suffix),
    "replace": lambda old, new, text: text.replace(old, new),
    "contains": lambda needle, text: needle in text,
    "not": lambda value: not truthy(value),
    "and": lambda *values: next((v for v in values if not truthy(v)), values[-1]),
    "or": lambda *values: next((v for v in values if truthy(v)), values[-1]),
    "eq": lambda a, *others: any(a == other for other in others),
    "ne": lambda a, b: a != b,
    "int": lambda value: int(value or 0),
    "list": lambda *items: list(items),
    "join": lambda separator, items: separator.join(printable(item, "join") for item in items),
    "splitList": lambda separator, text: text.split(separator),
    "empty": lambda value: not truthy(value),
    "required": required,
    "fail": fail,
    "b64enc": lambda text: base64.b64encode(text.encode()).decode(),
    "randAlphaNum": lambda n: "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n)),
    # `helm template` (no cluster) answers lookup with an empty map: what a fresh install sees.
    "lookup": lambda api_version, kind, namespace, name: {},
    "index": lambda value, *keys: go_index(value, keys),
}
