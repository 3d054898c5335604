"""The one safe reader of the documents users and the operator hand to rzero: RZeroRun manifests
(`rzero validate`, `rzero run`) and worker task files (`rzero worker --task`). Stdlib + PyYAML only, so
the control plane (no torch) and the worker share it.

    read_documents(path, what="manifest") -> list[Any]   # raises DocumentError (one line, names the file)
    parse_documents(data: bytes | str, origin) -> list[Any]
    check_values(doc) -> list[str]                        # "spec.iterations: integer beyond int64", ...

What the API server would refuse or read differently is refused here, before any model sees it:
- more than MAX_DOCUMENT_BYTES (1.5 MiB: etcd's default request limit, so no manifest the cluster could
  store is refused) is refused before parsing — a 50 MB file costs one `stat`;
- bytes that are not UTF-8, nesting deeper than MAX_DEPTH, duplicate mapping keys (YAML's "last wins"
  would silently rename a run), keys that are not strings;
- scalars are read as JSON and YAML 1.2 read them: only `true`/`false` are booleans and only decimal
  digits are integers; dates stay strings; `.nan`/`.inf` and JSON's `NaN` are not numbers at all;
- kubectl reads YAML 1.1 (rzero_worker.yaml_scalars: `yes`, `on`, `y` are booleans, `010` is 8, `0x10`
  16, `1_000` 1000), so a plain scalar the two read differently is refused with its path and both
  readings (quote it for the string): a manifest means one thing to `rzero validate` and `kubectl`;
- integers outside int64 (the API server's integer) and integers too long to convert (`int()` refuses
  more than 4,300 digits) are kept as `OversizedInteger` markers and reported by `check_values` with
  the field's path.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Iterator

import yaml

from .yaml_scalars import NON_FINITE, kubectl_reading

MAX_DOCUMENT_BYTES = 1536 * 1024  # 1.5 MiB
MAX_DEPTH = 64  # a manifest needs about 8; deep nesting is a mistake or an attack
MAX_NODES = 1_000_000  # values after YAML aliases are expanded
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_MAX_INT_DIGITS = 19  # int64 has at most 19 digits; longer literals are never converted


class DocumentError(ValueError):
    """A document that cannot be read as data: `str()` is one line naming the file, then `detail`."""

    def __init__(self, origin: str, detail: str):
        self.origin, self.detail = origin, " ".join(str(detail).split())
        super().__init__(f"{origin}: {self.detail}")


class OversizedInteger(str):
    """An integer literal beyond int64, kept as its text (so nothing converts 5,000 digits)."""

    def describe(self) -> str:
        digits = len(self.lstrip("+-"))
        return f"integer beyond int64 ({digits} digits)" if digits > 30 else f"integer {self} is beyond int64"


def _integer(text: str) -> int | OversizedInteger:
    digits = text.lstrip("+-")
    if len(digits) > _MAX_INT_DIGITS:
        return OversizedInteger(text)
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else OversizedInteger(text)


class AmbiguousScalar(str):
    """A plain YAML scalar that YAML 1.2 (rzero) reads as this string and kubectl (YAML 1.1) as `kubectl`."""

    kubectl: Any = None

    def describe(self) -> str:
        if self.kubectl is NON_FINITE:
            return (f"kubectl (YAML 1.1) reads {self} as a number JSON cannot carry: write a finite number, or "
                    f"quote it for the string")
        value = self.kubectl  # as kubectl sends it: Go writes an integral float as an integer
        integral = isinstance(value, float) and value.is_integer() and abs(value) < 1e21
        shown = json.dumps(int(value) if integral else value)
        return (f"{self} means {shown} to kubectl (YAML 1.1) but the string {str(self)!r} to YAML 1.2: write "
                f"{shown}, or quote it for the string")


# ------------------------------------------------------------------------------------------------- YAML

_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|(0|[1-9][0-9]*)(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_BOOL = re.compile(r"^(true|True|TRUE|false|False|FALSE)$")
_NULL = re.compile(r"^(~|null|Null|NULL|)$")


_AMBIGUOUS_TAG = "tag:rzero.dev,2025:ambiguous"


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 (JSON-like) scalar resolution, duplicate keys refused, and plain scalars that
    kubectl (YAML 1.1) reads otherwise tagged as ambiguous."""

    yaml_implicit_resolvers: dict = {}

    def resolve(self, kind: Any, value: Any, implicit: tuple[bool, bool]) -> str:
        tag = super().resolve(kind, value, implicit)
        if kind is not yaml.ScalarNode or not implicit[0] or tag.endswith(":merge"):
            return tag
        ours = _yaml12_reading(tag, value)
        if isinstance(ours, OversizedInteger) or (isinstance(ours, float) and not math.isfinite(ours)):
            return tag  # refused as such (check_values, the float constructor), whoever reads it
        kubectls = kubectl_reading(value)
        return tag if type(ours) is type(kubectls) and ours == kubectls else _AMBIGUOUS_TAG


