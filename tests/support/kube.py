"""kmock Kubernetes API emulator harness (fixtures for operator tests).

- `kube_emulator`: kmock's KubernetesEmulator served on loopback from its own thread and event loop, with the
  resources the operator uses declared (rzeroruns with a `status` subresource, as on a real cluster), and a
  kubeconfig pointing at it.
- `kube_api`: our KubeApi (the official `kubernetes` client) talking to it.
- `operators`: starts/stops the real operator (kopf.operator) in threads against it — stop one and start
  another to test restarts; `operators.start(election=ElectionConfig(...))` runs it as a leader-election
  candidate (a standby until it holds the Lease, its writes fenced).
- `job_driver`: plays the Job controller the emulator lacks: creates pods with terminated states and
  termination messages (the worker's summary JSON) and sets Job conditions.

The emulator has no controllers, no resourceVersion checks and ignores label selectors: tests drive Job
status themselves, and the operator filters labels client-side as well.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import aiohttp.web
import kmock
import pytest

from rzero_operator.kube.client import KubeApi, load_api_client
from rzero_operator.kube.leader import ElectionConfig
from rzero_operator.kube.main import OperatorApp, elected_app

from .kube_leases import LEASES_PREFIX, LeaseStore, status_response

RESOURCES = {
    "rzero.dev/v1alpha1/rzeroruns": dict(kind="RZeroRun", singular="rzerorun", shortnames=["rzr"], subresources=["status"]),
    "batch/v1/jobs": dict(kind="Job", singular="job", subresources=["status"]),
    "v1/pods": dict(kind="Pod", singular="pod", subresources=["status"]),
    "v1/configmaps": dict(kind="ConfigMap", singular="configmap"),
    "v1/services": dict(kind="Service", singular="service"),
    "v1/events": dict(kind="Event", singular="event"),
    "v1/namespaces": dict(kind="Namespace", singular="namespace", namespaced=False),
}
DRIVER_AGENT = "rzero-test-driver"
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    subresource: str | None
    action: str | None
    data: Any
    at: float = 0.0  # time.monotonic() on arrival
    user_agent: str = ""
    authorization: str = ""  # tells the operator's requests (its own token) from the test driver's
    query: dict = field(default_factory=dict)


class RealisticEmulator(LeaseStore, kmock.KubernetesEmulator):
    """kmock's emulator plus what a real API server does on create and kmock 0.8 does not: a name from
    generateName, uid, creationTimestamp and a resourceVersion (kopf's JSON patches test it; it never
    changes here).

    Two changes keep it fast over long tests and the 100-run bench: kmock matches each request against
    its whole request history (O(requests) per request), so finished requests move to our own log; and
    Events live in a plain dict of their own (every object in kmock's store slows each lookup), answering
    409 for a name that exists, as the API server does.

    `admission`: checks that answer as a real API server would refuse (support/kube_admission.py), each
    `(request) -> (status, reason, message) | None`, consulted before anything is stored.

    Leases (coordination.k8s.io/v1) live in a store of their own (support/kube_leases.py).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.request_log: list = []
        self.admission: list[Callable[[Any], tuple[int, str, str] | None]] = []
        self.events: dict[tuple[str, str], dict] = {}

    async def _handle(self, request):
        self.request_log.append((time.monotonic(), request))
        try:
            for check in list(self.admission):
                refusal = check(request)
                if refusal is not None:
                    return status_response(*refusal)
            if request.action == kmock.action.CREATE and isinstance(request.data, dict):
                meta = request.data.setdefault("metadata", {})
                if not meta.get("name") and meta.get("generateName"):
                    meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:10]}"
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("resourceVersion", "1")
                meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            if request.resource is not None and request.resource.plural == "events":
                return self._event(request)
            if request.url.path.startswith(LEASES_PREFIX):
                return self._lease(request)
            return await super()._handle(request)
        finally:
            self._requests[:] = [r for r in self._requests if r is not request]

    def _event(self, request):
        namespace = request.namespace or ""
        if request.action == kmock.action.CREATE:
            key = (namespace, request.data["metadata"]["name"])
            if key in self.events:
                return status_response(409, "AlreadyExists", f'events "{key[1]}" already exists')
            self.events[key] = request.data
            return aiohttp.web.json_response(request.data, status=201)
        items = [event for (ns, _), event in self.events.items() if not namespace or ns == namespace]
        return aiohttp.web.json_response({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": items})


class Emulator:
    """kmock's KubernetesEmulator on loopback, run in a background thread."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="kmock", daemon=True)
        self.url = ""
        self.kubeconfig = workdir / "kubeconfig.json"

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with RealisticEmulator() as emulator, kmock.Server(emulator) as server:
            for key, info in RESOURCES.items():
                info = dict(info)
                emulator.resources[key] = kmock.ResourceInfo(namespaced=info.pop("namespaced", True), verbs=VERBS, **info)
            self._emulator = emulator
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def start(self) -> "Emulator":
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("kmock emulator did not start")
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
            "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
            "users": [{"name": "test", "user": {"token": "test-token"}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "test"}}],
        }))
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def admit(self, check: Callable[[Any], tuple[int, str, str] | None]) -> None:
        """Add an admission check (see RealisticEmulator); it applies to the next request on."""
        self._loop.call_soon_threadsafe(self._emulator.admission.append, check)
        time.sleep(0.05)

    def events(self, namespace: str | None = None) -> list[dict]:
        """Every stored Event (of `namespace`), oldest first."""
        async def snapshot() -> list[dict]:
            return [json.loads(json.dumps(e)) for (ns, _), e in list(self._emulator.events.items())
                    if namespace is None or ns == namespace]
        return asyncio.run_coroutine_threadsafe(snapshot(), self._loop).result(10)

    def requests(self) -> list[LoggedRequest]:
        """The emulator's request log, copied on its own loop (thread-safe)."""
        async def snapshot() -> list[LoggedRequest]:
            return [
                LoggedRequest(r.method.value if r.method else "", r.url.path, r.subresource,
                              r.action.value if r.action else None, r.data, at, r.headers.get("User-Agent", ""),
                              r.headers.get("Authorization", ""), dict(r.url.query))
                for at, r in list(self._emulator.request_log)
            ]
        return asyncio.run_coroutine_threadsafe(snapshot(), self._loop).result(10)


def fast_shutdown(settings) -> None:
    """Tests stop and start operators often: don't linger over idle per-object queues on exit."""
    settings.queueing.exit_timeout = 0.2
    settings.queueing.idle_timeout = 0.5


class OperatorThread:
    """The real operator (kopf.operator + our handlers) in a thread with its own event loop."""

    def __init__(self, api: KubeApi, namespace: str, *, tick_s: float = 0.1, resync_s: float = 5.0,
                 election: ElectionConfig | None = None):
        self.elector = None
        if election is None:
            self.app = OperatorApp(api, tick_s=tick_s, resync_s=resync_s, workers=8)
        else:  # as run_operator builds it: the reconciler's writes fenced by the elector
            self.app, self.elector = elected_app(api.api_client, election, tick_s=tick_s, resync_s=resync_s, workers=8)
        self.namespace = namespace
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self.exit_code: int | None = None
        self._thread = threading.Thread(target=self._main, name="rzero-operator", daemon=True)

    def _main(self) -> None:
        try:
            # Cluster-wide: kmock 0.8 cannot parse GET /api/v1/namespaces, which namespaced kopf lists.
            if self.elector is None:
                asyncio.run(self.app.run(namespaces=None, stop_flag=self._stop, ready_flag=self._ready,
                                         tune=fast_shutdown))
                self.exit_code = 0
            else:
                self.exit_code = asyncio.run(self.app.run_elected(self.elector, halt=self._stop,
                                                                  ready_flag=self._ready, tune=fast_shutdown))
        except BaseException as error:  # surfaced by stop()
            self.error = error

    def start(self, wait_ready: bool = True) -> "OperatorThread":
        """wait_ready=False: a leader-election standby gets ready only once it leads."""
        self._thread.start()
        if wait_ready and not self._ready.wait(20):
            raise RuntimeError(f"operator did not get ready: {self.error!r}")
        return self

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end by itself (a lost Lease); True when it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        if self._thread.is_alive():
            raise RuntimeError("operator did not stop within 30s")


class Operators:
    """Start and stop operators; all are stopped at teardown."""

    def __init__(self, api_factory: Callable[[], KubeApi], namespace: str):
        self._api_factory = api_factory
        self.namespace = namespace
        self.running: list[OperatorThread] = []

    def start(self, wait_ready: bool = True, **options: Any) -> OperatorThread:
        operator = OperatorThread(self._api_factory(), self.namespace, **options).start(wait_ready)
        self.running.append(operator)
        return operator

    def stop(self, operator: OperatorThread) -> None:
        operator.stop()
        self.running.remove(operator)

    def stop_all(self) -> None:
        for operator in list(self.running):
            self.stop(operator)


@dataclass
class JobDriver:
    """Plays the Job controller and kubelet: the emulator stores objects as given and runs nothing."""

    api: KubeApi
    namespace: str
    summary_metrics: Callable[[dict], dict] = field(default=lambda task: {})

    def __post_init__(self) -> None:
        # Tell the driver's requests apart from the operator's in the emulator's log.
        self.api.api_client.user_agent = DRIVER_AGENT

    # ------------------------------------------------------------------------------------------ runs
    def create_run(self, name: str, spec: dict) -> dict:
        body = {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun",
                "metadata": {"name": name, "namespace": self.namespace, "uid": str(uuid.uuid4()), "generation": 1},
                "spec": spec}
        return self.api.request("POST", f"/apis/rzero.dev/v1alpha1/namespaces/{self.namespace}/rzeroruns", body=body)

    def patch_spec(self, name: str, spec_patch: dict) -> dict:
        run = self.run(name)
        generation = (run["metadata"].get("generation") or 1) + 1
        return self.api.request(
            "PATCH", f"/apis/rzero.dev/v1alpha1/namespaces/{self.namespace}/rzeroruns/{name}",
            body={"metadata": {"generation": generation}, "spec": spec_patch},
            content_type="application/merge-patch+json",
        )

    def delete_run(self, name: str) -> None:
        self.api.request("DELETE", f"/apis/rzero.dev/v1alpha1/namespaces/{self.namespace}/rzeroruns/{name}")

    def run(self, name: str) -> dict:
        return self.api.get_run(self.namespace, name)

    def status(self, name: str) -> dict:
        return self.run(name).get("status") or {}

    # ------------------------------------------------------------------------------------------ jobs
    def jobs(self) -> list[dict]:
        return self.api.list_jobs(self.namespace, {"app.kubernetes.io/managed-by": "rzero-operator"})

    def job_names(self) -> list[str]:
        return [job["metadata"]["name"] for job in self.jobs()]

    def config_map(self, name: str) -> dict:
        return self.api.request("GET", f"/api/v1/namespaces/{self.namespace}/configmaps/{name}")

    def tasks(self, job: dict) -> list[dict]:
        """The Job's task documents: inline in its pod template's annotations, else in its ConfigMap."""
        annotations = job["spec"]["template"].get("metadata", {}).get("annotations") or {}
        data = {key: value for key, value in annotations.items() if key.startswith("rzero.dev/task")}
        data = data or self.config_map(job["metadata"]["name"])["data"]
        return [json.loads(data[key]) for key in sorted(data)]

    def wait_for_job(self, name: str, timeout: float = 10.0) -> dict:
        return wait_for(lambda: next((j for j in self.jobs() if j["metadata"]["name"] == name), None), timeout,
                        f"Job {name} to be created (have {self.job_names()})")

    def succeed(self, job: dict, metrics: dict | None = None) -> None:
        """Every pod (one per task) exits 0 with its summary as termination message; the Job completes."""
        for index, task in enumerate(self.tasks(job)):
            summary = {"apiVersion": "rzero.dev/summary-v1", "run": task["run"], "phase": task["phase"],
                       "iteration": task["iteration"], "output": task["output"], "seconds": 1.5,
                       "metrics": metrics if metrics is not None else self.summary_metrics(task)}
            self._pod(job, index, exit_code=0, message=json.dumps(summary))
        self._finish(job, "Complete", "Completed", "Job completed")

    def failed_create(self, job: dict, message: str) -> None:
        """What the Job controller does when it cannot create a pod: a Warning `FailedCreate` Event."""
        name = job["metadata"]["name"]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.api.create_core(self.namespace, "events", {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{name}.{uuid.uuid4().hex[:12]}", "namespace": self.namespace},
            "involvedObject": {"apiVersion": "batch/v1", "kind": "Job", "name": name, "namespace": self.namespace,
                               "uid": job["metadata"]["uid"]},
            "type": "Warning", "reason": "FailedCreate", "message": message, "source": {"component": "job-controller"},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1})

    def fail(self, job: dict, exit_code: int = 1, error: str = "CUDA out of memory") -> None:
        message = json.dumps({"apiVersion": "rzero.dev/summary-v1", "phase": job["metadata"]["labels"]["rzero.dev/phase"],
                              "error": error})
        self._pod(job, 0, exit_code=exit_code, message=message)
        reason = "PodFailurePolicy" if exit_code == 2 else "BackoffLimitExceeded"
        self._finish(job, "Failed", reason, f"Job has reached the specified backoff limit (exit code {exit_code})")

    def killed(self, job: dict, exit_code: int = 137, reason: str = "OOMKilled") -> None:
        """The pod's container was killed (no termination message); the Job fails."""
        self._pod(job, 0, exit_code=exit_code, message="", reason=reason)
        self._finish(job, "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")

    def _pod(self, job: dict, index: int, *, exit_code: int, message: str, reason: str | None = None) -> None:
        name = job["metadata"]["name"]
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{name}-{index}-x{uuid.uuid4().hex[:5]}", "namespace": self.namespace,
                         "labels": {**job["spec"]["template"]["metadata"]["labels"], "batch.kubernetes.io/job-name": name},
                         "annotations": {"batch.kubernetes.io/job-completion-index": str(index)},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "controller": True,
                                              "uid": job["metadata"]["uid"], "blockOwnerDeletion": True}]},
            "spec": job["spec"]["template"]["spec"],
            "status": {"phase": "Succeeded" if exit_code == 0 else "Failed", "containerStatuses": [{
                "name": "worker", "ready": False, "restartCount": 0, "image": "x", "imageID": "x",
                "state": {"terminated": {"exitCode": exit_code, "message": message,
                                         "reason": reason or ("Completed" if exit_code == 0 else "Error")}}}]},
        }
        self.api.create_core(self.namespace, "pods", pod)

    def _finish(self, job: dict, condition: str, reason: str, message: str) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        status = {"conditions": [{"type": condition, "status": "True", "reason": reason, "message": message,
                                  "lastTransitionTime": now}],
                  "succeeded" if condition == "Complete" else "failed": 1}
        self.api.request("PATCH", f"/apis/batch/v1/namespaces/{self.namespace}/jobs/{job['metadata']['name']}/status",
                         body={"status": status}, content_type="application/merge-patch+json")


