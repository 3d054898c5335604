"""Kubernetes objects of one phase attempt: the Job carrying its task(s), and for multi-node training a
headless Service. Pure builders, no I/O.

- The task documents travel in the Job itself: pod-template annotations (`rzero.dev/task.json`,
  `rzero.dev/task-<i>.json`) that the downward API mounts as files at /etc/rzero, so an attempt is one
  create, not two. Documents above INLINE_TASKS_LIMIT go to a ConfigMap of the attempt instead (created
  before the Job, mounted at the same paths): the API server caps an object's annotations at 256 KiB.

- One task: a plain Job running `rzero worker PHASE --task /etc/rzero/task.json`, plus `--nproc-per-node N`
  when the pod runs its phase as N ranks (sizing.phase_layout: one per training GPU, one per vLLM engine).
- K shards (generate/label/evaluate): an Indexed Job, completions = parallelism = K; pod i reads `task-i.json`
  via `$(JOB_COMPLETION_INDEX)`.
- nodes > 1 (challenger/solver): an Indexed Job with one pod per node, all started together, plus a headless
  Service for the rendezvous of the ranks (torchrun's static rendezvous) at `<job>-0.<service>`.

Every object is owned by the RZeroRun (controller reference), so deleting the run deletes them all.
Retries are the plan's business: a Job is one attempt (backoffLimit 0); only disruptions (preemption,
node drain) are retried inside the Job, and a configuration error (exit code 2) fails it at once.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Sequence

from ..api.spec import DEFAULT_IMAGE, RZeroRunSpec
from . import naming
from .pod import CONTAINER, StorageDefaults, node_count, pod_spec, task_annotation, task_file_name, task_volume

IMAGE_ENV = "RZERO_WORKER_IMAGE"
TTL_AFTER_FINISHED_S = 7 * 86400  # long enough to read a summary after an operator outage
CONFIG_ERROR_EXIT_CODE = 2
# Task documents up to this many bytes in all travel as pod-template annotations. The API server refuses an
# object whose annotations exceed 256 KiB (keys and values); half of it leaves room for the annotations that
# admission webhooks and the Job controller add to the pods. Measured (tests/operator/kube/test_jobs.py's spec):
# one task is 0.7-1.3 KB; a generate phase of 64 shards 43 KB (inline), of 256 shards 171 KB (a ConfigMap).
INLINE_TASKS_LIMIT = 128 * 1024


@dataclass(frozen=True)
class RunRef:
    """The owning RZeroRun's identity."""

    name: str
    namespace: str
    uid: str
    api_version: str = "rzero.dev/v1alpha1"
    kind: str = "RZeroRun"

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version, "kind": self.kind, "name": self.name, "uid": self.uid,
            "controller": True, "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class PhaseObjects:
    """What one attempt needs, in creation order: config_map (None: the tasks are inline), service (or None),
    job. `tasks`: the task documents by file name, wherever they travel."""

    config_map: dict[str, Any] | None
    service: dict[str, Any] | None
    job: dict[str, Any]
    tasks: dict[str, str]


def default_image() -> str:
    """The operator-wide worker image (Helm sets RZERO_WORKER_IMAGE), else the release default."""
    return os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


def worker_image(spec: RZeroRunSpec, operator_default: str) -> str:
    """The spec's image when the user set one, else the operator's default."""
    if "image" in spec.resources.model_fields_set:
        return spec.resources.image
    return operator_default


def _metadata(run: RunRef, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": run.namespace, "labels": dict(labels), "ownerReferences": [run.owner_reference()]}


def task_documents(tasks: Sequence[Any]) -> dict[str, str]:
    """The task documents by file name (no secrets in them: credentials travel as secret references only)."""
    if len(tasks) == 1:
        return {task_file_name(None): json.dumps(tasks[0].wire(), separators=(",", ":"))}
    return {task_file_name(i): json.dumps(task.wire(), separators=(",", ":")) for i, task in enumerate(tasks)}


def inline(documents: dict[str, str]) -> bool:
    """Whether the documents fit in the pod template's annotations (INLINE_TASKS_LIMIT)."""
    size = sum(len(task_annotation(file).encode()) + len(text.encode()) for file, text in documents.items())
    return size <= INLINE_TASKS_LIMIT


def build_config_map(run: RunRef, name: str, labels: dict[str, str], documents: dict[str, str]) -> dict[str, Any]:
    """The task documents of an attempt whose tasks are too large to travel inline."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(run, name, labels), "data": dict(documents)}


def build_service(run: RunRef, name: str, job: str, labels: dict[str, str]) -> dict[str, Any]:
    """Headless Service giving each training pod a stable DNS name for the rendezvous."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(run, name, labels),
        "spec": {
            "clusterIP": "None",
            "selector": {naming.JOB_NAME_POD_LABEL: job},
            "publishNotReadyAddresses": True,  # the rendezvous happens before any pod is "ready"
            "ports": [{"name": "rendezvous", "port": 29500, "targetPort": 29500, "protocol": "TCP"}],
        },
    }


