r"""Your own domain on CPU, measured: examples/python-docs-local.yaml, R-Zero grounded in the Python 3.11 Library
Reference on builtin:smollm2-135m-instruct, one iteration, and what the grounded loop showed.

    .venv/bin/python bench/domain.py [--manifest examples/python-docs-local.yaml] [--questions 32] [--cache DIR]

What runs: `rzero run` on the example (format warm-up on arithmetic, iteration 0's evaluation, then the Challenger's
GRPO, grounded generation, labelling with `labeling.label: document`, the Solver's GRPO and the evaluation), its
storage in a temporary directory, the corpus and benchmark paths made absolute (the example's are relative to the
repository root). The warm-up teaches the output format on arithmetic only (no grounded examples): a cached one
is reused from --cache ($RZERO_BENCH_CACHE) when it holds one, else it is trained (a fresh temporary cache).

Oracle: the Python corpus has no exact oracle here (an oracle that ran model-written Python would execute
untrusted text), so the reference for a label is the document's answer (the Challenger's, read in its passage):
`vote_vs_document` is the share of grounded questions whose majority vote is equivalent to it (the run's
checker), over all voted questions and over the kept ones; with `label: document` the kept labels ARE the
document's answers, so that share is what a `label: vote` run would have trained on correctly.

Measured with the defaults (16 questions, 1 Challenger step, 32 evaluation tokens; 2 CPU cores, load ~2, the
warm-up trained afresh in 90 s): 288 s wall (budget ratio 0.48); 1,797 documents, 9,451 passages, none skipped;
8 of 16 grounded questions valid; 3 kept (3 dropped with a "None" majority, 2 out of the band); vote vs document
1 of 5 agree (1 of 3 kept); the arithmetic oracle checked 1 label, right; Challenger reward spread 0.133, Solver
0.0 (it trained on 3 kept + 2 anchors, every rollout wrong); anchors 36 shown, 2 mixed; held-out 0/16 free-form,
4/16 multiple choice (chance) before and after. One kept question was an anchor's, copied from the prompt ("What
is the value of 2**10?"): a small model copies its examples. The example's own budget (32 questions, 2 Challenger
steps, 64 evaluation tokens: `--questions 32 --challenger-steps 2 --eval-tokens 64`) took 2,163 s on cores shared
with other jobs (load 4-12), before anchors were added.

The last line is one JSON object: passages in the corpus, read by the prompts and skipped documents by reason;
valid grounded questions; kept; vote-vs-document agreement; the exact arithmetic oracle's checks (it answers
only pure arithmetic questions, rare here); the reward spread of both roles; anchors used (shown to the
Challenger and mixed into the Solver's training, from the summaries: 0 while the example has no spec.anchors);
the held-out benchmark's scores before and after (free-form and multiple choice); wall and CPU seconds per
phase (the CPU seconds say what the run cost when other jobs share the cores and stretch the wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "bench")]

from demo import _metrics, _sum, phase_seconds, run_demo, summaries  # noqa: E402

BUDGET_S = 600.0


def phase_cpu_seconds(found: list[dict]) -> dict[str, float]:
    """CPU seconds each committed phase's worker reported (its share of the cores, whatever else runs)."""
    cpu: dict[str, float] = {}
    for body in found:
        key = f"iter-{body['iteration']:03d}/{body['phase']}"
        cpu[key] = round(cpu.get(key, 0.0) + float((body.get("metrics") or {}).get("cpu_seconds") or 0.0), 1)
    return cpu


