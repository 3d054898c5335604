"""GPU layout and memory of a run: how many ranks and engines each phase's pods run, and whether they fit.

Pure (no torch, no I/O); docs/gpu-sizing.md explains the arithmetic and works it for Qwen3-4B-Base and
Qwen3-8B-Base.

Layout of a pod with g GPUs (the Job builder and the local executor launch what `phase_layout` says):
- challenger: g - solverGpus training ranks, and solverGpus / tensorParallelSize Solver engines;
- solver, and a trained Verifier's verifier phase (spec.verifier.mode trained): g training ranks;
- generate, label: g / tensorParallelSize ranks, one vLLM engine each; the label pod has spec.verifier.gpus more
  GPUs (its last ones) for a model Verifier of its own (0: colocated on rank 0's GPUs);
- evaluate: one engine on tensorParallelSize GPUs.
Training ranks run under the launcher even on one GPU (FSDP, CPU offload); CPU pods (g = 0) run one process.

`check(spec)` returns findings: errors for what cannot work (a layout that does not divide, weights or training
state larger than the GPU), warnings for idle GPUs and for estimates (activations, KV cache) near the limit.
Memory is only checked for models whose shape is known (`KNOWN_MODELS`) and GPU specs (`device.device` not cpu).
Fields left unset (auto: cpuOffload, rolloutGpuMemoryUtilization, resources.memory) are sized first by
`sizing_auto.size`, which `rzero validate`, the operator and `rzero run` call alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .api.spec import RZeroRunSpec

GiB = 1024**3
# An "80 GB" A100/H100 (81,559 MiB, as GPU feature discovery labels it); a node selector on nvidia.com/gpu.memory wins
DEFAULT_GPU_GIB = 81559 / 1024
GPU_MEMORY_LABEL = "nvidia.com/gpu.memory"
CUDA_OVERHEAD = 3 * GiB  # CUDA context, NCCL buffers, allocator fragmentation
ENGINE_WORKSPACE = 1.5 * GiB  # vLLM activations and sampler buffers, outside weights and KV cache
TRAINING_PHASES = ("challenger", "solver", "verifier")
ENGINE_PHASES = ("generate", "label")


@dataclass(frozen=True)
class ModelShape:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool

    @property
    def layer_params(self) -> int:
        attention = self.hidden * self.head_dim * (2 * self.heads + 2 * self.kv_heads) + 2 * self.head_dim
        return attention + 3 * self.hidden * self.intermediate + 2 * self.hidden

    @property
    def embedding_params(self) -> int:
        """One vocabulary matrix: the embeddings, or the LM head (accelerate gives each its own FSDP unit)."""
        return self.vocab * self.hidden

    @property
    def params(self) -> int:
        return self.layers * self.layer_params + self.embedding_params * (1 if self.tied else 2) + self.hidden

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * 2  # K and V, bf16


_QWEN3 = dict(head_dim=128, vocab=151936)
KNOWN_MODELS = {
    "qwen3-0.6b-base": ModelShape(28, 1024, 16, 8, intermediate=3072, tied=True, **_QWEN3),
    "qwen3-1.7b-base": ModelShape(28, 2048, 16, 8, intermediate=6144, tied=True, **_QWEN3),
    "qwen3-4b-base": ModelShape(36, 2560, 32, 8, intermediate=9728, tied=True, **_QWEN3),
    "qwen3-8b-base": ModelShape(36, 4096, 32, 8, intermediate=12288, tied=False, **_QWEN3),
    "smollm2-135m-instruct": ModelShape(30, 576, 9, 3, head_dim=64, intermediate=1536, vocab=49152, tied=True),
}


def model_shape(source: str) -> ModelShape | None:
    """The shape of a model named like a known one (hub id, directory or builtin alias; case ignored)."""
    name = source.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].lower().removesuffix(".gguf")
    return KNOWN_MODELS.get(name) or next((shape for key, shape in KNOWN_MODELS.items() if name.startswith(key)), None)


# --------------------------------------------------------------------------------------------------
# Layout


@dataclass(frozen=True)
class PhaseLayout:
    phase: str
    gpus: int  # per pod
    nodes: int
    ranks: int  # processes per pod
    launch: bool  # started by the worker's launcher (`--nproc-per-node ranks`)
    engines: int  # inference engines per pod (generation, labelling, evaluation, the Challenger's Solver)
    idle: int  # GPUs per pod that nothing uses
    verifier: int = 0  # label: GPUs per pod, after `gpus`, that serve the model Verifier (spec.verifier.gpus)

    @property
    def pod_gpus(self) -> int:
        """The GPUs the pod requests."""
        return self.gpus + self.verifier

    def launch_args(self) -> list[str]:
        return ["--nproc-per-node", str(self.ranks)] if self.launch else []


def phase_layout(spec: RZeroRunSpec, phase: str, gpus: int | None = None) -> PhaseLayout:
    """What a pod of `phase` runs; `gpus` overrides the spec's pod shape (local runs: the machine's GPUs, of which
    the label phase's Verifier takes its own)."""
    shape = spec.resources.for_phase(phase)
    own = verifier_gpus(spec, phase)
    gpus = shape.gpus if gpus is None else max(0, gpus - own)
    gpus = 0 if spec.device.device == "cpu" else gpus
    nodes = (shape.nodes or 1) if phase in TRAINING_PHASES else 1
    tp = spec.device.tensor_parallel_size
    if phase == "challenger":
        solver = min(spec.challenger.solver_gpus, gpus)
        ranks, engines = max(1, gpus - solver), spec.challenger.solver_gpus // tp
        idle = solver % tp if gpus else 0
        return PhaseLayout(phase, gpus, nodes, ranks, gpus > 0 or nodes > 1, engines, idle)
    if phase in ("solver", "verifier"):
        return PhaseLayout(phase, gpus, nodes, max(1, gpus), gpus > 0 or nodes > 1, 0, 0)
    if phase in ENGINE_PHASES:
        engines = max(1, gpus // tp)
        return PhaseLayout(phase, gpus, 1, engines, engines > 1, engines, max(0, gpus - engines * tp) if gpus else 0,
                           own if gpus else 0)
    return PhaseLayout(phase, gpus, 1, 1, False, 1, max(0, gpus - tp))


# --------------------------------------------------------------------------------------------------
# Findings


@dataclass(frozen=True)
class Finding:
    level: Literal["error", "warning"]
    field: str  # the spec field to change, e.g. "spec.resources.phases.challenger.gpus"
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.level}: {self.message}"


