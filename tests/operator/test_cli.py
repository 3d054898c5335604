"""The `rzero` command line: every subcommand, its exit codes and messages, and its import discipline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from rzero_operator.api import IterationRecord, PhaseRecord, RZeroRunStatus
from rzero_operator.cli import main
from rzero_operator.local.layout import LocalLayout
from rzero_operator.local.state import LocalState, save_state

REPO = Path(__file__).resolve().parents[2]
SUBCOMMANDS = ("run", "status", "report", "tensorboard", "validate", "init", "crd", "benchmarks", "operator", "worker")

GOOD = textwrap.dedent(
    """
    apiVersion: rzero.dev/v1alpha1
    kind: RZeroRun
    metadata: {name: tiny}
    spec:
      model: builtin:smollm2-135m-instruct
      iterations: 1
      storage: {uri: runs}
    """
)


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert re.search(rf"^    {command}\s", out, re.MULTILINE), command


def test_validate_accepts_a_good_manifest(tmp_path, capsys):
    assert main(["validate", str(write(tmp_path, GOOD))]) == 0
    assert "valid" in capsys.readouterr().out


def test_validate_names_every_bad_field_and_exits_2(tmp_path, capsys):
    bad = yaml.safe_load(GOOD)
    bad["spec"]["iterations"] = 0
    bad["spec"]["labeling"] = {"minScore": 0.9, "maxScore": 0.2}
    bad["spec"]["generation"] = {"numQuestionz": 5}
    path = write(tmp_path, yaml.safe_dump(bad))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "spec.iterations: must be >= 1" in err
    assert "spec.labeling" in err and "minScore" in err
    assert "spec.generation.numQuestionz: unknown field" in err
    assert all(line.startswith(f"{path}: ") for line in err.strip().splitlines())


def test_validate_reports_an_unreadable_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_crd_prints_exactly_the_committed_crd(capsys):
    assert main(["crd"]) == 0
    assert capsys.readouterr().out == (REPO / "crds" / "rzeroruns.rzero.dev.yaml").read_text()


def test_validate_and_crd_never_import_the_ml_stack(tmp_path):
    path = write(tmp_path, GOOD)
    code = textwrap.dedent(
        f"""
        import sys
        from rzero_operator.cli import main
        assert main(["validate", {str(path)!r}]) == 0
        main(["crd"])
        heavy = sorted(m for m in ("torch", "transformers", "trl", "matplotlib", "kopf") if m in sys.modules)
        print("HEAVY=" + ",".join(heavy), file=sys.stderr)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY=\n" in done.stderr


def test_benchmarks_list_names_each_presets_source(capsys):
    from rzero_worker.benchmark_presets import PRESETS

    assert main(["benchmarks", "list"]) == 0
    out = capsys.readouterr().out
    for preset in PRESETS.values():
        assert f"{preset.name} ({preset.title}" in out and preset.source.repo in out


