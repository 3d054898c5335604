"""`rzero init`: a commented starting manifest, sized by the arithmetic `rzero validate` and the operator apply,
that validates clean for the paper's models on 1, 4, 8 and 2 x 8 GPUs."""

from __future__ import annotations

import copy

import pytest
import yaml

from rzero_operator import sizing
from rzero_operator.cli import main
from rzero_operator.sizing_auto import size
from rzero_operator.validate import validate_file, validate_manifest

CLUSTERS = [(1, 1), (4, 1), (8, 1), (8, 2)]  # (GPUs per node, nodes)
AUTO_FIELDS = [("challenger", "grpo", "cpuOffload"), ("challenger", "grpo", "rolloutGpuMemoryUtilization"),
               ("solver", "grpo", "cpuOffload"), ("solver", "grpo", "rolloutGpuMemoryUtilization"),
               ("resources", "memory"), ("resources", "phases", "challenger", "memory"),
               ("resources", "phases", "solver", "memory")]


def init(tmp_path, *args: str) -> tuple[int, str]:
    path = tmp_path / "run.yaml"
    code = main(["init", *args, "-o", str(path)])
    return code, path.read_text() if path.exists() else ""


@pytest.mark.parametrize("model", ["Qwen/Qwen3-4B-Base", "Qwen/Qwen3-8B-Base"])
@pytest.mark.parametrize(("gpus", "nodes"), CLUSTERS, ids=["1", "4", "8", "2x8"])
def test_the_starting_manifest_validates_clean_and_fits(tmp_path, model, gpus, nodes):
    code, text = init(tmp_path, "--model", model, "--gpus", str(gpus), "--nodes", str(nodes))
    assert code == 0
    assert validate_file(tmp_path / "run.yaml") == []
    spec = validate_manifest(yaml.safe_load(text)).spec
    assert sizing.check(spec) == []  # no error, and no warning either: every GPU asked for is used
    challenger, solver = spec.resources.for_phase("challenger"), spec.resources.for_phase("solver")
    assert (challenger.gpus, challenger.nodes, solver.gpus, solver.nodes) == (gpus, nodes, gpus, nodes)
    assert spec.challenger.solver_gpus == gpus // 2  # the reference's half (4 of 8); none on one GPU
    assert spec.sharding.generate == spec.sharding.label == spec.sharding.evaluate == gpus * nodes
    assert "# auto: " in text and text.startswith(f"# A starting RZeroRun for {model}")


@pytest.mark.parametrize(("gpus", "nodes"), CLUSTERS, ids=["1", "4", "8", "2x8"])
def test_the_values_written_out_are_what_auto_sizes_when_they_are_deleted(tmp_path, gpus, nodes):
    code, text = init(tmp_path, "--model", "Qwen/Qwen3-8B-Base", "--gpus", str(gpus), "--nodes", str(nodes))
    written = yaml.safe_load(text)
    unset = copy.deepcopy(written)
    for path in AUTO_FIELDS:
        node = unset["spec"]
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    assert size(validate_manifest(unset).spec).spec == validate_manifest(written).spec


def test_the_reasons_are_comments_beside_the_values(tmp_path):
    code, text = init(tmp_path, "--model", "Qwen/Qwen3-4B-Base", "--gpus", "1")
    lines = text.splitlines()
    offload = next(i for i, line in enumerate(lines) if line.strip() == "cpuOffload: true")
    assert lines[offload - 2].strip().startswith("# auto: 1 training rank would keep 70.4 GiB of training state")
    assert "solverGpus: 0" in text and "memory: 96Gi" in text


def test_a_gpu_size_goes_into_the_node_selector_the_sizing_reads(tmp_path):
    code, text = init(tmp_path, "--model", "Qwen/Qwen3-8B-Base", "--gpus", "8", "--gpu-memory", "141Gi")
    spec = validate_manifest(yaml.safe_load(text)).spec
    assert code == 0 and spec.resources.node_selector == {"nvidia.com/gpu.memory": "144384"}
    assert sizing.gpu_bytes(spec, "challenger") == (141 * 2**30, False)
    assert spec.challenger.grpo.cpu_offload is False  # 4 ranks' 37 GiB fit beside 0.7 of an H200, not of an H100
    assert "of 144384 MiB" in text.splitlines()[0]


def test_impossible_input_and_an_existing_file_are_refused_with_exit_2(tmp_path, capsys):
    assert init(tmp_path, "--model", "Qwen/Qwen3-4B-Base", "--gpus", "0")[0] == 2
    assert init(tmp_path, "--model", "Qwen/Qwen3-4B-Base", "--gpu-memory", "lots")[0] == 2
    assert init(tmp_path, "--model", "Qwen/Qwen3-8B-Base", "--gpu-memory", "8Gi")[0] == 2  # no layout fits
    assert "rzero init: spec." in capsys.readouterr().err
    assert init(tmp_path, "--model", "Qwen/Qwen3-4B-Base")[0] == 0
    assert init(tmp_path, "--model", "Qwen/Qwen3-4B-Base")[0] == 2  # never overwrites


def test_an_unknown_model_gets_a_manifest_that_says_it_is_not_sized(tmp_path, capsys):
    assert main(["init", "--model", "s3://models/my-own", "--gpus", "8", "--name", "mine"]) == 0
    text = capsys.readouterr().out
    assert "rzero does not know this model's size" in text
    assert validate_manifest(yaml.safe_load(text)).metadata.name == "mine"
