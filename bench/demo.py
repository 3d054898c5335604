"""The README's first command, measured: examples/local-demo.yaml from a clean state, then again with the
format warm-up cached, and what the run showed of R-Zero's mechanism.

    .venv/bin/python bench/demo.py [--manifest examples/local-demo.yaml] [--no-rerun]

Goals (issue 9, 2 CPU cores): the clean run, warm-up included, within 600 s; a rerun whose warm-up comes
from the cache within 420 s. Both runs start with no run state; the rerun keeps only the worker cache
($RZERO_CACHE_DIR, a temporary directory here, so ~/.cache is never touched).

Printed: wall time per phase, then the mechanism's figures read from the committed phase summaries — valid
share of generated questions, questions kept, label accuracy against the exact arithmetic oracle and how
many labels it checked, the reward spread of both roles, the base model's arithmetic accuracy, the largest
worker's peak memory and the size of the run directory. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUDGET_S, RERUN_BUDGET_S = 600.0, 420.0


def summaries(root: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(root.glob("local/*/*/iter-*/**/summary.json"))]


def phase_seconds(found: list[dict]) -> dict[str, float]:
    """Seconds each committed phase reported (shards added up), keyed 'iter-NNN/phase'."""
    seconds: dict[str, float] = {}
    for body in found:
        key = f"iter-{body['iteration']:03d}/{body['phase']}"
        seconds[key] = round(seconds.get(key, 0.0) + float(body.get("seconds") or 0.0), 1)
    return seconds


def _metrics(found: list[dict], phase: str, iteration: int | None = None) -> list[dict]:
    return [b.get("metrics") or {} for b in found
            if b["phase"] == phase and (iteration is None or b["iteration"] == iteration)]


def _sum(rows: list[dict], key: str) -> float:
    return sum(float(r.get(key) or 0) for r in rows)


def mechanism(found: list[dict]) -> dict:
    """The figures of issue 9, from the committed summaries of iteration 0 and 1."""
    generate, label = _metrics(found, "generate", 1), _metrics(found, "label", 1)
    checked, correct = _sum(label, "oracle_checked"), _sum(label, "oracle_correct")
    base = _metrics(found, "evaluate", 0)
    scores = [entry for m in base for entry in (m.get("scores") or {}).values()]
    base_correct, base_n = sum(e.get("correct", 0) for e in scores), sum(e.get("n", 0) for e in scores)
    spread = lambda phase: (_metrics(found, phase, 1) or [{}])[0].get("reward_std")  # noqa: E731
    warmup = (_metrics(found, "warmup", 0) or [{}])[0]
    return {
        "valid_share": round(_sum(generate, "valid") / max(1.0, _sum(generate, "requested")), 3),
        "kept": int(_sum(label, "kept")),
        "label_accuracy": round(correct / checked, 3) if checked else None,
        "oracle_checked": int(checked),
        "challenger_reward_std": spread("challenger"),
        "solver_reward_std": spread("solver"),
        "eval_accuracy_base": round(base_correct / base_n, 3) if base_n else None,
        "eval_accuracy_after": _accuracy(_metrics(found, "evaluate", 1)),
        "warmup_probe_challenger_valid": warmup.get("probe_challenger_valid"),
        "worker_peak_rss_mb": max((float(b["metrics"].get("peak_rss_mb") or 0) for b in found), default=0.0),
    }


def _accuracy(rows: list[dict]) -> float | None:
    entries = [entry for m in rows for entry in (m.get("scores") or {}).values()]
    n = sum(e.get("n", 0) for e in entries)
    return round(sum(e.get("correct", 0) for e in entries) / n, 3) if n else None


def tensorboard_runs(root: Path) -> dict[str, int]:
    """The committed TensorBoard runs ('iter-NNN/phase...' -> event files) the demo's phases left (tracking.py)."""
    runs: dict[str, int] = {}
    for path in root.glob("local/*/*/iter-*/**/tensorboard/events.out.tfevents.*"):
        key = str(path.parent.parent).split("/iter-", 1)[1]
        runs[f"iter-{key}"] = runs.get(f"iter-{key}", 0) + 1
    return runs


def directory_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def run_demo(manifest: str, root: Path, cache: Path) -> tuple[float, int]:
    env = {**os.environ, "RZERO_CACHE_DIR": str(cache)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "rzero_operator.cli", "run", manifest, "--root", str(root), "--no-progress"],
        capture_output=True, text=True, env=env,
    )
    wall = time.monotonic() - started
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
    return wall, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default=str(REPO / "examples" / "local-demo.yaml"))
    parser.add_argument("--no-rerun", action="store_true", help="skip the second (cached warm-up) run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rzero-demo-bench-") as tmp:
        root, cache = Path(tmp) / "run", Path(tmp) / "cache"
        wall, code = run_demo(args.manifest, root, cache)
        found = summaries(root / "rzero-runs")
        figures = {"demo_wall_s": round(wall, 1), "budget_ratio": round(wall / BUDGET_S, 3), "succeeded": code == 0,
                   **mechanism(found), "run_dir_mb": directory_mb(root / "rzero-runs"),
                   "tensorboard_runs": tensorboard_runs(root / "rzero-runs")}
        for key, seconds in phase_seconds(found).items():
            print(f"{key:24s} {seconds:8.1f} s")
        print(f"{'wall (incl. process start)':24s} {wall:8.1f} s   budget {BUDGET_S:.0f} s")
        if not args.no_rerun:
            shutil.rmtree(root)  # a clean run state; the cache (the warm-up) stays
            rerun, rerun_code = run_demo(args.manifest, root, cache)
            figures.update(demo_rerun_wall_s=round(rerun, 1), rerun_budget_ratio=round(rerun / RERUN_BUDGET_S, 3),
                           rerun_succeeded=rerun_code == 0)
            print(f"{'rerun, warm-up cached':24s} {rerun:8.1f} s   budget {RERUN_BUDGET_S:.0f} s")
    print(json.dumps(figures))
    return 0 if figures["succeeded"] else 1


if __name__ == "__main__":
    sys.exit(main())
