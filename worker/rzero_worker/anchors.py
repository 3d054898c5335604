"""spec.anchors: a few human-written question/answer pairs of the run's domain (R-Few, arXiv 2512.02472).

    anchors = read_anchors(anchor_input, storage)     # AnchorError (exit 2) when no usable pair is left
    anchors.sample(seed, iteration, index, k)         # pure: k distinct anchors for prompt `index`
    anchors.mixed(count, seed)                        # `count` anchors for the Solver's training rows
    anchors.stats()                                   # rows, usable, skipped by reason

The file is JSONL, one object per line, read from a local path or `s3://bucket/key` with the run's storage
endpoint and region and the run's credentials (the standard AWS chain, as all storage). It is untrusted input,
as documents are: a row that cannot be used is skipped and counted by reason (`SKIP_REASONS`), never fatal:
bytes that are not UTF-8 (not_utf8), a NUL (binary), JSON that is not an object (malformed_json), text holding
a lone surrogate such as "\\ud800" (lone_surrogate), no string question or a blank one (no_question), no answer
(a string or a number; not blank) (no_answer), a question over 4,000 or an answer over 1,000 characters
(too_long), a question equal to an earlier one after whitespace and case normalisation (duplicate), rows after
the first `MAX_ROWS` (over_limit). A file over `MAX_FILE_BYTES`, or with no usable row, is an AnchorError
naming the location.

Never in the evaluation: every question of the run's evaluation benchmarks (the task's `benchmarks`, loaded as
the evaluate phase loads them) is normalised the same way, and an anchor whose question is one of them is
dropped (counted as in_evaluation): the Solver never trains on, and the Challenger is never shown, an item it is
scored on.

Sampling is a pure function of its arguments (sha256 of seed, iteration and prompt index seeds the draw), so a
phase resumed after a kill shows the same anchors in the same prompts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .phases.context import ConfigurationError
from .task import AnchorInput, StorageLocation
from .text import has_surrogate

log = logging.getLogger(__name__)

SKIP_REASONS = ("not_utf8", "binary", "malformed_json", "lone_surrogate", "no_question", "no_answer", "too_long",
                "duplicate", "in_evaluation", "over_limit")
MAX_FILE_BYTES = 1024 * 1024
MAX_ROWS = 1000
MAX_QUESTION_CHARS = 4000
MAX_ANSWER_CHARS = 1000


class AnchorError(ConfigurationError):
    """The anchors cannot be used as configured (no such file, too large, no usable pair): exit 2, not retried."""


@dataclass(frozen=True)
class Anchor:
    question: str
    answer: str
    line: int  # its line in the file (1-based)


@dataclass
class Anchors:
    location: str
    rows: list[Anchor] = field(default_factory=list)
    lines: int = 0  # non-blank lines read
    skipped: Counter = field(default_factory=Counter)

    def sample(self, seed: int, iteration: int, index: int, k: int) -> list[Anchor]:
        """k distinct anchors (all of them when there are fewer) for prompt `index` of `iteration`."""
        digest = hashlib.sha256(f"anchors/{seed}/{iteration}/{index}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        return [self.rows[i] for i in rng.sample(range(len(self.rows)), min(k, len(self.rows)))]

    def mixed(self, count: int, seed: int) -> list[Anchor]:
        """`count` anchors for the Solver's training: seeded permutations one after another, so every anchor
        appears once before any appears twice."""
        rng, order = random.Random(f"anchors-mix/{seed}"), []
        while len(order) < count:
            permutation = list(range(len(self.rows)))
            rng.shuffle(permutation)
            order += permutation
        return [self.rows[i] for i in order[:count]]

    def stats(self) -> dict:
        return {"lines": self.lines, "usable": len(self.rows), "skipped": {r: self.skipped[r] for r in SKIP_REASONS}}


def normalized(question: str) -> str:
    """The form two questions are compared in: whitespace collapsed, case folded."""
    return " ".join(question.split()).casefold()


def mix_count(kept: int, ratio: float) -> int:
    """Anchor rows the Solver trains on beside `kept` generated questions (anchors.mixRatio), halves rounded up."""
    return math.floor(ratio * kept + 0.5)


def read_anchors(anchors: AnchorInput, storage: StorageLocation | None = None) -> Anchors:
    """The usable anchors of `anchors.settings.uri`, none of them an evaluation question; raises AnchorError
    when none is left."""
    settings = anchors.settings
    data = _file_bytes(settings.uri, storage)
    result = Anchors(location=settings.uri)
    evaluation = evaluation_questions(anchors, storage)
    seen: set[str] = set()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        result.lines += 1
        if result.lines > MAX_ROWS:
            result.skipped["over_limit"] += 1
            continue
        reason, anchor = _row(raw, number, settings.question_field, settings.answer_field)
        if anchor is not None:
            key = normalized(anchor.question)
            reason = "duplicate" if key in seen else "in_evaluation" if key in evaluation else None
            seen.add(key)
        if reason:
            result.skipped[reason] += 1
            log.debug("anchors: skipped %s:%d (%s)", settings.uri, number, reason)
        else:
            result.rows.append(anchor)
    if not result.rows:
        skipped = ", ".join(f"{r} {n}" for r, n in sorted(result.skipped.items()) if n) or "none"
        raise AnchorError(f"anchors.uri {settings.uri!r}: no usable question/answer pair ({result.lines} rows; "
                          f"skipped: {skipped})")
    log.info("anchors %s: %s", settings.uri, result.stats())
    return result


def evaluation_questions(anchors: AnchorInput, storage: StorageLocation | None) -> set[str]:
    """The normalised questions of every evaluation benchmark of the run."""
    from .benchmarks import load_benchmark

    return {normalized(item.question) for spec in anchors.benchmarks for item in load_benchmark(spec, storage).items}


def _row(raw: bytes, number: int, question_field: str, answer_field: str) -> tuple[str | None, Anchor | None]:
    """(why the line is skipped, or None; the anchor it holds, or None)."""
    if b"\x00" in raw:
        return "binary", None
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8", None
    try:
        row = json.loads(line[1:] if number == 1 and line.startswith("\ufeff") else line)
    except (ValueError, RecursionError):
        row = None
    if not isinstance(row, dict):
        return "malformed_json", None
    question, answer = row.get(question_field), row.get(answer_field)
    if not isinstance(question, str) or not question.strip():
        return "no_question", None
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)
    if not isinstance(answer, str) or not answer.strip():
        return "no_answer", None
    if has_surrogate(question) or has_surrogate(answer):
        return "lone_surrogate", None
    question, answer = question.strip(), answer.strip()
    if len(question) > MAX_QUESTION_CHARS or len(answer) > MAX_ANSWER_CHARS:
        return "too_long", None
    return None, Anchor(question=question, answer=answer, line=number)


def _file_bytes(uri: str, storage: StorageLocation | None) -> bytes:
    """The anchors file: a local path or s3://bucket/key (endpoint and region from the run's storage)."""
    if uri.startswith("s3://"):
        from .storage import open_storage

        bucket, _, key = uri[len("s3://") :].partition("/")
        location = StorageLocation(uri=f"s3://{bucket}", endpoint_url=storage.endpoint_url if storage else None,
                                   region=storage.region if storage else None)
        try:
            data = open_storage(location, setting=f"anchors.uri {uri!r}").get_bytes(key)
        except FileNotFoundError:
            raise AnchorError(f"anchors.uri {uri!r}: no such object") from None
    else:
        path = Path(uri).expanduser()
        if not path.is_file():
            raise AnchorError(f"anchors.uri {uri!r}: no such file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise AnchorError(f"anchors.uri {uri!r}: over {MAX_FILE_BYTES} bytes; anchors are tens of rows")
        data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise AnchorError(f"anchors.uri {uri!r}: over {MAX_FILE_BYTES} bytes; anchors are tens of rows")
    return data
