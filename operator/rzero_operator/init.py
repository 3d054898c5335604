"""`rzero init`: a commented starting RZeroRun for a model on K nodes of N GPUs, sized by sizing.py's arithmetic.

    starter(model, Cluster(gpus=8, nodes=2)) -> Starter   # .text (the manifest), .errors (sizing errors)

The layout is the paper example's (examples/qwen3-4b-base.yaml), scaled to the cluster:
- training (challenger, solver): pods of all N GPUs of a node, on all K nodes; the Challenger gives half of each
  pod's GPUs to the frozen Solver that scores its questions (the reference: 4 of 8), none on one GPU;
- generation, labelling, evaluation: one vLLM engine per pod of `device.tensorParallelSize` GPUs (1 unless the
  model needs more), sharded over every GPU of the cluster (Indexed Jobs run the shards at once);
- rollouts on 2 GPUs per engine where the training ranks divide (the reference), gradient checkpointing on (the
  reference);
- cpuOffload, rolloutGpuMemoryUtilization and the training pods' memory: what auto sizes (sizing_auto), written
  out with the reason, so the file records the choice; delete a line to let the operator size it again.
A GPU size other than the assumed 80 GB goes into a node selector on `nvidia.com/gpu.memory`, where the sizing
reads it. Pure: the CLI prints or writes the text.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from typing import Any

import yaml

from .sizing import GPU_MEMORY_LABEL, model_shape
from .sizing_auto import size
from .sizing_memory import quantity_bytes
from .validate import validate_manifest

DEFAULT_STORAGE = "s3://rzero/runs"
CPU_PER_GPU = 4
WIDTH = 110
_PLAIN = re.compile(r"[A-Za-z0-9_./-][A-Za-z0-9_./:-]*")


@dataclass(frozen=True)
class Cluster:
    gpus: int  # per node
    nodes: int = 1
    gpu_memory: str | None = None  # a quantity ("80Gi") or MiB as nodes are labelled ("81559")

    @property
    def gpu_mib(self) -> int | None:
        if self.gpu_memory is None:
            return None
        text = self.gpu_memory.strip()
        return int(text) if text.isdigit() else round(quantity_bytes(text) / 2**20)


@dataclass(frozen=True)
class Starter:
    text: str
    errors: list[str]


def starter(model: str, cluster: Cluster, *, name: str | None = None, storage: str = DEFAULT_STORAGE) -> Starter:
    """The manifest sized for `cluster`: the smallest engine tensor parallelism whose engines fit, every auto
    field written out. Raises ValueError for impossible input (no GPUs, a malformed quantity)."""
    if not 1 <= cluster.gpus <= 64 or not 1 <= cluster.nodes <= 64:
        raise ValueError("--gpus and --nodes must be between 1 and 64")
    name = name or _name(model)
    candidates = [tp for tp in (1, 2, 4, 8, 16, 32, 64) if tp <= cluster.gpus and cluster.gpus % tp == 0]
    for tp in candidates:
        doc, notes = _layout(model, cluster, tp, name, storage)
        sized = size(validate_manifest(doc).spec)
        if not [f for f in sized.findings if f.field.startswith("spec.device.")]:
            break
    doc["spec"]["resources"]["memory"] = sized.spec.resources.memory
    for choice in sized.choices:
        _set(doc, choice.field, choice.value)
        notes[choice.field] = f"auto: {choice.reason}"
    errors = size(validate_manifest(doc).spec).errors
    return Starter(_header(model, cluster) + _render(doc, notes), errors)


def _layout(model: str, cluster: Cluster, tp: int, name: str, storage: str) -> tuple[dict, dict[str, str]]:
    n, k = cluster.gpus, cluster.nodes
    solver_gpus = (n // 2) // tp * tp if n > 1 else 0
    notes = {
        "spec.storage.uri": "your bucket (add endpoint and secretRef for MinIO / Ceph: docs/configuration.md)",
        "spec.device.tensorParallelSize": (
            f"GPUs per vLLM engine: {tp} is the fewest whose engines hold the weights and 8 full sequences" if tp > 1
            else "one vLLM engine per GPU (the reference): the weights and a large KV cache fit one GPU"),
        "spec.challenger.solverGpus": (
            f"{solver_gpus} of each Challenger pod's {n} GPUs serve the frozen Solver that scores its questions, "
            f"{n - solver_gpus} train (the reference: 4 of 8)" if solver_gpus
            else "one GPU: each training rank scores with a Solver engine on its own GPU, asleep while it trains"),
        "spec.sharding": f"one shard per {tp}-GPU engine pod: {_n(n * k // tp, 'pod')} at once on "
                         f"{_n(n * k, 'GPU')}",
        "spec.resources.gpus": f"pods of generation, labelling and evaluation: one engine of {_n(tp, 'GPU')} each",
        "spec.resources.memory": "pods that do not train; the training pods' memory is sized below",
        "spec.resources.tolerations": "the usual taint of GPU nodes",
        "spec.resources.phases.challenger": (f"training pods: all {n} GPUs of a node" if n > 1 else
                                             "training pods: the node's GPU") + (f", on {k} nodes" if k > 1 else ""),
        "spec.resources.phases.solver": f"{_n(n * k, 'training rank')} (FSDP full shard)",
    }
    training = {"gpus": n, **({"nodes": k} if k > 1 else {}), "cpu": str(max(8, CPU_PER_GPU * n))}
    resources: dict[str, Any] = {"gpus": tp, "cpu": "8", "memory": None}  # null is unset: auto sizes it
    if cluster.gpu_mib is not None:
        resources["nodeSelector"] = {GPU_MEMORY_LABEL: str(cluster.gpu_mib)}
        notes["spec.resources.nodeSelector"] = (
            f"GPU memory in MiB, as GPU feature discovery labels nodes (the sizing reads it here); a node selector "
            f"matches exactly: use your nodes' value (kubectl get nodes -L {GPU_MEMORY_LABEL})")
    resources["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    resources["phases"] = {"challenger": dict(training), "solver": dict(training)}
    shards = n * k // tp
    spec = {
        "model": model,
        "iterations": 3,
        "storage": {"uri": storage},
        "device": {"tensorParallelSize": tp},
        "challenger": {"grpo": _grpo(n - solver_gpus, k, notes, "challenger"), "solverGpus": solver_gpus},
        "solver": {"grpo": _grpo(n, k, notes, "solver")},
        "sharding": {"generate": shards, "label": shards, "evaluate": shards},
        "resources": resources,
    }
    if model_shape(model) is None:
        notes["spec.model"] = ("rzero does not know this model's size: memory is not sized; set cpuOffload and "
                               "the pods' memory yourself (docs/gpu-sizing.md)")
    return {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": name}, "spec": spec}, notes


def _grpo(ranks_per_pod: int, nodes: int, notes: dict[str, str], phase: str) -> dict:
    world = ranks_per_pod * nodes
    rollout_tp = 2 if world % 2 == 0 else 1
    notes[f"spec.{phase}.grpo.rolloutTensorParallelSize"] = (
        "2 training ranks share each colocated rollout engine (the reference)" if rollout_tp == 2
        else f"{_n(world, 'training rank')}: one rollout engine per GPU")
    notes[f"spec.{phase}.grpo.gradientCheckpointing"] = "the reference's: activations recomputed, not kept"
    return {"gradientCheckpointing": True, "rolloutTensorParallelSize": rollout_tp}


def _name(model: str) -> str:
    base = model.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].lower().removesuffix(".gguf")
    return re.sub(r"[^a-z0-9]+", "-", base).strip("-")[:40].strip("-") or "rzero"


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _set(doc: dict, field: str, value: Any) -> None:
    node = doc
    *parents, leaf = field.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


# --------------------------------------------------------------------------------------------------
# Rendering: YAML, one key per line, each note as a comment above its key


def _header(model: str, cluster: Cluster) -> str:
    shape = f"{cluster.nodes} x {_n(cluster.gpus, 'GPU')}" if cluster.nodes > 1 else _n(cluster.gpus, "GPU")
    memory = f"{cluster.gpu_mib} MiB" if cluster.gpu_mib else "80 GB (assumed; --gpu-memory to change)"
    return (f"# A starting RZeroRun for {model} on {shape} of {memory},\n"
            "# written by `rzero init` and sized by the arithmetic of `rzero validate` (docs/gpu-sizing.md); every\n"
            "# other setting is the paper's default (docs/configuration.md). Check it and apply it:\n"
            "#   rzero validate run.yaml && kubectl apply -f run.yaml\n"
            "# The evaluation is the built-in arithmetic set: for the paper's benchmarks see\n"
            "# examples/qwen3-4b-base.yaml and `rzero benchmarks prepare`.\n")


def _render(node: dict, notes: dict[str, str], path: str = "", indent: int = 0) -> str:
    out = []
    pad = " " * indent
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if where in notes:
            out += [f"{pad}# {line}" for line in textwrap.wrap(notes[where], WIDTH - indent - 2)]
        if isinstance(value, dict) and value:
            out.append(f"{pad}{key}:")
            out.append(_render(value, notes, where, indent + 2).rstrip("\n"))
        elif isinstance(value, list) and value:
            out.append(f"{pad}{key}:")
            out += [f"{pad}  - {_flow(item)}" for item in value]
        else:
            out.append(f"{pad}{key}: {_flow(value)}")
    return "\n".join(out) + "\n"


def _flow(value: Any) -> str:
    """A scalar or a flat mapping in YAML's flow style: a string plain where YAML reads it back as that string,
    else quoted as JSON ("8" stays a string); true/false; numbers as written."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and _PLAIN.fullmatch(value) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value)
