"""A small Go text/template engine for the subset of Helm template syntax our chart uses.

There is no helm binary on these machines, so the chart tests parse and render the templates with this.
It is strict on purpose: an unknown function, an unbalanced block, a field read on a missing map, a
trim marker without its space (`{{-x}}` is the number -x in Go), or printing a map/list all raise
`TemplateError`. Supported: text, comments, `{{- -}}` trimming, pipelines with `|`, parentheses,
`$`/`$var`/`.field` chains, `:=`/`=`, if/else if/else, range (with optional `$i, $v :=`), with, define,
and the Sprig/Helm functions in FUNCTIONS. Anything else is a syntax error: keep the chart to this subset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml


class TemplateError(Exception):
    pass


# ------------------------------------------------------------------------------------------ lexing
@dataclass
class Action:
    """The inside of one `{{ ... }}` (trim markers and comments already handled)."""

    source: str
    where: str


# A comment may contain `}}`; it ends only at `*/}}` (or `*/ -}}`).
ACTION_RE = re.compile(r"\{\{(-?)(\s*/\*.*?\*/\s*|(?!\s*/\*).*?)(-?)\}\}", re.S)
TOKEN_RE = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<declare>:=)
    | (?P<assign>=)
    | (?P<punct>[()|,])
    | (?P<variable>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
    | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.X,
)


def lex(text: str, name: str) -> list[str | Action]:
    """Split into text pieces and actions, applying `{{-` / `-}}` whitespace trimming."""
    pieces: list[str | Action] = []
    pos, trim_next = 0, False
    for match in ACTION_RE.finditer(text):
        left, inner, right = match.group(1), match.group(2), match.group(3)
        line = text.count("\n", 0, match.start()) + 1
        where = f"{name}:{line}"
        if left and not inner[:1].isspace():
            raise TemplateError(f"{where}: '{{{{-' must be followed by a space")
        if right and not inner[-1:].isspace():
            raise TemplateError(f"{where}: '-}}}}' must be preceded by a space")
        chunk = text[pos:match.start()]
        if trim_next:
            chunk = chunk.lstrip()
        if left:
            chunk = chunk.rstrip()
        pieces.append(chunk)
        stripped = inner.strip()
        if stripped.startswith("/*"):
            if not stripped.endswith("*/"):
                raise TemplateError(f"{where}: unterminated comment")
        elif "{{" in inner:
            raise TemplateError(f"{where}: unclosed action")
        else:
            pieces.append(Action(stripped, where))
        pos, trim_next = match.end(), bool(right)
    rest = text[pos:]
    if "{{" in rest or "}}" in rest:
        raise TemplateError(f"{name}: unbalanced '{{{{' / '}}}}'")
    pieces.append(rest.lstrip() if trim_next else rest)
    return pieces


def tokenize(source: str, where: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    source = source.rstrip()
    while pos < len(source):
        match = TOKEN_RE.match(source, pos)
        if not match or match.end() == pos:
            raise TemplateError(f"{where}: cannot parse {source[pos:]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


# ------------------------------------------------------------------------------------------ parsing
@dataclass
class Pipeline:
    declare: list[str]  # variables set with := (or = when assign is True)
    assign: bool
    commands: list[list[tuple[str, Any]]]  # each command: operands (kind, value)
    where: str


@dataclass
class Node:
    kind: str  # text, output, if, range, with
    text: str = ""
    pipeline: Pipeline | None = None
    branches: list[tuple[Pipeline, list["Node"]]] = field(default_factory=list)
    body: list["Node"] = field(default_factory=list)
    else_body: list["Node"] = field(default_factory=list)


BLOCK_KEYWORDS = ("if", "range", "with", "define")


def parse_pipeline(tokens: list[tuple[str, str]], where: str, functions: dict) -> Pipeline:
    declare, assign = [], False
    if len(tokens) >= 2 and any(kind in ("declare", "assign") for kind, _ in tokens[:4]):
        index = next(i for i, (kind, _) in enumerate(tokens) if kind in ("declare", "assign"))
        names = [value for kind, value in tokens[:index] if kind == "variable"]
        if not names or any(kind not in ("variable", "punct") for kind, _ in tokens[:index]):
            raise TemplateError(f"{where}: bad declaration")
        declare, assign = names, tokens[index][0] == "assign"
        tokens = tokens[index + 1:]
    commands, position = parse_commands(tokens, 0, where, functions)
    if position != len(tokens):
        raise TemplateError(f"{where}: unexpected {tokens[position][1]!r}")
    return Pipeline(declare, assign, commands, where)


def parse_commands(tokens, pos, where, functions):
    commands: list[list[tuple[str, Any]]] = [[]]
    while pos < len(tokens):
        kind, value = tokens[pos]
        if kind == "punct" and value == ")":
            break
        pos += 1
        if kind == "punct" and value == "|":
            commands.append([])
        elif kind == "punct" and value == "(":
            inner, pos = parse_commands(tokens, pos, where, functions)
            if pos >= len(tokens) or tokens[pos][1] != ")":
                raise TemplateError(f"{where}: unclosed '('")
            pos += 1
            commands[-1].append(("pipe", Pipeline([], False, inner, where)))
        elif kind == "ident" and value not in ("true", "false", "nil"):
            if value not in functions:
                raise TemplateError(f"{where}: unknown function {value!r}")
            commands[-1].append(("func", value))
        else:
            commands[-1].append((kind, value))
    if any(not command for command in commands):
        raise TemplateError(f"{where}: empty command in pipeline")
    return commands, pos


@dataclass
class Open:
    """A block waiting for its `end`: what it is, and the body list to go back to afterwards."""

    keyword: str
    node: Node | None
    where: str
    parent: list[Node]


def parse(pieces: list[str | Action], functions: dict, defines: dict[str, list[Node]]) -> list[Node]:
    """Build the node tree; `define` blocks go into `defines`. Raises on unbalanced blocks."""
    root: list[Node] = []
    stack: list[Open] = []
    current = root
    for piece in pieces:
        if isinstance(piece, str):
            if piece:
                current.append(Node("text", text=piece))
            continue
        keyword, _, rest = piece.source.partition(" ")
        rest = rest.strip()
        if keyword in ("if", "range", "with"):
            node = Node(keyword)
            node.branches.append((parse_pipeline(tokenize(rest, piece.where), piece.where, functions), node.body))
            current.append(node)
            stack.append(Open(keyword, node, piece.where, current))
            current = node.body
        elif keyword == "define":
            name = yaml.safe_load(rest) if rest.startswith('"') else None
            if not isinstance(name, str) or stack:
                raise TemplateError(f"{piece.where}: define needs a quoted name, at top level")
            stack.append(Open("define", None, piece.where, current))
            current = defines.setdefault(name, [])
        elif keyword == "else":
            if not stack or stack[-1].node is None:
                raise TemplateError(f"{piece.where}: else outside if/range/with")
            node = stack[-1].node
            if rest.startswith("if ") and node.kind == "if" and not node.else_body:
                body: list[Node] = []
                node.branches.append((parse_pipeline(tokenize(rest[3:], piece.where), piece.where, functions), body))
                current = body
            elif rest:
                raise TemplateError(f"{piece.where}: unsupported 'else {rest}'")
            else:
                current = node.else_body
        elif keyword == "end":
            if rest or not stack:
                raise TemplateError(f"{piece.where}: unexpected end")
            current = stack.pop().parent
        elif keyword in ("template", "block", "break", "continue"):
            raise TemplateError(f"{piece.where}: {keyword!r} is outside the supported subset")
        else:
            pipeline = parse_pipeline(tokenize(piece.source, piece.where), piece.where, functions)
            current.append(Node("output", pipeline=pipeline))
    if stack:
        raise TemplateError(f"{stack[-1].where}: '{stack[-1].keyword}' has no matching end")
    return root


# ------------------------------------------------------------------------------------------ evaluation
def truthy(value: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings/lists/maps are false."""
    return value not in (None, False, 0, "") and not (isinstance(value, (list, dict)) and not value)