def grpo_field(phase: str) -> str:
    """Where a training phase's GRPO settings are in the spec."""
    return "spec.verifier.training.grpo" if phase == "verifier" else f"spec.{phase}.grpo"


def training_roles(spec: RZeroRunSpec) -> list[tuple[str, str]]:
    """(training phase, model source) of the run: Challenger, Solver, and a trained Verifier (like a Solver GRPO phase
    of the Verifier model)."""
    roles = [("challenger", spec.model), ("solver", spec.solver_model)]
    source = verifier_model(spec)
    return roles + ([("verifier", source)] if spec.trained_verifier and source else [])


def gpus_field(spec: RZeroRunSpec, phase: str) -> str:
    override = getattr(spec.resources.phases, phase)
    return f"spec.resources.phases.{phase}.gpus" if override and override.gpus is not None else "spec.resources.gpus"


def gpu_bytes(spec: RZeroRunSpec, phase: str) -> tuple[float, bool]:
    """(memory per GPU in bytes, whether it was assumed rather than read from the node selector)."""
    label = spec.resources.for_phase(phase).node_selector.get(GPU_MEMORY_LABEL, "")
    return (float(label) * 1024**2, False) if label.isdigit() else (DEFAULT_GPU_GIB * GiB, True)


def check(spec: RZeroRunSpec, gpus: int | None = None) -> list[Finding]:
    """Every finding for the spec's pods (none for CPU specs), its unset (auto) fields sized first
    (sizing_auto.size: what `rzero validate`, the operator and `rzero run` all call). `gpus`: every phase's pod
    shape replaced by this many GPUs (`rzero run --gpus`)."""
    from .sizing_auto import size

    return list(size(spec, gpus).findings)


def sized_findings(spec: RZeroRunSpec, gpus: int | None = None) -> list[Finding]:
    """The findings of a spec whose auto fields are already sized."""
    if spec.device.device == "cpu":
        return []
    findings: list[Finding] = []
    for phase in ("challenger", "generate", "label", "solver", "evaluate") + (("verifier",) if spec.trained_verifier else ()):
        layout = phase_layout(spec, phase, gpus)
        findings += _layout_findings(spec, layout)
    findings += memory_findings(spec, gpus)
    return findings


def _layout_findings(spec: RZeroRunSpec, layout: PhaseLayout) -> list[Finding]:
    phase, gpus, tp = layout.phase, layout.gpus, spec.device.tensor_parallel_size
    out: list[Finding] = []
    if gpus == 0:
        return out
    if phase == "challenger":
        solver = spec.challenger.solver_gpus
        if solver >= gpus:
            out.append(Finding("error", "spec.challenger.solverGpus", f"{solver} Solver GPUs leave none of the pod's "
                               f"{gpus} ({gpus_field(spec, phase)}) to train on"))
        elif solver % tp:
            out.append(Finding("error", "spec.challenger.solverGpus", f"{solver} is not a multiple of "
                               f"spec.device.tensorParallelSize {tp} (GPUs per Solver engine)"))
    if phase in TRAINING_PHASES:
        out += _geometry_findings(spec, layout)
    if layout.idle:
        what = {"evaluate": f"evaluation runs one engine on spec.device.tensorParallelSize {tp} GPUs"}.get(
            phase, f"{layout.engines} engines of spec.device.tensorParallelSize {tp} GPUs")
        out.append(Finding("warning", gpus_field(spec, phase), f"{layout.idle} of the {phase} pod's {gpus} GPUs stay "
                           f"idle: {what}"))
    return out


