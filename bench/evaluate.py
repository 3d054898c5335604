r"""Evaluation grading throughput: stored model outputs of a mixed maths + multiple-choice + short-answer
set read and graded as the evaluate phase does, against the reference's per-item way. No model runs.

    .venv/bin/python bench/evaluate.py [--synthetic-maths 400] [--choice 800] [--short 200] [--seed 0]

The set (>= 2,000 items by default):
- maths (GSM8K preset): every GSM8K test problem (../shared/data/gsm8k-test.jsonl, or --data) with its
  gold read after '####', plus --synthetic-maths items whose golds are LaTeX built from those values
  (fractions, intervals, tuples). Outputs: the right value in another notation (`1,200`, `1200.0`,
  `\$1200`, `1200 \text{ dollars}`, `\frac{2400}{2}`, `0.5` for `\frac{1}{2}`...), wrong values, no
  `\boxed{}`, or a box cut off by the token limit;
- multiple choice (MMLU-Pro preset, ten options): `\boxed{C}`, `\boxed{\text{(C)}}`, 'Final Answer: C',
  wrong letters, and outputs with no letter (guessed, as the reference does);
- short answers (BBEH preset): `(a)` / `a`, `True` / `true`, `3` / `3.0`, wrong ones.

ours: `phases.evaluate.score_outputs` per benchmark on one `GradingPool` (default workers); pool start-up
  is timed separately (a phase starts it once).
baseline: the reference's loop (`evaluation/datasets_loader.py` `get_score`), one process, item by item:
  math-verify `verify(parse(gold), parse(prediction))` on the same extracted predictions, both wrapped in
  `\boxed{}` as its labelling code does, no cache, no fast paths; the letter and BBEH comparisons are the
  same cheap string work as ours.
agreement: share of items both call right or both wrong. reference_bare_parse_disagreements: maths items
  that the reference's evaluation script, which parses gold and prediction as bare strings (math-verify
  then reads undelimited LaTeX such as `[0, 3]` as its last number), grades differently from us (and from
  the boxed baseline). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worker"))

from rzero_worker.benchmark_presets import PRESETS  # noqa: E402
from rzero_worker.benchmarks import Benchmark, BenchmarkItem, read_gold  # noqa: E402
from rzero_worker.benchmarks.answers import predict  # noqa: E402
from rzero_worker.grading import GradingPool  # noqa: E402
from rzero_worker.phases.evaluate import score_outputs  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k-test.jsonl"
LETTERS = "ABCDEFGHIJ"


# --------------------------------------------------------------------------------------------------
# the stored outputs


def maths_items(path: Path, synthetic: int, rng: random.Random) -> tuple[list[BenchmarkItem], list[str]]:
    items, outputs = [], []
    values = []
    for index, line in enumerate(path.read_text().splitlines()):
        row = json.loads(line)
        gold = read_gold(row["answer"], "gsm8k")
        items.append(BenchmarkItem(f"gsm8k-{index:05d}", row["question"], gold))
        value = int(float(gold)) if gold.lstrip("-").replace(".", "", 1).isdigit() else 7
        values.append(value)
        outputs.append(integer_output(value, rng))
    for index in range(synthetic):
        value = rng.choice(values) or 1
        gold, right, wrong = rng.choice([
            (f"\\frac{{{value}}}{{3}}", [f"{value}/3", f"\\dfrac{{{value}}}{{3}}", f"\\frac{{{2 * value}}}{{6}}"],
             f"\\frac{{{value + 1}}}{{3}}"),
            (f"[0, {value}]", [f"[0,{value}]", f"\\left[0, {value}\\right]"], f"(0, {value})"),
            (f"({value}, 2)", [f"({value},2)", f"\\left({value}, 2\\right)"], f"(2, {value})"),
            (f"{value}\\sqrt{{2}}", [f"\\sqrt{{{2 * value * value}}}", f"{value} \\sqrt 2"], f"{value}\\sqrt{{3}}"),
        ])
        items.append(BenchmarkItem(f"latex-{index:05d}", "synthetic", gold))
        outputs.append(f"... so the answer is \\boxed{{{rng.choice(right) if rng.random() < 0.6 else wrong}}}.")
    return items, outputs


def integer_output(value: int, rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.55:
        form = rng.choice([str(value), f"{value:,}", f"{value}.0", f"\\${value}", f"{value} \\text{{ dollars}}",
                           f"\\frac{{{2 * value}}}{{2}}", f"x = {value}"])
        return f"Step by step ... the total is $\\boxed{{{form}}}$."
    if kind < 0.8:
        return f"... which gives \\boxed{{{value + rng.choice([-2, -1, 1, 3, 10])}}}"
    if kind < 0.9:
        return f"The answer is {value}."  # no box
    return f"... therefore \\boxed{{{value}"  # cut off by the token limit


def choice_items(count: int, rng: random.Random) -> tuple[list[BenchmarkItem], list[str]]:
    items, outputs = [], []
    for index in range(count):
        gold = rng.choice(LETTERS)
        items.append(BenchmarkItem(f"mc-{index:05d}", "synthetic", gold, tuple(f"option {i}" for i in range(10))))
        letter = gold if rng.random() < 0.5 else rng.choice(LETTERS)
        outputs.append(rng.choice([
            f"Reasoning ... \\boxed{{{letter}}}", f"\\boxed{{\\text{{({letter})}}}}", f"Final Answer: {letter}\n",
            f"The answer is: ({letter}) option\n", "I cannot decide between them.",
        ]))
    return items, outputs


def short_items(count: int, rng: random.Random) -> tuple[list[BenchmarkItem], list[str]]:
    pairs = [("(a)", ["(A)", "a", "(a)"]), ("True", ["true", "True."]), ("3", ["3.0", "3"]),
             ("['x', 'y']", ["['x','y']", "[x, y]"]), ("valid", ["\\text{valid}", "Valid"])]
    items, outputs = [], []
    for index in range(count):
        gold, right = rng.choice(pairs)
        items.append(BenchmarkItem(f"bbeh-{index:05d}", "synthetic", gold))
        answer = rng.choice(right) if rng.random() < 0.6 else "something else"
        outputs.append(f"... \\boxed{{{answer}}}" if rng.random() < 0.8 else f"The answer is: {answer}\n")
    return items, outputs


# --------------------------------------------------------------------------------------------------


def run_ours(sets: list[tuple[Benchmark, list[str]]]) -> dict:
    started = time.perf_counter()
    with GradingPool() as pool:
        pool.equivalent([("1", "x")])  # wait until the workers are up
        ready = time.perf_counter()
        verdicts = {b.name: [row["correct"] for row in score_outputs(b, b.items, outs, pool, "guess")] for b, outs in sets}
        done = time.perf_counter()
        stats = pool.stats
    return {"verdicts": verdicts, "seconds": done - ready, "start_s": ready - started, "stats": stats}


def run_baseline_warm_up(parse, verify) -> None:
    verify(parse("\\boxed{1/2}"), parse("\\boxed{0.5}"))  # the LaTeX parser's first use is slow: not timed


def run_baseline(sets: list[tuple[Benchmark, list[str]]], timeout_s: int) -> dict:
    from math_verify import parse, verify

    from rzero_worker.benchmarks.answers import bbeh_match

    run_baseline_warm_up(parse, verify)
    started = time.perf_counter()
    verdicts = {}
    for benchmark, outputs in sets:
        results = []
        for item, output in zip(benchmark.items, outputs):
            prediction, _ = predict(benchmark.scoring, output, item_id=item.id, option_count=len(item.options),
                                    fallback="guess")
            if benchmark.scoring == "math":
                results.append(prediction is not None and bool(verify(
                    parse(wrap(item.gold), parsing_timeout=timeout_s), parse(wrap(prediction), parsing_timeout=timeout_s),
                    timeout_seconds=timeout_s)))
            elif benchmark.scoring == "choice":
                results.append(prediction == item.gold)
            else:
                results.append(bbeh_match(prediction, item.gold))
        verdicts[benchmark.name] = results
    return {"verdicts": verdicts, "seconds": time.perf_counter() - started}


def bare_parse_disagreements(benchmark: Benchmark, outputs: list[str], ours: list[bool]) -> int:
    """Maths items the reference's evaluation script (bare `parse` of gold and prediction) grades
    differently from us: a measure of how its numbers differ from rzero's, not part of the timing."""
    from math_verify import parse, verify

    count = 0
    for item, output, verdict in zip(benchmark.items, outputs, ours):
        prediction, _ = predict("math", output)
        bare = prediction is not None and bool(verify(parse(item.gold), parse(prediction)))
        count += bare != verdict
    return count


