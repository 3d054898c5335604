"""Per-item verdicts at the approval gate (rzero.dev/verdicts, `rzero approve --verdict`): parsed, recorded with the
decision, malformed entries named and left out, and handed to the trained Verifier's phase of the same iteration."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from rzero_operator import approval
from rzero_operator.api import RZeroRunStatus
from rzero_operator.api.oversight import ApprovalDecision, PendingApproval
from rzero_operator.local.approve import decide_gate
from rzero_operator.local.state import LocalState, load_state, save_state

NOW = datetime(2025, 1, 1, tzinfo=timezone.utc)


def test_verdicts_are_id_equals_correct_or_incorrect_separated_by_commas_or_spaces():
    verdicts, bad = approval.parse_verdicts(" a-1=correct,a-2=INCORRECT  a-3=correct. a-1=incorrect =correct x ")
    assert [(v.id, v.correct) for v in verdicts] == [("a-1", False), ("a-2", False)]  # the later verdict on a-1 wins
    assert bad == ["a-3=correct.", "=correct", "x"]
    assert approval.parse_verdicts(None) == ([], [])


def test_the_decision_records_the_verdicts_and_the_plan_collects_them_by_iteration():
    gate = PendingApproval(gate="2", iteration=2, after="label")
    annotations = {approval.APPROVE: "2", approval.VERDICTS: "q1=correct,q2=incorrect"}
    decision = approval.decision_for(gate, annotations, NOW)
    assert [(v.id, v.correct) for v in decision.verdicts] == [("q1", True), ("q2", False)]
    later = ApprovalDecision(gate="2/solver", iteration=2, after="solver", decision="Approved",
                             verdicts=approval.parse_verdicts("q2=correct")[0])
    other = ApprovalDecision(gate="1", iteration=1, after="label", decision="Approved",
                             verdicts=approval.parse_verdicts("q9=correct")[0])
    status = RZeroRunStatus(approvals=[other, decision, later])
    assert {(v.id, v.correct) for v in approval.audit_verdicts(status, 2)} == {("q1", True), ("q2", True)}
    assert approval.VERDICTS in approval.instructions(gate)


def test_rzero_approve_writes_the_verdicts_annotation_and_refuses_a_malformed_one(tmp_path):
    path = tmp_path / "state.json"
    save_state(path, LocalState(name="tiny", uid="u", run_root=str(tmp_path / "root"),
                                status={"phase": "Suspended", "approval": {"gate": "1", "iteration": 1, "after": "label"}}))
    with pytest.raises(ValueError, match="--verdict takes <question id>=correct"):
        decide_gate(path, 1, reject=False, reason="", by="me", now=NOW, verdicts=["q1=yes"])
    done = decide_gate(path, 1, reject=False, reason="", by="me", now=NOW, verdicts=["q1=correct", "q2=incorrect"])
    assert done == "approved gate 1 as me with 2 per-item verdict(s)"
    assert load_state(path).annotations[approval.VERDICTS] == "q1=correct,q2=incorrect"
