"""`rzero approve FILE --iteration N [--reject] [--reason TEXT] [--by NAME] [--verdict ID=correct|incorrect ...]`:
decide a local run's gate, optionally with per-item verdicts on the audit sample (what a trained Verifier learns).

The decision is written as the annotations a cluster run gets from `kubectl annotate` (approval.py), into
the run's state file, atomically; the next `rzero run FILE` reads them exactly as the operator reads a
cluster run's, and records who, when and what in `status.approvals`. Only a gate the run is waiting at can
be decided (so a decision is never left lying around for a later gate), and never while `rzero run` is
running the loop (it does not wait at a gate: it saves the state and exits).
"""

from __future__ import annotations

import getpass
import sys
from datetime import datetime, timezone
from pathlib import Path

from rzero_operator import approval
from rzero_operator.local.state import load_state, save_state


def decide_gate(state_file: Path, iteration: int, *, reject: bool, reason: str, by: str, now: datetime,
                verdicts: list[str] | tuple[str, ...] = ()) -> str:
    """Record the decision in the state file; returns what was done. Raises ValueError when no gate of
    `iteration` is waiting, or for a verdict that is not `<id>=correct|incorrect`."""
    parsed, bad = approval.parse_verdicts(",".join(verdicts))
    if bad:
        raise ValueError(f"--verdict takes <question id>=correct or <question id>=incorrect, not {', '.join(bad)}")
    state = load_state(state_file)
    if state is None:
        raise ValueError(f"the run has not started yet (no {state_file})")
    gate = (state.status or {}).get("approval") or {}
    if not gate:
        raise ValueError("the run is not waiting for an approval")
    if int(gate.get("iteration", -1)) != iteration:
        raise ValueError(f"the run waits at iteration {gate.get('iteration')}'s gate ({gate.get('gate')}), "
                         f"not iteration {iteration}'s")
    key = approval.REJECT if reject else approval.APPROVE
    state.annotations[key] = str(gate["gate"])
    state.annotations[approval.DECIDED_BY] = by
    state.annotations[approval.DECIDED_AT] = now.isoformat(timespec="seconds")
    state.annotations[approval.REASON] = reason
    state.annotations.pop(approval.VERDICTS, None)  # an earlier gate's verdicts are not this one's
    if parsed:
        state.annotations[approval.VERDICTS] = ",".join(f"{v.id}={'correct' if v.correct else 'incorrect'}" for v in parsed)
    save_state(state_file, state)
    with_verdicts = f" with {len(parsed)} per-item verdict(s)" if parsed else ""
    return f"{'rejected' if reject else 'approved'} gate {gate['gate']} as {by}{with_verdicts}"


def cmd_approve(file: Path, root: Path | None, iteration: int, reject: bool, reason: str, by: str | None,
                verdicts: list[str] | None = None) -> int:
    from rzero_operator.local.executor import load_run
    from rzero_operator.local.layout import LocalLayout
    from rzero_operator.validate import InvalidManifest

    try:
        run = load_run(file)
        layout = LocalLayout.resolve(run.metadata.name, run.spec.storage.uri, root)
        done = decide_gate(layout.state_file, iteration, reject=reject, reason=reason or "",
                           by=by or getpass.getuser(), now=datetime.now(timezone.utc), verdicts=verdicts or ())
    except (InvalidManifest, ValueError) as error:
        print(f"rzero approve: {error}", file=sys.stderr)
        return 1
    print(f"{run.metadata.name}: {done}; `rzero run {file}` goes on")
    return 0
