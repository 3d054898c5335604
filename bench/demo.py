"""Wall time of the README's first command: one full R-Zero iteration of examples/local-demo.yaml on
SmolLM2-135M (CPU), phase by phase, from the phase summaries the run commits.

    .venv/bin/python bench/demo.py [--manifest examples/local-demo.yaml]

Target (issue 3): one full iteration in under 10 minutes on 2 CPU cores. The last line is one JSON object
with the headline figures; `budget_ratio` is wall time / 600 s (below 1 meets the target).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUDGET_S = 600.0


def phase_seconds(root: Path) -> dict[str, float]:
    """Seconds each committed phase reported in its summary.json, keyed 'iter-NNN/phase'."""
    seconds: dict[str, float] = {}
    for summary in sorted(root.glob("local/*/*/iter-*/**/summary.json")):
        body = json.loads(summary.read_text())
        key = f"iter-{body['iteration']:03d}/{body['phase']}"
        seconds[key] = round(seconds.get(key, 0.0) + float(body.get("seconds") or 0.0), 1)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default=str(REPO / "examples" / "local-demo.yaml"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rzero-demo-bench-") as tmp:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "rzero_operator.cli", "run", args.manifest, "--root", tmp, "--no-progress",
             "--no-report"],
            capture_output=True, text=True,
        )
        wall = time.monotonic() - started
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
        phases = phase_seconds(Path(tmp))
    for key, seconds in phases.items():
        print(f"{key:24s} {seconds:8.1f} s")
    print(f"{'wall (incl. process start)':24s} {wall:8.1f} s   budget {BUDGET_S:.0f} s")
    print(json.dumps({
        "demo_wall_s": round(wall, 1), "budget_ratio": round(wall / BUDGET_S, 3),
        "succeeded": done.returncode == 0, "phase_seconds": phases,
    }))
    return 0 if done.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
