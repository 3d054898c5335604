"""Fields left unset (auto), sized from the model's shape, the pod's GPUs and the GPU memory. Pure.

    size(spec, gpus=None) -> Sizing     # .spec (every auto field set), .choices (what and why), .findings
    resolve(spec, gpus=None) -> spec    # size(...).spec: what the operator and `rzero run` build Jobs and tasks from

`rzero validate`, the operator and `rzero run` all call `size`, so they size alike and refuse alike (its findings
are `sizing.check`'s). docs/gpu-sizing.md ("What auto chooses") works the choices for Qwen3-4B/8B-Base.

- `spec.{challenger,solver}.grpo.cpuOffload` (and a trained Verifier's `spec.verifier.training.grpo`, alike): false when the training state fits beside the rollout engine at
  its share (the set one, else the reference's 0.7) and the training peak fits the GPU; else true, the reference's
  remedy (its actor offloads parameters and optimizer state beside vLLM at 0.7), which keeps the rollout engine's
  share and KV cache whole.
- `spec.{challenger,solver}.grpo.rolloutGpuMemoryUtilization`: the reference's 0.7 where it fits; else the largest
  share in steps of 0.05 (at most 0.9) that leaves the training state its room and the engine at least one
  full-length sequence; when none does, 0.7, and the check says why it cannot work.
- `spec.resources.memory`: 32Gi; a training phase whose pods need more host memory (loading, offloading, sleeping
  Solver engines: sizing_memory.training_memory) gets that plus 16 GiB for the processes, rounded up to 8 GiB,
  as its `resources.phases.<phase>.memory`.

Not sized (the values before auto, which do not matter there or cannot be computed): CPU pods, models whose shape
rzero does not know (cpuOffload false, 0.7, 32Gi: set them when the model is large), transformers rollouts (no
vLLM engine; offload needs vLLM rollouts), and offload under `sharding: ddp` (FSDP only). A set value is never
changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .api.spec import PodResources, RZeroRunSpec
from .sizing import (
    Finding, GiB, ModelShape, PhaseLayout, gpu_bytes, grpo_field, model_shape, phase_layout, sized_findings, training_roles,
)
from .sizing_memory import engine_kv_tokens, training_memory

REFERENCE_ROLLOUT_SHARE = 0.7  # the reference's vLLM gpu_memory_utilization
SHARE_STEP, MAX_SHARE = 0.05, 0.9  # vLLM's own default share is 0.9
HOST_FLOOR, HOST_HEADROOM, HOST_ROUND = 32 * GiB, 16 * GiB, 8 * GiB


@dataclass(frozen=True)
class Choice:
    """One auto field and the value it was sized to."""

    field: str
    value: bool | float | str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: auto: {_text(self.value)} ({self.reason})"


@dataclass(frozen=True)
class Sizing:
    spec: RZeroRunSpec  # every auto field set: what Jobs and tasks are built from
    choices: tuple[Choice, ...]
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> list[str]:
        return [str(finding) for finding in self.findings if finding.level == "error"]

    @property
    def warnings(self) -> list[str]:
        return [str(finding) for finding in self.findings if finding.level == "warning"]


def size(spec: RZeroRunSpec, gpus: int | None = None) -> Sizing:
    """Size the spec's auto fields (`gpus`: every pod's GPUs, for `rzero run --gpus`) and check the result."""
    sized = spec.model_copy(deep=True)
    choices: list[Choice] = []
    for phase, source in training_roles(spec):
        choices += _size_training(sized, phase, model_shape(source), gpus)
    choices += _size_host_memory(sized, gpus)
    chosen = {choice.field: choice for choice in choices}
    findings = [_noted(finding, chosen.get(finding.field)) for finding in sized_findings(sized, gpus)]
    return Sizing(sized, tuple(choices), tuple(findings))


def resolve(spec: RZeroRunSpec, gpus: int | None = None) -> RZeroRunSpec:
    return size(spec, gpus).spec


# --------------------------------------------------------------------------------------------------
# Training phases: offload and the rollout engine's share


def _size_training(spec: RZeroRunSpec, phase: str, shape: ModelShape | None, gpus: int | None) -> list[Choice]:
    grpo, where = getattr(spec, phase).grpo, grpo_field(phase)
    layout = phase_layout(spec, phase, gpus)
    sized = shape is not None and layout.gpus > 0 and spec.device.device != "cpu"
    vllm = spec.device.backend != "transformers"
    out = []
    if grpo.cpu_offload is None:
        offload = sized and vllm and grpo.sharding == "fsdp"
        grpo.cpu_offload = False
        if offload:
            grpo.cpu_offload, reason = _offload(spec, layout, shape)
            out.append(Choice(f"{where}.cpuOffload", grpo.cpu_offload, reason))
    if grpo.rollout_gpu_memory_utilization is None:
        grpo.rollout_gpu_memory_utilization = REFERENCE_ROLLOUT_SHARE
        if sized and vllm:
            grpo.rollout_gpu_memory_utilization, reason = _share(spec, layout, shape)
            out.append(Choice(f"{where}.rolloutGpuMemoryUtilization", grpo.rollout_gpu_memory_utilization, reason))
    return out


def _offload(spec: RZeroRunSpec, layout: PhaseLayout, shape: ModelShape) -> tuple[bool, str]:
    grpo = getattr(spec, layout.phase).grpo
    gpu, share = gpu_bytes(spec, layout.phase)[0], grpo.rollout_gpu_memory_utilization or REFERENCE_ROLLOUT_SHARE
    grpo.cpu_offload = False
    memory, ranks = training_memory(spec, layout, shape), _ranks(layout)
    if memory.resident <= (1 - share) * gpu and memory.peak <= gpu:  # the KV cache is the share's to size
        return False, (f"{ranks} keep {_gib(memory.resident)} of training state per GPU, which fits beside the rollout "
                       f"engine's {share:g} of the {_gib(gpu)} GPU, and a training peak of {_gib(memory.peak)}: "
                       "no offload (faster; the reference offloads)")
    if memory.resident > (1 - share) * gpu:
        why = f"more than the {_gib((1 - share) * gpu)} the rollout engine's {share:g} of the {_gib(gpu)} GPU leaves"
    else:
        why = f"and a training peak of {_gib(memory.peak)}, more than the {_gib(gpu)} GPU"
    return True, f"{ranks} would keep {_gib(memory.resident)} of training state per GPU, {why}: offloaded to host " \
                 "memory, as the reference does"


def _share(spec: RZeroRunSpec, layout: PhaseLayout, shape: ModelShape) -> tuple[float, str]:
    grpo = getattr(spec, layout.phase).grpo
    gpu, resident = gpu_bytes(spec, layout.phase)[0], training_memory(spec, layout, shape).resident
    room = f"the {_gib(resident)} of training state that stays on each GPU while it generates"
    if _share_fits(spec, layout, shape, REFERENCE_ROLLOUT_SHARE):
        return REFERENCE_ROLLOUT_SHARE, f"the reference's share of the {_gib(gpu)} GPU; it leaves room for {room}"
    steps = round(MAX_SHARE / SHARE_STEP)
    fitting = [s for s in (round((steps - i) * SHARE_STEP, 2) for i in range(steps))
               if _share_fits(spec, layout, shape, s)]
    length = grpo.max_prompt_tokens + grpo.max_completion_tokens
    if not fitting:
        return REFERENCE_ROLLOUT_SHARE, (f"no share of the {_gib(gpu)} GPU leaves room for {room} and the engine one "
                                         f"{length}-token sequence")
    return fitting[0], (f"{REFERENCE_ROLLOUT_SHARE:g} (the reference's) does not fit; the largest share of the "
                        f"{_gib(gpu)} GPU that leaves room for {room} and the engine one {length}-token sequence")


def _share_fits(spec: RZeroRunSpec, layout: PhaseLayout, shape: ModelShape, share: float) -> bool:
    """What sizing_memory.training_findings requires of the rollout engine's share."""
    grpo = getattr(spec, layout.phase).grpo
    gpu = gpu_bytes(spec, layout.phase)[0]
    memory = training_memory(spec, layout, shape)
    kv = engine_kv_tokens(spec, shape, gpu, share=share, tp=grpo.rollout_tensor_parallel_size)
    return memory.resident <= (1 - share) * gpu and kv >= grpo.max_prompt_tokens + grpo.max_completion_tokens


