"""GPU layout and memory of a run (rzero_operator.sizing): what each pod runs, and what `rzero validate` says."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from rzero_operator import sizing
from rzero_operator.cli import main
from rzero_operator.sizing_auto import size
from rzero_operator.sizing_memory import training_memory
from rzero_operator.validate import validate_manifest

REPO = Path(__file__).resolve().parents[2]
PAPER = yaml.safe_load((REPO / "examples" / "qwen3-4b-base.yaml").read_text())
GiB = 2**30


def changed(manifest: dict, changes: dict) -> dict:
    """A copy of `manifest` with `changes` applied: {"a.b.c": value} sets spec.a.b.c."""
    doc = copy.deepcopy(manifest)
    for path, value in changes.items():
        node = doc["spec"]
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return doc


def paper(**changes) -> dict:
    return changed(PAPER, changes)


def findings(doc) -> list[str]:
    return [str(finding) for finding in sizing.check(validate_manifest(doc).spec)]


def test_qwen3_shapes_give_their_published_parameter_counts():
    assert sizing.model_shape("Qwen/Qwen3-4B-Base").params == pytest.approx(4.02e9, rel=0.005)
    assert sizing.model_shape("Qwen/Qwen3-8B-Base").params == pytest.approx(8.19e9, rel=0.005)
    assert sizing.model_shape("/models/qwen3-8b-base/") is sizing.KNOWN_MODELS["qwen3-8b-base"]
    assert sizing.model_shape("builtin:smollm2-135m-instruct").params == pytest.approx(134.5e6, rel=0.01)
    assert sizing.model_shape("s3://bucket/my-own-model") is None


def test_the_paper_example_uses_every_gpu_it_asks_for_and_fits():
    spec = validate_manifest(PAPER).spec
    challenger, solver = sizing.phase_layout(spec, "challenger"), sizing.phase_layout(spec, "solver")
    assert (challenger.gpus, challenger.ranks, challenger.engines, challenger.idle) == (8, 4, 4, 0)
    assert (solver.gpus, solver.ranks, solver.idle) == (8, 8, 0)
    assert all(sizing.phase_layout(spec, phase).idle == 0 for phase in ("generate", "label", "evaluate"))
    assert sizing.check(spec) == []


def test_layouts_follow_the_gpus_of_the_pod():
    spec = validate_manifest(paper(**{"device.tensorParallelSize": 2, "challenger.solverGpus": 2})).spec
    assert sizing.phase_layout(spec, "generate", gpus=8).launch_args() == ["--nproc-per-node", "4"]
    assert sizing.phase_layout(spec, "challenger", gpus=8).launch_args() == ["--nproc-per-node", "6"]
    assert sizing.phase_layout(spec, "solver", gpus=1).launch_args() == ["--nproc-per-node", "1"]
    assert sizing.phase_layout(spec, "generate", gpus=2).launch_args() == []  # one engine: one process
    assert sizing.phase_layout(spec, "solver", gpus=0).launch_args() == []  # a CPU pod


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"challenger.solverGpus": 8}, "spec.challenger.solverGpus: error: 8 Solver GPUs leave none"),
        ({"device.tensorParallelSize": 3},
         "spec.challenger.solverGpus: error: 4 is not a multiple of spec.device.tensorParallelSize 3"),
        ({"resources.phases.solver.gpus": 5},
         "spec.solver.grpo.rolloutTensorParallelSize: error: 2 does not divide"),
        ({"resources.phases.solver.gpus": 7}, "spec.solver.grpo.updateBatchSize: error: 640 completions per update"),
        ({"solver.grpo.microBatchSize": 128}, "spec.solver.grpo.microBatchSize: error: 128 does not divide the 80"),
        ({"resources.gpus": 3}, "spec.resources.gpus: warning: 2 of the evaluate pod's 3 GPUs stay idle"),
        ({"model": "Qwen/Qwen3-8B-Base"},
         "spec.challenger.grpo.rolloutGpuMemoryUtilization: error: challenger: the vLLM rollout engine takes 0.7"),
        ({"model": "Qwen/Qwen3-8B-Base", "resources.phases.solver.gpus": 1, "solver.grpo.rolloutTensorParallelSize": 1},
         "spec.resources.phases.solver.gpus: error: solver: the training state alone needs 140.3 GiB"),
        ({"solver.grpo.gradientCheckpointing": False, "solver.grpo.microBatchSize": 8},
         "spec.resources.phases.solver.gpus: warning: solver: estimated peak"),
        ({"challenger.grpo.sharding": "ddp", "challenger.grpo.rolloutGpuMemoryUtilization": 0.1},
         "spec.resources.phases.challenger.gpus: warning: challenger: estimated peak"),
        ({"resources.nodeSelector": {"nvidia.com/gpu.memory": "24576"}},  # 24 GB GPUs, read from GPU discovery
         "spec.solver.grpo.rolloutGpuMemoryUtilization: error: solver: the vLLM rollout engine takes 0.7 of the 24.0 GiB"),
        ({"model": "Qwen/Qwen3-8B-Base", "challenger.grpo.cpuOffload": True, "solver.grpo.cpuOffload": True,
          "resources.phases.solver.memory": "256Gi"},
         "spec.resources.phases.solver.memory: warning: solver: loading and offloading need about 366.2 GiB"),
        ({"device.gpuMemoryUtilization": 0.1}, "spec.device.tensorParallelSize: error: generate engines: 7.5 GiB of"),
        ({"device.backend": "transformers", "solver.grpo.cpuOffload": True},
         "spec.solver.grpo.cpuOffload: error: solver: offloaded weights need vLLM rollouts"),
    ],
)
def test_what_cannot_work_is_refused_and_what_wastes_gpus_or_runs_tight_is_warned_naming_the_field(changes, expected):
    assert any(message.startswith(expected) for message in findings(paper(**changes))), findings(paper(**changes))


def test_a_vetoing_model_verifier_is_sized_beside_the_label_solver_on_its_gpu():
    """From iteration 2 the label pod holds the Solver and the (distinct) Verifier: both weights, two workspaces."""
    assert not findings(paper(**{"labeling.verifier": "veto"}))  # 4B + a copy of it in 0.85 of 80 GB: fits
    tight = {"labeling.verifier": "veto", "verifier.model": "Qwen/Qwen3-8B-Base",
             "resources.nodeSelector": {"nvidia.com/gpu.memory": "24576"}}
    refused = [m for m in findings(paper(**tight)) if m.startswith("spec.verifier.model")]
    assert refused == ["spec.verifier.model: error: label engines: the Solver's and the colocated Verifier's weights "
                       "and workspaces need 25.7 GiB per GPU, more than spec.device.gpuMemoryUtilization 0.85 of 24.0 "
                       "GiB: choose a smaller Verifier, an endpoint, or raise tensorParallelSize"]
    small = {**tight, "verifier.model": "Qwen/Qwen3-0.6B-Base"}
    assert not [m for m in findings(paper(**small)) if m.startswith("spec.verifier")]
    endpoint = {**tight, "verifier": {"endpoint": {"url": "http://judge:8000/v1", "model": "j"}}}
    assert not [m for m in findings(paper(**endpoint)) if m.startswith("spec.verifier")]
    assert not [m for m in findings(paper(**{"resources.nodeSelector": {"nvidia.com/gpu.memory": "24576"}}))
                if m.startswith("spec.verifier")]  # no veto: no Verifier to size


def test_a_trained_verifier_phase_is_sized_like_a_solver_grpo_phase_of_the_verifier_model():
    trained = {"labeling.verifier": "veto", "verifier.mode": "trained",
               "resources.phases.verifier": {"gpus": 8, "cpu": "32", "memory": "256Gi"}}  # as the example's Solver
    spec = validate_manifest(paper(**trained)).spec
    layout = sizing.phase_layout(spec, "verifier")
    assert (layout.gpus, layout.ranks, layout.launch) == (8, 8, True)  # like the Solver's: one training rank per GPU
    assert sizing.training_roles(spec)[-1] == ("verifier", spec.solver_model)  # a copy of the Solver's base model
    assert sizing.check(spec) == []
    sized = size(spec)
    fields = {choice.field for choice in sized.choices}
    assert {"spec.verifier.training.grpo.cpuOffload", "spec.verifier.training.grpo.rolloutGpuMemoryUtilization"} <= fields
    assert sized.spec.verifier.training.grpo.cpu_offload is not None  # a task always carries the sized value
    small = validate_manifest(paper(**trained, **{"verifier.model": "Qwen/Qwen3-0.6B-Base"})).spec
    assert training_memory(small, sizing.phase_layout(small, "verifier"), sizing.model_shape("Qwen/Qwen3-0.6B-Base")
                           ).state < training_memory(spec, layout, sizing.model_shape(spec.solver_model)).state
    huge = paper(**trained, **{"verifier.training": {"grpo": {"microBatchSize": 64, "maxCompletionTokens": 4096}}})
    assert any(m.startswith("spec.resources.phases.verifier.gpus: warning: verifier: estimated peak") and
               "spec.verifier.training.grpo.gradientCheckpointing" in m for m in findings(huge))
    assert "verifier" not in [phase for phase, _ in sizing.training_roles(validate_manifest(PAPER).spec)]


def test_offloading_the_8b_training_state_leaves_the_gpu_to_vllm():
    doc = paper(**{"model": "Qwen/Qwen3-8B-Base", "challenger.grpo.cpuOffload": True, "solver.grpo.cpuOffload": True,
                   "resources.phases.challenger.memory": "512Gi", "resources.phases.solver.memory": "512Gi"})
    assert findings(doc) == []


def test_cpu_specs_and_unknown_models_are_not_sized():
    assert findings(paper(**{"device.device": "cpu", "challenger.solverGpus": 8})) == []
    assert findings(paper(model="s3://models/custom", **{"solverSource": "s3://models/custom"})) == []


def test_fsdp_divides_the_training_state_by_the_ranks_and_offload_removes_it():
    shape = sizing.KNOWN_MODELS["qwen3-4b-base"]

    def resident(**changes):
        spec = validate_manifest(paper(**changes)).spec
        return training_memory(spec, sizing.phase_layout(spec, "solver"), shape).state / GiB

    params = shape.params
    assert resident() == pytest.approx(16 * params / 8 / GiB)
    assert resident(**{"solver.grpo.sharding": "ddp"}) == pytest.approx(16 * params / GiB)
    assert resident(**{"solver.grpo.cpuOffload": True}) == 0


def test_rzero_validate_prints_warnings_and_fails_on_errors(tmp_path, capsys):
    warned, refused = tmp_path / "warned.yaml", tmp_path / "refused.yaml"
    warned.write_text(yaml.safe_dump(paper(**{"resources.gpus": 3})))
    refused.write_text(yaml.safe_dump(paper(**{"challenger.solverGpus": 8})))

    assert main(["validate", str(warned)]) == 0
    out = capsys.readouterr()
    assert "valid" in out.out and "spec.resources.gpus: warning: 2 of the evaluate pod's 3 GPUs" in out.err

    assert main(["validate", str(refused)]) != 0
    assert "spec.challenger.solverGpus: error:" in capsys.readouterr().err


def test_the_tables_of_docs_gpu_sizing_are_this_arithmetic():
    doc = (REPO / "docs" / "gpu-sizing.md").read_text()

    def number(value):
        return "0" if value == 0 else f"{value / GiB:.1f}"

    for label, source in (("4B", "Qwen/Qwen3-4B-Base"), ("8B", "Qwen/Qwen3-8B-Base")):
        for offload in (False, True):
            spec = validate_manifest(paper(model=source, **{"challenger.grpo.cpuOffload": offload,
                                                            "solver.grpo.cpuOffload": offload})).spec
            for phase, name in (("challenger", "Challenger"), ("solver", "Solver")):
                layout = sizing.phase_layout(spec, phase)
                m = training_memory(spec, layout, sizing.model_shape(source))
                cells = [label, "yes" if offload else "no", f"{name} ({layout.ranks})", number(m.state),
                         number(m.reference), number(m.gathered), number(m.activations), number(m.overhead),
                         number(m.resident), number(m.peak), f"{m.host / GiB:.0f}"]
                assert "| " + " | ".join(cells) + " |" in doc


# --------------------------------------------------------------------------------------------------
# auto: unset cpuOffload, rolloutGpuMemoryUtilization and memory (sizing_auto)

MINIMAL = {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "minimal"},
           "spec": {"model": "Qwen/Qwen3-4B-Base", "storage": {"uri": "s3://bucket/runs"}}}


def minimal(**changes) -> dict:
    return changed(MINIMAL, changes)


def test_the_minimal_manifest_fits_one_gpu_by_offloading_as_the_reference_does(tmp_path, capsys):
    sized = size(validate_manifest(MINIMAL).spec)
    assert sized.findings == ()
    for role in (sized.spec.challenger.grpo, sized.spec.solver.grpo):
        assert (role.cpu_offload, role.rollout_gpu_memory_utilization) == (True, 0.7)
    assert [sized.spec.resources.for_phase(p).memory for p in ("challenger", "solver", "generate")] == \
        ["96Gi", "88Gi", "32Gi"]
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr()
    assert out.err == "" and "spec.challenger.grpo.cpuOffload: auto: true (1 training rank would keep 70.4 GiB" in out.out


def test_auto_keeps_what_fits_and_never_changes_a_set_value():
    sized = size(validate_manifest(minimal(**{"resources.gpus": 8, "challenger.solverGpus": 4})).spec).spec
    assert (sized.challenger.grpo.cpu_offload, sized.solver.grpo.cpu_offload) == (False, False)  # 19.9 / 11.4 GiB fit
    kept = size(validate_manifest(minimal(**{"solver.grpo.cpuOffload": False, "resources.memory": "16Gi",
                                             "solver.grpo.rolloutGpuMemoryUtilization": 0.2})).spec)
    assert (kept.spec.solver.grpo.cpu_offload, kept.spec.solver.grpo.rollout_gpu_memory_utilization) == (False, 0.2)
    assert kept.spec.resources.for_phase("solver").memory == "16Gi"
    assert any(e.startswith("spec.solver.grpo.rolloutGpuMemoryUtilization: error: solver: the vLLM rollout engine "
                            "takes 0.2") and "auto" not in e for e in kept.errors)


def test_with_offload_refused_auto_sizes_the_rollout_share_down_to_what_fits():
    doc = minimal(model="Qwen/Qwen3-8B-Base", **{"resources.gpus": 8, "challenger.solverGpus": 4,
                                                 "challenger.grpo.cpuOffload": False})
    sized = size(validate_manifest(doc).spec)
    assert sized.spec.challenger.grpo.rollout_gpu_memory_utilization == 0.5  # 37.3 GiB stay on each GPU
    assert sized.errors == []


def test_when_no_share_fits_the_error_says_auto_chose_it():
    doc = minimal(model="Qwen/Qwen3-8B-Base", **{"challenger.grpo.cpuOffload": False,
                                                 "resources.nodeSelector": {"nvidia.com/gpu.memory": "163840"}})
    errors = size(validate_manifest(doc).spec).errors
    assert any(e.startswith("spec.challenger.grpo.rolloutGpuMemoryUtilization: error:")
               and e.endswith("(unset: auto sized it to 0.7)") for e in errors), errors


def test_what_cannot_be_sized_keeps_the_values_of_before():
    for doc in (minimal(model="s3://models/custom"), minimal(**{"device.device": "cpu"}),
                minimal(**{"device.backend": "transformers"}), minimal(**{"resources.gpus": 0})):
        sized = size(validate_manifest(doc).spec)
        grpo = sized.spec.challenger.grpo
        assert (grpo.cpu_offload, grpo.rollout_gpu_memory_utilization) == (False, 0.7), doc["spec"]
        memory = sized.spec.resources.for_phase("challenger").memory
        assert memory == ("40Gi" if doc["spec"].get("device") == {"backend": "transformers"} else "32Gi")  # loading 6P


def test_the_table_of_what_auto_chooses_in_docs_gpu_sizing_is_this_arithmetic():
    from rzero_operator.init import Cluster, starter

    doc = (REPO / "docs" / "gpu-sizing.md").read_text()
    for label, source in (("4B", "Qwen/Qwen3-4B-Base"), ("8B", "Qwen/Qwen3-8B-Base")):
        for gpus, nodes in ((1, 1), (4, 1), (8, 1), (8, 2)):
            spec = validate_manifest(yaml.safe_load(starter(source, Cluster(gpus, nodes)).text)).spec
            for phase in ("challenger", "solver"):
                layout, grpo = sizing.phase_layout(spec, phase), getattr(spec, phase).grpo
                whole = spec.model_copy(deep=True)
                getattr(whole, phase).grpo.cpu_offload = False
                resident = training_memory(whole, layout, sizing.model_shape(source)).resident
                host = training_memory(spec, layout, sizing.model_shape(source)).host
                cells = [label, f"{nodes}x{gpus}" if nodes > 1 else str(gpus),
                         f"{phase.title()} ({layout.ranks * layout.nodes})", f"{resident / GiB:.1f} GiB",
                         str(grpo.cpu_offload).lower(), f"{grpo.rollout_gpu_memory_utilization:g}",
                         f"{host / GiB:.1f} GiB", spec.resources.for_phase(phase).memory]
                assert "| " + " | ".join(cells) + " |" in doc, cells
    minimal_spec = size(validate_manifest(MINIMAL).spec).spec
    one = validate_manifest(yaml.safe_load(starter("Qwen/Qwen3-4B-Base", Cluster(1)).text)).spec
    for phase in ("challenger", "solver"):  # the 1-GPU rows are the minimal manifest's too
        assert minimal_spec.resources.for_phase(phase).memory == one.resources.for_phase(phase).memory


def test_an_open_ended_model_verifier_is_sized_beside_the_label_solver_as_the_veto_is():
    tight = {"task": {"kind": "open-ended", "description": "emails"}, "verifier.model": "Qwen/Qwen3-8B-Base",
             "resources.nodeSelector": {"nvidia.com/gpu.memory": "24576"}}
    refused = [m for m in findings(paper(**tight)) if m.startswith("spec.verifier.model")]
    assert refused and "label engines: the Solver's and the colocated Verifier's weights" in refused[0]


def test_a_verifier_with_gpus_of_its_own_adds_them_to_the_label_pod_after_the_label_engines():
    spec = validate_manifest(paper(**{"labeling.verifier": "veto", "verifier.gpus": 2})).spec
    label = sizing.phase_layout(spec, "label")  # the example's label pods: 1 GPU, one engine
    assert (label.gpus, label.engines, label.verifier, label.pod_gpus) == (1, 1, 2, 3)
    local = sizing.phase_layout(spec, "label", gpus=8)  # `rzero run --gpus 8`: the Verifier's 2 come out of the 8
    assert (local.engines, local.ranks, local.verifier, local.pod_gpus) == (6, 6, 2, 8)
    assert sizing.phase_layout(spec, "generate").verifier == 0  # only the label phase judges
    no_veto = validate_manifest(paper(**{"verifier.gpus": 2})).spec  # no model Verifier in the run: nothing added
    assert sizing.phase_layout(no_veto, "label").pod_gpus == 1
    cpu = validate_manifest(paper(**{"labeling.verifier": "veto", "verifier.gpus": 2, "device.device": "cpu"})).spec
    assert sizing.phase_layout(cpu, "label").verifier == 0 and findings(paper(**{
        "labeling.verifier": "veto", "verifier.gpus": 2, "device.device": "cpu"})) == []  # CPU: changes nothing


def test_a_verifier_on_its_own_gpus_is_sized_alone_there_and_not_beside_the_label_solver():
    """Colocated, an 8B Verifier and the 4B Solver do not fit a 16 GiB GPU; on 1 GPU of its own the 8B weights
    (15.3 GiB) and a workspace do not either; on 2 GPUs of its own (tensor parallel) they do."""
    tight = {"labeling.verifier": "veto", "verifier.model": "Qwen/Qwen3-8B-Base",
             "resources.nodeSelector": {"nvidia.com/gpu.memory": "16384"}}

    def verifier_messages(**changes):
        return [m for m in findings(paper(**{**tight, **changes})) if m.startswith("spec.verifier")]

    assert verifier_messages()[0].startswith("spec.verifier.model: error: label engines: the Solver's and the "
                                             "colocated Verifier's weights and workspaces need 25.7 GiB per GPU")
    assert verifier_messages(**{"verifier.gpus": 1}) == [
        "spec.verifier.gpus: error: the Verifier's engine on its own 1 GPU: 16.8 GiB of weights and workspace per "
        "GPU, more than spec.device.gpuMemoryUtilization 0.85 of 16.0 GiB: give it more GPUs or choose a smaller "
        "Verifier"]
    assert verifier_messages(**{"verifier.gpus": 2}) == []
    assert verifier_messages(**{"verifier.gpus": 2, "resources.phases.label": {"gpus": 0}}) == [
        "spec.verifier.gpus: warning: ignored: the label pod has no GPUs of its own (spec.resources.phases.label.gpus "
        "0), so its Verifier runs beside the Solver on the CPU"]


def test_an_endpoint_verifier_with_gpus_is_refused_naming_the_field(tmp_path, capsys):
    refused = tmp_path / "endpoint-gpus.yaml"
    refused.write_text(yaml.safe_dump(paper(**{"labeling.verifier": "veto", "verifier": {
        "gpus": 1, "endpoint": {"url": "http://judge:8000/v1", "model": "j"}}})))
    assert main(["validate", str(refused)]) != 0
    assert ("spec.verifier.gpus: an endpoint Verifier runs on no GPU of the run; set gpus: 0 or a model Verifier"
            in capsys.readouterr().err)
