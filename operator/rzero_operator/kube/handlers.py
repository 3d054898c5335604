"""kopf handlers: every trigger funnels into `Reconciler.reconcile(namespace, name)`.

Triggers:
- the run is created, resumed (operator start), its spec changes (suspend, iterations, ...) or its
  annotations do (a person's decision at an approval gate: approval.py);
- a Job of the run finishes or disappears (watch on batch/v1 Jobs labelled managed-by=rzero-operator);
- the requeue loop: when the plan asked to be called again (retry backoff, deadline) or for a periodic resync.

The requeue loop is our own task, not a kopf timer: kopf puts a finalizer on every object that has a timer,
and a finalizer would make deleting a run hang whenever the operator is down. Deletion relies on
ownerReferences alone.

The handlers hold no algorithm and no state beyond "when is this run due again". Reconciles run in a thread
pool (the official client is synchronous).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import kopf

from .client import KubeApi
from .observe import job_finished
from .reconcile import Outcome, Reconciler
from . import naming

log = logging.getLogger(__name__)

RUNS = ("rzero.dev", "v1alpha1", "rzeroruns")
JOBS = ("batch", "v1", "jobs")
ERROR_RETRY_S = 5.0


@dataclass
class Schedule:
    """When each run is due for its next timer-driven reconcile (monotonic seconds)."""

    resync_s: float = 60.0
    _due: dict[tuple[str, str], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def after(self, key: tuple[str, str], requeue_after: float | None) -> None:
        delay = self.resync_s if requeue_after is None else min(max(0.0, requeue_after), self.resync_s)
        with self._lock:
            self._due[key] = time.monotonic() + delay

    def due(self) -> list[tuple[str, str]]:
        now = time.monotonic()
        with self._lock:
            return [key for key, when in self._due.items() if when <= now]

    def __contains__(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return key in self._due

    def forget(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._due.pop(key, None)


def connection_info(api: KubeApi) -> kopf.ConnectionInfo:
    """kopf talks to the same API server with the same credentials as our client."""
    config = api.api_client.configuration
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    scheme, token = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0] if parts else None)
    return kopf.ConnectionInfo(
        server=config.host, ca_path=config.ssl_ca_cert, insecure=not config.verify_ssl,
        scheme=scheme, token=token, certificate_path=config.cert_file, private_key_path=config.key_file,
    )


def owner_run(job: dict) -> str | None:
    for ref in (job.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "RZeroRun" and ref.get("controller"):
            return ref.get("name")
    return None


class Handlers:
    """Registers the operator's handlers on a kopf registry, bound to one reconciler."""

    def __init__(self, reconciler: Reconciler, schedule: Schedule, executor: Executor, tick_s: float = 1.0):
        self.reconciler = reconciler
        self.schedule = schedule
        self.executor = executor
        self.tick_s = tick_s
        self._in_flight: dict[tuple[str, str], asyncio.Task] = {}

    async def requeue_loop(self) -> None:
        """Every tick, reconcile the runs that are due (one reconcile per run at a time). Runs until cancelled."""
        while True:
            await asyncio.sleep(self.tick_s)
            for key in self.schedule.due():
                if key not in self._in_flight:
                    self.schedule.after(key, None)  # not due again until this one reports back
                    task = asyncio.create_task(self._requeued(key))
                    self._in_flight[key] = task
                    task.add_done_callback(lambda _, key=key: self._in_flight.pop(key, None))

    async def _requeued(self, key: tuple[str, str]) -> None:
        try:
            await self.reconcile(*key)
        except Exception as error:  # noqa: BLE001 - rescheduled by reconcile(); the loop must live on
            log.warning("reconcile of %s/%s failed: %s", key[0], key[1], error)

    async def reconcile(self, namespace: str, name: str) -> Outcome:
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(self.executor, self.reconciler.reconcile, namespace, name)
        except Exception:
            self.schedule.after((namespace, name), ERROR_RETRY_S)
            raise
        self.schedule.after((namespace, name), outcome.requeue_after)
        return outcome

    def register(self, registry: kopf.OperatorRegistry) -> None:
        api = self.reconciler.api

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return connection_info(api)

        @kopf.on.create(*RUNS, registry=registry)
        @kopf.on.resume(*RUNS, registry=registry)
        @kopf.on.update(*RUNS, field="spec", registry=registry)
        @kopf.on.update(*RUNS, field="metadata.annotations", registry=registry)  # approval decisions
        async def run_changed(namespace: str, name: str, **_: Any) -> None:
            try:
                await self.reconcile(namespace, name)
            except Exception as error:  # kopf retries with this delay; the error names the API failure
                raise kopf.TemporaryError(f"reconcile failed: {error}", delay=ERROR_RETRY_S) from error

        @kopf.on.event(*RUNS, registry=registry)
        async def run_event(event: dict, namespace: str, name: str, **_: Any) -> None:
            if event.get("type") == "DELETED":  # Jobs go with it through their ownerReferences
                self.reconciler.forget(namespace, name)
                self.schedule.forget((namespace, name))
            elif (namespace, name) not in self.schedule:  # e.g. seen again after a watch restart
                self.schedule.after((namespace, name), 0.0)

        @kopf.on.event(*JOBS, labels={naming.MANAGED_BY_LABEL: naming.MANAGER}, registry=registry)
        async def job_event(event: dict, body: Any, namespace: str, **_: Any) -> None:
            job = dict(body)
            if event.get("type") != "DELETED" and not job_finished(job):
                return  # a running Job changes nothing the plan looks at
            run = owner_run(job)
            if run is not None:
                try:
                    await self.reconcile(namespace, run)
                except Exception as error:  # event handlers are not retried: the timer picks it up
                    log.warning("reconcile of %s/%s after a Job event failed: %s", namespace, run, error)