def wrap(answer: str) -> str:
    """As a box: math-verify reads bare LaTeX such as `[0, 3]` as its last number only (the reference's
    evaluation script parses bare strings, so it counts `(0, 3)` right for `[0, 3]`; its labelling wraps)."""
    return "\\boxed{" + answer + "}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic-maths", type=int, default=400)
    parser.add_argument("--choice", type=int, default=800)
    parser.add_argument("--short", type=int, default=200)
    parser.add_argument("--timeout", type=int, default=5, help="math-verify seconds per item (baseline)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    maths, maths_outputs = maths_items(args.data, args.synthetic_maths, rng)
    choice, choice_outputs = choice_items(args.choice, rng)
    short, short_outputs = short_items(args.short, rng)
    sets = [(Benchmark("maths", maths, PRESETS["gsm8k"]), maths_outputs),
            (Benchmark("mmlu-pro", choice, PRESETS["mmlu-pro"]), choice_outputs),
            (Benchmark("bbeh", short, PRESETS["bbeh"]), short_outputs)]
    items = len(maths) + len(choice) + len(short)

    ours = run_ours(sets)
    print(f"ours: {items} items in {ours['seconds']:.2f}s (+{ours['start_s']:.2f}s pool start)")
    baseline = run_baseline(sets, args.timeout)
    print(f"baseline: {items} items in {baseline['seconds']:.2f}s")
    same = {name: sum(a == b for a, b in zip(ours["verdicts"][name], baseline["verdicts"][name])) for name in ours["verdicts"]}
    for name, verdicts in ours["verdicts"].items():
        for index, (a, b) in enumerate(zip(verdicts, baseline["verdicts"][name])):
            if a != b:
                print(f"disagree {name} #{index}: ours={a} baseline={b} gold={sets[[s[0].name for s in sets].index(name)][0].items[index].gold!r}")
    report = {
        "items": items,
        "maths_items": len(maths), "choice_items": len(choice), "short_items": len(short),
        "items_per_s": round(items / ours["seconds"], 1),
        "items_per_s_incl_start": round(items / (ours["seconds"] + ours["start_s"]), 1),
        "baseline_items_per_s": round(items / baseline["seconds"], 1),
        "speedup": round(baseline["seconds"] / ours["seconds"], 2),
        "agreement": round(sum(same.values()) / items, 4),
        "agreement_by_set": {name: round(count / len(ours["verdicts"][name]), 4) for name, count in same.items()},
        "accuracy_by_set": {name: round(sum(v) / len(v), 4) for name, v in ours["verdicts"].items()},
        "ours_s": round(ours["seconds"], 3), "pool_start_s": round(ours["start_s"], 3),
        "baseline_s": round(baseline["seconds"], 3),
        "ours_math_verify_calls": ours["stats"].math_verify, "ours_timeouts": ours["stats"].timeouts,
        "reference_bare_parse_disagreements": bare_parse_disagreements(sets[0][0], sets[0][1], ours["verdicts"]["maths"]),
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
