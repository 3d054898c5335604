r"""Pull answers out of model text and bring them to a canonical string form.

Pure string work (stdlib only), cheap enough to run on every sample in the parent process:

- `extract_boxed`: the content of the LAST `\boxed{...}` / `\fbox{...}` / `\boxed 5`, nested braces handled.
  A last box that never closes (a truncated generation) gives None: the model did not finish its final
  answer, and falling back to an earlier box would grade an intermediate result.
- `parse_challenger_output`: the question and the Challenger's own answer. As in the reference code
  (`caller_penalty.py`) the question is the LAST `<question>...</question>` block and the answer is the last
  box anywhere in the completion.
- `normalize_answer`: only rewrites that never change the mathematical value, so that string equality of
  normalised answers implies math equivalence (the grading pool relies on that to skip math-verify).
- `numeric_value`: exact value of plain numbers (`18`, `-0.5`, `3/4`, `\frac{3}{4}`) for a fast path.
"""

from __future__ import annotations

import re
from fractions import Fraction

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_QUESTION_OPEN, _QUESTION_CLOSE = "<question>", "</question>"
_EMPTY_ANSWERS = {"", "none", "null"}


def _braced_content(text: str, open_index: int) -> str | None:
    """Content of the brace group opening at text[open_index] == '{', or None if it never closes."""
    depth = 0
    for index in range(open_index, len(text)):
        char = text[index]
        if char == "{" and text[index - 1 : index] != "\\":
            depth += 1
        elif char == "}" and text[index - 1 : index] != "\\":
            depth -= 1
            if depth == 0:
                return text[open_index + 1 : index]
    return None


def _box_at(text: str, start: int, command: str) -> str | None:
    """The answer of the box command found at text[start:]."""
    rest_index = start + len(command)
    rest = text[rest_index:]
    stripped = rest.lstrip()
    if stripped.startswith("{"):
        return _braced_content(text, rest_index + (len(rest) - len(stripped)))
    if rest[:1] == " ":
        # `\boxed 5`: TeX takes the next token; models write the answer up to a space or `$`.
        match = re.match(r"\s+([^\s$]+)", rest)
        return match.group(1) if match else None
    return None  # `\boxedfoo` is another command, not a box


def extract_boxed(text: str | None) -> str | None:
    r"""The content of the last `\boxed{}` (or `\fbox{}` / `\boxed 5`), stripped; None when there is none."""
    if not text:
        return None
    starts = [
        (match.start(), command)
        for command in _BOX_COMMANDS
        for match in re.finditer(re.escape(command), text)
    ]
    if not starts:
        return None
    start, command = max(starts)
    content = _box_at(text, start, command)
    return content.strip() if content is not None else None


def parse_challenger_output(text: str | None) -> tuple[str | None, str | None]:
    """(question, answer) of a Challenger completion: the last `<question>` block and the last box."""
    if not text:
        return None, None
    question = _last_question_block(text).strip()
    return (question or None), extract_boxed(text)


def _last_question_block(text: str) -> str:
    """What `re.findall(r"<question>(.*?)</question>", text, re.DOTALL)[-1]` gives, in linear time: the
    regex retries from every `<question>` when none closes, quadratic on a completion full of open tags."""
    found, position = "", 0
    while (start := text.find(_QUESTION_OPEN, position)) >= 0:
        end = text.find(_QUESTION_CLOSE, start + len(_QUESTION_OPEN))
        if end < 0:
            break
        found, position = text[start + len(_QUESTION_OPEN) : end], end + len(_QUESTION_CLOSE)
    return found


def has_reasoning_then_box(text: str | None) -> bool:
    r"""Does the whole text match `<think>.*</think>.*\boxed\{.*\}.*` (DOTALL)? In linear time: that regex
    backtracks cubically (a 30 KB completion of repeated `</think>\boxed{` takes 36 s). The earliest
    `</think>`, then the earliest `\boxed{` after it, then any `}` after that decide it."""
    if not text or not text.startswith("<think>"):
        return False
    end = text.find("</think>", len("<think>"))
    box = text.find("\\boxed{", end + len("</think>")) if end >= 0 else -1
    return box >= 0 and text.find("}", box + len("\\boxed{")) >= 0


def is_empty_answer(answer: str | None) -> bool:
    """True for answers that never count as an answer: None, blank, 'None'/'none'/'null'."""
    return answer is None or answer.strip().strip("$").strip().lower() in _EMPTY_ANSWERS


# --------------------------------------------------------------------------------------------------
# Normalisation: each rule is value-preserving.

