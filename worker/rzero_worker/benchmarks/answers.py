r"""Gold answers from dataset fields, predictions from model outputs, and the non-maths graders.

Gold readings (`read_gold`) and scorings are named in `rzero_worker.benchmark_presets`:

- `math`: the prediction is the last `\boxed{}` (rzero_worker.grading.extract_boxed); math-verify decides
  equivalence in the grading pool. The reference takes the FIRST `\boxed{` and everything after it up to
  the end of that line; we take the last complete box (what DESIGN.md fixes for all of rzero).
- `choice`: an option letter. The reference (`eval_mmlupro.py`, `eval_supergpqa.py`) reads the last
  `\boxed{}`, else the last 'Final Answer:' / 'The answer is:' line, then returns the first of A..J that
  occurs ANYWHERE in that text (so `\boxed{B. Apple}` reads as A), and guesses a random letter from A..J
  when nothing is found. We read the same text, then take the text itself when it is one letter, else its
  first standalone capital letter among the item's options; with no letter we guess (seeded by the item
  id, among the item's options) or count it wrong, as `evaluation.choiceFallback` says.
- `short` (BBEH): the reference's port of BBEH's own scorer (`eval_bbeh.py`): the boxed answer (or answer
  line), cut after 'The answer is' style prefixes, LaTeX wrappers and a final full stop dropped,
  lower-cased; then equal, '(a)' = 'a', equal as floats, equal without quotes, or equal up to brackets.

Stdlib only; math-verify runs in the grading pool's processes.
"""

from __future__ import annotations

import random
import re
import string

from ..grading import extract_boxed

LETTERS = string.ascii_uppercase


class GoldError(ValueError):
    """A dataset field that does not hold an answer of the expected kind (the message says why)."""


# --------------------------------------------------------------------------------------------------
# Gold answers


def read_gold(value, reading: str, options: tuple[str, ...] = ()) -> str:
    """The gold answer string of a dataset field under `reading` (benchmark_presets.GOLD_READINGS)."""
    if reading == "first":
        if not isinstance(value, list) or not value:
            raise GoldError("is not a non-empty list")
        return read_gold(value[0], "plain")
    if reading == "numeric":
        return _numeric(value)
    if reading == "letter":
        return _letter(value, options)
    if reading == "option":  # your own multiple choice: a letter or an option's text (benchmarks.custom)
        from .custom import option_gold

        return option_gold(value, options)
    if isinstance(value, (list, dict)) or value is None:
        raise GoldError(f"is {type(value).__name__}, not text")
    text = str(value)
    if reading == "gsm8k":
        if "####" not in text:
            raise GoldError("has no gsm8k answer (no '####')")
        # GSM8K writes thousands with commas ("1,000"); math-verify would read that as a tuple.
        gold = text.rsplit("####", 1)[1].strip().replace(",", "")
    elif reading == "boxed":
        gold = extract_boxed(text) or ""
        if not gold:
            raise GoldError("has no boxed answer")
    else:
        gold = text.strip()
    if not gold:
        raise GoldError("is empty")
    return gold


def _numeric(value) -> str:
    """27, 27.0 and '27' all read as '27'; 0.5 as '0.5'. Booleans and non-numbers are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise GoldError(f"is {type(value).__name__}, not a number")
    try:
        number = float(str(value).strip().replace(",", ""))
    except ValueError:
        raise GoldError(f"is {str(value)[:40]!r}, not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise GoldError("is not a finite number")
    return str(int(number)) if number.is_integer() else repr(number)


def _letter(value, options: tuple[str, ...]) -> str:
    letter = str(value).strip().upper() if isinstance(value, str) else ""
    if len(letter) != 1 or letter not in LETTERS:
        raise GoldError(f"is {value!r}, not an option letter")
    if options and LETTERS.index(letter) >= len(options):
        raise GoldError(f"is {letter!r} but the row has only {len(options)} options")
    return letter


# --------------------------------------------------------------------------------------------------
# Predictions

_ANSWER_LINE = re.compile(r"(Final Answer|The answer is):(.*?)\n")


def answer_text(output: str) -> str | None:
    """The final answer the reference reads for general reasoning: the last complete `\\boxed{}`, else the
    rest of the last 'Final Answer:' line, else of the last 'The answer is:' line."""
    boxed = extract_boxed(output)
    if boxed:
        return boxed
    lines = _ANSWER_LINE.findall(output or "")
    for marker in ("Final Answer", "The answer is"):
        found = [text for name, text in lines if name == marker]
        if found:
            return found[-1].strip() or None
    return None


_LATEX_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf|texttt)\s*\{([^{}]*)\}")
_STANDALONE_LETTER = re.compile(r"(?<![A-Za-z\\])([A-Z])(?![A-Za-z])")


def read_letter(text: str | None, option_count: int) -> str | None:
    """The option letter a final answer names: the whole answer when it is one letter (after dropping
    LaTeX text wrappers, brackets and punctuation), else its first standalone capital letter; only letters
    of existing options count."""
    if not text:
        return None
    valid = LETTERS[: max(1, min(option_count, len(LETTERS)))]
    unwrapped = _LATEX_WRAPPER.sub(r"\1", text).strip()
    bare = unwrapped.strip(" ()[]{}.:*$")
    if len(bare) == 1 and bare.upper() in valid:
        return bare.upper()
    for match in _STANDALONE_LETTER.finditer(unwrapped):
        if match.group(1) in valid:
            return match.group(1)
    return None


def guess_letter(item_id: str, option_count: int) -> str:
    """The reference's random guess, made reproducible: the same item always gets the same letter."""
    return random.Random(f"rzero-guess/{item_id}").choice(LETTERS[: max(1, option_count)])


