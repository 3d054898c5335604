"""Progress display for `rzero run`: what the run and its running phase are doing.

On a terminal: one tqdm bar over the run's steps (the optional warm-up, iteration 0's evaluation, then five
phases per iteration), recomputed from the status after every decision so a resumed run starts at the right
place, with the running worker's latest log line as the bar's postfix.

Elsewhere (CI logs, `| tee`, --no-progress): no bar, but the workers' own progress lines — rollout step k/n,
questions generated, answers graded, warm-up loss — are copied to stderr as they are written, so a log
shows what each phase is doing, not only when it started and finished. Only the workers' INFO and WARNING
lines from rzero's own loggers are copied: library chatter stays in the per-phase log files.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

POSTFIX_WIDTH = 60
# "2026-11-23 06:00:00,123 INFO rzero_worker.phases.label: answered 64/128 questions"
_WORKER_LINE = re.compile(r"^\S+ \S+ (?P<level>INFO|WARNING) rzero_worker\.(?:phases\.)?(?P<source>[\w.]+): (?P<text>.*)$")


def phases_done(status: dict) -> int:
    """How many phases have succeeded, read from the per-iteration history."""
    done = 0
    for entry in status.get("iterationHistory") or []:
        for info in (entry.get("phases") or {}).values():
            if (info or {}).get("state") == "Succeeded":
                done += 1
    return done


class LogFollower:
    """Reads the lines appended to a worker's log since the last call (one log at a time)."""

    def __init__(self):
        self.path: Path | None = None
        self.offset = 0

    def new_lines(self, path: Path) -> list[str]:
        if path != self.path:
            self.path, self.offset = path, 0
        try:
            with open(path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next call
        self.offset += len(complete)
        return complete.decode("utf-8", errors="replace").splitlines()


def worker_progress(line: str) -> str | None:
    """'label: answered 64/128 questions' for a worker's own INFO/WARNING line, else None."""
    match = _WORKER_LINE.match(line.strip())
    if match is None:
        return None
    warning = "warning: " if match.group("level") == "WARNING" else ""
    return f"{match.group('source')}: {warning}{match.group('text')}"


class RunProgress:
    """The progress of one run: a bar on a terminal (`enabled`), progress lines elsewhere."""

    def __init__(self, run_name: str, total_steps: int, enabled: bool = True):
        self._bar = None
        self._follower = LogFollower()
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_steps, desc=run_name, file=sys.stderr, dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} phases [{elapsed}{postfix}]",
            )

    def show(self, status: dict, total_steps: int) -> None:
        """Move the bar to the status: phases done, and which phase runs now."""
        if self._bar is None:
            return
        self._bar.total = total_steps
        self._bar.n = min(phases_done(status), self._bar.total)
        current = status.get("current") or {}
        if current.get("phase"):
            self._bar.set_description_str(f"iter {current.get('iteration')} {current['phase']}")
        else:
            self._bar.set_description_str(str(status.get("phase", "")))
        self._bar.refresh()

    def worker_log(self, path: Path) -> None:
        """Show what the running worker is doing: its last line on the bar, or its new progress lines."""
        if self._bar is not None:
            from .processes import last_line

            line = last_line(path)
            if line:
                self._bar.set_postfix_str(line[-POSTFIX_WIDTH:], refresh=True)
            return
        for line in self._follower.new_lines(path):
            text = worker_progress(line)
            if text:
                print(f"    {text}", file=sys.stderr, flush=True)

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
