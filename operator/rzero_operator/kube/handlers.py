"""kopf handlers: every trigger funnels into `Reconciler.reconcile(namespace, name)`.

Triggers:
- the run is created, resumed (operator start), its spec changes (suspend, iterations, ...) or its
  annotations do (a person's decision at an approval gate: approval.py);
- a Job of the run finishes or disappears (watch on batch/v1 Jobs labelled managed-by=rzero-operator);
- the requeue loop: when the plan asked to be called again (retry backoff, a deadline, a Job still
  without pods: plan.STARTING_POLL_S) or for the safety-net resync of a run that is not finished.

What it costs at scale:
- A finished run (Succeeded/Failed for its current generation) is in no schedule and costs no request:
  neither its Jobs' events (a restart's initial listing replays every kept Job) nor its own (kopf's
  re-list, our last status write) reconcile it; only a change of its spec or annotations does.
- Job events are coalesced per run (`kick`): one reconcile at a time per run, and one more after it when
  events came in meanwhile — N finished Jobs of a run cost at most two reconciles, not N.
- Every Job event refreshes the Job cache (job_cache.py) before it triggers anything, so the reconciler
  reads the attempt's Job from there instead of listing Jobs; pod events fill the pod cache, so a
  finished Job's pods (their termination messages) are listed only when the pod watch is behind.
- A reconcile triggered by a Job event or one of the plan's timers reads the run from the run cache (our
  last read or write of it, kept current by the run watch; its status write conditional on that
  resourceVersion); the run's own triggers (created, resumed, spec or annotations changed), the resync and
  a retry after an error read it with a GET.
- A running run is driven by its watches; the periodic resync (RESYNC_S) is only a safety net for an
  event the watch never delivered.

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
from .observe import awaiting_pods, job_finished
from .job_cache import FailedCreates, JobCache, PodCache, RunCache
from .reconcile import TERMINAL_PHASES, Outcome, Reconciler
from . import naming

log = logging.getLogger(__name__)

RUNS = ("rzero.dev", "v1alpha1", "rzeroruns")
JOBS = ("batch", "v1", "jobs")
PODS = ("v1", "pods")  # core/v1
ERROR_RETRY_S = 5.0
# The safety-net resync of a run that is not finished. Every transition arrives by watch within
# milliseconds (a Job's completion, a spec or annotation change), and the plan's own timers (backoff,
# deadlines, the fast poll of a Job without pods) are kept exactly; the resync only covers an event that
# the watch never delivered. Ten minutes bounds such a loss well below a phase's usual length (training
# phases take tens of minutes to hours) and keeps 1,000 running runs at about 3 requests a second
# (a run GET, plus a Job GET when the Job is not in the cache).
RESYNC_S = 600.0


@dataclass
class Schedule:
    """When each run is due for its next timer-driven reconcile (monotonic seconds)."""

    resync_s: float = RESYNC_S
    _due: dict[tuple[str, str], float] = field(default_factory=dict)
    _resync: set[tuple[str, str]] = field(default_factory=set)  # due for the safety net, not a plan timer
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def after(self, key: tuple[str, str], requeue_after: float | None) -> None:
        delay = self.resync_s if requeue_after is None else min(max(0.0, requeue_after), self.resync_s)
        with self._lock:
            self._due[key] = time.monotonic() + delay
            (self._resync.add if delay >= self.resync_s else self._resync.discard)(key)

    def resyncing(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return key in self._resync

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
            self._resync.discard(key)


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


def finished(body: Any) -> bool:
    """The run is Succeeded/Failed for its current spec (a spec change is a new generation: not finished)."""
    status, meta = body.get("status") or {}, body.get("metadata") or {}
    return status.get("phase") in TERMINAL_PHASES and status.get("observedGeneration") == meta.get("generation")


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
        if reconciler.jobs is None:
            reconciler.jobs = JobCache()
        self.jobs = reconciler.jobs
        if reconciler.runs is None:
            reconciler.runs = RunCache()
        self.runs = reconciler.runs
        if reconciler.pods is None:
            reconciler.pods = PodCache(naming.JOB_NAME_POD_LABEL)
        self.pods = reconciler.pods
        if reconciler.failed_creates is None:
            api = reconciler.api
            reconciler.failed_creates = FailedCreates(lambda namespace: api.list_job_events(namespace, reason="FailedCreate"))
        self._fresh: set[tuple[str, str]] = set()  # runs whose next reconcile reads the run with a GET
        self.finished: set[tuple[str, str]] = set()  # runs with nothing left to do (see `finished`)
        self.seen: set[tuple[str, str]] = set()  # runs the run watch has shown (and not deleted)
        self._in_flight: dict[tuple[str, str], asyncio.Task] = {}
        self._again: set[tuple[str, str]] = set()
        self._polls: dict[tuple[str, str], str] = {}  # run -> the Job its next requeue only looks at for pods

    async def requeue_loop(self) -> None:
        """Every tick, reconcile the runs that are due (one reconcile per run at a time). Runs until cancelled."""
        while True:
            await asyncio.sleep(self.tick_s)
            for key in self.schedule.due():
                if key in self.finished:
                    self.schedule.forget(key)
                elif self._pods_came(key):
                    self.schedule.after(key, None)  # the look for a FailedCreate has nothing to find
                elif key not in self._in_flight:
                    if self.schedule.resyncing(key):
                        self._fresh.add(key)  # the safety net reads the run too, not only what the watches said
                    self.schedule.after(key, None)  # not due again until this one reports back
                    self.kick(key)

    def _pods_came(self, key: tuple[str, str]) -> bool:
        """The run is due only to look whether its Job got pods, and the Job watch shows that it did (or
        that it finished: that event reconciles the run by itself)."""
        job = self._polls.get(key)
        cached = self.jobs.get(key[0], job) if job is not None else None
        if cached is None or awaiting_pods(cached) or key in self._in_flight:
            return False
        del self._polls[key]
        return True

    def kick(self, key: tuple[str, str]) -> None:
        """Reconcile the run now; while one is in flight, once more after it (coalesced), unless it finished."""
        if key in self._in_flight:
            self._again.add(key)
            return
        task = asyncio.create_task(self._kicked(key))
        self._in_flight[key] = task
        task.add_done_callback(lambda _, key=key: self._done(key))

    def _done(self, key: tuple[str, str]) -> None:
        self._in_flight.pop(key, None)
        if key in self._again:
            self._again.discard(key)
            if key not in self.finished:
                self.kick(key)

    async def _kicked(self, key: tuple[str, str]) -> None:
        fresh = key in self._fresh
        self._fresh.discard(key)
        try:
            await self.reconcile(*key, fresh=fresh)
        except Exception as error:  # noqa: BLE001 - rescheduled by reconcile(); the loop must live on
            log.warning("reconcile of %s/%s failed: %s", key[0], key[1], error)

    async def reconcile(self, namespace: str, name: str, fresh: bool = True) -> Outcome:
        loop = asyncio.get_running_loop()
        key = (namespace, name)
        if fresh:
            self._fresh.discard(key)  # this one reads the run
        try:
            outcome = await loop.run_in_executor(self.executor, self.reconciler.reconcile, namespace, name, fresh)
        except Exception:
            self._polls.pop(key, None)
            self._fresh.add(key)
            self.schedule.after(key, ERROR_RETRY_S)
            raise
        if outcome.awaiting_pods is not None:
            self._polls[key] = outcome.awaiting_pods
        else:
            self._polls.pop(key, None)
        if outcome.gone:
            self.finished.discard(key)
            self.schedule.forget(key)
        elif outcome.finished:
            self.finished.add(key)
            self.schedule.forget(key)
            self.runs.gone(namespace, name)  # nothing reads it until its spec changes (a GET then)
        else:
            self.finished.discard(key)
            self.schedule.after(key, outcome.requeue_after)
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
        async def run_changed(namespace: str, name: str, body: Any, reason: Any, **_: Any) -> None:
            if reason == "resume" and finished(body):  # an operator start: nothing to do for it
                self.finished.add((namespace, name))
                return
            try:
                await self.reconcile(namespace, name)
            except Exception as error:  # kopf retries with this delay; the error names the API failure
                raise kopf.TemporaryError(f"reconcile failed: {error}", delay=ERROR_RETRY_S) from error

        @kopf.on.event(*RUNS, registry=registry)
        async def run_event(event: dict, body: Any, namespace: str, name: str, **_: Any) -> None:
            key = (namespace, name)
            if event.get("type") == "DELETED":  # Jobs go with it through their ownerReferences
                self.reconciler.forget(namespace, name)
                self._fresh.discard(key)
                self.schedule.forget(key)
                self.finished.discard(key)
                self.seen.discard(key)
                self._polls.pop(key, None)
                return
            self.seen.add(key)
            self.runs.watched(dict(body))
            if finished(body):
                self.finished.add(key)
                self.runs.gone(namespace, name)
                return
            self.finished.discard(key)  # e.g. a new generation of a finished run, or its status lost
            if key not in self.schedule and key not in self._in_flight:  # e.g. seen again after a watch restart
                self._fresh.add(key)
                self.schedule.after(key, 0.0)

        @kopf.on.event(*JOBS, labels={naming.MANAGED_BY_LABEL: naming.MANAGER}, registry=registry)
        async def job_event(event: dict, body: Any, namespace: str, name: str, **_: Any) -> None:
            job = dict(body)
            if event.get("type") == "DELETED":
                self.jobs.gone(namespace, name)
            else:
                self.jobs.seen(job)  # before any reconcile it triggers reads it
                if not job_finished(job):
                    return  # a running Job changes nothing the plan looks at
            key = (namespace, owner_run(job))
            if key in self.finished and job_finished(job):
                self.pods.forget_job(namespace, name)  # a kept Job of a finished run (a restart lists them all)
            if key[1] is None or key in self.finished:
                return
            if key in self.seen:
                self.kick(key)  # errors: logged and rescheduled by reconcile()
            else:  # at a start, before the run listing: the requeue loop takes it then, unless it is finished
                self.schedule.after(key, 0.0)

        @kopf.on.event(*PODS, labels={naming.MANAGED_BY_LABEL: naming.MANAGER}, registry=registry)
        async def pod_event(event: dict, body: Any, **_: Any) -> None:
            """Only fills the pod cache: a pod's end reaches the run through its Job's event."""
            (self.pods.gone if event.get("type") == "DELETED" else self.pods.seen)(dict(body))
