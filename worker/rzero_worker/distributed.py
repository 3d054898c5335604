"""Ranks of one phase: who this process is, how ranks talk to each other, and how FSDP is set up.

A pod with g GPUs runs its phase as several processes started by `rzero worker --nproc-per-node` (launch.py,
torch's elastic agent, as torchrun): training phases one rank per training GPU, generation and labelling one
rank per vLLM engine. Without those variables (one process) every helper here is the identity: a phase is
written once and runs the same with 1 or 64 ranks.

- `current()`: rank, world size and the rank's place on its node, from torchrun's environment.
- `setup(device, tensor_parallel)`: the process group (NCCL for CUDA tensors, gloo for everything else), and
  for ranks that run their own vLLM engines, the GPUs each may see (CUDA_VISIBLE_DEVICES, set before CUDA
  starts). Python objects travel over a separate gloo group, so object collectives never touch a GPU.
- `all_gather` / `broadcast` / `barrier`: object collectives (questions, answers, rewards: kilobytes to a few
  megabytes per rollout step, so pickling over gloo is cheap next to generation).
- `shared_scratch`: one scratch directory per node, shared by its ranks, because the Trainer writes one
  checkpoint directory that all of them fill (weights by rank 0, a shard or RNG state per rank).
- `save_checkpoint` / `latest_checkpoint`: every node's files uploaded under one step prefix, committed once
  by global rank 0 after all uploads (a checkpoint holds every rank's shard); on resume one rank per node
  downloads it for its neighbours.
- `fsdp_config`: the Trainer's FSDP2 settings (full shard, optional CPU offload, bf16 compute over float32
  master weights, sharded checkpoints). Why FSDP and not DeepSpeed ZeRO-3: the reference trains with FSDP
  (verl), FSDP2 ships with torch (no compiled extension to pin against the CUDA image), and accelerate, the
  Trainer and TRL (reference model, vLLM weight sync) support it directly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

# Long enough for the slowest collective: ranks wait at a gather while one node scores 2,048 questions x 10
# Solver answers of up to 4,096 tokens, or while rank 0 uploads a checkpoint of tens of GB.
COLLECTIVE_TIMEOUT = timedelta(hours=3)
_OBJECT_GROUP = None  # gloo group for object collectives and barriers (set up by `setup`)


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or "LOCAL_RANK" in os.environ

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_local_main(self) -> bool:
        return self.local_rank == 0

    @property
    def node_main(self) -> int:
        """Global rank of this node's first rank (torchrun numbers each node's ranks contiguously)."""
        return self.rank - self.local_rank


def current() -> Ranks:
    env = os.environ
    world = int(env.get("WORLD_SIZE", "1"))
    return Ranks(rank=int(env.get("RANK", "0")), world_size=world, local_rank=int(env.get("LOCAL_RANK", "0")),
                 local_world_size=int(env.get("LOCAL_WORLD_SIZE", str(world))))


def setup(device: str, *, engine_gpus: int | None = None) -> Ranks:
    """Join the process group (no-op for a single process). `engine_gpus`: this rank runs its own inference
    engine on that many GPUs of the pod (generation, labelling), so it is pinned to its own block of them."""
    global _OBJECT_GROUP
    ranks = current()
    if not ranks.distributed:
        return ranks
    if engine_gpus:
        pin_visible_devices(ranks.local_rank, engine_gpus)
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if device == "cuda" and not engine_gpus:
            torch.cuda.set_device(ranks.local_rank)
            dist.init_process_group("cpu:gloo,cuda:nccl", timeout=COLLECTIVE_TIMEOUT)
        else:
            dist.init_process_group("gloo", timeout=COLLECTIVE_TIMEOUT)
            # accelerate names a CPU rank's device "cpu:<index>", which torch.load cannot map a resumed optimizer
            # state to (transformers maps it to that device when there are several ranks)
            os.environ.setdefault("ACCELERATE_TORCH_DEVICE", "cpu")
    _OBJECT_GROUP = dist.new_group(backend="gloo", timeout=COLLECTIVE_TIMEOUT)
    log.info("rank %d of %d (local %d of %d) joined", ranks.rank, ranks.world_size, ranks.local_rank,
             ranks.local_world_size)
    return ranks


ENGINE_PHASES = ("generate", "label")  # one inference engine per rank; the other ranked phases train


def setup_for_task(task) -> Ranks:
    """`setup` for a phase task: engine phases pin each rank to its own `device.tensorParallelSize` GPUs and talk
    over gloo only; training ranks use NCCL on their own GPU (LOCAL_RANK) when the task runs on CUDA."""
    if task.phase in ENGINE_PHASES:
        return setup("cpu", engine_gpus=None if task.device.device == "cpu" else task.device.tensor_parallel_size)
    from .models import resolve_device

    return setup(resolve_device(task.device))


def engine_devices(local_rank: int, per_engine: int, visible: list[str]) -> list[str]:
    """The block of GPUs the `local_rank`-th engine of a pod owns: ranks r -> GPUs [r*k, (r+1)*k)."""
    block = visible[local_rank * per_engine : (local_rank + 1) * per_engine]
    if len(block) < per_engine:
        from .phases.context import ConfigurationError

        raise ConfigurationError(
            f"engine {local_rank} needs {per_engine} GPUs but the pod shows {len(visible)}: "
            f"{', '.join(visible) or 'none'} (resources.gpus and device.tensorParallelSize disagree)"
        )
    return block


def visible_devices() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (indices or UUIDs)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if value and value != "all":
        return [item.strip() for item in value.split(",") if item.strip()]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]  # NVML: does not start CUDA


def pin_visible_devices(local_rank: int, per_engine: int) -> None:
    """Restrict this process to its engine's GPUs; must run before anything initialises CUDA. The pod's GPUs
    stay named in RZERO_POD_GPUS (`pod_devices`), for an engine process of another role on GPUs of its own."""
    devices = visible_devices()
    if not devices:
        return  # CPU: nothing to pin
    os.environ.setdefault(POD_DEVICES_ENV, ",".join(devices))
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(engine_devices(local_rank, per_engine, devices))


POD_DEVICES_ENV = "RZERO_POD_GPUS"


def pod_devices() -> list[str]:
    """Every GPU of the pod, also after `pin_visible_devices` narrowed this rank's view to its engine's."""
    value = os.environ.get(POD_DEVICES_ENV, "").strip()
    return [item.strip() for item in value.split(",") if item.strip()] if value else visible_devices()


def verifier_devices(pod: list[str], count: int) -> list[str] | None:
    """The GPUs of a model Verifier with GPUs of its own (spec.verifier.gpus = `count`): the pod's last `count`,
    after the label engines' blocks, so never a label Solver's. None when it has none (0: colocated) or the pod
    shows no GPU (CPU: the Verifier runs in the rank, as colocated)."""
    if not count or not pod:
        return None
    if len(pod) <= count:
        from .phases.context import ConfigurationError

        raise ConfigurationError(f"verifier.gpus {count} leaves no GPU for the label engines: the pod shows "
                                 f"{len(pod)} ({', '.join(pod)}); the label pod needs its own GPUs and these")
    return pod[-count:]


def cpu_share() -> int:
    """CPU cores for this rank's helper processes (e.g. its grading pool): the node's cores shared by its ranks."""
    return max(1, (os.cpu_count() or 1) // current().local_world_size)


def training_hints(hints, settings, device: str):
    """Where to load the trainable model: FSDP ranks load it on the CPU (each rank's GPU then receives only its
    shard, and a colocated vLLM engine finds its memory free); everyone else on `device`."""
    return hints.model_copy(update={"device": "cpu"}) if uses_fsdp(settings, device) else hints


def vllm_rollouts(hints, device: str) -> bool:
    """GRPO rollouts from vLLM: on CUDA with vLLM installed, unless `device.backend` asks for transformers."""
    from .generation import choose_backend

    return device == "cuda" and choose_backend(hints) == "vllm"


# --------------------------------------------------------------------------------------------------
# Object collectives (identity for a single process)


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def barrier() -> None:
    dist = _dist()
    if dist is not None:
        dist.barrier(group=_OBJECT_GROUP)


def all_gather(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank."""
    dist = _dist()
    if dist is None:
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj, group=_OBJECT_GROUP)
    return gathered


