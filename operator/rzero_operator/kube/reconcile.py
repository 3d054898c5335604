"""One reconcile of one RZeroRun: observe -> decide -> write status -> act. Level-triggered and idempotent.

Every trigger (run created/resumed/changed, a Job finished, a timer) calls `Reconciler.reconcile(ns, name)`,
which reads the world afresh — never the possibly stale event body — so a missed or duplicated trigger
costs nothing. Status is written before acting: a crash between the two leaves a status whose attempt has
no Job (`absent`), and the next reconcile starts it under the same deterministic name. A create that finds
the Job already there adopts it (its owner uid label must match) and observes it at once.

Algorithm decisions live in `plan.decide`; this module only moves data between it and the API server.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from ..api.spec import RZeroRunSpec
from ..approval import decision_annotations
from ..api.status import CurrentAttempt, RZeroRunStatus
from ..plan import Decision, Observed, StartPhase, decide, decide_invalid_spec
from ..tasks import run_root_for
from ..validate import InvalidManifest, validate_manifest
from . import naming
from .client import KubeApi, KubeError
from .events import EventPoster, api_poster, post_events
from .jobs import RunRef, build_phase_objects, default_image
from .pod import StorageDefaults
from .metrics import OperatorMetrics
from .observe import observe_attempt, storage_summary_reader
from .status_writer import parse_status, write_status

log = logging.getLogger(__name__)

MAX_ROUNDS = 64  # adopting finished Jobs after a status loss replays at most this many steps per call
CONFLICT_RETRY_S = 2.0


@dataclass
class Outcome:
    """What one reconcile did (for logs, tests and the bench)."""

    requeue_after: float | None = None
    created: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    status_writes: int = 0


@dataclass
class Reconciler:
    api: KubeApi
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    post_event: EventPoster | None = None  # default: core/v1 Events through `api`
    operator_image: str = field(default_factory=default_image)
    storage_defaults: StorageDefaults = field(default_factory=StorageDefaults.from_env)
    read_storage_summaries: bool = True
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    _locks: dict[tuple[str, str], threading.Lock] = field(default_factory=dict, init=False)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        if self.post_event is None:
            self.post_event = api_poster(self.api)

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def forget(self, namespace: str, name: str) -> None:
        with self._locks_guard:
            self._locks.pop((namespace, name), None)
        self.metrics.track_run((namespace, name), None)

    def reconcile(self, namespace: str, name: str) -> Outcome:
        """Bring one run one step closer to its spec. Serialised per run within this process."""
        started = time.monotonic()
        try:
            with self._lock((namespace, name)):
                return self._reconcile(namespace, name)
        except Exception:
            self.metrics.reconcile_errors.inc()
            raise
        finally:
            self.metrics.reconcile_seconds.observe(time.monotonic() - started)

    def _reconcile(self, namespace: str, name: str) -> Outcome:
        outcome = Outcome()
        for _ in range(MAX_ROUNDS):
            try:
                body = self.api.get_run(namespace, name)
            except KubeError as error:
                if error.not_found:
                    self.forget(namespace, name)
                    return outcome
                raise
            adopted_before = len(outcome.adopted)
            self._round(body, outcome)
            if len(outcome.adopted) == adopted_before:
                return outcome
        return outcome

    def _round(self, body: dict, outcome: Outcome) -> None:
        meta = body.get("metadata") or {}
        namespace, name = meta["namespace"], meta["name"]
        run = RunRef(name=name, namespace=namespace, uid=meta.get("uid") or "")
        raw_status = body.get("status") or {}
        status = parse_status(raw_status)
        now = self.clock()
        try:
            spec = validate_manifest({key: body.get(key) for key in ("apiVersion", "kind", "metadata", "spec")}).spec
        except InvalidManifest as invalid:
            decision = decide_invalid_spec(status, invalid.errors, meta.get("generation"), now)
            self._write_and_post(body, raw_status, status, decision, outcome)
            return
        observed = self._observe(run, spec, status, meta.get("generation"), meta.get("annotations"))
        decision = decide(spec, status, observed, now)
        self._write_and_post(body, raw_status, status, decision, outcome)
        outcome.requeue_after = decision.requeue_after
        if decision.stop is not None:
            self._stop(run, decision.stop, outcome)
        if decision.start is not None:
            self._start(run, spec, decision.start, outcome)

    def _observe(
        self, run: RunRef, spec: RZeroRunSpec, status: RZeroRunStatus, generation: int | None,
        annotations: dict | None = None,
    ) -> Observed:
        run_root = status.run_root or run_root_for(spec.storage.uri, run.namespace, run.name, run.uid)
        identity = dict(run_name=run.name, run_root=run_root, generation=generation,
                        annotations=decision_annotations(annotations))
        if status.current is None:
            return Observed(state="absent", **identity)
        jobs = self.api.list_jobs(run.namespace, naming.run_selector(run.uid))
        reader = None
        if self.read_storage_summaries:
            options = {"endpoint_url": spec.storage.endpoint, "region": spec.storage.region}
            reader = storage_summary_reader(run_root, {k: v for k, v in options.items() if v})
        return observe_attempt(
            status.current, jobs, lambda job: self.api.list_pods(run.namespace, {naming.JOB_NAME_POD_LABEL: job}),
            run_uid=run.uid, read_summary=reader, **identity,
        )

    def _write_and_post(self, body: dict, raw_status: dict, old: RZeroRunStatus, decision: Decision, outcome: Outcome) -> None:
        meta = body["metadata"]
        if write_status(self.api, meta["namespace"], meta["name"], raw_status, decision.status):
            outcome.status_writes += 1
        post_events(self.post_event, body, decision.events)
        self.metrics.record_events(decision.events, old, self.clock())
        self.metrics.track_run((meta["namespace"], meta["name"]), decision.status)
        for type_, reason, message in decision.events:
            log.info("%s %s/%s: %s", reason, meta["namespace"], meta["name"], message,
                     extra={"run": meta["name"], "namespace": meta["namespace"], "reason": reason, "type": type_})

    def _start(self, run: RunRef, spec: RZeroRunSpec, start: StartPhase, outcome: Outcome) -> None:
        objects = build_phase_objects(
            run, spec, start, operator_image=self.operator_image, storage_defaults=self.storage_defaults
        )
        self._create_owned(run.namespace, "configmaps", objects.config_map)
        if objects.service is not None:
            self._create_owned(run.namespace, "services", objects.service)
        try:
            self.api.create_job(run.namespace, objects.job)
        except KubeError as error:
            if not error.conflict:
                raise
            self._adopt(run, start, outcome)
            return
        outcome.created.append(start.name)
        self.metrics.record_start(start.phase)

    def _adopt(self, run: RunRef, start: StartPhase, outcome: Outcome) -> None:
        """The Job exists: ours (a restart replaying its step) is adopted; another run's (a re-created run
        whose predecessor's Jobs the garbage collector has not removed yet) means wait."""
        jobs = self.api.list_jobs(run.namespace, {naming.MANAGED_BY_LABEL: naming.MANAGER})
        mine = any(
            (job.get("metadata") or {}).get("name") == start.name
            and ((job.get("metadata") or {}).get("labels") or {}).get(naming.RUN_UID_LABEL) == run.uid
            for job in jobs
        )
        if mine:
            outcome.adopted.append(start.name)
            log.info("adopted existing Job %s/%s", run.namespace, start.name)
        else:
            log.warning("Job %s/%s exists but belongs to another run; waiting", run.namespace, start.name)
            outcome.requeue_after = CONFLICT_RETRY_S

    def _create_owned(self, namespace: str, plural: str, obj: dict) -> None:
        try:
            self.api.create_core(namespace, plural, obj)
        except KubeError as error:
            if not error.conflict:  # already there from an earlier try of this same attempt
                raise

    def _stop(self, run: RunRef, attempt: CurrentAttempt, outcome: Outcome) -> None:
        try:
            self.api.delete_job(run.namespace, attempt.name)
            outcome.stopped.append(attempt.name)
        except KubeError as error:
            if not error.not_found:
                raise
