"""API-server faults for operator tests: the emulator answers chosen requests with an error status.

    faults = ApiFaults(kube_emulator)
    faults.add("POST", r"/jobs$", status=503, times=3)                     # a flaky API server
    faults.add("PATCH", r"/rzeroruns/demo/status$", status=500, times=2)   # status writes failing
    faults.add("GET", r"/rzeroruns$", status=410, times=1, query="watch")  # a watch that expired

Only the operator's requests meet faults (not the test driver's). The hook wraps this emulator's request handler (an instance attribute shadows kmock's method), so it needs
no change to the emulator itself; each answer is a Kubernetes `Status` body, as the API server sends.
`faults.injected` lists "METHOD path -> status" of every request answered with a fault.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass

import aiohttp.web

from support.kube import DRIVER_AGENT

_REASONS = {409: "Conflict", 410: "Expired", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
            504: "Timeout"}


@dataclass
class ApiFault:
    method: str
    path: str
    status: int
    times: int | None = 1
    query: str | None = None  # a query parameter that must be present (e.g. "watch")


class ApiFaults:
    def __init__(self, kube_emulator):
        self.faults: list[ApiFault] = []
        self.injected: list[str] = []
        self._lock = threading.Lock()
        emulator = kube_emulator._emulator
        original = emulator._handle

        async def handle(request):
            fault = self._take(request)
            if fault is None:
                return await original(request)
            reason = _REASONS.get(fault.status, "InternalError")
            body = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "code": fault.status,
                    "reason": reason, "message": f"injected {fault.status} {reason}"}
            return aiohttp.web.json_response(body, status=fault.status)

        asyncio.run_coroutine_threadsafe(self._install(emulator, handle), kube_emulator._loop).result(5)

    @staticmethod
    async def _install(emulator, handle) -> None:
        emulator._handle = handle

    def add(self, method: str, path: str, status: int, times: int | None = 1, query: str | None = None) -> ApiFault:
        fault = ApiFault(method, path, status, times, query)
        with self._lock:
            self.faults.append(fault)
        return fault

    def _take(self, request) -> ApiFault | None:
        if request.headers.get("User-Agent", "") == DRIVER_AGENT:
            return None  # the test's own Job controller stand-in is not under test
        method = request.method.value if request.method else ""
        path, query = request.url.path, dict(request.url.query)
        with self._lock:
            for fault in self.faults:
                if fault.times is not None and fault.times <= 0:
                    continue
                if fault.method == method and re.search(fault.path, path) and (fault.query is None or fault.query in query):
                    if fault.times is not None:
                        fault.times -= 1
                    self.injected.append(f"{method} {path} -> {fault.status}")
                    return fault
        return None
