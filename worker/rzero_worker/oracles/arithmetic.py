r"""The exact arithmetic oracle: the true answer of questions that are pure arithmetic, never `eval`.

A question qualifies when, after an optional lead-in ("What is (the value of)", "Compute", "Calculate",
"Evaluate", "Find the value of", "Simplify") and a trailing "?" or ".", what remains is an expression of numbers, `+ - * / ^`,
`×`/`·`/`÷`/`\times`/`\cdot`/`\div`, `\frac{a}{b}` and parentheses, e.g. "What is 23 + 45 * 2?" or
"Compute (3 - 7) / 4.". Anything else — a variable, a word the oracle does not know, a unit — is not
answered (None): an oracle that guesses would measure nothing.

Safety: the text is parsed with `ast.parse(mode="eval")` and only number literals, the five operators and
unary signs are evaluated, exactly, in `Fraction`s. Bounds keep every question within a small time and
memory budget whatever the model wrote: at most MAX_CHARACTERS characters, MAX_NODES syntax nodes, integer
exponents up to MAX_EXPONENT in absolute value, and no intermediate value beyond MAX_BITS bits (numerator or
denominator). Division by zero and anything out of bounds give None.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction

MAX_CHARACTERS = 200
MAX_NODES = 64
MAX_EXPONENT = 64
MAX_BITS = 256

_LEAD_IN = re.compile(
    r"^(?:what\s+is\s+the\s+value\s+of|what\s+is|what's|compute|calculate|evaluate|find\s+the\s+value\s+of"
    r"|find|simplify)\s*:?\s*",
    re.IGNORECASE,
)
_REWRITES = (
    (re.compile(r"\\frac\{([^{}]+)\}\{([^{}]+)\}"), r"((\1)/(\2))"),
    (re.compile(r"\\(?:times|cdot)|[×·]"), "*"),
    (re.compile(r"\\div|÷"), "/"),
    (re.compile(r"\\left|\\right|\$|\\,"), ""),
    (re.compile(r"[−–]"), "-"),
    (re.compile(r"\^"), "**"),
)
_ALLOWED_TEXT = re.compile(r"^[0-9.+\-*/() ]+$")
_OPERATORS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


class NotArithmetic(ValueError):
    """The question is not pure arithmetic within the oracle's bounds."""


def expression_of(question: str) -> str:
    """The arithmetic expression a question asks for (Python syntax), or NotArithmetic."""
    text = " ".join(question.split())
    if not text or len(text) > MAX_CHARACTERS:
        raise NotArithmetic("empty or too long")
    text = _LEAD_IN.sub("", text).rstrip(" ?.!").strip()
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    if not re.search(r"\d", text) or not _ALLOWED_TEXT.match(text):
        raise NotArithmetic("not made of numbers and + - * / ^ ( )")
    return text


def _bounded(value: Fraction) -> Fraction:
    if value.numerator.bit_length() > MAX_BITS or value.denominator.bit_length() > MAX_BITS:
        raise NotArithmetic("a value grows beyond the oracle's bounds")
    return value


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1 or abs(exponent) > MAX_EXPONENT:
        raise NotArithmetic("only small integer exponents")
    if base == 0 and exponent < 0:
        raise NotArithmetic("zero to a negative power")
    # the result's size is known before computing it: refuse instead of building a huge number
    bits = max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(int(exponent))
    if bits > MAX_BITS:
        raise NotArithmetic("a power grows beyond the oracle's bounds")
    return base ** int(exponent)


def _evaluate(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _bounded(Fraction(repr(node.value)) if isinstance(node.value, float) else Fraction(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        operation = _OPERATORS.get(type(node.op))
        if operation is None:
            raise NotArithmetic(f"operator {type(node.op).__name__}")
        if isinstance(node.op, ast.Div) and right == 0:
            raise NotArithmetic("division by zero")
        return _bounded(operation(left, right))
    raise NotArithmetic(f"syntax {type(node).__name__}")


def evaluate_expression(expression: str) -> Fraction:
    """The exact value of a Python-syntax arithmetic expression (see the module notes)."""
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise NotArithmetic(f"unparsable: {type(error).__name__}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise NotArithmetic("too many terms")
    return _evaluate(tree.body)


def format_value(value: Fraction) -> str:
    """'42', '-3/4': forms math-verify compares exactly with '\\frac{-3}{4}', '-0.75' and the like."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def solve(question: str) -> str | None:
    """The exact answer of an arithmetic question, or None when it is not one the oracle can read."""
    try:
        return format_value(evaluate_expression(expression_of(question)))
    except NotArithmetic:
        return None


class ArithmeticOracle:
    """Exact answers to pure arithmetic questions; None for every other question."""

    name = "arithmetic"

    def answer(self, questions: list[str]) -> list[str | None]:
        return [solve(question) for question in questions]
