"""`rzero worker PHASE --task FILE --nproc-per-node N`: the task is checked first, ranks start torchrun's way, and
the pod's exit code keeps the worker's contract (2 = configuration error, never retried)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rzero_worker.cli import main
from rzero_worker.launch import RankLayout, exit_code_of, launch_config, rank_command
from rzero_worker.task import EvaluateTask, ModelInput, StorageLocation


def test_a_layout_across_nodes_needs_the_first_pods_address_and_a_valid_node_rank():
    with pytest.raises(ValueError, match="--master-addr"):
        RankLayout(8, nnodes=2)
    with pytest.raises(ValueError, match="--node-rank 2"):
        RankLayout(8, nnodes=2, node_rank=2, master_addr="job-0.svc")
    with pytest.raises(ValueError, match=">= 1"):
        RankLayout(0)


def test_one_node_rendezvous_privately_and_several_nodes_at_the_first_pod():
    alone = launch_config(RankLayout(4))
    assert (alone.nproc_per_node, alone.max_nodes, alone.rdzv_backend, alone.max_restarts) == (4, 1, "c10d", 0)
    assert alone.rdzv_endpoint == "localhost:0"  # a free port: several runs may share the machine
    pods = launch_config(RankLayout(8, nnodes=4, node_rank=3, master_addr="job-0.svc", master_port=29500))
    assert (pods.min_nodes, pods.max_nodes, pods.rdzv_backend) == (4, 4, "static")
    assert pods.rdzv_endpoint == "job-0.svc:29500" and pods.rdzv_configs["rank"] == 3


def test_a_configuration_error_on_any_rank_is_the_pods_exit_code_else_it_is_retryable():
    assert exit_code_of({1: 2, 0: -15}) == 2  # rank 1 refused its task; rank 0 was stopped after it
    assert exit_code_of({0: 1}) == 1
    assert exit_code_of({3: -9}) == 1  # killed (OOM): retry


def test_each_rank_runs_the_validated_task_in_this_worker():
    task = evaluate_task("/tmp/runs", "/nonexistent.jsonl")
    command = rank_command("evaluate", task)
    assert command[:4] == ["-m", "rzero_worker", "evaluate", "--task-json"]
    assert json.loads(command[4]) == task.wire()


def evaluate_task(root, benchmark_path) -> EvaluateTask:
    return EvaluateTask(run="demo", iteration=0, storage=StorageLocation(uri=str(root)), output="iter-000/evaluate",
                        model=ModelInput(source="builtin:smollm2-135m-instruct"), device={"device": "cpu"},
                        settings={"benchmarks": [{"name": "missing", "kind": "jsonl", "path": benchmark_path}]})


def test_an_invalid_task_exits_2_before_any_rank_starts(tmp_path, capsys):
    bad = tmp_path / "task.json"
    bad.write_text(json.dumps({"phase": "solver", "run": "demo"}))
    assert main(["solver", "--task", str(bad), "--nproc-per-node", "2"]) == 2
    assert "invalid task" in capsys.readouterr().err
    assert main(["solver", "--task", str(bad), "--nproc-per-node", "2", "--nnodes", "2"]) == 2


def test_ranks_that_meet_a_configuration_error_make_the_pod_exit_2(tmp_path):
    task_file = tmp_path / "task.json"
    task_file.write_text(json.dumps(evaluate_task(tmp_path / "runs", str(tmp_path / "no-such.jsonl")).wire()))

    result = subprocess.run([sys.executable, "-m", "rzero_worker", "evaluate", "--task", str(task_file),
                             "--nproc-per-node", "2"], capture_output=True, text=True, timeout=300)

    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.count("configuration error") == 2  # both ranks said why
