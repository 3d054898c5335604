"""The open-ended formats on SmolLM2, measured: can builtin:smollm2-135m-instruct write `<task>` blocks as the
open-ended Challenger, and score responses in the Verifier's `criterion: score` box, on 2 CPU cores?

    .venv/bin/python bench/openended.py [--tasks 8] [--samples 3] [--judge-tokens 96] [--warmup [--warmup-steps 40]]
        [--cache DIR]

What runs: an open-ended spec (spec.task kind open-ended, rubric clarity + helpfulness, the default Verifier: a copy
of the base model) on the builtin model, no warm-up; iteration 1's generate phase (`--tasks` candidates from the base
Challenger) and label phase (`--samples` responses per valid task, each scored by the model Verifier), built by the
operator's build_tasks and run under the commit rule. When the Challenger writes no valid task, the label phase is
run on `--tasks` fixed everyday-writing tasks instead, so the Verifier is measured either way.

Measured (2 shared CPU cores, load 7-8), defaults: 0 of 8 candidates valid (the base model answers the Challenger
prompt with chat, e.g. "I'm ready to assist with any question or adventure. What would you like to create today?
..."), so the fixed tasks were used; 0 of 24 judgements readable (the judge continues the response instead of
scoring it), so every task dropped as `no_spread` and every reward would be 0; generate 176 s, label 789 s. A 135M
base model needs the formats taught (a warm-up, as the verifiable loop's) or a stronger Verifier (an endpoint).

With `--warmup` the spec has examples/local-demo.yaml's warm-up recipe (`--warmup-steps` steps of 8, the top 10
layers, learning rate 3e-4; challengerShare 0.5, maxLength 384) teaching the open-ended formats (warmup_openended.py;
verifierExamples 0.3 by default), run first and cached in the worker cache (`--cache` / $RZERO_BENCH_CACHE) as the
other benches' warm-ups; the generate phase's Challenger, the Solver and the Verifier are then the warmed-up model,
and the result adds the warm-up's probe (`warmup_probe`), its seconds and `rewards`: each task's score spread (the
Challenger's reward before the repetition penalty) and the Solver's rewards.

Measured with `--warmup` (2 shared CPU cores, load ~1.5), defaults otherwise: 40 steps (warm-up 145 s, wall 183 s):
6 of 8 candidates valid (2 duplicates, 0 without a `<task>`), 18 of 18 judgements readable, 3 of 6 tasks kept (spread
0.733 each), 3 dropped as score_collapse (scoreCollapse 0.5), Solver rewards 0.222 or 1.0, lengthBias 0.74 (the
taught scores grow with the number of sentences). 16 steps (wall 156 s): 7 of 8 valid, 11 of 21 readable, every
scored task collapsed (all 7 on one score, clarity 7 / helpfulness 7): no Challenger reward. Rerun without
`--warmup` (load ~5): 0 of 8 valid, 0 of 24 readable, every reward 0 again (wall 724 s).

The last line is one JSON object: the valid-task share, the judge's scored / unparsable counts, the tasks kept by
the spread band, the length bias and score collapse (failures.py), an example judge output, and the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "operator"), str(REPO / "worker")]

FALLBACK = ["Write a short email asking your landlord to fix a leaking tap.",
            "Write a two-sentence note thanking a neighbour for watering your plants.",
            "Explain to a child why the sky is blue, in three sentences.",
            "Write a polite message declining an invitation to a party.",
            "Give three tips for keeping a kitchen clean.", "Describe your ideal weekend in four sentences.",
            "Write a short notice asking people not to park in front of a gate.",
            "Write a text message reminding a friend about lunch tomorrow."]


def spec_for(args, root: Path):
    from rzero_operator.validate import validate_manifest

    doc = {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "bench"}, "spec": {
        "model": "builtin:smollm2-135m-instruct", "iterations": 1, "storage": {"uri": str(root)},
        "device": {"device": "cpu", "dtype": "float32", "backend": "transformers"},
        "task": {"kind": "open-ended", "description": "short, practical everyday writing: emails, notes, messages",
                 "rubric": ["clarity", "helpfulness"]},
        "generation": {"numQuestions": args.tasks, "batchSize": args.tasks, "sampling": {"maxTokens": 96}},
        "labeling": {"samples": args.samples, "sampling": {"maxTokens": 64}, "auditSize": args.tasks},
        "verifier": {"maxTokens": args.judge_tokens, "batchSize": 16}}}
    if args.warmup:
        doc["spec"]["warmup"] = {"enabled": True, "steps": args.warmup_steps, "batchSize": 8, "learningRate": 3.0e-4,
                                 "trainableLayers": 10, "challengerShare": 0.5, "maxLength": 384, "probeSamples": 8}
    return validate_manifest(doc).spec


def rewards(storage, prefix: str) -> dict:
    """The rewards the label phase's rows would give (audit.jsonl holds every task: auditSize = --tasks): each
    task's score spread (the Challenger's reward before the repetition penalty, paper form; 0 when unscored) and
    the Solver's rewards (normalised scores, 0 when unparsable), with their distinct counts."""
    from rzero_worker.grading.scores import normalised_score
    from rzero_worker.storage import join_key

    rows = [json.loads(line) for line in storage.get_bytes(join_key(prefix, "audit.jsonl")).splitlines()]
    spreads = [round(row["score"] or 0.0, 3) for row in rows]
    solver = [round(normalised_score(scores) or 0.0, 3) for row in rows for scores in row["scores"]]
    return {"challenger_spreads": spreads, "solver_rewards": solver, "distinct_solver_rewards": len(set(solver)),
            "nonzero_challenger": sum(1 for spread in spreads if spread > 0)}


