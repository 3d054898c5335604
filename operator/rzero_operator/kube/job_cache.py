"""The operator's view of its Jobs, fed by the Job watch: a reconcile reads a run's attempt Job from here
instead of listing the namespace's Jobs on every call.

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
