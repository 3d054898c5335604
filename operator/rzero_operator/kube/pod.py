"""The worker pod template of a phase Job: command, environment, resources, placement, hardening.

Pure builders (dicts in, dicts out). Kubernetes expands `$(VAR)` in `command` from the container's own
environment, so the shard/rank of an Indexed Job reaches the worker as plain arguments — no shell.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

from ..api.spec import PodResources, RZeroRunSpec
from ..sizing import PhaseLayout, phase_layout

CONTAINER = "worker"
TASK_DIR = "/etc/rzero"
CACHE_DIR = "/cache"
MASTER_PORT = 29500
SHARD_TASK_FILE = "task-$(JOB_COMPLETION_INDEX).json"


def task_file_name(index: int | None) -> str:
    """File (and ConfigMap key) of a task: `task.json` for a single task, `task-<index>.json` for shards."""
    return "task.json" if index is None else f"task-{index}.json"


def task_annotation(file_name: str) -> str:
    """The pod-template annotation carrying a task file inline: `rzero.dev/task.json`, `rzero.dev/task-3.json`."""
    return f"rzero.dev/{file_name}"


def worker_command(phase: str, *, sharded: bool, layout: PhaseLayout) -> list[str]:
    """The container command as an argument list (never a shell string). A pod with several GPUs runs its phase
    as ranks (sizing.phase_layout): `rzero worker` validates the task, then starts them torchrun's way
    (`--nproc-per-node`), across pods of a multi-node Job with the rendezvous at pod 0."""
    task_path = f"{TASK_DIR}/{SHARD_TASK_FILE if sharded else task_file_name(None)}"
    command = ["rzero", "worker", phase, "--task", task_path, *layout.launch_args()]
    if layout.nodes > 1:
        command += [
            "--nnodes", str(layout.nodes),
            "--node-rank", "$(NODE_RANK)",
            "--master-addr", "$(MASTER_ADDR)",
            "--master-port", "$(MASTER_PORT)",
        ]
    return command


@dataclass(frozen=True)
class StorageDefaults:
    """Operator-wide S3 defaults (the Helm chart sets them) for runs whose spec leaves them empty."""

    endpoint: str | None = None
    secret_name: str | None = None  # a Secret with keys AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY

    @classmethod
    def from_env(cls) -> "StorageDefaults":
        return cls(
            endpoint=os.environ.get("RZERO_DEFAULT_S3_ENDPOINT") or None,
            secret_name=os.environ.get("RZERO_DEFAULT_S3_SECRET") or None,
        )


def _secret_env(name: str, keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{"name": var, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}} for var, key in keys]


def storage_env(spec: RZeroRunSpec, defaults: StorageDefaults = StorageDefaults()) -> list[dict[str, Any]]:
    """S3 settings; the credentials only as references to the Secret named in the spec (or the
    operator's default Secret when the spec names none)."""
    storage = spec.storage
    env: list[dict[str, Any]] = []
    if storage.secret_ref is not None:
        ref = storage.secret_ref
        keys = [("AWS_ACCESS_KEY_ID", ref.access_key_id_key), ("AWS_SECRET_ACCESS_KEY", ref.secret_access_key_key)]
        if ref.session_token_key:
            keys.append(("AWS_SESSION_TOKEN", ref.session_token_key))
        env += _secret_env(ref.name, keys)
    elif storage.is_s3 and defaults.secret_name:
        env += _secret_env(defaults.secret_name, [("AWS_ACCESS_KEY_ID",) * 2, ("AWS_SECRET_ACCESS_KEY",) * 2])
    endpoint = storage.endpoint or (defaults.endpoint if storage.is_s3 else None)
    if endpoint:
        env.append({"name": "AWS_ENDPOINT_URL", "value": endpoint})
    if storage.region:
        env += [{"name": "AWS_REGION", "value": storage.region}, {"name": "AWS_DEFAULT_REGION", "value": storage.region}]
    return env


def worker_env(
    spec: RZeroRunSpec, *, nodes: int, job: str, service: str | None, defaults: StorageDefaults = StorageDefaults()
) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        # A read-only root filesystem: every cache goes to the writable emptyDir volumes.
        {"name": "HOME", "value": "/tmp"},
        {"name": "XDG_CACHE_HOME", "value": CACHE_DIR},
        {"name": "HF_HOME", "value": f"{CACHE_DIR}/huggingface"},
        {"name": "TRITON_CACHE_DIR", "value": f"{CACHE_DIR}/triton"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    if nodes > 1 and service:
        env += [
            {"name": "MASTER_ADDR", "value": f"{job}-0.{service}"},
            {"name": "MASTER_PORT", "value": str(MASTER_PORT)},
            {"name": "NNODES", "value": str(nodes)},
            {"name": "NODE_RANK", "valueFrom": {"fieldRef": {
                "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}},
        ]
    env += storage_env(spec, defaults)
    env += [item.wire() for item in spec.resources.env]
    return env


# Open-ended phases whose worker calls the judge its task carries (generate carries it and does not call it).
JUDGING_PHASES = ("challenger", "label", "solver")


def task_endpoints(task: Any) -> list[Any]:
    """The endpoints a phase task's worker calls: a verifiable label task's oracle and vetoing Verifier, an
    open-ended judging task's Verifier, an evaluate task's win-rate judge (from iteration 1, with heldOut:
    iteration 0's evaluate task has none). None where the field is a model or unset."""
    open_ended = getattr(task, "open_ended", None)
    if open_ended is not None:
        return [open_ended.judge.endpoint] if task.phase in JUDGING_PHASES else []
    endpoints = []
    if task.phase == "label":
        endpoints.append(task.oracle.endpoint)
        endpoints.append(task.verifier.endpoint if task.verifier is not None else None)
    win_rate = getattr(task, "win_rate", None)
    if win_rate is not None:
        endpoints.append(win_rate.judge.endpoint)
    return endpoints


def oracle_env(tasks: Sequence[Any]) -> list[dict[str, Any]]:
    """The API keys of the endpoints the Job's tasks call (task_endpoints): a Job whose tasks call none gets
    none. By reference to their Secrets (never the values); one variable per name."""
    env: dict[str, dict[str, Any]] = {}
    for endpoint in (endpoint for task in tasks for endpoint in task_endpoints(task)):
        if endpoint is not None and endpoint.api_key_secret is not None:
            ref = endpoint.api_key_secret
            env.setdefault(endpoint.api_key_env, {"name": endpoint.api_key_env,
                                                  "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    return list(env.values())


def tracking_env(spec: RZeroRunSpec) -> list[dict[str, Any]]:
    """Every phase Job's tracker credentials (spec.tracking), by reference to their Secrets (never the value)."""
    pairs = [("WANDB_API_KEY", spec.tracking.wandb and spec.tracking.wandb.api_key_secret),
             ("MLFLOW_TRACKING_TOKEN", spec.tracking.mlflow and spec.tracking.mlflow.token_secret)]
    return [{"name": var, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}} for var, ref in pairs if ref]


def container_resources(shape: PodResources) -> dict[str, Any]:
    if shape.memory is None:  # the reconciler sizes the spec first; a Job without a memory limit is never made
        raise ValueError("resources.memory is unset: size the spec first (sizing_auto.resolve)")
    requests: dict[str, str] = {"cpu": str(shape.cpu), "memory": str(shape.memory)}
    limits: dict[str, str] = {"memory": str(shape.memory)}  # memory limit = request: no surprise OOM kills
    if shape.gpus:
        requests["nvidia.com/gpu"] = str(shape.gpus)
        limits["nvidia.com/gpu"] = str(shape.gpus)
    return {"requests": requests, "limits": limits}


def task_volume(config_map: str | None, inline_files: list[str]) -> dict[str, Any]:
    """The task files: from the pod's own annotations (the downward API: no object besides the Job), or from
    the attempt's ConfigMap when they are too large to travel inline (jobs.INLINE_TASKS_LIMIT)."""
    if config_map is not None:
        return {"name": "task", "configMap": {"name": config_map}}
    items = [{"path": file, "fieldRef": {"fieldPath": f"metadata.annotations['{task_annotation(file)}']"}}
             for file in inline_files]
    return {"name": "task", "downwardAPI": {"items": items}}


def _volumes(task: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    volumes = [
        task,
        {"name": "tmp", "emptyDir": {}},
        {"name": "cache", "emptyDir": {}},
        {"name": "dshm", "emptyDir": {"medium": "Memory"}},  # torch DataLoader / NCCL shared memory
    ]
    mounts = [
        {"name": "task", "mountPath": TASK_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "cache", "mountPath": CACHE_DIR},
        {"name": "dshm", "mountPath": "/dev/shm"},
    ]
    return volumes, mounts


def pod_spec(
    spec: RZeroRunSpec, phase: str, *, image: str, job: str, task: dict[str, Any], sharded: bool,
    service: str | None, tasks: Sequence[Any], storage_defaults: StorageDefaults = StorageDefaults(),
) -> dict[str, Any]:
    """The pod template's `spec` for one phase attempt; `task`: its task volume (`task_volume`); `tasks`: the
    attempt's task objects, whose endpoints' keys its pods get (oracle_env)."""
    shape = spec.resources.for_phase(phase)
    layout = phase_layout(spec, phase)
    nodes = layout.nodes
    volumes, mounts = _volumes(task)
    container = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": spec.resources.image_pull_policy,
        "command": worker_command(phase, sharded=sharded, layout=layout),
        "env": worker_env(spec, nodes=nodes, job=job, service=service, defaults=storage_defaults) + oracle_env(tasks)
        + tracking_env(spec),
        "resources": container_resources(shape.model_copy(update={"gpus": layout.pod_gpus}) if layout.gpus else shape),
        "volumeMounts": mounts,
        # The worker writes its summary JSON to /dev/termination-log; on a crash the log tail explains why.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if nodes > 1:
        container["ports"] = [{"name": "rendezvous", "containerPort": MASTER_PORT, "protocol": "TCP"}]
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
        "automountServiceAccountToken": False,  # workers never talk to the API server
    }
    if nodes > 1 and service:
        pod["subdomain"] = service  # gives `<job>-<index>.<service>` DNS names for the rendezvous
    if shape.node_selector:
        pod["nodeSelector"] = dict(shape.node_selector)
    if shape.tolerations:
        pod["tolerations"] = [item.wire() for item in shape.tolerations]
    if spec.resources.affinity:
        pod["affinity"] = spec.resources.affinity
    if spec.resources.priority_class_name:
        pod["priorityClassName"] = spec.resources.priority_class_name
    if spec.resources.service_account_name:
        pod["serviceAccountName"] = spec.resources.service_account_name
    return pod


def node_count(spec: RZeroRunSpec, phase: str) -> int:
    """Pods of a training phase's attempt (1 for data-parallel phases, which shard instead)."""
    return phase_layout(spec, phase).nodes