def _geometry_findings(spec: RZeroRunSpec, layout: PhaseLayout) -> list[Finding]:
    grpo, world, where = getattr(spec, layout.phase).grpo, layout.ranks * layout.nodes, grpo_field(layout.phase)
    out = []
    per_update = grpo.update_batch_size * grpo.group_size
    if per_update % world:
        out.append(Finding("error", f"{where}.updateBatchSize", f"{per_update} completions per update "
                           f"(updateBatchSize x groupSize) do not divide over the phase's {world} training ranks"))
    elif grpo.micro_batch_size and (per_update // world) % grpo.micro_batch_size:
        out.append(Finding("error", f"{where}.microBatchSize", f"{grpo.micro_batch_size} does not divide the "
                           f"{per_update // world} completions each of the {world} ranks takes per update"))
    if world % grpo.rollout_tensor_parallel_size:
        out.append(Finding("error", f"{where}.rolloutTensorParallelSize", f"{grpo.rollout_tensor_parallel_size} does "
                           f"not divide the phase's {world} training ranks (GPUs per rollout engine)"))
    return out


def memory_findings(spec: RZeroRunSpec, gpus: int | None = None) -> list[Finding]:
    from .sizing_memory import engine_findings, training_findings

    out: list[Finding] = []
    for phase, source in training_roles(spec):
        shape = model_shape(source)
        if shape is not None:
            out += training_findings(spec, phase_layout(spec, phase, gpus), shape)
    for phase, source in (("generate", spec.model), ("label", spec.solver_model), ("evaluate", spec.solver_model),
                          ("challenger", spec.solver_model)):
        shape = model_shape(source)
        layout = phase_layout(spec, phase, gpus)
        if shape is not None and layout.gpus and (phase != "challenger" or spec.challenger.solver_gpus):
            out += engine_findings(spec, layout, shape)
    return out + verifier_findings(spec, gpus)


def verifier_model(spec: RZeroRunSpec) -> str | None:
    """The model source of a vetoing (or, in an open-ended run, scoring) model Verifier (its default: the Solver's
    base model), else None."""
    if (spec.labeling.verifier != "veto" and not spec.task.open_ended) or spec.verifier.endpoint is not None:
        return None
    return spec.verifier.model or spec.solver_model


def verifier_gpus(spec: RZeroRunSpec, phase: str) -> int:
    """GPUs a pod of `phase` adds for the model Verifier (spec.verifier.gpus: the label phase only; 0 on CPU). The
    label task carries them; its rank 0 takes the pod's last ones (a pod that shows no GPU judges as colocated)."""
    if phase != "label" or spec.device.device == "cpu" or verifier_model(spec) is None:
        return 0
    return spec.verifier.gpus


def verifier_findings(spec: RZeroRunSpec, gpus: int | None = None) -> list[Finding]:
    """spec.verifier.gpus 0: the Verifier is colocated with the label Solver: from iteration 2 on (a distinct model)
    rank 0's GPUs hold both models' weights and an engine workspace each, within device.gpuMemoryUtilization.
    spec.verifier.gpus N: one engine of its own on the pod's last N GPUs holds its weights / N and a workspace."""
    source = verifier_model(spec)
    layout = phase_layout(spec, "label", gpus)
    if spec.verifier.gpus and source and not layout.gpus:
        return [Finding("warning", "spec.verifier.gpus", f"ignored: the label pod has no GPUs of its own "
                        f"({gpus_field(spec, 'label')} 0), so its Verifier runs beside the Solver on the CPU")]
    solver, verifier = model_shape(spec.solver_model), model_shape(source) if source else None
    if solver is None or verifier is None or not layout.gpus:
        return []
    from .sizing_memory import _gib

    share = spec.device.gpu_memory_utilization
    gpu, _ = gpu_bytes(spec, "label")
    if layout.verifier:
        need = 2 * verifier.params / layout.verifier + ENGINE_WORKSPACE
        if need > share * gpu:
            return [Finding("error", "spec.verifier.gpus", f"the Verifier's engine on its own {layout.verifier} GPU"
                            f"{'s' if layout.verifier > 1 else ''}: "
                            f"{_gib(need)} of weights and workspace per GPU, more than spec.device.gpuMemoryUtilization "
                            f"{share:g} of {_gib(gpu)}: give it more GPUs or choose a smaller Verifier")]
        return []
    tp = spec.device.tensor_parallel_size
    need = 2 * (solver.params + verifier.params) / tp + 2 * ENGINE_WORKSPACE
    if need > share * gpu:
        return [Finding("error", "spec.verifier.model", f"label engines: the Solver's and the colocated Verifier's "
                        f"weights and workspaces need {_gib(need)} per GPU, more than spec.device.gpuMemoryUtilization "
                        f"{share:g} of {_gib(gpu)}: choose a smaller Verifier, an endpoint, or raise tensorParallelSize")]
    return []
