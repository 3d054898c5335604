"""Per-GPU memory of training ranks and inference engines (docs/gpu-sizing.md derives each term). Pure.

Training rank (W ranks in all, P parameters, FSDP full shard; DDP keeps everything whole on every rank):
- state: float32 weights, gradients and AdamW moments, 16 bytes per parameter, / W (0 on the GPU under cpuOffload)
- reference: the frozen KL model in bf16, 2P / W (0 under cpuOffload); 0 without a KL term
- gathered: what FSDP2 holds unsharded at once: two decoder layers in bf16 (the current one and the prefetched
  next), a vocabulary matrix (embeddings or LM head, units of their own) in bf16, and the float32 gradient of
  the largest unit before it is reduce-scattered
- activations: one micro-batch of b sequences of T = maxPromptTokens + maxCompletionTokens tokens; with
  checkpointing each layer keeps its bf16 input (2bTh per layer) and one layer is recomputed (34bTh, the
  usual estimate with flash attention); without it every layer keeps 34bTh. TRL's fused LM head never
  materialises the (b, T, vocab) logits.
- overhead: CUDA context, NCCL buffers and fragmentation (3 GiB).
- host (per pod): every rank loads the float32 model and the bf16 reference before sharding; under cpuOffload the
  pod then holds its share of the offloaded state; with solverGpus 0 each rank's sleeping Solver engine keeps its
  bf16 weights in host memory.
While the colocated vLLM rollout engine generates, state + reference + overhead stay on the GPU (activations and
gathered units are freed), so they must fit in (1 - rolloutGpuMemoryUtilization) of it.

Inference engine on t GPUs: weights 2P / t per GPU, a 1.5 GiB workspace, and the KV cache in the rest of
gpuMemoryUtilization x GPU memory, at 2 x layers x kvHeads x headDim x 2 bytes per token (split over t GPUs).
"""

from __future__ import annotations

from dataclasses import dataclass