def warm_up(spec, root: Path, cache: Path) -> tuple[dict, float]:
    """Run (or reuse from the cache) the warm-up; its probe figures and its seconds."""
    from rzero_operator.tasks import build_tasks
    from rzero_worker.phases import phase_for
    from rzero_worker.phases.runner import run_phase
    from rzero_worker.storage import join_key, open_storage

    started = time.monotonic()
    (warmup,) = build_tasks(spec, str(root), "bench", 0, "warmup")
    run_phase(warmup, phase_for(warmup), cache_dir=cache)
    warmed = json.loads(open_storage(warmup.storage).get_bytes(join_key(warmup.output, "summary.json")))["metrics"]
    probe = {k: v for k, v in warmed.items() if k.startswith("probe_") or k in ("cached", "final_loss")}
    return probe, time.monotonic() - started


def run(args) -> dict:
    from rzero_operator.tasks import build_tasks, phase_key
    from rzero_worker.phases import phase_for
    from rzero_worker.phases.runner import run_phase
    from rzero_worker.storage import commit, join_key, open_storage

    with tempfile.TemporaryDirectory(prefix="rzero-openended-bench-") as tmp:
        root, cache = Path(tmp) / "run", Path(args.cache) if args.cache else Path(tmp) / "cache"
        spec = spec_for(args, root)
        started = time.monotonic()
        warmup_probe, warmup_s = (warm_up(spec, root, cache) if args.warmup else (None, 0.0))
        (generate,) = build_tasks(spec, str(root), "bench", 1, "generate")
        from rzero_worker.task import ModelInput

        base = ModelInput(artifact=phase_key(0, "warmup")) if args.warmup else ModelInput(source=spec.model)
        generate = generate.model_copy(update={"challenger": base})  # challenger(0): the base (or warmed-up) model
        run_phase(generate, phase_for(generate), cache_dir=cache)
        storage = open_storage(generate.storage)
        generated = json.loads(storage.get_bytes(join_key(generate.output, "summary.json")))["metrics"]
        generate_s = time.monotonic() - started
        fallback = not generated["valid"]
        if fallback:  # measure the Verifier on fixed tasks: replace the generate output
            rows = [{"id": f"t{i}", "question": t, "answer": None} for i, t in enumerate(FALLBACK[: args.tasks])]
            storage.put_bytes(join_key(generate.output, "questions.jsonl"),
                              "".join(json.dumps(r) + "\n" for r in rows).encode())
            commit(storage, generate.output)
        (label,) = build_tasks(spec, str(root), "bench", 1, "label")
        run_phase(label, phase_for(label), cache_dir=cache)
        metrics = json.loads(storage.get_bytes(join_key(label.output, "summary.json")))["metrics"]
        audit = [json.loads(line) for line in storage.get_bytes(join_key(label.output, "audit.jsonl")).splitlines()]
        invalid = [json.loads(line) for line in storage.get_bytes(join_key(generate.output, "invalid.jsonl")).splitlines()]
        judge = metrics["judge"]
        return {"warmup_probe": warmup_probe, "warmup_s": round(warmup_s, 1),
            "rewards": rewards(storage, label.output),
            "tasks_requested": generated["requested"], "tasks_valid": generated["valid"], "fallback_tasks": fallback,
            "example_challenger_output": (invalid[0]["output"][:300] if invalid else None),
            "responses_judged": judge["judged"], "scored": judge["scored"], "unparsable": judge["unparsable"],
            "kept": metrics["kept"], "dropped": metrics["dropped"], "length_bias": judge["length_bias"],
            "score_collapse": judge["score_collapse"], "mean_score": judge["mean_score"],
            "example_judge_output": ((audit[0]["judge_outputs"] or [None])[0] or "")[-300:] if audit else None,
            "generate_s": round(generate_s, 1), "label_s": round(time.monotonic() - started - generate_s, 1),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8, help="candidate tasks from the Challenger")
    parser.add_argument("--samples", type=int, default=3, help="m: Solver responses per task")
    parser.add_argument("--judge-tokens", type=int, default=96, help="new tokens per judgement")
    parser.add_argument("--warmup", action="store_true",
                        help="warm the base model up on the open-ended formats first")
    parser.add_argument("--warmup-steps", type=int, default=40, help="warm-up steps (of 8 examples)")
    parser.add_argument("--cache", default=os.environ.get("RZERO_BENCH_CACHE"), help="worker cache")
    args = parser.parse_args()
    started = time.monotonic()
    result = run(args)
    result["wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
