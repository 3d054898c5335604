"""The human gate: pure functions from (spec, status, the run's annotations) to gates and decisions.

A gate opens when a phase listed in `spec.approval.after` succeeds, or when the drift guard trips with
action `pause`; the run then waits (phase Suspended, stage AwaitingApproval) with the gate in
`status.approval`. Everything a gate needs is in the status, so an operator restart (or a new `rzero run`)
finds the run still waiting.

A person decides through the run's annotations — on a cluster with `kubectl annotate`, locally through
`rzero approve`, which writes the same annotations into the local state file:

    rzero.dev/approve=<gate>        approve (continue with the next step)
    rzero.dev/reject=<gate>         reject (stop the run before the work is used)
    rzero.dev/decided-by=<name>     who (Kubernetes does not record who set an annotation on the object
                                    itself; its audit log does)
    rzero.dev/reason=<text>         why (optional)
    rzero.dev/decided-at=<RFC 3339> when (optional: the time the decision is first seen otherwise)
    rzero.dev/verdicts=<id>=correct,<id>=incorrect,...
                                    per-item verdicts on the audit sample (optional; question ids of audit.jsonl):
                                    recorded with the decision, and a trained Verifier (spec.verifier.mode
                                    trained) learns from them in the same iteration's verifier phase (an id
                                    names its iteration, i001-..., so verdicts left from an earlier gate
                                    match no later audit row)

`<gate>` is the iteration number for a gate after labelling (`rzero.dev/approve=2`) and
`<iteration>/<phase>` after any other phase, so a gate never picks up an annotation left for an earlier
one. Several gates may be listed at once, comma-separated. Reject wins over approve.
"""

from __future__ import annotations

from datetime import datetime

from rzero_worker.task import AuditVerdict

from .api.oversight import ApprovalDecision, PendingApproval
from .api.spec import RZeroRunSpec
from .api.status import RZeroRunStatus
from .tasks import phase_key

PREFIX = "rzero.dev/"
APPROVE = PREFIX + "approve"
REJECT = PREFIX + "reject"
DECIDED_BY = PREFIX + "decided-by"
REASON = PREFIX + "reason"
DECIDED_AT = PREFIX + "decided-at"
VERDICTS = PREFIX + "verdicts"
ANNOTATIONS = (APPROVE, REJECT, DECIDED_BY, REASON, DECIDED_AT, VERDICTS)
VERDICT_WORDS = {"correct": True, "incorrect": False}
MAX_VERDICTS = 10000
APPROVAL_REASON = "spec.approval"


def gate_id(iteration: int, phase: str) -> str:
    return str(iteration) if phase == "label" else f"{iteration}/{phase}"


def decision_annotations(annotations: dict[str, str] | None) -> dict[str, str]:
    """The annotations a gate reads (the run may carry any number of others)."""
    return {key: str(value) for key, value in (annotations or {}).items() if key in ANNOTATIONS}


def _listed(value: str | None, gate: str) -> bool:
    return gate in {item.strip() for item in (value or "").split(",")}


def _time(value: str | None, default: datetime) -> datetime:
    try:
        parsed = datetime.fromisoformat((value or "").replace("Z", "+00:00"))
    except ValueError:
        return default
    return parsed if parsed.tzinfo is not None else default


def parse_verdicts(text: str | None) -> tuple[list[AuditVerdict], list[str]]:
    """(verdicts, entries that are not `<id>=correct|incorrect`) of a rzero.dev/verdicts value: comma- or
    whitespace-separated `<id>=<verdict>`; a later verdict on the same id wins."""
    found: dict[str, bool] = {}
    bad: list[str] = []
    for entry in (text or "").replace(",", " ").split():
        qid, sep, word = entry.partition("=")
        if not sep or not qid or word.strip().lower() not in VERDICT_WORDS or len(qid) > 256:
            bad.append(entry[:80])
            continue
        found[qid] = VERDICT_WORDS[word.strip().lower()]
    verdicts = [AuditVerdict(id=qid, correct=correct) for qid, correct in found.items()]
    if len(verdicts) > MAX_VERDICTS:
        bad.append(f"{len(verdicts) - MAX_VERDICTS} verdicts over the limit of {MAX_VERDICTS}")
    return verdicts[:MAX_VERDICTS], bad


