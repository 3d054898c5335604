"""The model oracle on the tiny random model: resolved like any model source, run greedily through the
generation seam, one answer (the last box, or None) per question, the same on every call."""

from rzero_worker.oracles.model import ModelOracle
from rzero_worker.phases.context import PhaseContext
from rzero_worker.storage import open_storage
from rzero_worker.task import DeviceHints, LabelTask, ModelInput, OracleModelSettings, StorageLocation


def test_the_model_oracle_answers_each_question_greedily_and_deterministically(tiny_model_dir, tmp_path):
    location = StorageLocation(uri=str(tmp_path / "run"))
    task = LabelTask(run="demo", iteration=1, storage=location, output="iter-001/label/x",
                     solver=ModelInput(source="/none"), questions="iter-001/generate",
                     device=DeviceHints(device="cpu", dtype="float32", backend="transformers"))
    ctx = PhaseContext(task=task, storage=open_storage(location), workdir=tmp_path, staging=tmp_path / "staging",
                       cache_dir=tmp_path / "cache")
    oracle = ModelOracle(OracleModelSettings(source=str(tiny_model_dir), max_tokens=8, batch_size=2), ctx)
    questions = ["What is 2+2?", "What is 3*3?", "1+1?"]

    first = oracle.answer(questions)
    second = oracle.answer(questions)

    assert len(first) == 3 and all(answer is None or isinstance(answer, str) for answer in first)
    assert first == second  # greedy
    assert oracle.answer([]) == []
