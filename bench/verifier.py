"""The Verifier's veto on SmolLM2, measured: label accuracy of the kept labels with and without `labeling.verifier:
veto`, against the exact arithmetic oracle, on 2 CPU cores.

    .venv/bin/python bench/verifier.py [--questions 16] [--verifier-tokens 64] [--cache DIR] [--trained]

What runs: examples/local-demo.yaml's format warm-up of builtin:smollm2-135m-instruct (iteration 0; reused from
--cache when it holds one), then iteration 1's label phase with the veto on, over `--questions` pure-arithmetic
questions of the warm-up's kind committed as the generate output (the kind the warmed-up Challenger writes; every one
is readable by the exact oracle, so the oracle checks every kept label). The Verifier is the default, a copy of the
Solver's base model (here the warmed-up model, which is also iteration 1's label Solver: one generator serves both).
The phase votes and applies the band once; its summary holds the kept set before the veto (= without it) and after.

With `--trained` (spec.verifier.mode trained) the label phase also writes its verification examples and iteration
1's `verifier` phase then trains the Verifier by GRPO on them (`--verifier-steps` rollout steps of 8 prompts x 4
verdicts, learning rate `--verifier-lr`): the JSON gains `trained_verifier`, its held-out accuracy before and after
training (and on the oracle-checked held-out examples alone), the reward and its spread, and the weight change.

Measured with `--trained` (2 shared CPU cores, load 7-9; `--questions 12 --samples 4 --verifier-tokens 96
--verifier-steps 3`, the warm-up cached: 6 s; a fresh one took 1,521 s): labelling 331 s kept 5 labels, all wrong,
and the warmed-up Verifier rejected all 5 (agreeing with the oracle 5/5); no label reached the 0.75 consensus, so its
10 examples were the 5 oracle-checked labels (incorrect) and the oracle's answers (correct). The verifier phase
(357 s, 104 s per rollout step) trained on 6 of them and held out 4 (2 questions): held-out accuracy 0.50
[0.15, 0.85] before and 0.50 after, no verdict unparsable; reward 0.47, 0.69, 0.50 over the 3 steps (spread 0.50),
relative weight change 9.3e-5 at learning rate 1e-5. So the phase runs and moves the weights, but 6 examples and 3
steps teach a 135M Verifier nothing measurable on 4 held-out verdicts; it would take hundreds of examples
(more questions, or consensus examples from a Solver that agrees with itself more often) and more steps. Wall
695 s in all: over the 10-minute budget on this loaded machine.

The last line is one JSON object: labels kept without and with the veto, the label accuracy of each with its 95%
Wilson interval, the correct and wrong labels vetoed, the verdict counts, and the Verifier's accuracy against the
oracle (an unparsable verdict counts as wrong). With the veto on, the warm-up also trains on Verifier-format
examples (warmup.verifierExamples, 0.3 of the batches by default: right and near-miss answers ending in
\\boxed{correct}/\\boxed{incorrect}); the figures below say how far that takes a 135M Verifier.

Measured (2 shared CPU cores, load 5-8): `--questions 32 --samples 6 --verifier-tokens 96`: 15 labels kept without
the veto, 1 right (6.7% [1.2%, 29.8%]); with it none: all 15 verdicts unparsable (14 wrong and 1 right label
vetoed), Verifier accuracy 0/15; warm-up 397 s, labelling 1,177 s. `--questions 12 --samples 4` (warm-up cached):
12 kept, 0 right, all vetoed as unparsable; the Verifier writes "14 * 59 = 909. The answer is \\boxed{909}." — the
Solver's format the warm-up taught it. On an idle machine the labelling is several times faster (the second run's
label phase had 271 CPU-seconds in 1,012 s of wall time).

With the Verifier examples in the warm-up (same machine, load 5-8), `--questions 12 --samples 4 --verifier-tokens 96`:
warm-up 788 s, its probe 7/8 verdicts readable and 5/8 right; labelling 92 s: 5 kept without the veto, none right
(0% [0%, 43.4%]); all 5 verdicts readable and `incorrect`, so none kept with the veto (5 wrong labels vetoed, none
right), Verifier accuracy against the oracle 5/5.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "operator"), str(REPO / "worker")]
BUDGET_S = 300.0


def arithmetic_questions(count: int, seed: int) -> list[dict]:
    """Questions as the generate phase commits them: the warm-up's arithmetic problems, every difficulty."""
    from rzero_worker.warmup_data import DIFFICULTIES, arithmetic_problem

    rng = random.Random(f"bench-verifier/{seed}")
    problems = [arithmetic_problem(rng, rng.randrange(len(DIFFICULTIES))) for _ in range(count)]
    return [{"id": f"i001-s00000-{i:06d}", "question": p.question, "answer": str(p.answer)} for i, p in enumerate(problems)]


def spec_for(args, root: Path):
    """examples/local-demo.yaml with the veto on, its storage in `root`."""
    import yaml

    from rzero_operator.validate import validate_manifest

    doc = yaml.safe_load((REPO / "examples" / "local-demo.yaml").read_text())
    doc["spec"]["storage"] = {"uri": str(root)}
    doc["spec"]["labeling"].update(verifier="veto", samples=args.samples)
    doc["spec"]["verifier"] = {"maxTokens": args.verifier_tokens, "batchSize": 16}
    if args.trained:
        grpo = {"steps": args.verifier_steps, "rolloutBatchSize": 8, "groupSize": 4, "updateBatchSize": 8,
                "microBatchSize": 4, "maxCompletionTokens": args.verifier_tokens, "learningRate": args.verifier_lr,
                "saveEvery": args.verifier_steps}
        doc["spec"]["verifier"].update(mode="trained", training={
            "consensus": args.consensus, "heldOut": 0.3, "maxHeldOut": 16, "grpo": grpo})
    return validate_manifest(doc).spec


