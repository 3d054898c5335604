"""A thin, dict-in/dict-out wrapper over the official `kubernetes` client.

Why not the generated `BatchV1Api` & co.? Since kubernetes 36 those methods validate their bodies against
pydantic models and deserialize responses into them, which fights our plain-dict manifests (the builders in
jobs.py are dicts, kopf hands us dicts). This wrapper keeps the official client's configuration, auth,
TLS and retries, and only does the last step — one REST call, JSON back — itself. Paths are spelled out,
so every request the operator makes is visible here.

`fence`: with leader election, the reconciler's KubeApi asks `fence()` (the elector's `is_leader`) before
every request that is not a GET and raises NotLeader instead of sending it: a replica that lost the lease
(or was paused past it) creates, patches, deletes and posts nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote

import kubernetes.client
import kubernetes.config

RUNS_PATH = "/apis/rzero.dev/v1alpha1"
JOBS_PATH = "/apis/batch/v1"
CORE_PATH = "/api/v1"
LEASES_PATH = "/apis/coordination.k8s.io/v1"
MERGE_PATCH = "application/merge-patch+json"


class KubeError(Exception):
    """A non-2xx answer from the API server (status code and the server's reason/message)."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(f"HTTP {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


class NotLeader(RuntimeError):
    """A write refused before it left: this replica does not hold the leader lease (any more)."""


def load_api_client(kubeconfig: str | None = None) -> kubernetes.client.ApiClient:
    """In-cluster service account first (how the operator runs), else a kubeconfig (KUBECONFIG or path)."""
    if kubeconfig is None:
        try:
            configuration = kubernetes.client.Configuration()
            kubernetes.config.load_incluster_config(client_configuration=configuration)
            return kubernetes.client.ApiClient(configuration=configuration)
        except kubernetes.config.ConfigException:
            pass
    return kubernetes.config.new_client_from_config(config_file=kubeconfig, persist_config=False)


def _quote(part: str) -> str:
    return quote(part, safe="")


@dataclass
class KubeApi:
    """The handful of API calls the operator needs, on plain dicts."""

    api_client: kubernetes.client.ApiClient
    timeout_s: float = 30.0
    fence: Callable[[], bool] | None = None  # None: no leader election, every write goes

    # ---------------------------------------------------------------------------------------- raw call
    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict:
        if method != "GET" and self.fence is not None and not self.fence():
            raise NotLeader(f"not the leader: refusing {method} {path}")
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method_, url, headers_, body_, post = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()) or None,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(
            method_, url, header_params=headers_, body=body_, post_params=post, _request_timeout=self.timeout_s
        )
        raw = response.read()
        payload = json.loads(raw) if raw else {}
        if not 200 <= response.status <= 299:
            raise KubeError(response.status, str(payload.get("reason", "")), str(payload.get("message", raw[:200])))
        return payload

    # ------------------------------------------------------------------------------------------ RZeroRun
    def get_run(self, namespace: str, name: str) -> dict:
        return self.request("GET", f"{RUNS_PATH}/namespaces/{_quote(namespace)}/rzeroruns/{_quote(name)}")

    def patch_run_status(self, namespace: str, name: str, status_patch: dict, resource_version: str | None = None) -> dict:
        """Status goes through the /status subresource: on a real cluster a status change sent to the
        main resource is silently dropped. With `resource_version`, the patch applies only to that version
        of the run (the server answers 409 Conflict otherwise)."""
        body: dict[str, Any] = {"status": status_patch}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return self.request(
            "PATCH",
            f"{RUNS_PATH}/namespaces/{_quote(namespace)}/rzeroruns/{_quote(name)}/status",
            body=body,
            content_type=MERGE_PATCH,
        )

    # ----------------------------------------------------------------------------------------------- Jobs
    def _list_labelled(self, path: str, labels: dict[str, str]) -> list[dict]:
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        items = self.request("GET", path, query={"labelSelector": selector}).get("items", [])
        # Filter again here: a selector the server ignores (the test emulator does) must not leak others' objects.
        return [item for item in items if _has_labels(item, labels)]

    def list_jobs(self, namespace: str, labels: dict[str, str]) -> list[dict]:
        return self._list_labelled(f"{JOBS_PATH}/namespaces/{_quote(namespace)}/jobs", labels)

    def get_job(self, namespace: str, name: str) -> dict | None:
        """The Job, or None when there is none of that name."""
        try:
            return self.request("GET", f"{JOBS_PATH}/namespaces/{_quote(namespace)}/jobs/{_quote(name)}")
        except KubeError as error:
            if error.not_found:
                return None
            raise

    def create_job(self, namespace: str, job: dict) -> dict:
        return self.request("POST", f"{JOBS_PATH}/namespaces/{_quote(namespace)}/jobs", body=job)

    def delete_job(self, namespace: str, name: str) -> None:
        """Background propagation: the Job goes at once, the garbage collector removes its pods."""
        self.request(
            "DELETE",
            f"{JOBS_PATH}/namespaces/{_quote(namespace)}/jobs/{_quote(name)}",
            body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
        )

    def patch_job(self, namespace: str, name: str, patch: dict) -> dict:
        return self.request(
            "PATCH", f"{JOBS_PATH}/namespaces/{_quote(namespace)}/jobs/{_quote(name)}", body=patch,
            content_type=MERGE_PATCH,
        )

    # ------------------------------------------------------------------------------------------- core/v1
    def create_core(self, namespace: str, plural: str, obj: dict) -> dict:
        return self.request("POST", f"{CORE_PATH}/namespaces/{_quote(namespace)}/{plural}", body=obj)

    def list_pods(self, namespace: str, labels: dict[str, str]) -> list[dict]:
        return self._list_labelled(f"{CORE_PATH}/namespaces/{_quote(namespace)}/pods", labels)

    def get_core(self, namespace: str, plural: str, name: str) -> dict:
        return self.request("GET", f"{CORE_PATH}/namespaces/{_quote(namespace)}/{plural}/{_quote(name)}")

    def delete_core(self, namespace: str, plural: str, name: str, uid: str) -> None:
        """Delete exactly the object with this uid (a precondition: never a newer one of the same name)."""
        self.request(
            "DELETE", f"{CORE_PATH}/namespaces/{_quote(namespace)}/{plural}/{_quote(name)}",
            body={"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid},
                  "propagationPolicy": "Background"},
        )

    def list_job_events(self, namespace: str, job: str | None = None, reason: str | None = None) -> list[dict]:
        """Events about one Job, or about any Job of the namespace (`job` None), of one `reason` if given
        (the Job controller's FailedCreate)."""
        selector = ",".join(["involvedObject.kind=Job"] + ([f"involvedObject.name={job}"] if job else [])
                            + ([f"reason={reason}"] if reason else []))
        items = self.request("GET", f"{CORE_PATH}/namespaces/{_quote(namespace)}/events",
                             query={"fieldSelector": selector}).get("items", [])
        # Filter again: a selector the server ignores (the test emulator does) must not leak other Events.
        return [e for e in items if (e.get("involvedObject") or {}).get("kind") == "Job"
                and (job is None or (e.get("involvedObject") or {}).get("name") == job)
                and (reason is None or e.get("reason") == reason)]


    # ------------------------------------------------------------------------------ coordination/v1 Lease
    def get_lease(self, namespace: str, name: str) -> dict:
        return self.request("GET", f"{LEASES_PATH}/namespaces/{_quote(namespace)}/leases/{_quote(name)}")

    def create_lease(self, namespace: str, lease: dict) -> dict:
        return self.request("POST", f"{LEASES_PATH}/namespaces/{_quote(namespace)}/leases", body=lease)

    def replace_lease(self, namespace: str, name: str, lease: dict) -> dict:
        """PUT with the resourceVersion read: the API server answers 409 when someone wrote in between."""
        return self.request("PUT", f"{LEASES_PATH}/namespaces/{_quote(namespace)}/leases/{_quote(name)}", body=lease)


def size_pool(api_client: kubernetes.client.ApiClient, connections: int) -> None:
    """Give the client at least `connections` pooled connections per host: one per thread that may call at
    once (the reconcile workers), else urllib3 discards the surplus ("Connection pool is full") and every
    burst opens new TLS connections. The pool is built with the client, so a larger one means a new one."""
    configuration = api_client.configuration
    if (configuration.connection_pool_maxsize or 0) >= connections:
        return
    configuration.connection_pool_maxsize = connections
    old, api_client.rest_client = api_client.rest_client, kubernetes.client.rest.RESTClientObject(configuration)
    old.pool_manager.clear()


def _has_labels(obj: dict, labels: dict[str, str]) -> bool:
    present = (obj.get("metadata") or {}).get("labels") or {}
    return all(present.get(key) == value for key, value in labels.items())
