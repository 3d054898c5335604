r"""Your own benchmark files' answers (`answerType` of a benchmark that is not a preset): free-form short
answers in text, and multiple choice whose gold and replies may be a letter or an option's text.

`text` (scoring "text"). The prediction is the final answer the general presets read (`answers.answer_text`:
the last complete `\boxed{}`, else a 'Final Answer:' / 'The answer is:' line). Gold and prediction are
compared in a normal form (`normalize_text`): LaTeX text wrappers (`\text{}`, `\texttt{}`, ...) and reST
roles (:func:`len`, :meth:`~str.join`) unwrapped; paired wrappers at the ends stripped, repeatedly (``code``,
`code`, **bold**, *em*, quotes of every kind, $...$; not around blank text: `' '` stays), with a final
full stop; whitespace collapsed and none kept after a comma (`(3, 2)` = `(3,2)`); a trailing `()` after a
dotted name dropped (`str.join()` = `str.join`); case folded (`true` = `True`).
Equal normal forms are right. Otherwise, when the gold's normal form is a plain number (`18`, `-0.5`,
`3/4`, `\frac{3}{4}`, `1,000`), math-verify decides in the grading pool (`3.0` = `3`, `0.75` = `3/4`,
`1000` = `1,000`: thousands commas dropped on both sides); a text gold
is never handed to math-verify, which reads numbers out of words (`2to3`). Nothing else is fuzzy: `join`
is not `str.join`.

`choice` (scoring "options"). Each row has its option texts (`optionsField`, lettered A, B, ...); the gold
field is a letter among them or the text of one of them (normal forms compared, case deciding between
options that differ only in case; an ambiguous or unknown text is refused when the file is loaded). The Solver is shown the options as the general presets show
them and asked for the letter; its final answer (read as for `text`) names an option when it is
  1. one letter of an option, bare or wrapped (`B`, `(B)`, `\text{B}`);
  2. else, the text of exactly one option (`str.join` for the option `str.join`);
  3. else, starts with a letter label (`B.`, `B)`, `(B)`, `B:`) followed by text that is not another
     option's (`A. str.join`, where str.join is option B, names none);
  4. else, holds exactly one standalone capital letter of an option (`Option B`); two or more different
     ones (`A or C`) name none.
With several boxes, the last one counts (as everywhere in rzero). An answer that names no option counts
as `evaluation.choiceFallback` says (guess: a seeded letter, reported as guessed; none: wrong).

Stdlib only, like answers.py.
"""

from __future__ import annotations

import re

from ..grading.extract import numeric_value
from .answers import LETTERS, GoldError, answer_text

_LATEX_WRAPPER = re.compile(r"\\(?:text|textbf|textit|texttt|mathrm|mathbf|mathtt|emph)\s*\{([^{}]*)\}")
_REST_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`<>]*?)(?:\s*<[^`]*>)?`")
_PAIRS = (("``", "``"), ("**", "**"), ("`", "`"), ("*", "*"), ("'", "'"), ('"', '"'), ("\u2018", "\u2019"),
          ("\u201c", "\u201d"), ("$", "$"))
_CALL = re.compile(r"^([A-Za-z_][\w.]*)\(\)$")
_LABEL = re.compile(r"^\(?([A-Z])[.):]\s+\S")
_STANDALONE = re.compile(r"(?<![A-Za-z\\])([A-Z])(?![A-Za-z])")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def normalize_text(answer: str | None, *, fold_case: bool = True) -> str:
    """The form free-form answers are compared in (see the module docstring)."""
    text = _REST_ROLE.sub(r"\1", _LATEX_WRAPPER.sub(r"\1", answer or ""))
    previous = None
    while text != previous:
        previous = text
        text = text.strip()
        if text.endswith(".") and not text.endswith(".."):
            text = text[:-1].rstrip()
        for left, right in _PAIRS:
            inner = text[len(left) : -len(right)] if len(text) > len(left) + len(right) else ""
            if inner.strip() and text.startswith(left) and text.endswith(right):  # "' '" stays: a space
                text = inner
                break
    text = " ".join(text.split()).replace(", ", ",")
    call = _CALL.match(text)
    text = call.group(1) if call else text
    return text.casefold() if fold_case else text


def is_number(answer: str | None) -> bool:
    """A plain number in normal form: the golds math-verify may decide."""
    return numeric_value(_THOUSANDS.sub("", normalize_text(answer))) is not None


def text_matches(predictions: list[str | None], golds: list[str], pool) -> list[bool | None]:
    """Is each free-form prediction right? Equal normal forms; for a number gold, math-verify (None: undecided)."""
    verdicts: list[bool | None] = []
    numeric: list[int] = []
    for index, (prediction, gold) in enumerate(zip(predictions, golds)):
        if prediction is not None and normalize_text(prediction) == normalize_text(gold):
            verdicts.append(True)
        elif prediction is not None and is_number(gold):
            verdicts.append(None)
            numeric.append(index)
        else:
            verdicts.append(False)
    if numeric:
        from ..grading import grade

        # math-verify would read "1,000" as a pair: thousands commas dropped on both sides
        decided = grade([_THOUSANDS.sub("", predictions[i]) for i in numeric],
                        [_THOUSANDS.sub("", golds[i]) for i in numeric], pool)
        for index, verdict in zip(numeric, decided):
            verdicts[index] = verdict
    return verdicts


def option_gold(value, options: tuple[str, ...]) -> str:
    """The gold letter of a multiple-choice row: a letter of its options, or the text of exactly one option."""
    if not isinstance(value, str) or not value.strip():
        raise GoldError(f"is {value!r}, not an option letter or text")
    text = value.strip()
    if len(text) == 1 and text.upper() in LETTERS[: len(options)]:
        return text.upper()
    letter = _option_by_text(text, options)
    if letter is None:
        raise GoldError(f"is {text[:60]!r}: neither a letter of the row's {len(options)} options nor the text of "
                        "exactly one of them")
    return letter


def read_option(output: str | None, options: tuple[str, ...]) -> str | None:
    """The option letter a reply's final answer names (see the module docstring), None when it names none."""
    answer = answer_text(output or "")
    if not answer:
        return None
    valid = LETTERS[: len(options)]
    unwrapped = _LATEX_WRAPPER.sub(r"\1", answer).strip()
    bare = unwrapped.strip(" ()[]{}.:*$`'\"")
    if len(bare) == 1 and bare.isalpha():
        return bare.upper() if bare.upper() in valid else None
    by_text = _option_by_text(unwrapped, options)
    if by_text is not None:
        return by_text
    label = _LABEL.match(unwrapped)
    if label:  # "B. text": the letter, unless the text is another option's ("A. str.join" for B: none)
        named_text = _option_by_text(unwrapped[label.end() - 1 :], options)
        agrees = named_text in (None, label.group(1))
        return label.group(1) if label.group(1) in valid and agrees else None
    named = {letter for letter in _STANDALONE.findall(unwrapped) if letter in valid}
    return named.pop() if len(named) == 1 else None


def _option_by_text(text: str, options: tuple[str, ...]) -> str | None:
    """The letter of the one option whose normal form is the text's; options that differ only in case
    (`abc`, `ABC`) are told apart by case."""
    wanted = normalize_text(text)
    matches = [i for i, option in enumerate(options) if normalize_text(option) == wanted]
    if len(matches) > 1:
        exact = normalize_text(text, fold_case=False)
        matches = [i for i in matches if normalize_text(options[i], fold_case=False) == exact]
    return LETTERS[matches[0]] if len(matches) == 1 else None
