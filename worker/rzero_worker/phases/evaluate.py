"""Phase `evaluate`: greedy decoding on each benchmark, the prediction graded against the gold answer.

Each benchmark is asked and scored its own way (benchmarks.Benchmark): the paper's maths presets and
custom files with the Solver prompt, the last `\\boxed{}` and math-verify; multiple choice by option
letter; BBEH by its fuzzy match (see benchmarks.answers); your own files of free-form text answers or of
multiple choice (answerType text, choice) as benchmarks.custom says. A benchmark with `samples: k` also gets k
sampled answers per item and reports avg@k.

Sharded like generation and labelling: shard i of K takes items i, i+K, i+2K... of EVERY benchmark (so
large and small benchmarks spread evenly over the pods) and commits `items-<name>.jsonl` (each item
with the model's output and verdict) and `scores.json` for its slice. Score entries carry their counts,
so the control plane merges shards exactly (benchmarks.scoring.merge_scores). An ungradable maths
comparison (math-verify timed out in the pool) counts as wrong. A benchmark that cannot be read, or a
file that does not match its preset's layout, is a configuration error (exit 2).
"""

from __future__ import annotations

import json
import logging

from ..benchmarks import Benchmark, BenchmarkError, BenchmarkItem, load_benchmark, prompt_messages, rows_score
from ..benchmarks.answers import judge, predict
from ..benchmarks.scoring import mean_accuracy, paper_averages
from ..task import BenchmarkSpec, EvaluateTask, Sampling
from .context import ConfigurationError, PhaseContext, write_jsonl

log = logging.getLogger(__name__)


def run(ctx: PhaseContext) -> dict:
    task: EvaluateTask = ctx.task
    loaded = [(spec, _load(spec, task)) for spec in task.settings.benchmarks]
    generator = _generator(ctx)

    from ..grading import GradingPool

    scores = {}
    with GradingPool() as pool:
        for spec, benchmark in loaded:
            items = benchmark.items[task.shard.index :: task.shard.count]
            rows = evaluate_benchmark(generator, benchmark, spec, items, task, pool)
            write_jsonl(ctx.staging / f"items-{benchmark.name}.jsonl", rows)
            scores[benchmark.name] = rows_score(
                rows, preset=spec.preset, multiple_choice=benchmark.multiple_choice, k=spec.samples
            )
            log.info("%s: %d/%d correct (shard %s)", benchmark.name, scores[benchmark.name]["correct"], len(rows),
                     task.shard.key)
    (ctx.staging / "scores.json").write_text(json.dumps(scores, indent=1) + "\n")
    return {"scores": scores, "mean_accuracy": mean_accuracy(scores), **paper_averages(scores)}


def _load(spec: BenchmarkSpec, task: EvaluateTask) -> Benchmark:
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


def answer_tokens(spec: BenchmarkSpec, benchmark: Benchmark, task: EvaluateTask) -> int:
    """The benchmark's own maxTokens, else evaluation.maxTokens, else its preset's reference length."""
    return spec.answer_tokens(task.settings.max_tokens)


def evaluate_benchmark(generator, benchmark: Benchmark, spec: BenchmarkSpec, items: list[BenchmarkItem],
                       task: EvaluateTask, pool) -> list[dict]:
    """Per-item rows for `items` (this shard's slice of `benchmark`): greedy answer, and avg@k samples."""
    max_tokens = answer_tokens(spec, benchmark, task)
    prompts = [prompt_messages(benchmark.prompt, item.question, item.options) for item in items]
    greedy = Sampling(temperature=0.0, max_tokens=max_tokens)
    outputs = [samples[0] for samples in _generate(generator, prompts, 1, greedy, task)]
    rows = score_outputs(benchmark, items, outputs, pool, task.settings.choice_fallback)
    if spec.samples and items:
        sampling = task.settings.sampling.model_copy(update={"max_tokens": max_tokens})
        sampled = _generate(generator, prompts, spec.samples, sampling, task)
        for row, count, predictions in zip(rows, *_sample_verdicts(benchmark, items, sampled, pool, task)):
            row.update(samples_correct=count, sample_predictions=predictions)
    return rows


def _generate(generator, prompts: list, n: int, sampling: Sampling, task: EvaluateTask) -> list[list[str]]:
    batch = task.settings.batch_size
    outputs: list[list[str]] = []
    for start in range(0, len(prompts), batch):
        outputs.extend(generator.generate(prompts[start : start + batch], n=n, sampling=sampling, seed=task.seed + start))
    return outputs


def score_outputs(benchmark: Benchmark, items: list[BenchmarkItem], outputs: list[str], pool,
                  fallback: str = "none") -> list[dict]:
    """Per-item rows: the prediction read from each output and whether it is right."""
    scoring = benchmark.scoring
    predicted = [
        predict(scoring, output, item_id=item.id, option_count=len(item.options), fallback=fallback,
                options=item.options)
        for item, output in zip(items, outputs)
    ]
    verdicts = judge(scoring, [prediction for prediction, _ in predicted], [item.gold for item in items], pool)
    rows = []
    for item, (prediction, guessed), verdict, output in zip(items, predicted, verdicts, outputs):
        row = {"id": item.id, "question": item.question, "gold": item.gold, "prediction": prediction,
               "correct": verdict is True, "output": output}
        if benchmark.multiple_choice:
            row["guessed"] = guessed
        rows.append(row)
    return rows


def _sample_verdicts(benchmark: Benchmark, items: list[BenchmarkItem], sampled: list[list[str]], pool, task):
    """(correct samples per item, predictions per item) for avg@k; one grading call for all samples."""
    flat_predictions, flat_golds = [], []
    per_item = []
    for item, outputs in zip(items, sampled):
        predictions = [
            predict(benchmark.scoring, output, item_id=f"{item.id}/{j}", option_count=len(item.options),
                    fallback=task.settings.choice_fallback, options=item.options)[0]
            for j, output in enumerate(outputs)
        ]
        per_item.append(predictions)
        flat_predictions += predictions
        flat_golds += [item.gold] * len(predictions)
    verdicts = iter(judge(benchmark.scoring, flat_predictions, flat_golds, pool))
    counts = [sum(next(verdicts) is True for _ in predictions) for predictions in per_item]
    return counts, per_item