PLAUSIBLE_METRICS = {
    "challenger": {"steps": 5, "mean_reward": 0.41, "last_reward": 0.45, "resumed_from_step": None, "step_seconds": 2.0},
    "generate": {"requested": 16, "valid": 14, "invalid": 2, "duplicates": 1},
    "label": {"questions": 14, "kept": 6, "dropped": {"no_answer": 2, "out_of_band": 6}, "mean_agreement": 0.62,
              "score_histogram": [0, 0, 1, 2, 3, 3, 2, 1, 1, 1], "label_matches_challenger": 0.5},
    "solver": {"steps": 15, "mean_reward": 0.55, "last_reward": 0.6, "resumed_from_step": None, "step_seconds": 3.0},
    "verifier": {"examples": 20, "train_examples": 16, "held_out": 4, "sources": {"consensus": 20}, "steps": 5,
                 "accuracy_before": 0.5, "accuracy_after": 0.75, "accuracy_after_ci95": [0.3, 0.95],
                 "mean_reward": 0.6, "reward_std": 0.2, "weight_change": 1e-5, "resumed_from_step": None},
    "evaluate": {"scores": {"arithmetic": {"accuracy": 0.25, "ci95": [0.2, 0.3], "n": 200}}, "mean_accuracy": 0.25},
}


