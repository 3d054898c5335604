"""Settings of what the loop reads and writes as data: question generation, the user's corpus, grading and
labelling, and the evaluation benchmarks. Also the RZeroRun spec blocks. Re-exported by `rzero_worker.task`:
import from there."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic.alias_generators import to_camel

from .benchmark_presets import PRESET_NAMES
from .settings_common import Sampling, Schema

class GenerationSettings(Schema):
    num_questions: int = Field(default=8000, ge=1, le=10_000_000, description="N candidates (paper 8,000).")
    sampling: Sampling = Field(
        default_factory=lambda: Sampling(temperature=1.0, top_p=0.95, max_tokens=4096),
        description="Challenger sampling for candidates (reference: temperature 1, top_p 0.95, 4,096 tokens).",
    )
    batch_size: int = Field(default=64, ge=1, le=100000, description="Prompts per generation call.")


# A file or directory: s3://bucket/key or a local path (no other scheme, no control characters); the form of
# spec.storage.uri and spec.corpus.uri.
LOCATION_URI = r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\x00-\x1f\x7f]*)?|[^:\x00-\x1f\x7f]*)$"
CorpusFormat = Literal["auto", "jsonl", "parquet", "text-dir"]


class CorpusSettings(Schema):
    """Documents of the run's own domain, split into passages for a grounded Challenger (rzero_worker/corpus.py).
    A document that cannot be read as text is skipped and counted by reason; a corpus with no passage fails
    the phase (exit 2)."""

    uri: str = Field(
        min_length=1, max_length=1024, pattern=LOCATION_URI,
        description="A file or a directory of files: s3://bucket/key (read with the run's storage endpoint, region "
        "and credentials) or a local path (`rzero run`; the operator refuses a local path: no volume holds it).",
    )
    format: CorpusFormat = Field(
        default="auto",
        description="auto: each file by its extension (.jsonl/.ndjson JSON lines, .parquet, .txt/.md one document "
        "per file); jsonl, parquet: every file in that format; text-dir: every file one text document.",
    )
    text_field: str = Field(
        default="text", min_length=1, max_length=256, description="JSONL/Parquet field with a document's text."
    )
    id_field: str = Field(
        default="id", min_length=1, max_length=256,
        description="JSONL/Parquet field with a document's id, where a row has one (else: file and line or row).",
    )
    passage_chars: int = Field(default=1500, ge=100, le=100_000, description="Characters per passage (at most).")
    overlap_chars: int = Field(
        default=200, ge=0, le=50_000, description="Characters a passage shares with the next one of its document."
    )
    max_document_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1, le=1024**3,
        description="Larger documents (a JSONL line, a Parquet text, a text file) are skipped as too_large.",
    )

    @model_validator(mode="after")
    def _overlap_below_passage(self) -> "CorpusSettings":
        if 2 * self.overlap_chars > self.passage_chars:
            raise ValueError("overlapChars: must be at most half of passageChars (each passage moves on by at least "
                             "half its size)")
        return self


class AnchorSettings(Schema):
    """A few human-written question/answer pairs of the run's domain (R-Few, arXiv 2512.02472; rzero_worker/
    anchors.py): shown to the Challenger as examples and mixed into the Solver's training. A row that cannot be
    used is skipped and counted by reason; a file with no usable row fails the phase (exit 2). An anchor whose
    question is also an evaluation benchmark's is dropped (counted as in_evaluation): anchors never reach the
    evaluation set."""

    uri: str = Field(
        min_length=1, max_length=1024, pattern=LOCATION_URI,
        description="A JSONL file, one {question, answer} object per line (tens of rows, at most 1,000): s3://bucket/"
        "key (read with the run's storage endpoint, region and credentials) or a local path (`rzero run`; the "
        "operator refuses a local path: no volume holds it).",
    )
    question_field: str = Field(default="question", min_length=1, max_length=256, description="Field of the question.")
    answer_field: str = Field(
        default="answer", min_length=1, max_length=256, description="Field of the answer (a string or a number)."
    )
    examples: int = Field(
        default=3, ge=0, le=16,
        description="k: anchors shown as examples in each Challenger prompt (question generation and Challenger "
        "training), drawn per prompt with the run's seed; 0 = none.",
    )
    mix_ratio: float = Field(
        default=0.1, ge=0, le=10,
        description="Anchor rows added to the Solver's training per kept generated question: round(mixRatio x kept) "
        "rows (halves up), drawn with the run's seed (each anchor once before any repeats); 0 = none.",
    )


# How model outputs are read and m sampled answers become a vote (grading/reading.py, grading/vote.py): the
# reference code's rules or rzero's boxed-only reading. One mode per run, for every phase.
VoteMode = Literal["reference", "boxed-only"]
# Which equivalence checker decides votes, p-hat and the Solver's reward (grading/verify.py).
Checker = Literal["mathruler", "math-verify"]


class Grading(Schema):
    """How one run reads and compares answers: `spec.labeling`'s vote, checker and timeout, copied into every
    task that grades (challenger, generate, label, solver) so that no two phases can differ."""

    vote: VoteMode = Field(default="reference", description="The run's labeling.vote.")
    checker: Checker = Field(default="mathruler", description="The run's labeling.checker.")
    timeout_s: float = Field(default=10.0, gt=0, le=600, description="The run's labeling.gradingTimeoutS.")

    def pool_limits(self) -> dict:
        """GradingPool keyword arguments: the checker, its soft limit per comparison (per item for math-verify)
        and the hard limit that kills a stuck worker (both directions, plus a second)."""
        return {"checker": self.checker, "soft_timeout_s": self.timeout_s, "timeout_s": 2 * self.timeout_s + 1.0}


class LabelingSettings(Schema):
    samples: int = Field(default=10, ge=1, le=64, description="m answers per question (paper 10, code 9).")
    sampling: Sampling = Field(
        default_factory=lambda: Sampling(temperature=1.0, top_p=1.0, top_k=40),
        description="How the Solver samples its m answers per question.",
    )
    vote: VoteMode = Field(
        default="reference",
        description="How every phase reads model outputs (the Challenger's reward, generation, labels, the Solver's "
        "reward). reference: as the reference code: the answer is the last \\boxed{...} (no \\fbox, no "
        "'\\boxed 5'), 'None' without one, which counts and can win (such a question is dropped); a Challenger "
        "output without a box is scored in training; generation keeps outputs with a <question> block and a "
        "\\boxed{ and keeps duplicates; questions containing '证明' or 'box' and labels containing 'text' are "
        "dropped; a timed-out comparison skips that pair; the format reward ignores whitespace around <, > and /. "
        "boxed-only: rzero's reading: \\boxed{}, \\fbox{} and '\\boxed 5'; only boxed answers vote; a Challenger "
        "output needs a question and a boxed answer; duplicate questions are dropped; a question with an "
        "undecided comparison is dropped.",
    )
    checker: Checker = Field(
        default="mathruler",
        description="Equivalence checker of the votes, the Challenger's p-hat and the Solver's reward. mathruler: "
        "the reference's (mathruler 0.1.0 grade_answer: string normalisation, then sympy; strict on integers and "
        "unreduced fractions, case-blind on words). math-verify: math-verify 0.9.0 (value-based: 2/4 = 1/2, "
        "sqrt(25) = 5; case-sensitive on words).",
    )
    band: Literal["paper", "code"] = Field(
        default="paper", description="paper: |score-1/2| <= 0.25; code: 0.3 <= score <= 0.8."
    )
    min_score: float | None = Field(default=None, ge=0, le=1, description="Override the band's lower edge.")
    max_score: float | None = Field(default=None, ge=0, le=1, description="Override the band's upper edge.")
    grading_timeout_s: float = Field(
        default=10.0, gt=0, le=600,
        description="Seconds per comparison (mathruler: each direction; math-verify: both), the reference's 10 s; a "
        "grader process still busy after twice this plus a second is killed and the pair is undecided.",
    )
    grading_workers: int = Field(default=0, ge=0, le=256, description="Grader processes; 0 = CPU count.")
    audit_size: int = Field(default=50, ge=0, le=10000, description="Kept questions saved with all answers.")
    label: Literal["vote", "document"] = Field(
        default="vote",
        description="Where the label comes from. vote: R-Zero's majority vote of the Solver's answers. document "
        "(needs spec.corpus): the grounded Challenger's answer from its passage; the vote is still computed, its "
        "score still decides the band (the band keeps the questions the Solver is unsure of; the label is the "
        "document's), and whether vote and document agree is recorded per question; a question without a "
        "usable document answer (blank, or not comparable with the vote in time) is dropped (no_document_answer).",
    )
    verifier: Literal["off", "veto"] = Field(
        default="off",
        description="veto: after the vote and the band, spec.verifier judges each kept (question, majority "
        "answer) and the pairs it rejects, or whose verdict it gives no readable form, are dropped before the "
        "Solver trains (drop reasons verifier_rejected, verifier_unparsable, verifier_unavailable). off: R-Zero's "
        "labels as they are.",
    )

    @model_validator(mode="after")
    def _band_order(self) -> "LabelingSettings":
        lo, hi = self.band_edges()
        if lo >= hi:
            raise ValueError(f"band minScore {lo} must be below maxScore {hi}")
        return self

    def grading(self) -> Grading:
        """The run's reading and checker, as every grading task carries them."""
        return Grading(vote=self.vote, checker=self.checker, timeout_s=self.grading_timeout_s)

    def band_edges(self) -> tuple[float, float]:
        lo, hi = (0.25, 0.75) if self.band == "paper" else (0.3, 0.8)
        return (self.min_score if self.min_score is not None else lo, self.max_score if self.max_score is not None else hi)


