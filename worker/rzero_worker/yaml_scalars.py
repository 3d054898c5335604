"""How kubectl reads a plain (unquoted) YAML scalar: YAML 1.1, as go-yaml v2 resolves it (sigs.k8s.io/yaml,
which `kubectl create -f` and `kubectl apply -f` use before sending JSON to the API server), and how it
sends a number. Pure.

    kubectl_reading("yes") -> True      kubectl_reading("010") -> 8      kubectl_reading("1_000") -> 1000
    kubectl_reading(".nan") -> NON_FINITE (kubectl refuses the file: JSON has no NaN)
    as_kubectl_sends(3.0) -> 3          (Go's JSON writes an integral float as an integer)

Observed with kubectl 1.33 against kube-apiserver 1.36 (tests/operator/kube/server/test_validate_vs_server.py):
`y`, `yes`, `on`, `No`, `OFF` are booleans; `010` is octal, `0x10`, `0o17`, `0b11` and `1_000` are integers;
`01.5` and `1_0.5` are numbers; dates stay strings. rzero reads YAML 1.2 (only `true`/`false` are booleans),
so rzero_worker.documents refuses a plain scalar the two read differently, rather than guess which was meant.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1


class _NonFinite:
    def __repr__(self) -> str:
        return "NON_FINITE"


NON_FINITE = _NonFinite()  # .nan, .inf, -.inf: a float kubectl cannot turn into JSON

_BOOLS = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
}
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_NON_FINITE = frozenset(sign + dot for sign in ("", "+", "-") for dot in (".inf", ".Inf", ".INF")) | {
    ".nan", ".NaN", ".NAN"}
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")  # go-yaml v2's yamlStyleFloat
_DOT_FLOAT = re.compile(r"^\.[0-9]+([eE][-+]?[0-9]+)?$")  # what Go's ParseFloat takes after a leading '.'
_PREFIXES = {"0x": 16, "0X": 16, "0o": 8, "0O": 8, "0b": 2, "0B": 2}
_DIGITS = {16: "0123456789abcdefABCDEF", 8: "01234567", 2: "01", 10: "0123456789"}


def _go_integer(text: str, *, signed: bool) -> int | None:
    """Go's strconv.ParseInt(text, 0, 64) (signed) or ParseUint(text, 0, 64); None where Go returns an error."""
    sign, body = 1, text
    if body[:1] in ("+", "-"):
        if not signed:
            return None
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    base = _PREFIXES.get(body[:2], 8 if len(body) > 1 and body[0] == "0" else 10)
    digits = body[2:] if body[:2] in _PREFIXES else (body[1:] if base == 8 else body)
    if not digits or len(digits) > 64 or any(c not in _DIGITS[base] for c in digits):
        return None  # more than 64 digits overflow 64 bits in any base
    value = sign * int(digits, base)
    low, high = (INT64_MIN, INT64_MAX) if signed else (0, UINT64_MAX)
    return value if low <= value <= high else None


def kubectl_reading(text: str) -> Any:
    """The value go-yaml v2 gives the plain scalar `text`: bool, None, int, float, NON_FINITE or the string."""
    if text in _BOOLS:
        return _BOOLS[text]
    if text in _NULLS:
        return None
    if text in _NON_FINITE:
        return NON_FINITE
    if text[:1] == ".":
        return float(text) if _DOT_FLOAT.match(text) else text
    if text[:1] not in tuple("+-0123456789"):
        return text
    plain = text.replace("_", "")
    for signed in (True, False):
        if plain and (value := _go_integer(plain, signed=signed)) is not None:
            return value
    if _FLOAT.match(plain):
        value = float(plain)
        return value if value not in (float("inf"), float("-inf")) else text  # Go: out of range, a string
    return text


def as_kubectl_sends(number: float) -> int | float:
    """A number from a file as the API server receives it from kubectl: kubectl decodes the file and encodes it
    again with Go's encoding/json, which writes a float below 1e21 in its shortest digits without an exponent,
    so `3.0` arrives as the integer 3 (and the server takes it for an integer, CEL rules included). Measured:
    the same 3.0 sent as JSON by any other client is a float, which CEL rules over integers refuse."""
    if number.is_integer() and abs(number) < 1e21:
        digits = int(Decimal(repr(number)))  # repr: the shortest digits that read back as the same float
        if INT64_MIN <= digits <= INT64_MAX:
            return digits
    return number