def commit_questions(storage, prefix: str, rows: list[dict]) -> None:
    """A committed generate shard, as the generate phase leaves it."""
    from rzero_worker.storage import commit, join_key

    storage.put_bytes(join_key(prefix, "questions.jsonl"), "".join(json.dumps(r) + "\n" for r in rows).encode())
    commit(storage, prefix)


def run(args) -> dict:
    from rzero_operator.tasks import build_tasks
    from rzero_worker.phases import load_phase
    from rzero_worker.phases.runner import run_phase
    from rzero_worker.storage import join_key, open_storage

    with tempfile.TemporaryDirectory(prefix="rzero-verifier-bench-") as tmp:
        root, cache = Path(tmp) / "run", Path(args.cache) if args.cache else Path(tmp) / "cache"
        spec = spec_for(args, root)
        started = time.monotonic()
        (warmup,) = build_tasks(spec, str(root), "bench", 0, "warmup")
        run_phase(warmup, load_phase("warmup"), cache_dir=cache)
        warmup_s = time.monotonic() - started
        storage = open_storage(warmup.storage)
        commit_questions(storage, "iter-001/generate/shard-00000-of-00001", arithmetic_questions(args.questions, 0))
        (label,) = build_tasks(spec, str(root), "bench", 1, "label")
        run_phase(label, load_phase("label"), cache_dir=cache)
        metrics = json.loads(storage.get_bytes(join_key(label.output, "summary.json")))["metrics"]
        vetoed = [json.loads(line) for line in storage.get_bytes(join_key(label.output, "vetoed.jsonl")).splitlines()]
        result = figures(metrics, warmup_s, time.monotonic() - started - warmup_s)
        warmed = json.loads(storage.get_bytes(join_key(warmup.output, "summary.json")))["metrics"]
        result["warmup_probe"] = {k: v for k, v in warmed.items() if k.startswith("probe_") and "example" not in k}
        result["example_vetoed"] = [{k: row.get(k) for k in ("question", "label", "reason", "label_correct")}
                                    | {"verifier_output": (row.get("verifier_output") or "")[-300:]} for row in vetoed[:2]]
        if args.trained:
            trained_started = time.monotonic()
            (verifier,) = build_tasks(spec, str(root), "bench", 1, "verifier")
            run_phase(verifier, load_phase("verifier"), cache_dir=cache)
            trained = json.loads(storage.get_bytes(join_key(verifier.output, "summary.json")))["metrics"]
            result["trained_verifier"] = trained_figures(trained, time.monotonic() - trained_started)
        return result


def trained_figures(metrics: dict, seconds: float) -> dict:
    """The verifier phase's summary: its examples, held-out accuracy before and after, reward, weight change."""
    keys = ("examples", "train_examples", "held_out", "sources", "accuracy_before", "accuracy_before_ci95",
            "accuracy_after", "accuracy_after_ci95", "unparsable_before", "unparsable_after", "oracle_held_out",
            "oracle_accuracy_before", "oracle_accuracy_after", "steps", "updates", "mean_reward", "rewards",
            "reward_std", "weight_change", "step_seconds", "skipped")
    return {**{key: metrics.get(key) for key in keys if key in metrics}, "verifier_s": round(seconds, 1)}


def _rate(correct: int, checked: int) -> dict:
    from rzero_worker.benchmarks.scoring import wilson_interval

    if not checked:
        return {"accuracy": None, "ci95": None, "n": 0}
    low, high = wilson_interval(correct, checked)
    return {"accuracy": round(correct / checked, 3), "ci95": [round(low, 3), round(high, 3)], "n": checked}


def figures(metrics: dict, warmup_s: float, label_s: float) -> dict:
    veto = metrics["verifier"]
    return {
        "questions": metrics["questions"],
        "kept_without_veto": veto["judged"], "kept_with_veto": metrics["kept"],
        "label_accuracy_without_veto": _rate(veto["correct_before"], veto["checked_before"]),
        "label_accuracy_with_veto": _rate(veto["correct_after"], veto["checked_after"]),
        "correct_labels_vetoed": veto["correct_vetoed"], "wrong_labels_vetoed": veto["wrong_vetoed"],
        "verdicts": {key: veto[key] for key in ("approved", "rejected", "unparsable", "unavailable")},
        "verifier_accuracy_vs_oracle": _rate(veto["oracle_agreed"], veto["oracle_compared"]),
        "warmup_s": round(warmup_s, 1), "label_s": round(label_s, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=16, help="arithmetic questions to label")
    parser.add_argument("--samples", type=int, default=6, help="m: Solver answers per question")
    parser.add_argument("--verifier-tokens", type=int, default=64, help="new tokens per verdict")
    parser.add_argument("--cache", default=os.environ.get("RZERO_BENCH_CACHE"),
                        help="worker cache holding the warm-up (default: a fresh temporary one)")
    parser.add_argument("--trained", action="store_true", help="train the Verifier by GRPO after labelling")
    parser.add_argument("--verifier-steps", type=int, default=4, help="--trained: GRPO rollout steps")
    parser.add_argument("--verifier-lr", type=float, default=1e-5, help="--trained: learning rate")
    parser.add_argument("--consensus", type=float, default=0.75, help="--trained: majority share of a true label")
    args = parser.parse_args()
    started = time.monotonic()
    result = run(args)
    result.update(wall_s=round(time.monotonic() - started, 1), budget_ratio=round((time.monotonic() - started) / BUDGET_S, 3))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
