"""Phase `label`: m Solver answers per question, majority pseudo-label, keep the agreement band.

Reads every committed shard of the generate output (`task.questions`), takes this shard's slice
(questions[i::count], so shards stay balanced), samples `settings.samples` answers per question, votes
over math-equivalence classes and keeps the questions whose score (majority share) lies in the band.

Dropped questions are counted by reason:
- `no_answer`: every answer is empty or "None" (no `\\boxed{}` at all, typically);
- `ungradable`: answers exist but the vote is unsure: no label came out, or some samples could not be
  placed in a class in time (math-verify hung on them) — such a label is not trustworthy, and the
  Solver's reward would have to grade the same hang inputs again;
- `out_of_band`: a label exists but its score is outside `settings.band_edges()`.

Writes `train.jsonl` (kept), `stats.json`, `audit.jsonl` (the first `audit_size` kept questions with all
their answers, for people to read).
"""

from __future__ import annotations

import json
import logging

from ..task import LabelTask
from .context import PhaseContext

log = logging.getLogger(__name__)

HISTOGRAM_BINS = 10
# Questions sent to the generator per call: bounds memory and gives progress lines in the log.
QUESTIONS_PER_CALL = 64


def run(ctx: PhaseContext) -> dict:
    task: LabelTask = ctx.task
    questions = read_questions(ctx)[task.shard.index :: task.shard.count]
    log.info("labelling %d questions (shard %s)", len(questions), task.shard.key)
    answers = solver_answers(ctx, questions) if questions else []

    from ..grading import GradingPool, vote_many

    settings = task.settings
    with GradingPool(workers=settings.grading_workers or None, timeout_s=settings.grading_timeout_s) as pool:
        votes = vote_many(answers, pool) if questions else []
        rows = [labelled_row(q, a, v) for q, a, v in zip(questions, answers, votes)]
        kept, dropped = apply_band(rows, answers, settings.band_edges())
        matches = challenger_agreement(kept, pool)

    stats = label_stats(rows, kept, dropped, matches)
    write_outputs(ctx, kept, stats, settings.audit_size)
    return {"questions": len(questions), **stats}


def read_questions(ctx: PhaseContext) -> list[dict]:
    """All questions of every committed generate shard, in shard order (fails when none is committed)."""
    return ctx.read_input_jsonl(ctx.task.questions, "questions.jsonl")


def solver_answers(ctx: PhaseContext, questions: list[dict]) -> list[list[str | None]]:
    """The boxed answer of each of the m Solver samples per question (None where there is no box)."""
    from ..generation import make_generator
    from ..grading import extract_boxed
    from ..models import resolve_model
    from ..prompts import solver_messages

    task: LabelTask = ctx.task
    local = resolve_model(task.solver, ctx.storage, ctx.cache_dir, field="solver", s3_location=task.storage)
    generator = make_generator(local, task.device, cache_dir=ctx.cache_dir)
    answers: list[list[str | None]] = []
    for start in range(0, len(questions), QUESTIONS_PER_CALL):
        chunk = questions[start : start + QUESTIONS_PER_CALL]
        outputs = generator.generate(
            [solver_messages(q["question"]) for q in chunk],
            n=task.settings.samples,
            sampling=task.settings.sampling,
            seed=task.seed + start,
        )
        answers.extend([extract_boxed(text) for text in samples] for samples in outputs)
        log.info("answered %d/%d questions", len(answers), len(questions))
    return answers


def labelled_row(question: dict, answers: list[str | None], vote) -> dict:
    return {
        "ungradable": vote.label is None or vote.ungradable > 0,
        "id": question["id"],
        "question": question["question"],
        "label": vote.label,
        "score": vote.score,
        "answers": answers,
        "challenger_answer": question.get("answer"),
    }


def apply_band(rows: list[dict], answers: list[list[str | None]], band: tuple[float, float]):
    """(kept rows, {reason: count}) for the band [lo, hi] (both edges included)."""
    from ..grading import is_empty_answer

    low, high = band
    kept, dropped = [], {"no_answer": 0, "ungradable": 0, "out_of_band": 0}
    for row, samples in zip(rows, answers):
        if all(is_empty_answer(answer) for answer in samples):
            dropped["no_answer"] += 1
        elif row["ungradable"]:
            dropped["ungradable"] += 1
        elif not low <= row["score"] <= high:
            dropped["out_of_band"] += 1
        else:
            kept.append(row)
    return kept, dropped


def challenger_agreement(kept: list[dict], pool) -> list[bool]:
    """For each kept question: is its pseudo-label equivalent to the Challenger's own answer?"""
    pairs = [(row["label"], row["challenger_answer"]) for row in kept if row["challenger_answer"]]
    verdicts = iter(pool.equivalent(pairs) if pairs else [])
    return [bool(next(verdicts)) if row["challenger_answer"] else False for row in kept]


def label_stats(rows: list[dict], kept: list[dict], dropped: dict, matches: list[bool]) -> dict:
    """Metrics of ARCHITECTURE.md; scores of questions that got a label feed the histogram and mean."""
    scores = [row["score"] for row in rows if row["label"] is not None]
    histogram = [0] * HISTOGRAM_BINS
    for score in scores:
        histogram[min(int(score * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)] += 1
    return {
        "kept": len(kept),
        "dropped": dropped,
        "mean_agreement": sum(scores) / len(scores) if scores else None,
        "score_histogram": histogram,
        "label_matches_challenger": sum(matches) / len(matches) if matches else None,
    }


def write_outputs(ctx: PhaseContext, kept: list[dict], stats: dict, audit_size: int) -> None:
    train = [{key: row[key] for key in ("id", "question", "label", "score")} for row in kept]
    audit = [
        {key: row[key] for key in ("id", "question", "label", "score", "answers", "challenger_answer")}
        for row in kept[:audit_size]
    ]
    _write_jsonl(ctx.staging / "train.jsonl", train)
    _write_jsonl(ctx.staging / "audit.jsonl", audit)
    (ctx.staging / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")


def _write_jsonl(path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