_PRESET_FIXED = ("kind", "question_field", "answer_field", "answer_format")


class BenchmarkSpec(Schema):
    """One benchmark: a paper preset (its file from `rzero benchmarks prepare`), a JSONL file with
    configurable fields, or the built-in arithmetic set."""

    name: str | None = Field(
        default=None, max_length=63, pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$",
        description="Name used in scores; default: the preset's."
    )
    preset: Literal[PRESET_NAMES] | None = Field(
        default=None,
        description="One of the paper's benchmarks: its file layout, gold reading, answer extraction, grader "
        "and prompt (see `rzero benchmarks list`). path: its JSONL (or published Parquet) file.",
    )
    kind: Literal["jsonl", "arithmetic"] = Field(
        default="jsonl", description="jsonl: a JSONL (or Parquet) file; arithmetic: generated arithmetic problems."
    )
    # Every string and list under a CEL rule has a bound: the API server estimates a rule's cost from the sizes
    # the schema allows and refuses the whole CRD when one could exceed its budget.
    path: str | None = Field(
        default=None, min_length=1, max_length=1024, description="Benchmark file (local or s3://) for kind jsonl."
    )
    question_field: str = Field(
        default="question", max_length=256, description="JSONL field holding the question (not with preset)."
    )
    answer_field: str = Field(
        default="answer", max_length=256, description="JSONL field holding the gold answer (not with preset)."
    )
    answer_format: Literal["plain", "gsm8k", "boxed"] = Field(
        default="plain", description="gsm8k: answer after '####'; boxed: last \\boxed{} (not with preset)."
    )
    limit: int | None = Field(default=None, ge=1, description="Use the first N items.")
    size: int = Field(default=200, ge=1, le=100000, description="Items for kind arithmetic.")
    seed: int = Field(default=0, description="Seed for kind arithmetic.")
    difficulty: Literal["standard", "easy"] = Field(
        default="standard",
        description="Kind arithmetic: standard = multi-step integers, fraction sums and two-step word problems; "
        "easy = one- to three-step integer expressions and one-step word problems (the format warm-up's kind).",
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=65536, description="New tokens per answer for this benchmark; overrides evaluation.maxTokens."
    )
    samples: int = Field(
        default=0, ge=0, le=256,
        description="k > 0: also report avg@k, the mean accuracy of k sampled answers per item (evaluation.sampling).",
    )

    def answer_tokens(self, evaluation_max_tokens: int | None) -> int:
        """New tokens per answer: this benchmark's maxTokens, else evaluation.maxTokens, else its preset's
        reference length (4,096 maths, 8,192 general reasoning; 4,096 for other benchmarks)."""
        from .benchmark_presets import DEFAULT_MAX_TOKENS, PRESETS

        preset = PRESETS[self.preset].max_tokens if self.preset else DEFAULT_MAX_TOKENS
        return self.max_tokens or evaluation_max_tokens or preset

    @model_validator(mode="after")
    def _consistent(self) -> "BenchmarkSpec":
        if self.name is None:
            if self.preset is None:
                raise ValueError("name: required unless preset is set")
            self.name = self.preset
        if self.preset is not None:
            # Compared with the defaults, not model_fields_set: a task file spells every field out.
            fixed = [name for name in _PRESET_FIXED if getattr(self, name) != type(self).model_fields[name].default]
            if fixed:
                names = ", ".join(to_camel(field) for field in fixed)
                raise ValueError(f"benchmark {self.name!r}: preset {self.preset!r} fixes the layout; remove {names}")
        if self.kind == "jsonl" and not self.path:
            raise ValueError(f"benchmark {self.name!r}: kind jsonl needs a path")
        return self


