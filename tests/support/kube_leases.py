"""Leases (coordination.k8s.io/v1) for the kmock emulator (support/kube.py), as leader election needs them.

kmock 0.8 has no PUT; here a PUT checks resourceVersion as the API server does (409 when the object changed
since it was read), so an elector's optimistic concurrency is exercised. Two simultaneous acquirers can only
race for real on the real control plane (tests/operator/kube/server/test_leader_election.py).
"""

from __future__ import annotations

import json

import aiohttp.web

LEASES_PREFIX = "/apis/coordination.k8s.io/v1/"


def status_response(code: int, reason: str, message: str):
    """A Kubernetes `Status` failure body, as the API server sends with a 4xx/5xx."""
    return aiohttp.web.json_response({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                                      "message": message, "reason": reason, "code": code}, status=code)


class LeaseStore:
    """A mixin for the emulator: `_lease(request)` answers every request under LEASES_PREFIX."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.leases: dict[tuple[str, str], dict] = {}
        self._lease_version = 0

    def _lease(self, request):
        parts = request.url.path[len(LEASES_PREFIX):].strip("/").split("/")  # namespaces/NS/leases[/NAME]
        if len(parts) < 3 or parts[0] != "namespaces" or parts[2] != "leases":
            return status_response(404, "NotFound", "not a lease path")
        namespace, name = parts[1], (parts[3] if len(parts) > 3 else None)
        method = request.method.value if request.method else ""
        if method == "POST":
            name = request.data["metadata"]["name"]
            if (namespace, name) in self.leases:
                return status_response(409, "AlreadyExists", f'leases.coordination.k8s.io "{name}" already exists')
            return self._store_lease(namespace, name, request.data, 201)
        stored = self.leases.get((namespace, name))
        if stored is None:
            return status_response(404, "NotFound", f'leases.coordination.k8s.io "{name}" not found')
        if method == "GET":
            return aiohttp.web.json_response(stored)
        if method == "PUT":
            sent = (request.data.get("metadata") or {}).get("resourceVersion")
            if sent != stored["metadata"]["resourceVersion"]:
                return status_response(409, "Conflict", f'Operation cannot be fulfilled on leases.coordination.k8s.io '
                                       f'"{name}": the object has been modified; please apply your changes to the '
                                       'latest version and try again')
            return self._store_lease(namespace, name, request.data, 200)
        return status_response(405, "MethodNotAllowed", f"{method} on a lease")

    def _store_lease(self, namespace: str, name: str, body: dict, code: int):
        self._lease_version += 1
        lease = json.loads(json.dumps(body))
        lease.setdefault("metadata", {}).update(namespace=namespace, name=name, resourceVersion=str(self._lease_version))
        self.leases[(namespace, name)] = lease
        return aiohttp.web.json_response(lease, status=code)