# --------------------------------------------------------------------------------------------------
# Host memory


def _size_host_memory(spec: RZeroRunSpec, gpus: int | None) -> list[Choice]:
    if spec.resources.memory is not None:
        return []
    spec.resources.memory = _quantity(HOST_FLOOR)
    out = []
    for phase, source in training_roles(spec):
        override, shape = getattr(spec.resources.phases, phase), model_shape(source)
        layout = phase_layout(spec, phase, gpus)
        if (override and override.memory) or shape is None or not layout.gpus or spec.device.device == "cpu":
            continue
        need = training_memory(spec, layout, shape).host
        value = max(HOST_FLOOR, math.ceil((need + HOST_HEADROOM) / HOST_ROUND) * HOST_ROUND)
        if value > HOST_FLOOR:
            if override is None:
                override = PodResources()
                setattr(spec.resources.phases, phase, override)
            override.memory = _quantity(value)
            out.append(Choice(f"spec.resources.phases.{phase}.memory", override.memory,
                              f"{'loading and offloading need' if spec_offloads(spec, phase) else 'loading needs'} about "
                              f"{_gib(need)} per pod; {_gib(HOST_HEADROOM)} more for the processes, rounded up"))
    return out


def spec_offloads(spec: RZeroRunSpec, phase: str) -> bool:
    grpo = getattr(spec, phase).grpo
    return bool(grpo.cpu_offload) and grpo.sharding == "fsdp"


# --------------------------------------------------------------------------------------------------


def _noted(finding: Finding, choice: Choice | None) -> Finding:
    """A finding on an auto field says so: the user did not set the value it blames."""
    if choice is None:
        return finding
    return replace(finding, message=f"{finding.message} (unset: auto sized it to {_text(choice.value)})")


def _ranks(layout: PhaseLayout) -> str:
    world = layout.ranks * layout.nodes
    return f"{world} training rank{'s' if world > 1 else ''}"


def _quantity(value: float) -> str:
    return f"{round(value / GiB)}Gi"


def _text(value: bool | float | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _gib(value: float) -> str:
    return f"{value / GiB:.1f} GiB"