# The paper reports ten; the bound keeps the CRD's per-benchmark CEL rules within the API server's cost budget.
MAX_BENCHMARKS = 64


class EvaluationSettings(Schema):
    benchmarks: list[BenchmarkSpec] = Field(
        default_factory=lambda: [BenchmarkSpec(name="arithmetic", kind="arithmetic")], max_length=MAX_BENCHMARKS,
        description="Benchmarks scored with greedy decoding.",
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=65536,
        description="New tokens per answer; unset: the reference's 4,096 for maths presets, 8,192 for the "
        "general-reasoning presets, 4,096 for other benchmarks.",
    )
    batch_size: int = Field(default=32, ge=1, le=100000, description="Prompts per generation call.")
    sampling: Sampling = Field(
        default_factory=lambda: Sampling(temperature=0.6, top_p=0.95, max_tokens=4096),
        description="How the k answers of avg@k are sampled (benchmarks with samples > 0); maxTokens is "
        "replaced by the benchmark's answer length.",
    )
    choice_fallback: Literal["guess", "none"] = Field(
        default="guess",
        description="A multiple-choice answer with no readable letter: guess = a letter drawn at random "
        "(seeded by the item) as the reference code does, so scores compare with the paper's; none = wrong.",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> "EvaluationSettings":
        names = [spec.name for spec in self.benchmarks]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"benchmarks: names must be unique, repeated: {', '.join(duplicates)}")
        return self


class AnchorInput(Schema):
    """What a phase that uses anchors is given: spec.anchors and the run's evaluation benchmarks, whose questions
    no anchor may share."""

    settings: AnchorSettings
    benchmarks: list[BenchmarkSpec] = Field(
        default_factory=list, max_length=MAX_BENCHMARKS,
        description="The run's evaluation.benchmarks: an anchor whose question one of them holds is dropped.",
    )

