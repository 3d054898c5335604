"""Progress display for `rzero run`: one tqdm bar over the run's phases, plus the worker's latest log line.

The bar counts phases (iteration 0's evaluation, then five per iteration) and is recomputed from the status
after every decision, so a resumed run starts at the right place. While a phase runs, the last line of its
log (the worker's own progress or log output) is shown as the bar's postfix: cheap, and no protocol between
worker and executor is needed.
"""

from __future__ import annotations

import sys

from rzero_worker.task import PHASES

PHASES_PER_ITERATION = len(PHASES)
POSTFIX_WIDTH = 60


def total_phases(iterations: int) -> int:
    """Iteration 0 evaluates the base model; each later iteration runs every phase once."""
    return 1 + PHASES_PER_ITERATION * iterations


def phases_done(status: dict) -> int:
    """How many phases have succeeded, read from the per-iteration history."""
    done = 0
    for entry in status.get("iterationHistory") or []:
        for info in (entry.get("phases") or {}).values():
            if (info or {}).get("state") == "Succeeded":
                done += 1
    return done


class RunProgress:
    """A phase-level progress bar; a no-op when disabled (--no-progress, or output is not a terminal)."""

    def __init__(self, run_name: str, iterations: int, enabled: bool = True):
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_phases(iterations), desc=run_name, file=sys.stderr, dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} phases [{elapsed}{postfix}]",
            )

    def show(self, status: dict, iterations: int) -> None:
        """Move the bar to the status: phases done, and which phase runs now."""
        if self._bar is None:
            return
        self._bar.total = total_phases(iterations)
        self._bar.n = min(phases_done(status), self._bar.total)
        current = status.get("current") or {}
        if current.get("phase"):
            self._bar.set_description_str(f"iter {current.get('iteration')} {current['phase']}")
        else:
            self._bar.set_description_str(str(status.get("phase", "")))
        self._bar.refresh()

    def worker_line(self, line: str) -> None:
        if self._bar is not None and line:
            self._bar.set_postfix_str(line[-POSTFIX_WIDTH:], refresh=True)

    def write(self, message: str) -> None:
        """Print a line without breaking the bar."""
        if self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