def tiny_spec(tmp_path, **overrides) -> dict:
    spec = {
        "model": "builtin:smollm2-135m-instruct",
        "iterations": 2,
        # An S3 run root (a cluster refuses local paths); nothing listens on port 9, and pods always carry
        # summaries here, so the operator never needs storage.
        "storage": {"uri": "s3://rzero-test/runs", "endpoint": "http://127.0.0.1:9"},
        "retry": {"maxAttempts": 2, "backoffSeconds": 0, "maxBackoffSeconds": 0},
        "resources": {"gpus": 0, "cpu": "1", "memory": "1Gi"},
    }
    spec.update(overrides)
    return spec


def wait_for(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `probe` until it returns something truthy; fail the test naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def kube_emulator(tmp_path: Path):
    emulator = Emulator(tmp_path).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def kube_api(kube_emulator: Emulator) -> KubeApi:
    return KubeApi(load_api_client(str(kube_emulator.kubeconfig)))


@pytest.fixture
def kube_namespace() -> str:
    return "rzero-test"


@pytest.fixture
def operators(kube_emulator: Emulator, kube_namespace: str):
    running = Operators(lambda: KubeApi(load_api_client(str(kube_emulator.kubeconfig))), kube_namespace)
    yield running
    running.stop_all()


@pytest.fixture
def job_driver(kube_api: KubeApi, kube_namespace: str) -> JobDriver:
    """Completes Jobs with the plausible summaries above (tests can swap `summary_metrics`)."""
    return JobDriver(kube_api, kube_namespace, summary_metrics=lambda task: PLAUSIBLE_METRICS[task["phase"]])