def printable(value: Any, where: str) -> str:
    if value is None:
        return ""  # Helm renders a missing value as empty
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TemplateError(f"{where}: printing a {type(value).__name__} (use toYaml)")


class Scope:
    """Variables: `$` is the root data; blocks open nested scopes as in Go."""

    def __init__(self, parent: "Scope | None" = None, **values: Any):
        self.parent, self.values = parent, dict(values)

    def get(self, name: str, where: str) -> Any:
        scope = self
        while scope is not None:
            if name in scope.values:
                return scope.values[name]
            scope = scope.parent
        raise TemplateError(f"{where}: undefined variable {name}")

    def set(self, name: str, value: Any, where: str) -> None:
        scope = self
        while scope is not None:
            if name in scope.values:
                scope.values[name] = value
                return
            scope = scope.parent
        raise TemplateError(f"{where}: assignment to undeclared {name}")


def walk_fields(value: Any, names: list[str], where: str) -> Any:
    for name in names:
        if value is None:
            raise TemplateError(f"{where}: nil pointer evaluating .{name}")
        if not isinstance(value, dict):
            raise TemplateError(f"{where}: can't read field {name} of {type(value).__name__}")
        value = value.get(name)
    return value


class Renderer:
    def __init__(self, defines: dict[str, list[Node]], functions: dict[str, Callable]):
        self.defines, self.functions = defines, dict(functions)
        self.functions["include"] = self.include

    def include(self, name: str, data: Any) -> str:
        if name not in self.defines:
            raise TemplateError(f"include of undefined template {name!r}")
        return self.render(self.defines[name], data, Scope(None, **{"$": data}))

    def render(self, nodes: list[Node], dot: Any, scope: Scope) -> str:
        out: list[str] = []
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "output":
                value = self.run(node.pipeline, dot, scope)
                if not node.pipeline.declare:
                    out.append(printable(value, node.pipeline.where))
            else:
                out.append(self.render_block(node, dot, scope))
        return "".join(out)

    def render_block(self, node: Node, dot: Any, scope: Scope) -> str:
        if node.kind == "if":
            for pipeline, body in node.branches:
                inner = Scope(scope)
                if truthy(self.run(pipeline, dot, inner)):
                    return self.render(body, dot, inner)
            return self.render(node.else_body, dot, Scope(scope))
        pipeline = node.branches[0][0]
        inner = Scope(scope)
        if node.kind == "with":
            value = self.evaluate(pipeline, dot, inner)
            return self.render(node.body if truthy(value) else node.else_body, value if truthy(value) else dot, inner)
        value = self.evaluate(pipeline, dot, inner)
        if not truthy(value):
            return self.render(node.else_body, dot, inner)
        if isinstance(value, dict):
            items = [(key, value[key]) for key in sorted(value)]
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            raise TemplateError(f"{pipeline.where}: range over {type(value).__name__}")
        out = []
        for key, item in items:
            loop = Scope(scope)
            names = pipeline.declare
            if len(names) == 1:
                loop.values[names[0]] = item
            elif len(names) == 2:
                loop.values[names[0]], loop.values[names[1]] = key, item
            out.append(self.render(node.body, item, loop))
        return "".join(out)

    def run(self, pipeline: Pipeline, dot: Any, scope: Scope) -> Any:
        value = self.evaluate(pipeline, dot, scope)
        for name in pipeline.declare:
            if pipeline.assign:
                scope.set(name, value, pipeline.where)
            else:
                scope.values[name] = value
        return value

    def evaluate(self, pipeline: Pipeline, dot: Any, scope: Scope) -> Any:
        value, first = None, True
        for command in pipeline.commands:
            args = [] if first else [value]
            value = self.command(command, dot, scope, pipeline.where, args)
            first = False
        return value

    def command(self, command, dot, scope, where, piped: list) -> Any:
        kind, head = command[0]
        if kind == "func":
            args = [self.operand(operand, dot, scope, where) for operand in command[1:]] + piped
            try:
                return self.functions[head](*args)
            except TemplateError:
                raise
            except Exception as error:  # a wrong call is a template bug: name the place
                raise TemplateError(f"{where}: {head}: {error}") from error
        if len(command) > 1 or piped:
            raise TemplateError(f"{where}: {head!r} is not a function")
        return self.operand(command[0], dot, scope, where)

    def operand(self, operand, dot, scope, where) -> Any:
        kind, value = operand
        if kind == "string":
            return value[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
        if kind == "raw":
            return value[1:-1]
        if kind == "number":
            return float(value) if "." in value else int(value)
        if kind == "ident":
            return {"true": True, "false": False, "nil": None}[value]
        if kind == "field":
            return dot if value == "." else walk_fields(dot, value[1:].split("."), where)
        if kind == "variable":
            name, *names = value.split(".")
            return walk_fields(scope.get(name, where), names, where)
        if kind == "pipe":
            return self.evaluate(value, dot, scope)
        if kind == "func":
            return self.command([operand], dot, scope, where, [])
        raise TemplateError(f"{where}: unexpected {value!r}")
