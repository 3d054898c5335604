"""A local run with a trained Verifier (spec.verifier.mode trained) on the tiny random model: the real worker runs
the verifier phase between label and solver, commits its checkpoint and its record reaches the history and the
status table."""

from __future__ import annotations

from pathlib import Path

from rzero_operator.local.executor import run_local
from rzero_operator.local.table import format_status_table
from rzero_worker.storage import LocalStorage, is_committed
from support.local_runs import tiny_manifest, write_manifest

from test_executor import executor_for


def test_a_local_run_trains_the_verifier_after_labelling_and_records_it(tmp_path, tiny_model_dir):
    grpo = {"steps": 1, "groupSize": 2, "rolloutBatchSize": 2, "updateBatchSize": 2, "maxCompletionTokens": 8}
    manifest = tiny_manifest(str(tiny_model_dir), tmp_path / "runs", labeling={
        "samples": 2, "sampling": {"maxTokens": 12}, "gradingWorkers": 1, "auditSize": 2, "verifier": "veto"},
        verifier={"mode": "trained", "maxTokens": 8, "training": {"grpo": grpo}})
    path = write_manifest(tmp_path, manifest)

    assert run_local(path, progress=False) == 0

    status = executor_for(path).state.status
    assert status["phase"] == "Succeeded", status["message"]
    record = next(entry for entry in status["iterationHistory"] if entry["iteration"] == 1)
    assert set(record["phases"]) == {"challenger", "generate", "label", "verifier", "solver", "evaluate"}
    assert record["verifierCheckpoint"] == "iter-001/verifier"
    trained = record["verifierTraining"]
    assert trained["examples"] == trained["trainExamples"] + trained["heldOut"]
    assert trained["steps"] == (0 if trained.get("skipped") else 1)
    storage = LocalStorage(Path(executor_for(path).state.run_root))
    assert is_committed(storage, "iter-001/verifier") and storage.list("iter-001/verifier/model")
    table = format_status_table("tiny", status).splitlines()
    assert any(line.startswith("verifier, iteration 1: ") for line in table)
    assert next(line for line in table if line.startswith("1 ")).endswith("label✓ verifier✓ solver✓ evaluate✓")