def _yaml12_reading(tag: str, text: str) -> Any:
    """What the constructors below make of a plain scalar resolved to `tag`."""
    if tag.endswith(":bool"):
        return text.lower() == "true"
    if tag.endswith(":int"):
        return _integer(text)
    if tag.endswith(":float"):
        return float(text)
    return None if tag.endswith(":null") else text


def _construct_ambiguous(loader: _Loader, node: yaml.ScalarNode) -> AmbiguousScalar:
    scalar = AmbiguousScalar(loader.construct_scalar(node))
    scalar.kubectl = kubectl_reading(str(scalar))
    return scalar


_Loader.add_constructor(_AMBIGUOUS_TAG, _construct_ambiguous)

for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:merge", re.compile(r"^<<$"), "<"),
    ("tag:yaml.org,2002:bool", _BOOL, "tTfF"),
    ("tag:yaml.org,2002:int", _INT, "-+0123456789"),
    ("tag:yaml.org,2002:float", _FLOAT, "-+.0123456789"),
    ("tag:yaml.org,2002:null", _NULL, ["~", "n", "N", ""]),
):
    _Loader.add_implicit_resolver(_tag, _pattern, list(_first))


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    if not _INT.match(text):  # an explicit !!int on something else
        raise yaml.constructor.ConstructorError(None, None, f"{text!r} is not a decimal integer", node.start_mark)
    return _integer(text)


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    if not _FLOAT.match(text):
        raise yaml.constructor.ConstructorError(None, None, f"{text!r} is not a finite number", node.start_mark)
    value = float(text)
    if not math.isfinite(value):
        raise yaml.constructor.ConstructorError(None, None, f"{text!r} is out of range", node.start_mark)
    return value


def _construct_bool(loader: _Loader, node: yaml.ScalarNode) -> bool:
    return loader.construct_scalar(node).lower() == "true"


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"mapping key {key!r} is not a string", key_node.start_mark)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                key_node.start_mark)
        seen[key] = key_node
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node, deep=True))


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
# Dates stay strings (JSON has none; the API server sees a string); binary and sets are not JSON either.
for _tag in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary", "tag:yaml.org,2002:set",
             "tag:yaml.org,2002:omap", "tag:yaml.org,2002:pairs"):
    _Loader.yaml_constructors.pop(_tag, None)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