# --------------------------------------------------------------------------------------------------
# BBEH's matching (short answers)

_BBEH_PREFIXES = ("The answer is:", "The final answer is ", "The final answer is: ", "The answer is ")


def bbeh_normalize(answer: str | None) -> str:
    """A BBEH answer in the form its scorer compares: prefixes cut, LaTeX unwrapped, lower case."""
    text = (answer or "").strip()
    for prefix in _BBEH_PREFIXES:
        if prefix in text:
            text = text.split(prefix)[-1].strip()
    text = text[:-1] if text.endswith(".") else text
    text = _strip_latex(text)
    text = text.lower().replace(", ", ",").replace("**", "").split("\n")[0]
    return text[:-1] if text.endswith(".") else text


def _strip_latex(text: str) -> str:
    if text.startswith("$") and text.endswith("$"):
        text = text[1:-1]
    for command in ("boxed{", "text{", "texttt{"):
        if command in text and text.endswith("}"):
            text = text[:-1].split(command)[1]
    return text


def bbeh_match(prediction: str | None, gold: str) -> bool:
    """BBEH's fuzzy match of a predicted answer against the reference answer."""
    predicted = bbeh_normalize(prediction)
    reference = gold.strip().lower().replace(", ", ",")
    if predicted == reference:
        return True
    for a, b in ((predicted, reference), (reference, predicted)):
        if len(a) == 3 and a[0] == "(" and a[-1] == ")":  # "(a)" against "a"
            return a[1] == b
    try:
        if float(predicted) == float(reference):
            return True
    except ValueError:
        pass
    if predicted.replace("'", "") == reference.replace("'", ""):
        return True
    if f"[{reference}]" == predicted or f"[{predicted}]" == reference:
        return True
    return predicted.endswith("?") and predicted[:-1] == reference


# --------------------------------------------------------------------------------------------------
# One scoring end to end: what a model output predicts, and whether that is right


def predict(scoring: str, output: str, *, item_id: str = "", option_count: int = 0,
            fallback: str = "none", options: tuple[str, ...] = ()) -> tuple[str | None, bool]:
    """(prediction, guessed) of one output under `scoring`; guessed only for multiple choice. `options`: the
    item's option texts (scoring "options", your own multiple choice: benchmarks.custom)."""
    if scoring == "math":
        return extract_boxed(output), False
    if scoring in ("short", "text"):
        return answer_text(output), False
    if scoring == "options":
        from .custom import read_option

        letter, option_count = read_option(output, options), len(options)
    elif scoring == "choice":
        letter = read_letter(answer_text(output), option_count)
    else:
        raise ValueError(f"unknown scoring {scoring!r}")
    if letter is None and fallback == "guess":
        return guess_letter(item_id, option_count), True
    return letter, False


def judge(scoring: str, predictions: list[str | None], golds: list[str], pool=None) -> list[bool | None]:
    """Is each prediction right? math: math-verify equivalence in `pool` (None = undecided in time);
    choice and options: the same letter; short: BBEH's match; text: benchmarks.custom's normal forms, and
    math-verify for a number gold."""
    if len(predictions) != len(golds):
        raise ValueError(f"judge: {len(predictions)} predictions but {len(golds)} golds")
    if scoring == "math":
        from ..grading import grade

        return grade(predictions, golds, pool)
    if scoring == "text":
        from .custom import text_matches

        return text_matches(predictions, golds, pool)
    if scoring in ("choice", "options"):
        return [prediction is not None and prediction == gold for prediction, gold in zip(predictions, golds)]
    if scoring == "short":
        return [bbeh_match(prediction, gold) for prediction, gold in zip(predictions, golds)]
    raise ValueError(f"unknown scoring {scoring!r}")