from .api.spec import RZeroRunSpec
from .sizing import (
    CUDA_OVERHEAD, ENGINE_WORKSPACE, Finding, GiB, ModelShape, PhaseLayout, gpu_bytes, gpus_field, grpo_field,
    model_shape,
)


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes per GPU of one training rank, and host bytes per pod."""

    state: float
    reference: float
    gathered: float
    activations: float
    overhead: float
    host: float

    @property
    def resident(self) -> float:
        """What stays on the GPU while the rollout engine generates."""
        return self.state + self.reference + self.overhead

    @property
    def peak(self) -> float:
        return self.resident + self.gathered + self.activations


def training_memory(spec: RZeroRunSpec, layout: PhaseLayout, shape: ModelShape) -> TrainingMemory:
    grpo = getattr(spec, layout.phase).grpo
    world, params = layout.ranks * layout.nodes, shape.params
    fsdp, offload = grpo.sharding == "fsdp", grpo.sharding == "fsdp" and grpo.cpu_offload
    share = world if fsdp else 1
    state = 0.0 if offload else 16 * params / share
    reference = 0.0 if offload or not grpo.kl_coef else 2 * params / share
    if fsdp:
        unit = max(shape.layer_params, shape.embedding_params)
        gathered = 2 * 2 * shape.layer_params + 2 * shape.embedding_params + 4 * unit
    else:
        gathered = 2 * params  # autocast's bf16 copy of the weights
    micro = grpo.micro_batch_size or grpo.update_batch_size * grpo.group_size // max(1, world)
    tokens = micro * (grpo.max_prompt_tokens + grpo.max_completion_tokens) * shape.hidden
    per_layer = 34 * tokens
    activations = (shape.layers * 2 * tokens + per_layer) if grpo.gradient_checkpointing else shape.layers * per_layer
    load = layout.ranks * (4 * params + (2 * params if grpo.kl_coef else 0))  # each rank loads before sharding
    offloaded = layout.ranks * (16 * params + (2 * params if grpo.kl_coef else 0)) / world if offload else 0.0
    # loading comes first; the offloaded shards (and AdamW state, created at the first update) replace the copies
    return TrainingMemory(state, reference, gathered, activations, CUDA_OVERHEAD,
                          max(load, offloaded) + sleeping_solver_bytes(spec, layout, shape))


def sleeping_solver_bytes(spec: RZeroRunSpec, layout: PhaseLayout, shape: ModelShape) -> float:
    """Host bytes of the Challenger's colocated Solver engines (solverGpus 0, vLLM): each rank's engine sleeps
    while the rank trains, its bf16 weights moved to host memory (vLLM sleep level 1)."""
    if layout.phase != "challenger" or spec.challenger.solver_gpus or spec.device.backend == "transformers":
        return 0.0
    return layout.ranks * 2 * (model_shape(spec.solver_model) or shape).params


def engine_kv_tokens(spec: RZeroRunSpec, shape: ModelShape, gpu: float, *, share: float, tp: int) -> float:
    """Tokens of KV cache one engine on `tp` GPUs holds when it may fill `share` of each."""
    free = share * gpu - 2 * shape.params / tp - ENGINE_WORKSPACE
    return max(0.0, free) * tp / shape.kv_bytes_per_token


def training_findings(spec: RZeroRunSpec, layout: PhaseLayout, shape: ModelShape) -> list[Finding]:
    if not layout.gpus:
        return []
    grpo = getattr(spec, layout.phase).grpo
    where, gpus = grpo_field(layout.phase), gpus_field(spec, layout.phase)
    gpu, assumed = gpu_bytes(spec, layout.phase)
    memory = training_memory(spec, layout, shape)
    of = f"of the {_gib(gpu)} GPU{' (assumed: no nvidia.com/gpu.memory node selector)' if assumed else ''}"
    out = []
    world = layout.ranks * layout.nodes
    if grpo.cpu_offload and spec.device.backend == "transformers":
        out.append(Finding("error", f"{where}.cpuOffload", f"{layout.phase}: offloaded weights need vLLM rollouts; "
                           "spec.device.backend transformers generates with the trained model, which cannot run from "
                           "them"))
    if memory.resident > gpu:
        return [Finding("error", gpus, f"{layout.phase}: the training state alone needs {_gib(memory.resident)} per "
                        f"GPU {of} with {world} training rank{'s' if world > 1 else ''}: more GPUs or nodes, "
                        f"{where}.sharding fsdp, or {where}.cpuOffload")]
    if memory.peak > gpu:
        out.append(Finding("warning", gpus, f"{layout.phase}: estimated peak {_gib(memory.peak)} per GPU {of} "
                           f"(activations {_gib(memory.activations)}): {where}.gradientCheckpointing, a smaller "
                           f"{where}.microBatchSize, or {where}.cpuOffload"))
    if spec.device.backend != "transformers":
        share = grpo.rollout_gpu_memory_utilization
        if memory.resident > (1 - share) * gpu:
            out.append(Finding("error", f"{where}.rolloutGpuMemoryUtilization", f"{layout.phase}: the vLLM rollout "
                               f"engine takes {share:g} {of} but {_gib(memory.resident)} of training state stays on it "
                               f"while it generates: lower it, or set {where}.cpuOffload"))
        elif engine_kv_tokens(spec, shape, gpu, share=share, tp=grpo.rollout_tensor_parallel_size) < (
                grpo.max_prompt_tokens + grpo.max_completion_tokens):
            out.append(Finding("error", f"{where}.rolloutGpuMemoryUtilization", f"{layout.phase}: {share:g} {of} "
                               "leaves the rollout engine no room for one full-length sequence's KV cache"))
    if memory.host > quantity_bytes(spec.resources.for_phase(layout.phase).memory):
        out.append(Finding("warning", _memory_field(spec, layout.phase), f"{layout.phase}: loading and offloading "
                           f"need about {_gib(memory.host)} of host memory per pod"))
    return out


def engine_findings(spec: RZeroRunSpec, layout: PhaseLayout, shape: ModelShape) -> list[Finding]:
    tp, share = spec.device.tensor_parallel_size, spec.device.gpu_memory_utilization
    gpu, _ = gpu_bytes(spec, layout.phase)
    weights = 2 * shape.params / tp
    what = "the Challenger's Solver engines" if layout.phase == "challenger" else f"{layout.phase} engines"
    if weights + ENGINE_WORKSPACE > share * gpu:
        return [Finding("error", "spec.device.tensorParallelSize", f"{what}: {_gib(weights)} of weights per GPU do not "
                        f"fit in spec.device.gpuMemoryUtilization {share:g} of {_gib(gpu)}: raise tensorParallelSize")]
    length = spec.challenger.grpo.max_prompt_tokens + _max_tokens(spec, layout.phase)
    sequences = engine_kv_tokens(spec, shape, gpu, share=share, tp=tp) / length
    if sequences < 8:
        return [Finding("warning", "spec.device.gpuMemoryUtilization", f"{what}: the KV cache holds only "
                        f"{sequences:.1f} sequences of {length} tokens at once")]
    return []


def _max_tokens(spec: RZeroRunSpec, phase: str) -> int:
    if phase == "evaluate":
        return max(b.answer_tokens(spec.evaluation.max_tokens) for b in spec.evaluation.benchmarks)
    return {"generate": spec.generation.sampling.max_tokens,
            "label": spec.labeling.sampling.max_tokens}.get(phase, spec.challenger.solver_sampling.max_tokens)


def _memory_field(spec: RZeroRunSpec, phase: str) -> str:
    override = getattr(spec.resources.phases, phase)
    return f"spec.resources.phases.{phase}.memory" if override and override.memory else "spec.resources.memory"


_UNITS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "m": 1e-3,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity_bytes(quantity: str) -> float:
    """A Kubernetes quantity ('256Gi', '64G', '1.5T') in bytes."""
    number = quantity.rstrip("kMGTPEimn")
    return float(number) * _UNITS[quantity[len(number):]]


def _gib(value: float) -> str:
    return f"{value / GiB:.1f} GiB"