# ------------------------------------------------------------------------------------------------- JSON


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_object(pairs: list[tuple[str, Any]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _parse_json(text: str) -> Any:
    return json.loads(text, parse_int=_integer, parse_float=_json_float, parse_constant=_no_constant,
                      object_pairs_hook=_json_object)


# --------------------------------------------------------------------------------------------- reading


def _decode(data: bytes | str, origin: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DocumentError(origin, f"not UTF-8 text (invalid byte at offset {error.start})") from None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def parse_documents(data: bytes | str, origin: str) -> list[Any]:
    """Every non-empty document of a JSON or YAML text (JSON is tried first: it is what the operator writes)."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentError(origin, _too_large(size))
    text = _decode(data, origin)
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        try:
            return [_parse_json(text)]
        except ValueError:
            pass  # not JSON: YAML (a superset) reads it, or says best what is wrong
        return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except RecursionError:
        raise DocumentError(origin, f"nested too deeply to read (at most {MAX_DEPTH} levels are allowed)") from None
    except yaml.YAMLError as error:
        raise DocumentError(origin, f"not valid YAML or JSON: {_yaml_message(error)}") from None


def _yaml_message(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return _one_line(where + problem)


def _too_large(size: int) -> str:
    return (f"{size:,} bytes is over the {MAX_DOCUMENT_BYTES:,}-byte (1.5 MiB) limit for a "
            f"manifest or task file")


def read_bytes(path: str | Path, origin: str | None = None) -> bytes:
    """A file's bytes, refusing one over the limit before reading it (and a pipe that grows past it)."""
    origin = origin or str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except IsADirectoryError:
        raise DocumentError(origin, f"is a directory, not a file") from None
    except OSError as error:
        raise DocumentError(origin, f"cannot read: {error.strerror or error}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentError(origin, _too_large(_size_of(path, len(data))))
    return data


def _size_of(path: str | Path, at_least: int) -> int:
    try:
        return max(at_least, Path(path).stat().st_size)
    except OSError:
        return at_least


def read_documents(path: str | Path, origin: str | None = None) -> list[Any]:
    """The non-empty documents of a file, each checked by `check_values`."""
    origin = origin or str(path)
    docs = parse_documents(read_bytes(path, origin), origin)
    for doc in docs:
        problems = check_values(doc)
        if problems:
            raise DocumentError(origin, problems[0])
    return docs


def read_one_document(path: str | Path, what: str, origin: str | None = None) -> Any:
    """The file's single document; a file with none or several is refused (naming how many)."""
    origin = origin or str(path)
    docs = read_documents(path, origin)
    if len(docs) != 1:
        found = f"{len(docs)} documents" if docs else "no document"
        raise DocumentError(origin, f"holds {found}; a {what} file holds exactly one")
    return docs[0]


# ------------------------------------------------------------------------------------------ checking


class _Walk:
    def __init__(self, nul: bool):
        self.nul, self.nodes, self.problems = nul, 0, []

    def visit(self, value: Any, path: str, depth: int) -> None:
        self.nodes += 1
        if self.problems:
            return
        where = path or "document"
        if depth > MAX_DEPTH:
            self.problems.append(f"{where}: nested more than {MAX_DEPTH} levels")
        elif self.nodes > MAX_NODES:  # YAML aliases can make a small file expand exponentially
            self.problems.append(f"{where}: more than {MAX_NODES:,} values (YAML aliases expanding?)")
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, AmbiguousScalar):
                    self.problems.append(f"{where}: mapping key {key.describe()}")
                    return
                if not isinstance(key, str):
                    self.problems.append(f"{where}: mapping key {key!r} is not a string")
                    return
                self.visit(item, f"{path}.{key}" if path else key, depth + 1)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.visit(item, f"{path}[{index}]", depth + 1)
        else:
            problem = _scalar_problem(value, self.nul)
            if problem:
                self.problems.append(f"{where}: {problem}")


def _scalar_problem(value: Any, nul: bool) -> str | None:
    if isinstance(value, (OversizedInteger, AmbiguousScalar)):
        return value.describe()
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        return "integer beyond int64" if value.bit_length() > 100 else f"integer {value} is beyond int64"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if nul and isinstance(value, str) and "\x00" in value:
        return "contains a NUL byte"
    return None


def check_values(doc: Any, *, nul: bool = True) -> list[str]:
    """What the API server's JSON decoding would refuse, with the path: integers beyond int64, non-finite
    numbers, non-string keys, plain YAML scalars kubectl reads otherwise (AmbiguousScalar), nesting beyond
    MAX_DEPTH, more than MAX_NODES values; and (nul=True, for files people write) NUL bytes in strings, which
    no field of ours may hold. The first problem only."""
    walk = _Walk(nul)
    walk.visit(doc, "", 0)
    return walk.problems