def broadcast(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s `obj` on every rank."""
    dist = _dist()
    if dist is None:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, group=_OBJECT_GROUP)
    return box[0]


def slices(sizes: list[int]) -> list[slice]:
    """Where each rank's part lies in the concatenation of all parts (rank order)."""
    out, start = [], 0
    for size in sizes:
        out.append(slice(start, start + size))
        start += size
    return out


def split_evenly(count: int, parts: int, index: int) -> slice:
    """The `index`-th of `parts` contiguous, near-equal ranges of `count` items (earlier ones one larger)."""
    base, extra = divmod(count, parts)
    start = index * base + min(index, extra)
    return slice(start, start + base + (1 if index < extra else 0))


# --------------------------------------------------------------------------------------------------
# Scratch and checkpoints shared by the ranks of a node


@contextlib.contextmanager
def shared_scratch(phase: str, parent: str | None) -> Iterator[Path]:
    """A scratch directory created by the node's first rank and used by all of its ranks; removed at the end."""
    ranks = current()
    path = tempfile.mkdtemp(prefix=f"rzero-{phase}-", dir=parent) if ranks.is_local_main else None
    path = all_gather(path)[ranks.node_main]
    try:
        yield Path(path)
        # Only a rank that finished waits for the others. A rank that raised must not: the others may be
        # inside a collective it will never join, and the launcher stops them once this rank exits.
        barrier()
    finally:
        if ranks.is_local_main:
            shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(ctx, step: int, local_dir: Path) -> None:
    """Upload one checkpoint written by every rank: each node uploads its own files (on one node that is all of
    them), then rank 0 commits the step, so the committed checkpoint holds every rank's shard."""
    ranks = current()
    if not ranks.distributed:
        ctx.save_checkpoint(step, local_dir)
        return
    barrier()  # every rank has written its part of the directory
    if ranks.is_main:
        ctx.begin_checkpoint(step)
    barrier()
    uploaded = ctx.storage.upload_dir(Path(local_dir), ctx.checkpoint_prefix(step)) if ranks.is_local_main else []
    files = [entry for part in all_gather(uploaded) for entry in part]  # every node's uploads: verified at commit
    if ranks.is_main:
        ctx.finish_checkpoint(step, files)
    barrier()


def latest_checkpoint(ctx) -> tuple[int, Path] | None:
    """The newest committed checkpoint, downloaded once per node into the shared scratch directory."""
    ranks = current()
    if not ranks.distributed:
        return ctx.latest_checkpoint()
    found = ctx.latest_checkpoint() if ranks.is_local_main else None
    found = all_gather(found)[ranks.node_main]
    return found


# --------------------------------------------------------------------------------------------------
# FSDP


def uses_fsdp(settings, device: str) -> bool:
    """FSDP for `sharding: fsdp` on GPU ranks; CPU ranks (gloo) train as DDP, as accelerate only shards on
    accelerators."""
    return settings.sharding == "fsdp" and device == "cuda" and current().distributed


def fsdp_config(settings, device: str) -> dict | None:
    """The Trainer's `fsdp_config` (accelerate FSDP2 plugin) for these GRPO settings, or None.

    Mixed precision: FSDP2 all-gathers the float32 master shards as bf16 for compute, reduces gradients in float32
    (`reduce_in_float32`) and keeps AdamW on the float32 shards. Checkpoints are SHARDED_STATE_DICT (each rank writes
    its own shard; `save_checkpoint` uploads them all), the final model is gathered once (`full_state_dict`)."""
    if not uses_fsdp(settings, device):
        return None
    return {
        "version": 2,
        "reshard_after_forward": True,  # full shard (ZeRO-3): parameters are freed after each layer's use
        "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",  # one FSDP unit per decoder layer (_no_split_modules)
        "cpu_offload": sized(settings, "cpu_offload"),
        "state_dict_type": "SHARDED_STATE_DICT",
        "activation_checkpointing": settings.gradient_checkpointing,
    }


def sized(settings, name: str):
    """A GRPO setting the spec may leave unset (auto: cpuOffload, rolloutGpuMemoryUtilization). The operator and
    `rzero run` size it from the model and the pod's GPUs (rzero_operator.sizing_auto) before they write the task;
    a task without it was not written by them and is refused (exit 2) where the value matters."""
    value = getattr(settings, name)
    if value is None:
        from .phases.context import ConfigurationError

        field = "".join(part.title() if i else part for i, part in enumerate(name.split("_")))
        raise ConfigurationError(f"settings.grpo.{field} is unset: the operator and `rzero run` size it (auto) when "
                                 "they write the task; set it in a task written by hand")
    return value


def check_offload(settings, device: str, use_vllm: bool) -> None:
    """CPU offload needs vLLM rollouts (the reference's combination): transformers' `generate` moves its inputs to
    the device of the model's parameters, which offloaded FSDP2 shards report as the CPU, while the layers run on
    the GPU (measured on an H100: `index_select` on tensors of two devices)."""
    if uses_fsdp(settings, device) and sized(settings, "cpu_offload") and not use_vllm:
        from .phases.context import ConfigurationError

        raise ConfigurationError("settings.grpo.cpuOffload needs vLLM rollouts (vllm installed, device.backend auto or "
                                 "vllm): the transformers path generates with the trained model, which cannot run from "
                                 "offloaded weights")


def reduce_in_float32(trainer, compute_dtype: str) -> None:
    """verl's FSDP mixed precision: bf16 parameters for compute, gradients reduced in float32 (accelerate's policy
    for the Trainer's bf16 flag reduces in bf16), float32 master shards. Call before `train()`, which shards."""
    import torch
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if compute_dtype == "float32":
        return
    dtype = getattr(torch, compute_dtype)
    trainer.accelerator.state.fsdp_plugin.mixed_precision_policy = MixedPrecisionPolicy(
        param_dtype=dtype, reduce_dtype=torch.float32, output_dtype=dtype)


def shard_frozen(model, *, compute_dtype: str, offload: bool):
    """Shard a frozen model (the KL reference) over all ranks as FSDP2, one unit per decoder layer, computing in
    `compute_dtype`; with `offload` its shards live in host memory between uses."""
    import torch
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

    dtype = getattr(torch, compute_dtype)
    options = {"mp_policy": MixedPrecisionPolicy(param_dtype=dtype),
               "offload_policy": CPUOffloadPolicy() if offload else OffloadPolicy()}
    layer_classes = set(getattr(model, "_no_split_modules", None) or [])
    for module in model.modules():
        if type(module).__name__ in layer_classes:
            fully_shard(module, **options)
    fully_shard(model, **options)
    return model.eval().requires_grad_(False)


def full_state_dict(trainer) -> dict | None:
    """The trained weights as one state dict on rank 0 (None elsewhere); a collective under FSDP."""
    state = trainer.accelerator.get_state_dict(trainer.model)
    return state if current().is_main else None