def _pod_failure_policy() -> dict[str, Any]:
    return {
        "rules": [
            {"action": "FailJob", "onExitCodes": {
                "containerName": CONTAINER, "operator": "In", "values": [CONFIG_ERROR_EXIT_CODE]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]
    }


def build_job(
    run: RunRef, spec: RZeroRunSpec, phase: str, name: str, labels: dict[str, str], *, pods: int,
    indexed: bool, image: str, service: str | None, storage_defaults: StorageDefaults = StorageDefaults(),
    documents: dict[str, str], tasks: Sequence[Any], in_config_map: bool = False,
) -> dict[str, Any]:
    """The Job; its pods read `documents` (of `tasks`) from their own annotations, or from the ConfigMap `name`."""
    job_labels = dict(labels)
    template_meta: dict[str, Any] = {"labels": dict(labels)}
    if not in_config_map:
        template_meta["annotations"] = {task_annotation(file): text for file, text in documents.items()}
    task = task_volume(name if in_config_map else None, sorted(documents))
    if spec.queue_name:
        job_labels[naming.QUEUE_LABEL] = spec.queue_name
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_S,
        "podFailurePolicy": _pod_failure_policy(),
        "template": {
            "metadata": template_meta,
            "spec": pod_spec(spec, phase, image=image, job=name, task=task, sharded=indexed and service is None,
                             service=service, storage_defaults=storage_defaults, tasks=tasks),
        },
    }
    if indexed:
        job_spec.update(completionMode="Indexed", completions=pods, parallelism=pods)
    if spec.phase_deadline_seconds:
        job_spec["activeDeadlineSeconds"] = spec.phase_deadline_seconds
    if spec.queue_name:
        job_spec["suspend"] = True  # Kueue admits (unsuspends) it when the queue has quota
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _metadata(run, name, job_labels), "spec": job_spec}


def build_phase_objects(
    run: RunRef, spec: RZeroRunSpec, start: Any, *, operator_image: str | None = None,
    storage_defaults: StorageDefaults | None = None,
) -> PhaseObjects:
    """All objects of one phase attempt. `start`: the plan's StartPhase (iteration, phase, attempt, name,
    tasks — one rzero_worker task per shard)."""
    iteration, phase, attempt, name, tasks = start.iteration, start.phase, start.attempt, start.name, start.tasks
    if not tasks:
        raise ValueError(f"phase {phase!r} of iteration {iteration}: no tasks to run")
    labels = naming.attempt_labels(run.name, run.uid, iteration, phase, attempt)
    image = worker_image(spec, operator_image or default_image())
    nodes = node_count(spec, phase)
    if nodes > 1 and len(tasks) > 1:
        raise ValueError(f"phase {phase!r}: multi-node training takes one task, got {len(tasks)}")
    service = build_service(run, naming.service_name(name), name, labels) if nodes > 1 else None
    pods = nodes if nodes > 1 else len(tasks)
    documents = task_documents(tasks)
    in_config_map = not inline(documents)
    job = build_job(
        run, spec, phase, name, labels, pods=pods, indexed=pods > 1, image=image,
        service=service["metadata"]["name"] if service else None,
        storage_defaults=storage_defaults if storage_defaults is not None else StorageDefaults.from_env(),
        documents=documents, in_config_map=in_config_map, tasks=tasks,
    )
    config_map = build_config_map(run, name, labels, documents) if in_config_map else None
    return PhaseObjects(config_map=config_map, service=service, job=job, tasks=documents)
