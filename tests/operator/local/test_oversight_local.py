"""Watching a local run: the approval gate with `rzero approve` (each `rzero run` stops at a gate and the next
one resumes from the state file: a restart while waiting), a rejection stopping the run cleanly, the export
with its model card, `rzero export`, and retention deleting exactly the checkpoints nothing needs any more.
The end-to-end test runs the real worker on the tiny random model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rzero_operator.cli import main
from rzero_operator.local.approve import decide_gate
from rzero_operator.local.executor import run_local
from rzero_operator.local.state import LocalState, load_state, save_state
from rzero_worker.storage import LocalStorage, is_committed

from test_executor import executor_for, tiny_manifest, write_manifest  # the same tiny run, one more block


def waiting_state(tmp_path: Path, gate: dict | None) -> Path:
    path = tmp_path / "local" / "tiny" / "state.json"
    save_state(path, LocalState(name="tiny", uid="u", run_root=str(tmp_path / "root"),
                                status={"phase": "Suspended", **({"approval": gate} if gate else {})}))
    return path


def test_a_decision_is_written_only_for_the_gate_the_run_waits_at(tmp_path):
    from datetime import datetime, timezone

    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    path = waiting_state(tmp_path, {"gate": "2", "iteration": 2, "after": "label"})
    with pytest.raises(ValueError, match="waits at iteration 2's gate"):
        decide_gate(path, 1, reject=False, reason="", by="me", now=now)
    assert "rejected gate 2 as me" == decide_gate(path, 2, reject=True, reason="bad", by="me", now=now)
    assert load_state(path).annotations == {"rzero.dev/reject": "2", "rzero.dev/decided-by": "me",
                                            "rzero.dev/decided-at": "2025-01-01T00:00:00+00:00", "rzero.dev/reason": "bad"}
    with pytest.raises(ValueError, match="not waiting"):
        decide_gate(waiting_state(tmp_path, None), 2, reject=False, reason="", by="me", now=now)


def test_approve_and_export_say_what_is_wrong(tmp_path, capsys):
    path = write_manifest(tmp_path, tiny_manifest("/models/none", tmp_path / "runs"))
    assert main(["approve", str(path), "--iteration", "1"]) == 1
    assert "has not started yet" in capsys.readouterr().err
    assert main(["export", "--to", str(tmp_path / "out")]) == 1
    assert "give the run's manifest FILE or --from" in capsys.readouterr().err
    assert main(["export", "--from", str(tmp_path / "nothing"), "--to", str(tmp_path / "out")]) == 1
    assert "not an exported Solver" in capsys.readouterr().err


def test_gate_approve_then_reject_stops_the_run_exports_and_prunes(tmp_path, tiny_model_dir, capsys):
    from transformers import AutoModelForCausalLM

    manifest = tiny_manifest(str(tiny_model_dir), tmp_path / "runs", iterations=2, approval={},
                             export={"enabled": True}, retention={"keepLast": 1})
    path = write_manifest(tmp_path, manifest)

    assert run_local(path, progress=False, write_report=False) == 0  # stops at the gate of iteration 1
    status = executor_for(path).state.status
    assert (status["phase"], status["stage"], status["approval"]["gate"]) == ("Suspended", "AwaitingApproval", "1")
    assert "rzero approve FILE --iteration 1" in capsys.readouterr().out
    assert main(["approve", str(path), "--iteration", "1", "--by", "tester"]) == 0

    assert run_local(path, progress=False, write_report=False) == 0  # a new executor: iteration 1 goes on
    status = executor_for(path).state.status
    assert status["approval"]["gate"] == "2" and status["approvals"][0]["by"] == "tester"
    assert main(["approve", str(path), "--iteration", "2", "--reject", "--reason", "drifted", "--by", "tester"]) == 0

    assert run_local(path, progress=False) == 0
    state = executor_for(path).state
    status, root = state.status, Path(state.run_root)
    assert status["phase"] == "Succeeded" and status["stopped"]["reason"] == "Rejected"
    assert [d["decision"] for d in status["approvals"]] == ["Approved", "Rejected"]
    assert "solver" not in status["iterationHistory"][2]["phases"]  # the rejected labels were never trained on

    # export: the best (scores of a random model tie: the base model, iteration 0) and the last trained Solver
    exported = status["export"]
    assert exported["best"]["iteration"] == 0 and exported["last"]["iteration"] == 1
    for role in ("best", "last"):
        directory = Path(exported[role]["location"])
        assert (directory / "README.md").exists() and (directory / "model.safetensors").exists()
    card = (Path(exported["last"]["location"]) / "README.md").read_text()
    assert "the **last** Solver" in card and "Rejected" in card and "retention" in card  # the spec is in the card

    # retention (keepLast 1): challenger(1) is superseded by challenger(2); solver(1) is the newest Solver
    storage = LocalStorage(root)
    assert not is_committed(storage, "iter-001/challenger") and storage.list("iter-001/challenger") == []
    assert is_committed(storage, "iter-001/solver") and is_committed(storage, "iter-002/challenger")
    assert status["iterationHistory"][1]["pruned"] == ["challenger", "challenger.ckpt", "solver.ckpt"]
    assert status["storageBytes"] == sum(r.get("storageBytes") or 0 for r in status["iterationHistory"])

    out = tmp_path / "exported-last"
    assert main(["export", str(path), "--to", str(out), "--which", "last"]) == 0
    AutoModelForCausalLM.from_pretrained(out)
    assert (out / "README.md").read_text() == card
    table = capsys.readouterr().out
    assert "gate 2: Rejected by tester" in table and "exported: best" in table
    assert json.loads((root / "iter-002" / "export" / "summary.json").read_text())["metrics"]["exported"] == ["best", "last"]