_SPACING_COMMANDS = re.compile(r"\\[!,;:> ]|\\q?quad\b|~")
_LEFT_RIGHT = re.compile(r"\\(left|right|big|Big|bigg|Bigg)(?![a-zA-Z])")
_FRAC_VARIANTS = re.compile(r"\\[dt]frac(?![a-zA-Z])")
_TEXT_COMMANDS = r"\\(?:text|textbf|textrm|mathrm|mbox)\s*"
# A trailing unit, e.g. `18 \text{ dollars}` or `5\mbox{cm}`: a number followed by words in \text{}.
_TRAILING_UNIT = re.compile(r"^(?P<value>.*?[0-9}])\s*" + _TEXT_COMMANDS + r"\{\s*[a-zA-Z][a-zA-Z .]*\}$")
_WHOLE_TEXT = re.compile(r"^" + _TEXT_COMMANDS + r"\{(?P<inner>[^{}]*)\}$")
_DEGREES = re.compile(r"\^\s*\{?\\circ\}?$")
_ASSIGNMENT = re.compile(r"^[a-zA-Z]\s*=\s*(?P<value>[^=<>]+)$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_LATEX_THOUSANDS = re.compile(r"(?<=\d)\{,\}(?=\d{3})")
_SPACE_NOT_BETWEEN_LETTERS = re.compile(r"(?<![a-zA-Z])\s+|\s+(?![a-zA-Z])")


def normalize_answer(answer: str | None) -> str:
    r"""Canonical string of an answer ('' for an empty one). Rules, in order, all value-preserving:

    1. strip; drop enclosing `$...$`, a trailing full stop, a leading currency `\$`;
    2. drop spacing commands (`\!`, `\,`, `\;`, `\quad`, `~`) and sizing (`\left`, `\right`, `\big`...);
    3. `\dfrac` / `\tfrac` -> `\frac`; LaTeX thousands `1{,}000` and `1,000` -> `1000`;
    4. a trailing `\text{unit}` after a number is dropped, a whole-answer `\text{word}` is unwrapped;
       a trailing degree sign `^\circ` is dropped;
    5. a leading single-variable assignment `x = 3` -> `3`;
    6. whitespace is removed except a single space between two letters (`\pi r` keeps its meaning).
    Percentages are kept: `50\%` and `50` differ in value.
    """
    if is_empty_answer(answer):
        return ""
    text = answer.strip()
    if len(text) >= 2 and text.startswith("$") and text.endswith("$") and not text.startswith("\\$"):
        text = text.strip("$").strip()
    text = text.rstrip(".").strip()
    text = re.sub(r"^\\\$\s*", "", text)
    text = _SPACING_COMMANDS.sub(" ", text)
    text = _LEFT_RIGHT.sub("", text)
    text = _FRAC_VARIANTS.sub(r"\\frac", text)
    text = _LATEX_THOUSANDS.sub("", text)
    unit = _TRAILING_UNIT.match(text)
    if unit:
        text = unit.group("value")
    whole_text = _WHOLE_TEXT.match(text)
    if whole_text:
        text = whole_text.group("inner")
    text = _DEGREES.sub("", text).strip()
    assignment = _ASSIGNMENT.match(text)
    if assignment:
        text = assignment.group("value")
    text = re.sub(r"\s+", " ", text).strip()
    text = _SPACE_NOT_BETWEEN_LETTERS.sub("", text)
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    return "" if is_empty_answer(text) else text


# A longer answer is no "plain number": Python refuses int() of over 4,300 digits
# (sys.get_int_max_str_digits) and exact arithmetic on huge numbers is slow. Such answers go to the grading
# workers, where a hang or an error costs one item, never the batch.
MAX_NUMBER_CHARS = 1000
_DECIMAL = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)$")
_SLASH_FRACTION = re.compile(r"^(?P<sign>[-+]?)(?P<num>\d+)/(?P<den>\d+)$")
_LATEX_FRACTION = re.compile(r"^(?P<sign>[-+]?)\\frac\{(?P<num>\d+)\}\{(?P<den>\d+)\}$")


def numeric_value(normalized: str) -> Fraction | None:
    r"""Exact value of a normalised plain number (`18`, `-0.5`, `3/4`, `\frac{3}{4}`); None otherwise,
    and None for anything longer than MAX_NUMBER_CHARS characters."""
    if len(normalized) > MAX_NUMBER_CHARS:
        return None
    if _DECIMAL.match(normalized):
        return Fraction(normalized)
    match = _SLASH_FRACTION.match(normalized) or _LATEX_FRACTION.match(normalized)
    if match and int(match.group("den")) != 0:
        value = Fraction(int(match.group("num")), int(match.group("den")))
        return -value if match.group("sign") == "-" else value
    return None


def is_plain_integer(normalized: str) -> bool:
    """A short integer literal: two different ones are never equivalent (math-verify agrees below 15 digits)."""
    return bool(re.match(r"^[-+]?\d{1,15}$", normalized))
