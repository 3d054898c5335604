"""The operator's view of its Jobs and runs, fed by the watches: a reconcile reads a run's attempt Job from
here instead of listing the namespace's Jobs on every call, and the run itself (RunCache) instead of a GET.

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
from typing import Any


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
