"""`rzero worker PHASE --task ...`: validation first (exit 2, before torch), failures exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from rzero_worker import phases
from rzero_worker.cli import main
from rzero_worker.phases.runner import ConfigurationError
from rzero_worker.storage import commit, is_committed, open_storage
from rzero_worker.task import StorageLocation

OUTPUT = "iter-001/generate/shard-00000-of-00001"


def generate_task(root) -> dict:
    return {
        "phase": "generate",
        "run": "demo",
        "iteration": 1,
        "storage": {"uri": str(root)},
        "output": OUTPUT,
        "challenger": {"artifact": "iter-001/challenger"},
    }


def challenger_task_with_zero_steps(root) -> dict:
    return {
        "phase": "challenger",
        "run": "demo",
        "iteration": 1,
        "storage": {"uri": str(root)},
        "output": "iter-001/challenger",
        "challenger": {"source": "builtin:smollm2-135m-instruct"},
        "solver": {"source": "builtin:smollm2-135m-instruct"},
        "settings": {"grpo": {"steps": 0, "groupSize": 4, "updateBatchSize": 16}},
    }


@pytest.fixture
def termination_log(tmp_path, monkeypatch):
    path = tmp_path / "termination-log"
    monkeypatch.setenv("RZERO_TERMINATION_LOG", str(path))
    return path


def run_in_subprocess(argv: list[str], tmp_path, stdin: str | None = None):
    """main(argv) in a fresh interpreter; its last stdout line says whether torch got imported."""
    script = textwrap.dedent(
        f"""
        import sys
        from rzero_worker.cli import main
        code = main({argv!r})
        print("TORCH_IMPORTED=" + str("torch" in sys.modules))
        sys.exit(code)
        """
    )
    env = {**os.environ, "RZERO_TERMINATION_LOG": str(tmp_path / "subprocess-termination-log")}
    return subprocess.run(
        [sys.executable, "-c", script], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


def test_an_invalid_task_exits_2_naming_the_field_before_torch_is_imported(tmp_path):
    task = json.dumps(challenger_task_with_zero_steps(tmp_path))
    result = run_in_subprocess(["challenger", "--task-json", task], tmp_path)
    assert result.returncode == 2
    assert "settings.grpo.steps: Input should be greater than or equal to 1" in result.stderr
    assert result.stdout.strip().endswith("TORCH_IMPORTED=False")
    failure = json.loads((tmp_path / "subprocess-termination-log").read_text())
    assert failure["phase"] == "challenger" and "settings.grpo.steps" in failure["error"]


def test_a_committed_phase_exits_0_without_importing_the_ml_stack(tmp_path):
    store = open_storage(StorageLocation(uri=str(tmp_path)))
    summary = {"apiVersion": "rzero.dev/summary-v1", "phase": "generate", "metrics": {"valid": 5}}
    store.put_bytes(f"{OUTPUT}/summary.json", json.dumps(summary).encode())
    commit(store, OUTPUT)
    task_file = tmp_path / "task.json"
    task_file.write_text(json.dumps(generate_task(tmp_path)))
    result = run_in_subprocess(["generate", "--task", str(task_file)], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert json.loads(lines[-2]) == summary and lines[-1] == "TORCH_IMPORTED=False"


def test_python_dash_m_runs_the_worker_cli(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "rzero_worker", "label", "--task-json", json.dumps(generate_task(tmp_path))],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "RZERO_TERMINATION_LOG": str(tmp_path / "log")},
    )
    assert result.returncode == 2
    assert "the command line says 'label' but the task is for 'generate'" in result.stderr


def test_yaml_task_files_and_stdin_are_accepted(tmp_path, termination_log, monkeypatch):
    yaml_file = tmp_path / "task.yaml"
    yaml_file.write_text(
        "phase: challenger\nrun: demo\niteration: 1\nstorage: {uri: /tmp/x}\noutput: iter-001/challenger\n"
        "challenger: {source: a}\nsolver: {source: b}\nsettings: {grpo: {steps: 0, groupSize: 4, updateBatchSize: 2}}\n"
    )
    assert main(["challenger", "--task", str(yaml_file)]) == 2
    assert "settings.grpo.steps" in json.loads(termination_log.read_text())["error"]
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(json.dumps(challenger_task_with_zero_steps(tmp_path))))
    assert main(["challenger", "--task", "-"]) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "--task", "/nonexistent/task.json"], "task file /nonexistent/task.json: cannot read"),
        (["generate", "--task-json", "{not: [valid"], "--task-json: not valid YAML or JSON"),
        (["generate", "--task-json", "[1, 2]"], "the task must be a mapping"),
        (["generate", "--task-json", '{"phase": "train"}'], "phase: Input tag 'train'"),
        (["generate", "--task-json", '{"phase": "generate", "run": "x"}'], "iteration: Field required"),
    ],
)
def test_unreadable_or_invalid_documents_exit_2_with_a_clear_message(argv, message, termination_log, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    assert main(["generate"]) == 2
    assert main(["train", "--task-json", "{}"]) == 2


def test_a_phase_mismatch_exits_2(tmp_path, termination_log, capsys):
    assert main(["solver", "--task-json", json.dumps(generate_task(tmp_path))]) == 2
    assert "phase:" in capsys.readouterr().err


def test_a_crashing_phase_exits_1_with_traceback_and_failure_summary(
    tmp_path, termination_log, monkeypatch, capsys, caplog
):
    def crashes(ctx):
        (ctx.staging / "questions.jsonl").write_text("half")
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(phases, "load_phase", lambda name: crashes)
    assert main(["generate", "--task-json", json.dumps(generate_task(tmp_path))]) == 1
    assert "rzero worker generate: RuntimeError: CUDA out of memory" in capsys.readouterr().err
    assert "Traceback" in caplog.text and "raise RuntimeError" in caplog.text
    failure = json.loads(termination_log.read_text())
    assert failure == {
        "apiVersion": "rzero.dev/summary-v1", "phase": "generate", "run": "demo", "iteration": 1,
        "output": OUTPUT, "error": "RuntimeError: CUDA out of memory",
    }
    assert not is_committed(open_storage(StorageLocation(uri=str(tmp_path))), OUTPUT)


def test_a_configuration_error_inside_a_phase_exits_2(tmp_path, termination_log, monkeypatch):
    def refuses(ctx):
        raise ConfigurationError("benchmark gsm8k: /data/gsm8k.jsonl does not exist")

    monkeypatch.setattr(phases, "load_phase", lambda name: refuses)
    assert main(["generate", "--task-json", json.dumps(generate_task(tmp_path))]) == 2
    assert "gsm8k.jsonl does not exist" in json.loads(termination_log.read_text())["error"]


def test_a_successful_phase_exits_0_and_commits(tmp_path, termination_log, monkeypatch, capsys):
    def generates(ctx):
        (ctx.staging / "questions.jsonl").write_text("")
        return {"requested": 2, "valid": 0, "invalid": 2, "duplicates": 0}

    monkeypatch.setattr(phases, "load_phase", lambda name: generates)
    assert main(["generate", "--task-json", json.dumps(generate_task(tmp_path))]) == 0
    assert is_committed(open_storage(StorageLocation(uri=str(tmp_path))), OUTPUT)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["metrics"]["invalid"] == 2
    assert json.loads(termination_log.read_text()) == summary


@pytest.mark.parametrize("field", ["wandb", "mlflow"])
def test_a_tracker_whose_client_is_not_installed_exits_2_naming_the_field(field, tmp_path, termination_log, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == field else real(name, *a))
    task = {**generate_task(tmp_path), "tracking": {field: {}}}
    assert main(["generate", "--task-json", json.dumps(task)]) == 2
    error = json.loads(termination_log.read_text())["error"]
    assert f"tracking.{field} is set but the {field} package is not installed" in error
    assert not is_committed(open_storage(StorageLocation(uri=str(tmp_path))), OUTPUT)
