"""The operator's view of its Jobs, their pods and the runs, fed by the watches: a reconcile reads a run's
attempt Job from here instead of listing the namespace's Jobs on every call, the Job's finished pods
(PodCache: their termination messages carry the summaries) instead of listing pods, and the run itself
(RunCache) instead of a GET. FailedCreates shares one Event listing among the runs looking at once.

    cache.seen(job)            a watch event (ADDED/MODIFIED/initial listing): the latest body
    cache.gone(namespace, name)   a DELETED event, or our own delete
    cache.get(namespace, name)    the slim body, or None when the watch has not shown it (yet)
    cache.created(job)         our own create's answer, kept only when the watch has not shown it already

Only what the reconciler reads is kept (metadata name/uid/labels/owners/deletionTimestamp, spec.suspend,
status): kept Jobs live for days (ttlSecondsAfterFinished) and their pod templates are large.

Why a stale entry is safe: a Job is put here before its event triggers a reconcile (handlers.py), so a
reconcile that saw an older version of a Job is followed by one that sees the newer; a Job missing here
is read with one GET (observe falls back to the server), never taken as absent.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any, Callable

from . import naming
from .observe import pods_answer


def slim(job: dict) -> dict[str, Any]:
    meta = job.get("metadata") or {}
    kept = {key: meta[key] for key in ("name", "namespace", "uid", "labels", "ownerReferences", "deletionTimestamp")
            if key in meta}
    return {"metadata": kept, "spec": {"suspend": (job.get("spec") or {}).get("suspend")},
            "status": job.get("status") or {}}


class JobCache:
    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], dict] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(job: dict) -> tuple[str, str]:
        meta = job.get("metadata") or {}
        return meta.get("namespace") or "", meta.get("name") or ""

    def seen(self, job: dict) -> None:
        with self._lock:
            self._jobs[self._key(job)] = slim(job)

    def created(self, job: dict) -> None:
        with self._lock:
            self._jobs.setdefault(self._key(job), slim(job))

    def gone(self, namespace: str, name: str) -> None:
        with self._lock:
            self._jobs.pop((namespace, name), None)

    def get(self, namespace: str, name: str) -> dict | None:
        with self._lock:
            return self._jobs.get((namespace, name))

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)


class FailedCreates:
    """The namespace's FailedCreate Events about Jobs, listed at most once per `max_age_s` for all the runs
    that look at a Job without pods at about the same time (one LIST per namespace and second, not one per
    Job and look). A FailedCreate younger than that is seen at the next look."""

    def __init__(self, list_events: Any, max_age_s: float = 1.0, clock: Any = None) -> None:
        self._list = list_events  # (namespace) -> the namespace's FailedCreate Events about Jobs
        self.max_age_s = max_age_s
        self._clock = clock or time.monotonic
        self._listed: dict[str, tuple[float, list[dict]]] = {}
        self._lock = threading.Lock()  # held while listing: concurrent looks wait for the one LIST

    def of(self, namespace: str, job: str) -> list[dict]:
        with self._lock:
            at, events = self._listed.get(namespace, (None, []))
            if at is None or self._clock() - at > self.max_age_s:
                events = self._list(namespace)
                self._listed[namespace] = (self._clock(), events)
        return [e for e in events if (e.get("involvedObject") or {}).get("name") == job]


def _version(body: dict) -> int | None:
    try:
        return int((body.get("metadata") or {}).get("resourceVersion"))
    except (TypeError, ValueError):
        return None


class RunCache:
    """The runs as last read or written by the reconciler (a GET's answer, a status patch's answer), kept
    up to date by the run watch. A reconcile triggered by a Job or a timer reads the run from here; its
    status write is then conditional on the cached resourceVersion (status_writer.write_status), so a stale
    entry costs a 409 and one GET, never a decision written over a newer status.

        runs.read(body)    our own GET's or write's answer: the newest we know
        runs.watched(body) a watch event: kept when newer than the entry, ignored when older; when the
                           versions cannot be ordered (equal with another content, not numbers) the entry
                           is dropped and the next reconcile GETs the run
        runs.gone(namespace, name) / runs.get(namespace, name)
    """

    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], dict] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(body: dict) -> tuple[str, str]:
        meta = body.get("metadata") or {}
        return meta.get("namespace") or "", meta.get("name") or ""

    def read(self, body: dict) -> None:
        with self._lock:
            self._runs[self._key(body)] = copy.deepcopy(body)

    def watched(self, body: dict) -> None:
        key, new = self._key(body), _version(body)
        with self._lock:
            old = self._runs.get(key)
            if old is None:
                return  # the reconciler GETs a run it has not read yet: the watch alone is not trusted here
            known = _version(old)
            if new is not None and known is not None and new != known:
                if new > known:
                    self._runs[key] = copy.deepcopy(dict(body))
            elif new is None or known is None or old != dict(body):
                del self._runs[key]

    def gone(self, namespace: str, name: str) -> None:
        with self._lock:
            self._runs.pop((namespace, name), None)

    def get(self, namespace: str, name: str) -> dict | None:
        with self._lock:
            body = self._runs.get((namespace, name))
            return copy.deepcopy(body) if body is not None else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)


def slim_pod(pod: dict) -> dict[str, Any]:
    """What observe.py reads of a phase pod: its name, owners, completion index and container states (not its
    other annotations: they carry the task documents)."""
    meta = pod.get("metadata") or {}
    kept = {key: meta[key] for key in ("name", "namespace", "labels", "ownerReferences") if key in meta}
    index = (meta.get("annotations") or {}).get(naming.COMPLETION_INDEX_ANNOTATION)
    if index is not None:
        kept["annotations"] = {naming.COMPLETION_INDEX_ANNOTATION: index}
    statuses = [{key: status[key] for key in ("name", "state", "lastState") if key in status}
                for status in (pod.get("status") or {}).get("containerStatuses") or []]
    return {"metadata": kept, "status": {"containerStatuses": statuses}}


class PodCache:
    """The phase pods as the pod watch last showed them, by Job (their `batch.kubernetes.io/job-name` label).
    A reconcile takes a Job's pods from here only when they account for every pod the Job counts as
    finished (observe.pods_answer); else it lists them (the pod watch may deliver a pod's last change after
    the Job watch delivered the Job's)."""

    def __init__(self, job_label: str) -> None:
        self.job_label = job_label
        self._pods: dict[tuple[str, str], dict[str, dict]] = {}  # (namespace, job) -> pod name -> slim pod
        self._lock = threading.Lock()

    def _job(self, pod: dict) -> tuple[str, str, str]:
        meta = pod.get("metadata") or {}
        return meta.get("namespace") or "", ((meta.get("labels") or {}).get(self.job_label) or ""), meta.get("name") or ""

    def seen(self, pod: dict) -> None:
        namespace, job, name = self._job(pod)
        if job:
            with self._lock:
                self._pods.setdefault((namespace, job), {})[name] = slim_pod(pod)

    def gone(self, pod: dict) -> None:
        namespace, job, name = self._job(pod)
        with self._lock:
            pods = self._pods.get((namespace, job), {})
            pods.pop(name, None)
            if not pods:
                self._pods.pop((namespace, job), None)

    def forget_job(self, namespace: str, job: str) -> None:
        """The Job's pods are read (the run's status holds their summaries): keep them no longer. A later
        event of one of them (its deletion aside) puts it back; a read that finds them gone lists them."""
        with self._lock:
            self._pods.pop((namespace, job), None)

    def of(self, namespace: str, job: str) -> list[dict]:
        with self._lock:
            return list(self._pods.get((namespace, job), {}).values())


# ------------------------------------------------------------------------- reads, cache first (reconcile.py)


def attempt_job(api: Any, jobs: JobCache | None, namespace: str, name: str) -> list[dict]:
    """The attempt's Job as the Job watch last showed it, else as the server has it (one GET)."""
    cached = jobs.get(namespace, name) if jobs is not None else None
    if cached is not None:
        return [cached]
    job = api.get_job(namespace, name)
    if job is not None and jobs is not None:
        jobs.created(job)  # unless the watch has shown a newer version meanwhile
    return [job] if job is not None else []


def job_pods(api: Any, pods: PodCache | None, namespace: str, name: str, jobs: list[dict]) -> list[dict]:
    """A finished Job's pods as the pod watch showed them when they tell everything, else as listed."""
    cached = pods.of(namespace, name) if pods is not None else []
    if cached and any(pods_answer(job, cached) for job in jobs if job["metadata"].get("name") == name):
        return cached
    return api.list_pods(namespace, {naming.JOB_NAME_POD_LABEL: name})


def failed_create_lister(api: Any, failed_creates: FailedCreates | None, namespace: str) -> Callable[[str], list[dict]]:
    """Job name -> the Events about it where a FailedCreate would be (shared listing when there is one)."""
    if failed_creates is not None:
        return lambda job: failed_creates.of(namespace, job)
    return lambda job: api.list_job_events(namespace, job)
