"""Phase `evaluate`: greedy decoding on each benchmark, last `\\boxed{}` vs gold with math-verify.

Per benchmark: `items-<name>.jsonl` (every item with the model's output and verdict) and an entry of
`scores.json`: accuracy, its 95% Wilson interval and n. An ungradable comparison (math-verify timed out
in the pool) counts as wrong. A benchmark that cannot be read is a configuration error (exit 2).
"""

from __future__ import annotations

import json
import logging

from ..benchmarks import BenchmarkError, BenchmarkItem, load_benchmark, wilson_interval
from ..task import EvaluateTask, Sampling
from .context import ConfigurationError, PhaseContext

log = logging.getLogger(__name__)


def run(ctx: PhaseContext) -> dict:
    task: EvaluateTask = ctx.task
    benchmarks = {spec.name: _load(spec, task) for spec in task.settings.benchmarks}
    generator = _generator(ctx)

    from ..grading import GradingPool

    scores = {}
    with GradingPool() as pool:
        for name, items in benchmarks.items():
            rows = score_items(items, greedy_outputs(generator, items, task), pool)
            _write_jsonl(ctx.staging / f"items-{name}.jsonl", rows)
            scores[name] = benchmark_score(rows)
            log.info("%s: accuracy %.3f over %d items", name, scores[name]["accuracy"], len(rows))
    (ctx.staging / "scores.json").write_text(json.dumps(scores, indent=1) + "\n")
    accuracies = [score["accuracy"] for score in scores.values()]
    return {"scores": scores, "mean_accuracy": sum(accuracies) / len(accuracies) if accuracies else None}


def _load(spec, task: EvaluateTask) -> list[BenchmarkItem]:
    try:
        return load_benchmark(spec, task.storage)
    except BenchmarkError as error:
        raise ConfigurationError(str(error)) from None


def _generator(ctx: PhaseContext):
    from ..generation import make_generator
    from ..models import resolve_model

    task: EvaluateTask = ctx.task
    local = resolve_model(task.model, ctx.storage, ctx.cache_dir, field="model", s3_location=task.storage)
    return make_generator(local, task.device, cache_dir=ctx.cache_dir)


def greedy_outputs(generator, items: list[BenchmarkItem], task: EvaluateTask) -> list[str]:
    """One greedy completion per item, `settings.batch_size` prompts per generator call."""
    from ..prompts import solver_messages

    greedy = Sampling(temperature=0.0, max_tokens=task.settings.max_tokens)
    batch = task.settings.batch_size
    outputs: list[str] = []
    for start in range(0, len(items), batch):
        prompts = [solver_messages(item.question) for item in items[start : start + batch]]
        outputs.extend(samples[0] for samples in generator.generate(prompts, n=1, sampling=greedy, seed=task.seed))
    return outputs


def score_items(items: list[BenchmarkItem], outputs: list[str], pool) -> list[dict]:
    """Per-item rows: the boxed prediction and whether it is equivalent to the gold answer."""
    from ..grading import extract_boxed, grade

    predictions = [extract_boxed(text) for text in outputs]
    verdicts = grade(predictions, [item.gold for item in items], pool)
    return [
        {
            "id": item.id,
            "question": item.question,
            "gold": item.gold,
            "prediction": prediction,
            "correct": verdict is True,
            "output": output,
        }
        for item, prediction, verdict, output in zip(items, predictions, verdicts, outputs)
    ]


def benchmark_score(rows: list[dict]) -> dict:
    correct = sum(row["correct"] for row in rows)
    low, high = wilson_interval(correct, len(rows))
    return {"accuracy": correct / len(rows) if rows else 0.0, "ci95": [low, high], "n": len(rows), "correct": correct}


def _write_jsonl(path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
