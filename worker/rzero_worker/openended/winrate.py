"""The win rate of an open-ended run's Solver against iteration 0's (the evaluate phase, spec.task.heldOut).

For each held-out task (this shard's slice, tasks i, i+K, ... as the benchmarks), both Solvers respond greedily
(heldOut.maxTokens) and the oracle (oracle.model or oracle.endpoint: an independent judge, not the Verifier the
Solver was trained against) compares the two responses twice, once in each order (prompts_openended
.pairwise_messages). Each order gives the current Solver +1 (preferred), -1 (the baseline preferred) or 0 (tie, or
an unparsable/unavailable verdict, counted); the task is a win when the sum is positive, a loss when negative, a
tie at zero. A task with both verdicts unreadable is `unjudged` and left out. Win rate = (wins + ties / 2) / n
with a 95% Wilson interval over n judged tasks (the tie's half point treated as a success count: an approximation,
ties are counted separately so it can be redone).

Position bias (failures.py): `first_chosen` of `decided` verdicts chose the response shown first; `order_decided`
tasks had both orders choose the same position. Iteration 0 compares nothing (the baseline is itself).
Per-task rows go to `winrate.jsonl`; the summary's `win_rate` block holds the counts (shards add up).
"""

from __future__ import annotations

import json
import logging

from ..phases.context import ConfigurationError, PhaseContext, write_jsonl

log = logging.getLogger(__name__)

MAX_RECORDED = 2000


def evaluate(ctx: PhaseContext) -> dict:
    """The benchmarks (phases/evaluate.py), then the win rate."""
    from ..phases.evaluate import run as benchmarks

    win = win_rate(ctx)
    return {**benchmarks(ctx), "win_rate": win}


def read_held_out(settings, storage) -> list[str]:
    """The held-out tasks: JSONL rows' `field`, or the non-blank lines of a text file; the first `size`."""
    from ..benchmarks import BenchmarkError
    from ..benchmarks.loading import read_bytes

    try:
        text = read_bytes(settings.uri, storage).decode("utf-8")
    except (BenchmarkError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"task.heldOut.uri: {error}") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if settings.uri.endswith((".jsonl", ".ndjson", ".json")):
        tasks = []
        for number, line in enumerate(lines, 1):
            try:
                value = json.loads(line).get(settings.field)
            except (ValueError, AttributeError):
                value = None
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"task.heldOut.uri: line {number}: no text field {settings.field!r}")
            tasks.append(value.strip())
    else:
        tasks = [line.strip() for line in lines]
    if not tasks:
        raise ConfigurationError(f"task.heldOut.uri: {settings.uri} holds no task")
    return tasks[: settings.size] if settings.size else tasks


def win_rate(ctx: PhaseContext) -> dict:
    task = ctx.task
    spec = task.win_rate
    held_out = read_held_out(spec.task.held_out, task.storage)[task.shard.index :: task.shard.count]
    current = responses(ctx, task.model, held_out, "model")
    baseline = responses(ctx, spec.baseline, held_out, "baseline")
    from .judge import PairJudge, make_replies, model_loader

    judge = PairJudge(make_replies(spec.judge, model_loader(spec.judge, ctx, field="oracle.model")), spec.task)
    forward = judge.prefer([(t, c, b) for t, c, b in zip(held_out, current, baseline)])  # current shown first
    backward = judge.prefer([(t, b, c) for t, c, b in zip(held_out, current, baseline)])  # baseline shown first
    rows = [comparison(t, c, b, f, r) for t, c, b, f, r in zip(held_out, current, baseline, forward, backward)]
    write_jsonl(ctx.staging / "winrate.jsonl", rows)
    counts = win_counts(rows)
    log.info("win rate against iteration 0: %d wins, %d losses, %d ties of %d tasks", counts["wins"],
             counts["losses"], counts["ties"], len(rows))
    return {**counts, "source": judge.source.name, **judge.source.metrics()}


def responses(ctx: PhaseContext, model, tasks: list[str], field: str) -> list[str]:
    from ..generation import make_generator
    from ..generation.base import greedy_replies
    from ..models import resolve_model
    from ..prompts_openended import open_solver_messages

    task = ctx.task
    local = resolve_model(model, ctx.storage, ctx.cache_dir, field=field, s3_location=task.storage)
    generator = make_generator(local, task.device, cache_dir=ctx.cache_dir)
    replies = greedy_replies(generator, [open_solver_messages(t) for t in tasks],
                             max_tokens=task.win_rate.task.held_out.max_tokens, batch_size=task.settings.batch_size,
                             log=log, what=f"win-rate responses ({field})")
    if hasattr(generator, "close"):
        generator.close()
    return [reply or "" for reply in replies]


_POINTS_FORWARD = {"A": 1, "B": -1, "tie": 0}  # current shown as A
_POINTS_BACKWARD = {"A": -1, "B": 1, "tie": 0}  # current shown as B


def comparison(task: str, current: str, baseline: str, forward, backward) -> dict:
    (first, first_output), (second, second_output) = forward, backward
    points = _POINTS_FORWARD.get(first, 0) + _POINTS_BACKWARD.get(second, 0)
    unjudged = first is None and second is None
    outcome = "unjudged" if unjudged else "win" if points > 0 else "loss" if points < 0 else "tie"
    return {"task": task, "response": current, "baseline": baseline, "current_first": first,
            "baseline_first": second, "outcome": outcome,
            "outputs": [None if o is None else o[-MAX_RECORDED:] for o in (first_output, second_output)]}


def win_counts(rows: list[dict]) -> dict:
    """Outcome and position counts (module notes)."""
    verdicts = [v for row in rows for v in (row["current_first"], row["baseline_first"])]
    decided = [v for v in verdicts if v in ("A", "B")]
    return {
        "tasks": len(rows),
        **{key: sum(row["outcome"] == outcome for row in rows)
           for key, outcome in (("wins", "win"), ("losses", "loss"), ("ties", "tie"), ("unjudged", "unjudged"))},
        "unparsable": sum(v is None for v in verdicts),
        "tie_verdicts": sum(v == "tie" for v in verdicts),
        "decided": len(decided), "first_chosen": sum(v == "A" for v in decided),
        "order_decided": sum(row["current_first"] == row["baseline_first"] and row["current_first"] in ("A", "B")
                             for row in rows),
    }
