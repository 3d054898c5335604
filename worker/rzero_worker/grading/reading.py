r"""What answer did a model output give: ONE reading per run, used by every phase (`labeling.vote`).

Every phase that reads a model output asks the run's `Reading`, so the Challenger's p-hat, the pseudo-labels
and the Solver's reward can never apply different rules in one run.

`reference` (the default) reads as the R-Zero reference code (commit 5699329) does:
- a Solver answer is what mathruler 0.1.0's `extract_boxed_content` returns (`question_evaluate/evaluate.py:118`,
  `vllm_service_init/start_vllm_server.py:164`, `examples/reward_function/math.py:28`): the content of the
  last `\boxed{` whose braces close, every brace counted (escaped ones too), stripped; the string "None"
  when there is none (no box, or the last one never closes). `\fbox{}`, `\boxed {x}` and `\boxed 5` are
  not boxes. "None" is an answer like any other: it votes, and can win (the label phase then drops the
  question, as `question_evaluate/upload.py:47` does);
- a Challenger output, in training (`examples/reward_function/caller_penalty.py:123-133` and the server's
  `if q and a`, `start_vllm_server.py:131-133`): it is scored when its last `<question>` block is not blank
  and the extractor above gives a non-empty string — so an output WITHOUT any box is scored (its answer
  reads "None"); an empty box `\boxed{}` is not;
- a Challenger output, in question generation (`question_generate/question_generate.py:13-35,112-122`): it
  is kept when it has a `<question>` block (blank or not) and at least one `\boxed{` (closed or not); the
  answer is the last of them, scanning forward, and an unclosed one runs to the end of the text minus its
  last character. Duplicate questions are kept;
- the format reward (`math.py:38`) first removes whitespace around `<`, `>` and `/`.

`boxed-only` is rzero's own reading: the last `\boxed{}` / `\fbox{}` / `\boxed 5` (`extract.extract_boxed`:
nested and escaped braces handled, None without a complete last box); a Challenger output needs a
non-blank question and a non-empty boxed answer in training and in generation; duplicate questions
(after whitespace normalisation) are dropped; the format reward reads the text as written.

Known residual difference: the reference's Solver reward extracts the answer AFTER its whitespace rewrite
(`math.py:38-40`) while its votes do not; here the reward reads the answer as the votes do (one reading), so
an answer with whitespace next to `<`, `>` or `/` is graded as written (mathruler drops such spaces itself
before comparing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .extract import _last_question_block, extract_boxed, has_reasoning_then_box, is_empty_answer

READING_MODES = ("reference", "boxed-only")
NO_BOX = "None"  # what the reference's extractor gives without a closed last box
_BOX = "\\boxed{"
_QUESTION_OPEN = "<question>"
# The reference's `re.sub(r"\s*(<|>|/)\s*", r"\1", text)`, written so that it runs in linear time (the
# original backtracks quadratically over a long run of whitespace): every whitespace run touching `<`, `>`
# or `/` goes.
_AROUND_TAGS = re.compile(r"(?<!\s)\s+(?=[<>/])|(?<=[<>/])\s+")


def reference_boxed(text: str | None) -> str:
    r"""The reference extractor's answer: the last `\boxed{`'s content, stripped, or "None" (module notes)."""
    if not text:
        return NO_BOX
    start = text.rfind(_BOX)
    if start < 0:
        return NO_BOX
    depth = 0
    for index in range(start + len(_BOX), len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return text[start + len(_BOX) : index].strip()
            depth -= 1
    return NO_BOX


def reference_boxes(text: str) -> list[str]:
    r"""Every `\boxed{...}` scanning forward, as the reference's question generation reads them: nested
    boxes belong to the outer one; an unclosed box runs to the end of the text, less its last character."""
    found, position = [], 0
    while (start := text.find(_BOX, position)) >= 0:
        index, depth = start + len(_BOX), 1
        while index < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
        found.append(text[start + len(_BOX) : index - 1])
        position = index
    return found


def without_space_around_tags(text: str) -> str:
    """The reference reward's rewrite (`math.py:38`): no whitespace around `<`, `>` or `/`."""
    return _AROUND_TAGS.sub("", text)


@dataclass(frozen=True)
class Reading:
    """The run's reading of model outputs (module notes); `Reading("reference")` or `Reading("boxed-only")`."""

    mode: str = "reference"

    def __post_init__(self):
        if self.mode not in READING_MODES:
            raise ValueError(f"reading mode must be one of {READING_MODES}, got {self.mode!r}")

    @property
    def reference(self) -> bool:
        return self.mode == "reference"

    def answer(self, text: str | None) -> str | None:
        """The answer a Solver output gives (votes, p-hat, the Solver's reward, oracles' answers alike)."""
        return reference_boxed(text) if self.reference else extract_boxed(text)

    def has_answer(self, text: str | None) -> bool:
        """Did the output box an answer at all (the Solver's `boxed` metric)?"""
        answer = self.answer(text)
        if self.reference:
            return bool(answer) and answer != NO_BOX
        return not is_empty_answer(answer)

    def challenger_question(self, text: str | None) -> str | None:
        """The question of a Challenger output in training, or None when the output is not scored."""
        if not text:
            return None
        question = _last_question_block(text).strip() or None
        if question is None:
            return None
        if self.reference:
            return question if reference_boxed(text) else None
        return None if is_empty_answer(extract_boxed(text)) else question

    def generated(self, text: str | None) -> tuple[str, str | None] | None:
        """(question, the Challenger's answer) of a generated candidate, or None when it is not kept."""
        if not text:
            return None
        if self.reference:
            boxes = reference_boxes(text)
            if not boxes or not _has_question_block(text):
                return None
            return _last_question_block(text).strip(), boxes[-1].strip()
        question = _last_question_block(text).strip()
        if not question:
            return None
        answer = extract_boxed(text)
        return question, None if is_empty_answer(answer) else answer

    @property
    def drops_duplicates(self) -> bool:
        """boxed-only drops a question equal to an earlier one after whitespace normalisation; the reference
        keeps both."""
        return not self.reference

    def format_ok(self, text: str) -> bool:
        r"""`<think>...</think>` reasoning, then a `\boxed{}` (after the reference's whitespace rewrite there)."""
        return has_reasoning_then_box(without_space_around_tags(text) if self.reference else text)


def _has_question_block(text: str) -> bool:
    """Does `re.findall(r"<question>(.*?)</question>", text, re.DOTALL)` find anything?"""
    start = text.find(_QUESTION_OPEN)
    return start >= 0 and text.find("</question>", start + len(_QUESTION_OPEN)) >= 0
