"""The open-ended generate and label phases (spec.task kind open-ended).

generate: this shard's share of N candidate tasks from the Challenger (prompts_openended.open_challenger_messages:
one prompt, sampled as the verifiable generate phase samples). A completion without a readable `<task>` block
(prompts_openended.read_task) is invalid (`invalid.jsonl`, with the raw output); a task equal to an earlier one
after whitespace normalisation is a duplicate (dropped, counted). `questions.jsonl` holds `{id, question, answer:
null}` rows: the task is the row's `question`, so the label phase and the reports read it as they read questions.

label: m = labeling.samples Solver responses per task (labeling.sampling), each scored per criterion by the frozen
Verifier (judge.py); the task's spread (rewards_openended.score_spread) must lie in [task.minSpread,
task.maxSpread]. Dropped tasks are counted by reason: `no_spread` (fewer than two responses scored: the judge's
outputs were unparsable or unavailable), `score_collapse` (spread below minSpread), `saturated` (above maxSpread).
There is no vote and no label: `train.jsonl` rows are `{id, question, score}` with the spread as `score`.
`audit.jsonl` shows the first auditSize tasks with every response, its scores and the judge's output. The summary's
`judge` block is the judge-failure report (failures.py).
"""

from __future__ import annotations

import json
import logging

from ..phases.context import PhaseContext, write_jsonl
from ..phases.generate import RANK_SEED_STRIDE, SHARD_SEED_STRIDE, id_prefix, shard_share

log = logging.getLogger(__name__)

HISTOGRAM_BINS = 10
OPEN_DROP_REASONS = ("no_spread", "score_collapse", "saturated")
MAX_RECORDED_OUTPUT = 2000  # characters of a judge output kept in the audit


def generate(ctx: PhaseContext) -> dict:
    from .. import distributed

    task = ctx.task
    ranks = distributed.current()
    requested = shard_share(task.settings.num_questions, task.shard.index, task.shard.count)
    part = distributed.split_evenly(requested, ranks.world_size, ranks.rank)
    mine = challenger_tasks(ctx, part.stop - part.start, seed_offset=ranks.rank * RANK_SEED_STRIDE)
    outputs = [text for texts in distributed.all_gather(mine) for text in texts]
    if not ctx.main_process:
        return {}
    rows, invalid, duplicates = parse_tasks(outputs, id_prefix(task))
    write_jsonl(ctx.staging / "questions.jsonl", rows)
    write_jsonl(ctx.staging / "invalid.jsonl", invalid)
    log.info("%d tasks: %d valid, %d invalid, %d duplicates", requested, len(rows), len(invalid), duplicates)
    return {"requested": requested, "valid": len(rows), "invalid": len(invalid), "duplicates": duplicates}


def challenger_tasks(ctx: PhaseContext, requested: int, *, seed_offset: int = 0) -> list[str]:
    if requested <= 0:
        return []
    from ..generation import make_generator
    from ..models import resolve_model
    from ..prompts_openended import open_challenger_messages

    task = ctx.task
    local = resolve_model(task.challenger, ctx.storage, ctx.cache_dir, field="challenger", s3_location=task.storage)
    generator = make_generator(local, task.device, cache_dir=ctx.cache_dir)
    chat = open_challenger_messages(task.open_ended.task.description)
    outputs: list[str] = []
    batch_number = 0
    while len(outputs) < requested:
        size = min(task.settings.batch_size, requested - len(outputs))
        seed = task.seed + task.shard.index * SHARD_SEED_STRIDE + seed_offset + batch_number
        [samples] = generator.generate([chat], n=size, sampling=task.settings.sampling, seed=seed)
        outputs.extend(samples)
        batch_number += 1
    return outputs


def parse_tasks(outputs: list[str], prefix: str) -> tuple[list[dict], list[dict], int]:
    """(valid task rows, invalid outputs, duplicate count); ids number the candidates in order."""
    from ..prompts_openended import read_task

    rows, invalid, seen, duplicates = [], [], set(), 0
    for index, text in enumerate(outputs):
        item_id = f"{prefix}-{index:06d}"
        found = read_task(text)
        if found is None:
            invalid.append({"id": item_id, "output": text, "reason": "no_task"})
            continue
        key = " ".join(found.split())
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        rows.append({"id": item_id, "question": found, "answer": None})
    return rows, invalid, duplicates