def manifest_for(source: Path, root: Path, questions: int, challenger_steps: int, eval_tokens: int) -> Path:
    """The example with its relative paths made absolute (against the repository root), and the bench's budget:
    --questions, --challenger-steps (the Challenger phase is the costliest: each step generates, then has the
    frozen Solver answer every question m times), --eval-tokens (each evaluation grades the held-out file twice)."""
    doc = yaml.safe_load(source.read_text())
    spec = doc["spec"]
    spec["corpus"]["uri"] = str((REPO / spec["corpus"]["uri"]).resolve())
    if spec.get("anchors"):
        spec["anchors"]["uri"] = str((REPO / spec["anchors"]["uri"]).resolve())
    for benchmark in spec["evaluation"]["benchmarks"]:
        if benchmark.get("path") and not benchmark["path"].startswith("s3://"):
            benchmark["path"] = str((REPO / benchmark["path"]).resolve())
    spec["generation"]["numQuestions"] = questions
    spec["challenger"]["grpo"].update(steps=challenger_steps, saveEvery=challenger_steps)
    spec["evaluation"]["maxTokens"] = eval_tokens
    root.mkdir(parents=True, exist_ok=True)
    path = root / source.name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def kept_rows(root: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(root.glob("local/*/*/iter-001/label/*/train.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


def questions(root: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(root.glob("local/*/*/iter-001/generate/*/questions.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


def audit_rows(root: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(root.glob("local/*/*/iter-001/label/*/audit.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


def anchors(found: list[dict]) -> dict:
    """spec.anchors as the phase summaries of iteration 1 count them: anchors shown in Challenger prompts (generate
    and Challenger training) and anchor rows mixed into the Solver's training; 0 without anchors."""
    count = lambda phase, key: int(_sum(_metrics(found, phase, 1), key))  # noqa: E731
    shown = count("generate", "anchors_shown") + count("challenger", "anchors_shown")
    mixed = count("solver", "anchors_mixed")
    return {"anchors_used": shown + mixed, "anchors_shown": shown, "anchors_mixed": mixed}


def figures(found: list[dict], root: Path) -> dict:
    generate, label = _metrics(found, "generate", 1), _metrics(found, "label", 1)
    corpus = (generate or [{}])[0].get("corpus") or {}
    audit = audit_rows(root)
    compared, agree = _sum(label, "document_compared"), _sum(label, "document_agree")
    kept_compared = [row["document_agrees"] for row in audit if row.get("document_agrees") is not None]
    spread = lambda phase: (_metrics(found, phase, 1) or [{}])[0].get("reward_std")  # noqa: E731
    scores = lambda i: {name: entry.get("accuracy") for m in _metrics(found, "evaluate", i)  # noqa: E731
                        for name, entry in (m.get("scores") or {}).items()}
    warmup = (_metrics(found, "warmup", 0) or [{}])[0]
    return {
        "corpus": {key: corpus.get(key) for key in ("documents", "passages", "duplicates", "skipped")},
        "passages_prompted": int(_sum(generate, "requested")),
        "valid_questions_distinct_passages": len({json.dumps(r.get("provenance"), sort_keys=True)
                                                  for r in questions(root) if r.get("provenance")}),
        "requested": int(_sum(generate, "requested")),
        "valid_grounded": int(_sum(generate, "valid")),
        "kept": int(_sum(label, "kept")),
        "kept_with_provenance": sum(1 for row in kept_rows(root) if row.get("provenance")),
        "dropped": (label or [{}])[0].get("dropped"),
        "vote_vs_document": {"compared": int(compared), "agree": int(agree),
                             "agreement": round(agree / compared, 3) if compared else None,
                             "kept_compared": len(kept_compared), "kept_agree": sum(kept_compared)},
        "label_source": "document",
        "oracle": {"checked": int(_sum(label, "oracle_checked")), "correct": int(_sum(label, "oracle_correct"))},
        "challenger_reward_std": spread("challenger"),
        "solver_reward_std": spread("solver"),
        **anchors(found),
        "eval_base": scores(0), "eval_after": scores(1),
        "warmup_cached": warmup.get("cached"),
        "warmup_probe_challenger_valid": warmup.get("probe_challenger_valid"),
        "examples": [{key: row.get(key) for key in ("question", "label", "vote_label", "document_agrees")}
                     | {"document": (row.get("provenance") or {}).get("document_id")} for row in audit[:3]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=REPO / "examples" / "python-docs-local.yaml")
    parser.add_argument("--questions", type=int, default=16, help="grounded questions generated (numQuestions)")
    parser.add_argument("--challenger-steps", type=int, default=1, help="Challenger GRPO steps (the example: 2)")
    parser.add_argument("--eval-tokens", type=int, default=32, help="evaluation.maxTokens (the example: 64)")
    parser.add_argument("--cache", default=os.environ.get("RZERO_BENCH_CACHE"),
                        help="worker cache holding the warm-up (default: a fresh temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rzero-domain-bench-") as tmp:
        root = Path(tmp) / "run"
        cache = Path(args.cache) if args.cache else Path(tmp) / "cache"
        manifest = manifest_for(args.manifest, root, args.questions, args.challenger_steps, args.eval_tokens)
        wall, code = run_demo(str(manifest), root, cache)
        found = summaries(root / "rzero-runs")
        result = {"succeeded": code == 0, "wall_s": round(wall, 1), "budget_ratio": round(wall / BUDGET_S, 3),
                  "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
                  **figures(found, root / "rzero-runs"), "phase_seconds": phase_seconds(found),
                  "phase_cpu_seconds": phase_cpu_seconds(found)}
    print(json.dumps(result))
    return 0 if result["succeeded"] else 1


if __name__ == "__main__":
    sys.exit(main())
