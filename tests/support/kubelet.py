"""Plays the kubelet on a real control plane: there is no node, so the Job controller's pods never run.

    kubelet = Kubelet(control_plane.kube_api(), namespace, outcome=succeed_with(PLAUSIBLE_METRICS)).start()
    ...
    kubelet.stop()

A background thread lists the namespace's pods every `interval` seconds and, for each pod it has not
finished yet, asks `outcome(pod, task)` what happens to it: `None` leaves it pending (a pod still running),
else `PodExit(exit_code, message)` is written the way a kubelet would — through the pods/status subresource,
phase Succeeded/Failed with the container's `terminated` state and termination message. The real Job
controller then counts the pod and sets the Job's conditions. A deleted pod (deletionTimestamp set) is removed
for good, as a kubelet does once its containers have stopped. `task` is the pod's task document, read as the worker
would (`task.json`, or `task-<index>.json` for an Indexed Job): from the pod's annotations (the downward API's
source), else from the Job's ConfigMap.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Callable

from rzero_operator.kube.client import KubeApi, KubeError

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


@dataclass(frozen=True)
class PodExit:
    exit_code: int
    message: str = ""
    reason: str | None = None


Outcome = Callable[[dict, dict | None], PodExit | None]


def summary(task: dict, metrics: dict) -> str:
    """The worker's summary JSON, as its termination message."""
    return json.dumps({"apiVersion": "rzero.dev/summary-v1", "run": task["run"], "phase": task["phase"],
                       "iteration": task["iteration"], "output": task["output"], "seconds": 1.5, "metrics": metrics})


def succeed_with(metrics_by_phase: dict[str, dict]) -> Outcome:
    """Every pod exits 0 with a plausible summary for its phase."""
    return lambda pod, task: PodExit(0, summary(task, metrics_by_phase[task["phase"]])) if task else None


def succeed_jobs(allowed: set[str], metrics_by_phase: dict[str, dict]) -> Outcome:
    """Pods of the Jobs named in `allowed` (a set the caller adds to as it goes) exit 0 with a plausible
    summary; the others keep running."""
    def outcome(pod: dict, task: dict | None) -> PodExit | None:
        job = (pod["metadata"].get("labels") or {}).get(JOB_NAME_LABEL)
        return PodExit(0, summary(task, metrics_by_phase[task["phase"]])) if task and job in allowed else None

    return outcome


class Kubelet:
    def __init__(self, api: KubeApi, namespace: str, outcome: Outcome, interval: float = 0.1):
        self.api = api
        self.namespace = namespace
        self.outcome = outcome
        self.interval = interval
        self.finished: dict[str, PodExit] = {}  # pod name -> what it did
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"kubelet-{namespace}", daemon=True)
        self._tasks: dict[tuple[str, str], dict] = {}

    def start(self) -> "Kubelet":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                pods = self.api.request("GET", f"/api/v1/namespaces/{self.namespace}/pods").get("items", [])
            except Exception as error:  # noqa: BLE001 - the server may be restarting; try again
                self.errors.append(str(error))
                continue
            for pod in pods:
                name = pod["metadata"]["name"]
                if pod["metadata"].get("deletionTimestamp"):
                    self._confirm_deletion(pod)
                    continue
                if name in self.finished:
                    continue
                exit_ = self.outcome(pod, self.task_of(pod))
                if exit_ is not None:
                    self._finish(pod, exit_)

    def task_of(self, pod: dict) -> dict | None:
        job = (pod["metadata"].get("labels") or {}).get(JOB_NAME_LABEL)
        if not job:
            return None
        index = (pod["metadata"].get("annotations") or {}).get(INDEX_ANNOTATION)
        key = "task.json" if index is None else f"task-{index}.json"
        inline = (pod["metadata"].get("annotations") or {}).get(f"rzero.dev/{key}")
        if inline is not None:  # the task travels in the pod's annotations (the downward API mounts it)
            return json.loads(inline)
        if (job, key) not in self._tasks:  # too large to travel inline: the attempt's ConfigMap
            try:
                data = self.api.get_core(self.namespace, "configmaps", job).get("data") or {}
            except KubeError:
                return None
            if key not in data:
                return None
            self._tasks[(job, key)] = json.loads(data[key])
        return self._tasks[(job, key)]

    def _confirm_deletion(self, pod: dict) -> None:
        """A kubelet stops a deleted pod's containers, then removes the pod for good (grace period 0)."""
        meta = pod["metadata"]
        try:
            self.api.request("DELETE", f"/api/v1/namespaces/{self.namespace}/pods/{meta['name']}",
                             body={"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                                   "preconditions": {"uid": meta["uid"]}})
        except KubeError as error:
            if not error.not_found and not error.conflict:
                self.errors.append(str(error))

    def _finish(self, pod: dict, exit_: PodExit) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        containers = pod["spec"]["containers"]
        state = {"terminated": {"exitCode": exit_.exit_code, "message": exit_.message, "startedAt": now,
                                "finishedAt": now, "reason": exit_.reason or ("Completed" if exit_.exit_code == 0 else "Error")}}
        status = {
            "phase": "Succeeded" if exit_.exit_code == 0 else "Failed",
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now, "reason": "PodCompleted"}],
            "containerStatuses": [{"name": c["name"], "ready": False, "restartCount": 0, "image": c["image"],
                                   "imageID": "", "state": state} for c in containers],
        }
        try:
            self.api.request("PATCH", f"/api/v1/namespaces/{self.namespace}/pods/{pod['metadata']['name']}/status",
                             body={"status": status}, content_type="application/merge-patch+json")
        except KubeError as error:
            self.errors.append(str(error))
            return
        self.finished[pod["metadata"]["name"]] = exit_