def test_benchmarks_prepare_stages_files_with_a_manifest_without_importing_the_ml_stack(tmp_path):
    from support.benchmark_files import write_published

    sources = [write_published(tmp_path / "published", name) for name in ("gsm8k", "mmlu-pro")]
    out = tmp_path / "staged"
    code = textwrap.dedent(
        f"""
        import sys
        from rzero_operator.cli import main
        code = main(["benchmarks", "prepare", "gsm8k", "mmlu-pro", "--out", {str(out)!r},
                     "--from", "gsm8k={sources[0]}", "--from", "mmlu-pro={sources[1]}"])
        heavy = sorted(m for m in ("torch", "transformers", "trl", "matplotlib", "kopf") if m in sys.modules)
        print("HEAVY=" + ",".join(heavy), file=sys.stderr)
        sys.exit(code)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "HEAVY=\n" in done.stderr
    assert "gsm8k: 2 rows" in done.stdout and "mmlu-pro: 3 rows" in done.stdout
    manifest = json.loads((out / "benchmarks.json").read_text())
    assert [entry["name"] for entry in manifest["files"]] == ["gsm8k", "mmlu-pro"]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["benchmarks", "prepare", "math", "--out", "x"], 2, "unknown benchmark 'math'"),
        (["benchmarks", "prepare", "gsm8k", "--out", "x", "--from", "gsm8k"], 2, "--from 'gsm8k': expected NAME=FILE"),
        (["benchmarks", "prepare", "gsm8k", "--out", "ftp://x"], 2, "only s3:// and local paths"),
        (["benchmarks", "prepare", "gsm8k", "--out", "x", "--from", "gsm8k=/nonexistent.jsonl"], 1, "no such file"),
    ],
)
def test_benchmarks_prepare_errors(argv, code, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == code
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("source", "code", "message"),
    [
        # A bucket S3 refuses by name is a configuration error (exit 2, never worth retrying), no traceback.
        ("s3://Bad_Bucket!/runs/iter-003/export/best", 2, 'Invalid bucket name "Bad_Bucket!"'),
        ("{tmp}/iter-003/export/best", 1, "is not a committed export"),
        ("{tmp}/iter-003/solver", 1, "not an exported Solver"),
    ],
)
def test_export_errors_name_the_problem_with_an_exit_code(source, code, message, tmp_path, capsys):
    argv = ["export", "--from", source.format(tmp=tmp_path), "--to", str(tmp_path / "out")]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("rzero export: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--peering", "rzero"], "--peering was removed"),
        (["--leader-elect"], "needs --leader-election-namespace outside a pod"),
        (["--leader-elect", "--leader-election-namespace", "ops", "--leader-election-lease-duration", "5"],
         "--leader-election-lease-duration (5.0s) must be longer than --leader-election-renew-deadline (7.0s)"),
        (["--leader-elect", "--leader-election-namespace", "ops", "--leader-election-retry-period", "6"],
         "--leader-election-renew-deadline (7.0s) must be longer than 1.2 x --leader-election-retry-period (6.0s)"),
    ],
)
def test_operator_refuses_peering_and_leader_election_settings_that_cannot_work(argv, message, monkeypatch, capsys):
    monkeypatch.delenv("RZERO_OPERATOR_NAMESPACE", raising=False)
    monkeypatch.setattr("rzero_operator.kube.leader.SERVICE_ACCOUNT_NAMESPACE", "/nonexistent/namespace")
    assert main(["operator", *argv]) == 2  # before connecting anywhere
    err = capsys.readouterr().err
    assert err.startswith("rzero operator: ") and message in err


def test_operator_passes_the_leader_election_flags_through(monkeypatch):
    seen = {}
    monkeypatch.setattr("rzero_operator.kube.main.run_operator", lambda **kwargs: seen.update(kwargs) or 0)
    monkeypatch.setenv("POD_NAME", "rzero-operator-7d9f-abcde")
    argv = ["operator", "-n", "ml", "--leader-elect", "--leader-election-namespace", "ops", "--leader-election-id",
            "rzero", "--leader-election-lease-duration", "3", "--leader-election-renew-deadline", "2",
            "--leader-election-retry-period", "0.5"]
    assert main(argv) == 0
    election = seen["election"]
    assert (election.namespace, election.name, election.identity) == ("ops", "rzero", "rzero-operator-7d9f-abcde")
    assert (election.lease_duration_s, election.renew_deadline_s, election.retry_period_s) == (3, 2, 0.5)
    assert seen["namespaces"] == ["ml"]
    assert main(["operator", "-n", "ml"]) == 0 and seen["election"] is None  # one replica: no election


def test_worker_subcommand_delegates_to_the_worker_cli(capsys):
    # An invalid task is a configuration error: exit 2, naming the field, before anything heavy runs.
    task = {"apiVersion": "rzero.dev/task-v1", "phase": "evaluate", "run": "x", "iteration": -1}
    assert main(["worker", "evaluate", "--task-json", json.dumps(task)]) == 2
    assert "iteration" in capsys.readouterr().err


def test_run_refuses_an_invalid_manifest_with_exit_2(tmp_path, capsys):
    bad = yaml.safe_load(GOOD)
    bad["spec"]["storage"] = {"uri": "ftp://host/x"}
    assert main(["run", str(write(tmp_path, yaml.safe_dump(bad))), "--root", str(tmp_path)]) == 2
    assert "spec.storage.uri" in capsys.readouterr().err


def _saved_run(tmp_path: Path) -> Path:
    """A manifest plus the state a local run of it left behind (one finished iteration)."""
    manifest = write(tmp_path, GOOD)
    layout = LocalLayout.resolve("tiny", "runs", root=tmp_path)
    done = PhaseRecord(state="Succeeded", attempts=1)
    status = RZeroRunStatus(
        phase="Running", iteration=1, stage="Labeling", message="iteration 1: label (attempt 1)",
        iteration_history=[
            IterationRecord(iteration=0, scores={"arithmetic": 0.25}, phases={"evaluate": done}),
            IterationRecord(
                iteration=1, questions_generated=16, questions_valid=10, questions_kept=6, mean_agreement=0.5,
                phases={"challenger": done, "generate": done, "label": PhaseRecord(state="Running", attempts=1)},
            ),
        ],
    )
    save_state(layout.state_file, LocalState("tiny", "u1", layout.run_root("u1"), status.wire()))
    return manifest


def test_status_prints_a_per_iteration_table_for_a_manifest(tmp_path, capsys):
    manifest = _saved_run(tmp_path)
    assert main(["status", str(manifest), "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "run tiny: Running, iteration 1, stage Labeling"
    header = next(line for line in lines if line.startswith("iter"))
    assert header.split() == ["iter", "generated", "valid", "kept", "agreement", "label=chal", "label-acc", "entropy",
                              "edge", "phases"]
    row0 = next(line for line in lines if line.startswith("0 "))
    row1 = next(line for line in lines if line.startswith("1 "))
    assert row0.split() == ["0", "-", "-", "-", "-", "-", "-", "-", "-", "evaluate✓"]
    assert row1.split()[:5] == ["1", "16", "10", "6", "0.500"]
    assert "challenger✓ generate✓ label…" in row1
    scores = lines[lines.index("accuracy % (change from iteration 0):") + 1 :]
    assert scores[0].split() == ["iteration", "arithmetic"] and scores[2].split() == ["0", "25.0"]


def test_status_without_a_manifest_lists_every_run_under_root(tmp_path, capsys):
    _saved_run(tmp_path)
    assert main(["status", "--root", str(tmp_path / "runs")]) == 0
    assert "run tiny: Running" in capsys.readouterr().out
    assert main(["status", "--root", str(tmp_path / "runs"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"]["stage"] == "Labeling"


def test_status_of_a_run_never_started_says_so(tmp_path, capsys):
    assert main(["status", str(write(tmp_path, GOOD)), "--root", str(tmp_path)]) == 1
    assert "has not started" in capsys.readouterr().err


def test_report_writes_the_markdown_and_plots_of_a_local_run(tmp_path, capsys):
    manifest = _saved_run(tmp_path)
    assert main(["report", str(manifest), "--root", str(tmp_path), "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.md").exists()
    assert (tmp_path / "rep" / "evaluation-scores.png").exists()


def test_tensorboard_runs_tensorboard_on_the_run_root_of_a_manifest(tmp_path, monkeypatch):
    from rzero_operator.local import tensorboard

    manifest = _saved_run(tmp_path)
    calls = []
    monkeypatch.setattr(tensorboard, "find_tensorboard", lambda: "/opt/bin/tensorboard")
    monkeypatch.setattr(tensorboard.subprocess, "call", lambda argv: calls.append(argv) or 0)
    assert main(["tensorboard", str(manifest), "--root", str(tmp_path), "--port", "6007"]) == 0
    run_root = LocalLayout.resolve("tiny", "runs", root=tmp_path).run_root("u1")
    assert calls == [["/opt/bin/tensorboard", "--logdir", str(run_root), "--port", "6007"]]


def test_tensorboard_prints_the_command_when_tensorboard_is_not_installed(tmp_path, monkeypatch, capsys):
    from rzero_operator.local import tensorboard

    monkeypatch.setattr(tensorboard, "find_tensorboard", lambda: None)
    assert main(["tensorboard", "--root", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == f"tensorboard --logdir {tmp_path.resolve()}"
    assert "tensorboard is not installed here" in captured.err
    assert main(["tensorboard", "--root", str(tmp_path), "--print"]) == 0
