"""Phase `export`: the best and the last Solver as plain Hugging Face directories with a model card."""

from __future__ import annotations

import pytest
import yaml

from rzero_worker.phases import load_phase
from rzero_worker.phases.runner import run_phase
from rzero_worker.storage import commit, is_committed, open_storage, read_manifest
from rzero_worker.task import (
    CardRow,
    DeviceHints,
    ExportedModel,
    ExportTask,
    ModelCardData,
    ModelInput,
    StorageLocation,
)

CPU = DeviceHints(device="cpu", dtype="float32", backend="transformers")
SPEC = {"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "iterations": 3, "storage": {"uri": "s3://bucket/runs"}}


def card() -> ModelCardData:
    rows = [
        CardRow(iteration=0, mean_score=0.40, scores={"gsm8k": 0.40}),
        CardRow(iteration=1, kept=120, label_accuracy=0.79, label_accuracy_ci95=[0.70, 0.86], oracle_checked=64,
                oracle="endpoint", mean_score=0.46, scores={"gsm8k": 0.46}),
        CardRow(iteration=2, kept=97, label_accuracy=0.63, label_accuracy_ci95=[0.51, 0.74], oracle_checked=64,
                oracle="endpoint", mean_score=0.44, scores={"gsm8k": 0.44}),
    ]
    return ModelCardData(base_model=SPEC["model"], iterations=3, stopped="EarlyStopped: label accuracy fell",
                         rows=rows, spec=SPEC)


def commit_solver(location: StorageLocation, iteration: int, model_dir) -> None:
    store = open_storage(location)
    store.upload_dir(model_dir, f"iter-{iteration:03d}/solver/model")
    commit(store, f"iter-{iteration:03d}/solver")


def export_task(location, best: ExportedModel, last: ExportedModel) -> ExportTask:
    return ExportTask(run="demo", iteration=2, storage=location, output="iter-002/export", device=CPU,
                      best=best, last=last, card=card())


def test_best_and_last_solvers_become_loadable_directories_with_a_model_card(storage_location, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    for iteration in (1, 2):
        commit_solver(storage_location, iteration, tiny_model_dir)
    task = export_task(storage_location, ExportedModel(iteration=1, model=ModelInput(artifact="iter-001/solver")),
                       ExportedModel(iteration=2, model=ModelInput(artifact="iter-002/solver")))

    assert run_phase(task, load_phase("export"), cache_dir=tmp_path / "cache") == 0

    store = open_storage(storage_location)
    assert is_committed(store, "iter-002/export")
    files = {entry.path for entry in read_manifest(store, "iter-002/export").files}
    for role in ("best", "last"):
        assert {f"{role}/config.json", f"{role}/model.safetensors", f"{role}/README.md"} <= files
        assert not any(path.endswith(".rzero-complete") for path in files)
    local = tmp_path / "copy"
    store.download_dir("iter-002/export/best", local)
    AutoModelForCausalLM.from_pretrained(local)  # a plain Hugging Face directory

    readme = (local / "README.md").read_text()
    front, body = readme.split("---\n")[1], readme.split("---\n", 2)[2]
    assert yaml.safe_load(front)["base_model"] == SPEC["model"]
    assert "**best** iteration" in body and "iteration 1" in body
    assert "| 1 | 120 | 79.0 [70.0, 86.0] (n=64, endpoint) | 46.0 | 46.0 |" in body
    assert "| 2 | 97 | 63.0 [51.0, 74.0] (n=64, endpoint) | 44.0 | 44.0 |" in body
    assert "stopped early: EarlyStopped" in body
    assert yaml.safe_load(body.split("```yaml\n")[1].split("```")[0]) == SPEC
    last_card = store.get_bytes("iter-002/export/last/README.md").decode()
    assert "the **last** Solver" in last_card and "**best**" not in last_card


def test_a_base_model_that_scored_best_is_exported_once_as_best_and_last(local_location, tiny_model_dir, tmp_path):
    base = ExportedModel(iteration=0, model=ModelInput(source=str(tiny_model_dir)))
    task = export_task(local_location, base, base)

    run_phase(task, load_phase("export"), cache_dir=tmp_path / "cache")

    store = open_storage(local_location)
    files = {entry.path for entry in read_manifest(store, "iter-002/export").files}
    assert "best/model.safetensors" in files and not any(path.startswith("last/") for path in files)
    readme = store.get_bytes("iter-002/export/best/README.md").decode()
    assert "the base model itself" in readme and "**best**" in readme and "**last**" in readme


@pytest.mark.slow
def test_a_gguf_base_model_is_exported_as_safetensors(local_location, smollm2_gguf, tmp_path):
    base = ExportedModel(iteration=0, model=ModelInput(source="builtin:smollm2-135m-instruct"))
    run_phase(export_task(local_location, base, base), load_phase("export"), cache_dir=tmp_path / "cache")
    files = {entry.path for entry in read_manifest(open_storage(local_location), "iter-002/export").files}
    assert "best/model.safetensors" in files and not any(path.endswith(".gguf") for path in files)