def label(ctx: PhaseContext) -> dict:
    from ..phases.label import SolverEngine, read_questions

    task = ctx.task
    settings, domain = task.settings, task.open_ended.task
    tasks = read_questions(ctx)[task.shard.index :: task.shard.count]
    log.info("scoring %d open-ended tasks (shard %s)", len(tasks), task.shard.key)
    engine = SolverEngine(ctx)
    responses = ranked_responses(ctx, tasks, engine)
    if not ctx.main_process:
        return {}
    judge = score_judge(ctx, engine)
    groups = judge_groups(judge, tasks, responses)
    rows = [scored_row(item, group, judgements) for item, (group, judgements) in zip(tasks, groups)]
    dropped = dict.fromkeys(OPEN_DROP_REASONS, 0)
    kept = [row for row in rows if _keep(row, domain, dropped)]
    from .failures import judge_report

    report = {**judge_report(groups), **{k: v for k, v in judge.metrics().items() if k not in ("judged",)}}
    stats = open_label_stats(rows, kept, dropped, report)
    write_label_outputs(ctx, kept, rows, stats, settings.audit_size)
    return {"questions": len(tasks), **stats}


def ranked_responses(ctx: PhaseContext, tasks: list[dict], engine) -> list[list[str]]:
    """m Solver responses per task: this rank answers its part, the parts are gathered in rank order."""
    from .. import distributed
    from ..prompts_openended import open_solver_messages

    ranks = distributed.current()
    part = distributed.split_evenly(len(tasks), ranks.world_size, ranks.rank)
    mine: list[list[str]] = []
    if part.stop > part.start:
        task = ctx.task
        generator = engine()
        chunk_size = 64
        for start in range(part.start, part.stop, chunk_size):
            chunk = tasks[start : min(part.stop, start + chunk_size)]
            mine.extend(generator.generate([open_solver_messages(t["question"]) for t in chunk],
                                           n=task.settings.samples, sampling=task.settings.sampling,
                                           seed=task.seed + start))
    return [responses for part_ in distributed.all_gather(mine) for responses in part_]


def score_judge(ctx: PhaseContext, engine):
    """The frozen Verifier as a ScoreJudge; a model Verifier that is the label Solver shares its generator."""
    from .judge import ScoreJudge, make_replies, model_loader

    task = ctx.task
    settings = task.open_ended.judge
    from ..verifier import shares_solver_engine

    if shares_solver_engine(settings, task.solver):
        load = engine
    else:
        if settings.model is not None:
            engine.release()
        load = model_loader(settings, ctx)
    return ScoreJudge(make_replies(settings, load), task.open_ended.task)


def judge_groups(judge, tasks: list[dict], responses: list[list[str]]) -> list[tuple[list[str], list]]:
    """(responses, judgements) per task, every response of every task judged in one call."""
    pairs = [(item["question"], response) for item, group in zip(tasks, responses) for response in group]
    judgements = iter(judge.score(pairs))
    return [(group, [next(judgements) for _ in group]) for group in responses]


def scored_row(item: dict, responses: list[str], judgements: list) -> dict:
    from ..rewards_openended import score_spread

    scores = [j.score for j in judgements]
    parsed = [s for s in scores if s is not None]
    return {"id": item["id"], "question": item["question"], "score": score_spread(scores),
            "mean_score": sum(parsed) / len(parsed) if parsed else None, "responses": responses,
            "scores": [j.scores for j in judgements], "normalised": scores,
            "judge_outputs": [None if j.output is None else j.output[-MAX_RECORDED_OUTPUT:] for j in judgements]}


def _keep(row: dict, domain, dropped: dict) -> bool:
    spread = row["score"]
    reason = ("no_spread" if spread is None else "score_collapse" if spread < domain.min_spread
              else "saturated" if spread > domain.max_spread else None)
    if reason:
        dropped[reason] += 1
    return reason is None


def open_label_stats(rows: list[dict], kept: list[dict], dropped: dict, report: dict) -> dict:
    spreads = [row["score"] for row in rows if row["score"] is not None]
    histogram = [0] * HISTOGRAM_BINS
    for spread in spreads:
        histogram[min(int(spread * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)] += 1
    return {"kept": len(kept), "dropped": dropped, "mean_spread": sum(spreads) / len(spreads) if spreads else None,
            "score_histogram": histogram, "judge": report}


def write_label_outputs(ctx: PhaseContext, kept: list[dict], rows: list[dict], stats: dict, audit_size: int) -> None:
    write_jsonl(ctx.staging / "train.jsonl", [{k: row[k] for k in ("id", "question", "score")} for row in kept])
    audit_keys = ("id", "question", "score", "mean_score", "responses", "scores", "judge_outputs")
    write_jsonl(ctx.staging / "audit.jsonl", [{k: row[k] for k in audit_keys} for row in rows[:audit_size]])
    (ctx.staging / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
