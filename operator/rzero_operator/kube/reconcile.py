"""One reconcile of one RZeroRun: observe -> decide -> write status -> act. Level-triggered and idempotent.

Every trigger (run created/resumed/changed, a Job finished, a timer) calls `Reconciler.reconcile(ns, name)`,
which reads the run afresh (a GET) when the trigger is the run itself or the safety-net resync, and otherwise
from the run cache (our own last read or write, kept current by the run watch: job_cache.RunCache) with the
status write conditional on that resourceVersion — a stale entry costs a 409 and a GET, never a status
written over a newer one — so a missed or duplicated trigger costs nothing. Events are posted (idempotently, see events.py), then the status is written, then the
reconciler acts: a crash between them leaves a status whose attempt has no Job (`absent`), and the next
reconcile starts it under the same deterministic name. A create that finds the object already there adopts
it only when it belongs to this run (same run uid); another run's leftover is removed (or, while it is
being deleted, waited for), never reused.

When the API server refuses an object of the attempt (a 4xx other than conflict/not-found: an invalid Job,
a quota), the refusal is fed back to the plan as a failed attempt in the same reconcile: a configuration
error fails the run, anything else is retried with backoff; either way the server's message is in the
status, a condition and a Warning event. A run whose storage (or spec.corpus, spec.anchors) is a local path is refused
(InvalidSpec): on a cluster no volume holds it and the worker's root filesystem is read-only. So is one that cannot fit its GPUs
(sizing_auto.size: the errors `rzero validate` prints, in the same words); its auto fields (cpuOffload,
rolloutGpuMemoryUtilization, memory) are sized before the plan sees the spec, and its sizing warnings reach the
plan, which reports them once per generation (SpecValid's message and a Warning event each).

Algorithm decisions live in `plan.decide`; this module only moves data between it and the API server.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable

from ..api.spec import RZeroRunSpec
from ..api.status import CurrentAttempt, RZeroRunStatus
from ..approval import decision_annotations
from ..plan import CONFIG_ERROR_EXIT_CODE, Decision, Observed, StartPhase, decide, decide_invalid_spec
from ..sizing_auto import size
from ..tasks import run_root_for
from ..validate import InvalidManifest, validate_manifest
from . import naming
from .client import KubeApi, KubeError
from .events import EventPoster, api_poster, post_events
from .job_cache import FailedCreates, JobCache, PodCache, RunCache, attempt_job, failed_create_lister, job_pods
from .jobs import RunRef, build_phase_objects, default_image
from .pod import StorageDefaults
from .metrics import OperatorMetrics
from .observe import observe_attempt, storage_summary_reader
from .refusals import is_configuration_error, is_refusal
from .status_writer import parse_status, write_status

log = logging.getLogger(__name__)

MAX_ROUNDS = 64  # adopting finished Jobs after a status loss replays at most this many steps per call
CONFLICT_RETRY_S = 2.0
STATUS_REFUSED_RETRY_S = 30.0  # a status the server refuses is usually refused again: do not hammer it
LOCAL_STORAGE = (
    "spec.storage.uri: a local path cannot be used on a cluster (phase pods mount no volume for it and their "
    "root filesystem is read-only); use s3://bucket/prefix — local paths are for `rzero run`"
)
LOCAL_CORPUS = (
    "spec.corpus.uri: a local path cannot be used on a cluster (phase pods mount no volume for it); use "
    "s3://bucket/key — local paths are for `rzero run`"
)
LOCAL_ANCHORS = (
    "spec.anchors.uri: a local path cannot be used on a cluster (phase pods mount no volume for it); use "
    "s3://bucket/key — local paths are for `rzero run`"
)
LOCAL_HELD_OUT = (
    "spec.task.heldOut.uri: a local path cannot be used on a cluster (phase pods mount no volume for it); use "
    "s3://bucket/key — local paths are for `rzero run`"
)
WAIT = "wait"  # a create found an object that is not ours yet: try again shortly
START_REASONS = ("PhaseStarted", "PhaseRestarted")
TERMINAL_PHASES = ("Succeeded", "Failed")  # only a spec change (a new generation) moves such a run again


@dataclass(frozen=True)
class Refusal:
    """The API server refused an object of the attempt (HTTP 4xx)."""

    message: str
    configuration: bool


@dataclass
class Outcome:
    """What one reconcile did (for logs, tests and the bench)."""

    requeue_after: float | None = None
    created: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    status_writes: int = 0
    phase: str | None = None  # the run's phase as last decided (Succeeded/Failed: nothing more to do)
    gone: bool = False  # the run does not exist (any more)
    # The Job whose pods are awaited when `requeue_after` is only the plan's look for a FailedCreate
    # (plan.STARTING_POLL_S; no phaseDeadlineSeconds timer): once the Job watch shows its pods, that look
    # has nothing to find and may be skipped (handlers.py).
    awaiting_pods: str | None = None
    # The run version the next status write is conditional on (the run was read from the cache), or None.
    resource_version: str | None = None

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL_PHASES


@dataclass
class Reconciler:
    api: KubeApi
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    post_event: EventPoster | None = None  # default: core/v1 Events through `api`
    operator_image: str = field(default_factory=default_image)
    storage_defaults: StorageDefaults = field(default_factory=StorageDefaults.from_env)
    read_storage_summaries: bool = True
    jobs: JobCache | None = None  # the Job watch's view (handlers.py); None: every Job read is a GET
    runs: RunCache | None = None  # the runs as last read/written (handlers.py); None: every run read is a GET
    pods: PodCache | None = None  # the pod watch's view (handlers.py); None: a finished Job's pods are listed
    failed_creates: FailedCreates | None = None  # None: a look at a Job without pods lists its own Events
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
        if self.runs is not None:
            self.runs.gone(namespace, name)
        self.metrics.track_run((namespace, name), None)

    def reconcile(self, namespace: str, name: str, fresh: bool = True) -> Outcome:
        """Bring one run one step closer to its spec. Serialised per run within this process. `fresh`: read
        the run with a GET (else from the run cache, when it holds the run)."""
        started = time.monotonic()
        try:
            with self._lock((namespace, name)):
                return self._reconcile(namespace, name, fresh)
        except Exception:
            self.metrics.reconcile_errors.inc()
            raise
        finally:
            self.metrics.reconcile_seconds.observe(time.monotonic() - started)

    def _reconcile(self, namespace: str, name: str, fresh: bool) -> Outcome:
        outcome = Outcome()
        for _ in range(MAX_ROUNDS):
            try:
                body = self._read_run(namespace, name, fresh, outcome)
            except KubeError as error:
                if error.not_found:
                    self.forget(namespace, name)
                    outcome.gone = True
                    return outcome
                raise
            adopted_before = len(outcome.adopted)
            try:
                self._round(body, outcome)
            except KubeError as error:
                if not (error.conflict and outcome.resource_version is not None):
                    raise
                fresh = True  # the cached run was stale: read it and decide again
                continue
            fresh = False  # a further round reads the run as this one wrote it
            if len(outcome.adopted) == adopted_before:
                return outcome
        return outcome

    def _read_run(self, namespace: str, name: str, fresh: bool, outcome: Outcome) -> dict:
        cached = self.runs.get(namespace, name) if self.runs is not None and not fresh else None
        if cached is not None:
            outcome.resource_version = (cached.get("metadata") or {}).get("resourceVersion")
            return cached
        outcome.resource_version = None
        body = self.api.get_run(namespace, name)
        if self.runs is not None:
            self.runs.read(body)
        return body

    def _round(self, body: dict, outcome: Outcome) -> None:
        outcome.awaiting_pods = None  # said again by this round's decision, if at all
        meta = body.get("metadata") or {}
        namespace, name = meta["namespace"], meta["name"]
        run = RunRef(name=name, namespace=namespace, uid=meta.get("uid") or "")
        raw_status = body.get("status") or {}
        status = parse_status(raw_status)
        now = self.clock()
        try:
            spec = validate_manifest({key: body.get(key) for key in ("apiVersion", "kind", "metadata", "spec")}).spec
            local = [LOCAL_STORAGE] if not spec.storage.is_s3 else []
            if spec.corpus is not None and not spec.corpus.uri.startswith("s3://"):
                local.append(LOCAL_CORPUS)
            if spec.anchors is not None and not spec.anchors.uri.startswith("s3://"):
                local.append(LOCAL_ANCHORS)
            if spec.task.held_out is not None and not spec.task.held_out.uri.startswith("s3://"):
                local.append(LOCAL_HELD_OUT)
            if local:
                raise InvalidManifest(local)
            sized = size(spec)  # what `rzero validate` checks: the same findings, in the same words
            if sized.errors:
                raise InvalidManifest(sized.errors)
        except InvalidManifest as invalid:
            decision = decide_invalid_spec(status, invalid.errors, meta.get("generation"), now)
            self._write_and_post(body, raw_status, status, decision, outcome)
            return
        spec = sized.spec  # auto fields sized: the Jobs and their tasks carry the values
        observed = replace(self._observe(run, spec, status, meta.get("generation"), meta.get("annotations")),
                           spec_warnings=tuple(sized.warnings))
        decision = decide(spec, status, observed, now)
        # "PhaseStarted" is said once the Job exists (or is adopted): never for a Job the server refused.
        held = [e for e in decision.events if decision.start is not None and e[1] in START_REASONS]
        try:
            self._write_and_post(body, raw_status, status, decision, outcome, skip=held)
        except KubeError as error:
            if not is_refusal(error.status):
                raise
            self._status_refused(body, error, outcome)
            return  # nothing acts on a step the status cannot record
        done = status.current
        if self.pods is not None and done is not None and (decision.status.current or done).name != done.name:
            self.pods.forget_job(namespace, done.name)  # its summaries are in the status now
        outcome.requeue_after = decision.requeue_after
        untimed = spec.phase_deadline_seconds is None
        if decision.stop is not None:
            self._stop(run, decision.stop, outcome)
        elif decision.start is None and observed.starting and untimed:
            outcome.awaiting_pods = status.current.name if status.current is not None else None
        if decision.start is not None:
            refusal = self._start(run, spec, decision.start, outcome)
            if refusal is not None:
                self._after_refusal(body, spec, decision, observed, refusal, outcome)
            elif decision.start.name in outcome.created + outcome.adopted:
                self._post(body, held)
                outcome.awaiting_pods = decision.start.name if untimed else None

    def _observe(
        self, run: RunRef, spec: RZeroRunSpec, status: RZeroRunStatus, generation: int | None,
        annotations: dict | None = None,
    ) -> Observed:
        run_root = status.run_root or run_root_for(spec.storage.uri, run.namespace, run.name, run.uid)
        identity = dict(run_name=run.name, run_root=run_root, generation=generation,
                        annotations=decision_annotations(annotations))
        if status.current is None:
            return Observed(state="absent", **identity)
        jobs = attempt_job(self.api, self.jobs, run.namespace, status.current.name)
        reader = None
        if self.read_storage_summaries:
            options = {"endpoint_url": spec.storage.endpoint, "region": spec.storage.region}
            reader = storage_summary_reader(run_root, {k: v for k, v in options.items() if v})
        return observe_attempt(
            status.current, jobs, lambda job: job_pods(self.api, self.pods, run.namespace, job, jobs),
            run_uid=run.uid, read_summary=reader,
            list_events=failed_create_lister(self.api, self.failed_creates, run.namespace), **identity,
        )

    def _status_refused(self, body: dict, error: KubeError, outcome: Outcome) -> None:
        """The status subresource refused the new status (its schema, an admission policy): say so where users
        look (a Warning event: the status itself cannot carry it) and try again at a slow pace."""
        message = (f"the API server refused the run's status (HTTP {error.status} {error.reason}: {error.message}); "
                   "no phase starts until a status is accepted")
        self._post(body, [("Warning", "StatusRejected", message)])
        outcome.requeue_after = STATUS_REFUSED_RETRY_S

    def _after_refusal(
        self, body: dict, spec: RZeroRunSpec, decision: Decision, observed: Observed, refusal: Refusal,
        outcome: Outcome,
    ) -> None:
        """The attempt just started cannot exist: decide again with it failed, and write that at once."""
        log.warning("%s/%s: %s", body["metadata"]["namespace"], body["metadata"]["name"], refusal.message)
        failed = Observed(
            state="failed", message=refusal.message,
            exit_code=CONFIG_ERROR_EXIT_CODE if refusal.configuration else None,
            run_name=observed.run_name, run_root=observed.run_root, generation=observed.generation,
            spec_warnings=observed.spec_warnings,
        )
        again = decide(spec, decision.status, failed, self.clock())
        self._write_and_post(body, decision.status.wire(), decision.status, again, outcome)
        outcome.requeue_after = again.requeue_after

    def _write_and_post(
        self, body: dict, raw_status: dict, old: RZeroRunStatus, decision: Decision, outcome: Outcome,
        skip: list[tuple[str, str, str]] = (),
    ) -> None:
        """Events first (idempotent names survive a crash here), then the status. `skip`: events said later."""
        meta = body["metadata"]
        self._post(body, [event for event in decision.events if event not in skip])
        written = write_status(self.api, meta["namespace"], meta["name"], raw_status, decision.status,
                               resource_version=outcome.resource_version)
        if written is not None:
            outcome.status_writes += 1
            answered = written.get("metadata") if isinstance(written, dict) else None
            if self.runs is not None and answered:
                self.runs.read(written)
            if outcome.resource_version is not None:  # a second write in this round is conditional on the first
                outcome.resource_version = (answered or {}).get("resourceVersion") or None
        outcome.phase = decision.status.phase
        self.metrics.record_events(decision.events, old, self.clock())
        self.metrics.track_run((meta["namespace"], meta["name"]), decision.status)

    def _post(self, body: dict, events: list[tuple[str, str, str]]) -> None:
        meta = body["metadata"]
        post_events(self.post_event, body, events)
        for type_, reason, message in events:
            log.info("%s %s/%s: %s", reason, meta["namespace"], meta["name"], message,
                     extra={"run": meta["name"], "namespace": meta["namespace"], "reason": reason, "type": type_})

    def _start(self, run: RunRef, spec: RZeroRunSpec, start: StartPhase, outcome: Outcome) -> Refusal | None:
        objects = build_phase_objects(
            run, spec, start, operator_image=self.operator_image, storage_defaults=self.storage_defaults
        )
        owned = [(plural, obj) for plural, obj in (("configmaps", objects.config_map), ("services", objects.service))
                 if obj is not None]
        made: list[tuple[str, dict]] = []
        try:
            for plural, obj in owned:
                state = self._create_owned(run, plural, obj)
                if isinstance(state, Refusal):
                    self._remove(run, made)
                    return state
                if state == WAIT:
                    outcome.requeue_after = CONFLICT_RETRY_S
                    return None
                made.append((plural, state))
            created = self.api.create_job(run.namespace, objects.job)
            if self.jobs is not None:
                self.jobs.created(created)
        except KubeError as error:
            if error.conflict:
                self._adopt(run, start, outcome)
                return None
            if is_refusal(error.status):
                self._remove(run, made)  # a Job that never existed leaves nothing behind
                return _refusal(error)
            raise
        outcome.created.append(start.name)
        self.metrics.record_start(start.phase)
        return None

    def _adopt(self, run: RunRef, start: StartPhase, outcome: Outcome) -> None:
        """The Job exists: ours (a restart replaying its step) is adopted; another run's (a re-created run
        whose predecessor's Jobs the garbage collector has not removed yet) or one being deleted means wait."""
        job = self.api.get_job(run.namespace, start.name)
        found = [job.get("metadata") or {}] if job is not None else []
        mine = [meta for meta in found if (meta.get("labels") or {}).get(naming.RUN_UID_LABEL) == run.uid]
        if mine and not mine[0].get("deletionTimestamp"):
            outcome.adopted.append(start.name)
            log.info("adopted existing Job %s/%s", run.namespace, start.name)
        else:
            log.warning("Job %s/%s exists but belongs to another run or is being deleted; waiting",
                        run.namespace, start.name)
            outcome.requeue_after = CONFLICT_RETRY_S

    def _remove(self, run: RunRef, made: list[tuple[str, dict]]) -> None:
        """Delete objects of an attempt whose Job the server refused (exactly these: uid preconditions)."""
        for plural, meta in made:
            try:
                self.api.delete_core(run.namespace, plural, meta["name"], meta.get("uid") or "")
            except KubeError as error:  # gone already, or the garbage collector will take it with the run
                log.warning("could not remove %s %s/%s: %s", plural, run.namespace, meta["name"], error)

    def _create_owned(self, run: RunRef, plural: str, obj: dict) -> "dict | str | Refusal":
        """Create a ConfigMap/Service of the attempt: its metadata when created or already ours (this run's
        uid); WAIT when a stale one of a deleted run is still there: it is removed (or its deletion awaited),
        never reused — it would hand the new run the old run's task and storage root."""
        name = obj["metadata"]["name"]
        try:
            return self.api.create_core(run.namespace, plural, obj).get("metadata") or {"name": name}
        except KubeError as error:
            if not error.conflict:
                raise
        try:
            meta = self.api.get_core(run.namespace, plural, name).get("metadata") or {}
        except KubeError as error:
            if error.not_found:
                return WAIT  # gone in between: create it next time
            raise
        owners = {ref.get("uid") for ref in meta.get("ownerReferences") or [] if ref.get("controller")}
        if run.uid in owners and not meta.get("deletionTimestamp"):
            return meta
        if meta.get("deletionTimestamp"):
            log.info("%s %s/%s is being deleted; waiting", plural, run.namespace, name)
            return WAIT
        if (meta.get("labels") or {}).get(naming.MANAGED_BY_LABEL) != naming.MANAGER:
            return Refusal(f"{plural} {name!r} exists and was not made by rzero: rename or remove it", True)
        log.warning("removing %s %s/%s left by an earlier run (owner %s)", plural, run.namespace, name, owners)
        self.api.delete_core(run.namespace, plural, name, meta.get("uid") or "")
        return WAIT

    def _stop(self, run: RunRef, attempt: CurrentAttempt, outcome: Outcome) -> None:
        try:
            self.api.delete_job(run.namespace, attempt.name)
            outcome.stopped.append(attempt.name)
            if self.jobs is not None:
                self.jobs.gone(run.namespace, attempt.name)
        except KubeError as error:
            if not error.not_found:
                raise


def _refusal(error: KubeError) -> Refusal:
    text = f"the API server refused the phase's objects: HTTP {error.status} {error.reason}: {error.message}"
    return Refusal(message=text, configuration=is_configuration_error(error.status, error.message))