def audit_verdicts(status: RZeroRunStatus, iteration: int) -> list[AuditVerdict]:
    """The per-item verdicts a person recorded at the gates of `iteration` (the later gate wins on an id)."""
    merged: dict[str, AuditVerdict] = {}
    for decision in status.approvals:
        if decision.iteration == iteration:
            merged.update({verdict.id: verdict for verdict in decision.verdicts})
    return list(merged.values())


def decision_for(gate: PendingApproval, annotations: dict[str, str], now: datetime) -> ApprovalDecision | None:
    """The decision the annotations hold for `gate`, or None while there is none (malformed verdict entries are
    left out: `parse_verdicts` names them)."""
    rejected, approved = _listed(annotations.get(REJECT), gate.gate), _listed(annotations.get(APPROVE), gate.gate)
    if not (rejected or approved):
        return None
    return ApprovalDecision(
        verdicts=parse_verdicts(annotations.get(VERDICTS))[0],
        gate=gate.gate, iteration=gate.iteration, after=gate.after,
        decision="Rejected" if rejected else "Approved",
        by=(annotations.get(DECIDED_BY) or "unknown").strip()[:256],
        at=_time(annotations.get(DECIDED_AT), now),
        reason=(annotations.get(REASON) or "").strip()[:1024],
    )


def gate_reasons(spec: RZeroRunSpec, phase: str) -> list[str]:
    """The approval gate's own reason to wait after `phase`, if spec.approval lists it."""
    if spec.approval is not None and phase in spec.approval.after:
        return [f"{APPROVAL_REASON}: a person approves the {phase} output before the run goes on"]
    return []


def open_gate(status: RZeroRunStatus, iteration: int, phase: str, reasons: list[str], now: datetime) -> PendingApproval | None:
    """A new gate after (iteration, phase) — None when that gate was already decided (a replayed step)."""
    gate = gate_id(iteration, phase)
    if any(decision.gate == gate for decision in status.approvals):
        return None
    audit = f"{(status.run_root or '').rstrip('/')}/{phase_key(iteration, 'label')}"
    return PendingApproval(gate=gate, iteration=iteration, after=phase, reasons=reasons, audit_sample=audit,
                           requested_at=now)


def still_required(spec: RZeroRunSpec, gate: PendingApproval) -> bool:
    """Whether the spec still asks for this gate (a spec edit may have removed the approval or the pause)."""
    wanted_by_approval = spec.approval is not None and gate.after in spec.approval.after
    wanted_by_guard = spec.guard is not None and spec.guard.action == "pause"
    return any(
        (reason.startswith(APPROVAL_REASON) and wanted_by_approval) or (not reason.startswith(APPROVAL_REASON) and wanted_by_guard)
        for reason in gate.reasons
    )


def instructions(gate: PendingApproval) -> str:
    """What to do, for the status message and the event."""
    return (f"approve: kubectl annotate rzr <name> {APPROVE}={gate.gate} {DECIDED_BY}=<you> --overwrite "
            f"(locally: rzero approve FILE --iteration {gate.iteration}); reject: {REJECT}={gate.gate} "
            f"(locally: --reject --reason ...); per-item verdicts (optional): {VERDICTS}=<id>=correct,<id>=incorrect "
            f"(locally: --verdict <id>=correct)")


def waiting_message(gate: PendingApproval) -> str:
    why = "; ".join(gate.reasons)
    return (f"iteration {gate.iteration}: waiting for approval after {gate.after} (gate {gate.gate}: {why}); "
            f"audit sample: {gate.audit_sample}; {instructions(gate)}")
