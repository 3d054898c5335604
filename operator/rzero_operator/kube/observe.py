"""What became of the attempt recorded in `status.current`: read from its Job and the Job's pods.

The worker writes its summary JSON to /dev/termination-log, so a finished pod carries it in
`status.containerStatuses[].state.terminated.message`. When pods are gone (garbage-collected, TTL) the
summary is read from storage instead: `<run root>/<output>/summary.json` of a committed output — the same
commit rule every reader follows, so a restarted operator rebuilds what it missed from Jobs and storage.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Iterable

from ..api.status import CurrentAttempt
from ..plan import Observed
from ..tasks import phase_key
from . import naming
from .pod import CONTAINER

log = logging.getLogger(__name__)

SHARDED_PHASES = ("generate", "label")
SummaryReader = Callable[[str], "dict | None"]  # run-relative output key -> committed summary or None


def output_keys(current: CurrentAttempt) -> list[str]:
    """Run-relative output prefixes of an attempt, one per shard (docs/ARCHITECTURE.md storage layout)."""
    base = phase_key(current.iteration, current.phase)
    if current.phase not in SHARDED_PHASES:
        return [base]
    return [f"{base}/shard-{i:05d}-of-{current.shards:05d}" for i in range(current.shards)]


def find_job(jobs: Iterable[dict], name: str, run_uid: str) -> dict | None:
    """The attempt's Job, if it exists, belongs to this run, and is not being deleted."""
    for job in jobs:
        meta = job.get("metadata") or {}
        if meta.get("name") != name or meta.get("deletionTimestamp"):
            continue
        if (meta.get("labels") or {}).get(naming.RUN_UID_LABEL) == run_uid:
            return job
    return None


def job_condition(job: dict, type_: str) -> dict | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_ and condition.get("status") == "True":
            return condition
    return None


def job_finished(job: dict) -> bool:
    return job_condition(job, "Complete") is not None or job_condition(job, "Failed") is not None


def _terminated(pod: dict) -> dict | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == CONTAINER:
            state = status.get("state") or {}
            return state.get("terminated") or (status.get("lastState") or {}).get("terminated")
    return None


def _parse_summary(message: str | None) -> dict | None:
    if not message:
        return None
    try:
        summary = json.loads(message)
    except ValueError:
        return None
    return summary if isinstance(summary, dict) else None


def _pod_index(pod: dict) -> int:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    try:
        return int(annotations.get(naming.COMPLETION_INDEX_ANNOTATION, 0))
    except ValueError:
        return 0


def pod_summaries(pods: Iterable[dict]) -> dict[int, dict]:
    """Summaries of succeeded pods by completion index (0 for a non-indexed Job)."""
    found: dict[int, dict] = {}
    for pod in pods:
        terminated = _terminated(pod)
        if terminated and terminated.get("exitCode") == 0:
            summary = _parse_summary(terminated.get("message"))
            if summary is not None:
                found[_pod_index(pod)] = summary
    return found


def succeeded(current: CurrentAttempt, pods: list[dict], read_summary: SummaryReader | None) -> tuple[dict, ...]:
    """One summary per shard: from the pods where they still are, else from committed storage."""
    by_index = pod_summaries(pods)
    summaries: list[dict] = []
    for index, key in enumerate(output_keys(current)):
        summary = by_index.get(index)
        if summary is None and read_summary is not None:
            summary = read_summary(key)
        if summary is not None:
            summaries.append(summary)
    return tuple(summaries)


def failure(job: dict, pods: list[dict]) -> tuple[str, int | None]:
    """The most telling failure: a configuration error (exit 2) first, then any failed pod, then the
    Job's own condition (deadline exceeded, pod failure policy...)."""
    failed = []
    for pod in pods:
        terminated = _terminated(pod)
        if terminated and terminated.get("exitCode") not in (None, 0):
            failed.append(terminated)
    failed.sort(key=lambda t: t.get("exitCode") != 2)
    condition = job_condition(job, "Failed") or {}
    fallback = ": ".join(part for part in (condition.get("reason"), condition.get("message")) if part)
    if failed:
        terminated = failed[0]
        summary = _parse_summary(terminated.get("message"))
        text = (summary or {}).get("error") or (terminated.get("message") or "").strip()[-1000:]
        return text or _killed(terminated) or fallback or "failed", terminated.get("exitCode")
    # Pods gone: the pod failure policy's message still names the exit code of a config error.
    exit_code = 2 if condition.get("reason") == "PodFailurePolicy" and "exit code 2" in fallback else None
    return fallback or "the Job failed", exit_code


def _killed(terminated: dict) -> str | None:
    """A container that died without a word: say how. 137 is SIGKILL, which the OOM killer sends."""
    reason, code = terminated.get("reason") or "", terminated.get("exitCode")
    if reason == "OOMKilled":
        return f"the worker ran out of memory (OOMKilled, exit code {code}): raise spec.resources.memory (or spec.resources.phases.<phase>.memory)"
    if code == 137:
        return f"the worker was killed by SIGKILL (exit code 137; out of memory?){': ' + reason if reason else ''}"
    return reason or None


def observe_attempt(
    current: CurrentAttempt | None,
    jobs: list[dict],
    list_pods: Callable[[str], list[dict]],
    *,
    run_uid: str,
    read_summary: SummaryReader | None = None,
    **identity: Any,
) -> Observed:
    """The plan's `Observed` for `current`. `identity`: run_name, run_root, generation (passed through)."""
    if current is None:
        return Observed(state="absent", **identity)
    job = find_job(jobs, current.name, run_uid)
    if job is None:
        return Observed(state="absent", **identity)
    if job_condition(job, "Complete") is not None:
        summaries = succeeded(current, list_pods(current.name), read_summary)
        return Observed(state="succeeded", summaries=summaries, **identity)
    if job_condition(job, "Failed") is not None:
        message, exit_code = failure(job, list_pods(current.name))
        return Observed(state="failed", message=message, exit_code=exit_code, **identity)
    return Observed(state="running", **identity)


def storage_summary_reader(run_root: str, storage_options: dict[str, Any]) -> SummaryReader:
    """Read `<output>/summary.json` of committed outputs. Failures (no credentials in the operator, network)
    only cost the status some numbers, so they are logged and swallowed."""

    def read(key: str) -> dict | None:
        try:
            from rzero_worker.storage import open_storage, read_manifest
            from rzero_worker.summary import read_summary
            from rzero_worker.task import StorageLocation

            storage = open_storage(StorageLocation(uri=run_root, **storage_options))
            if read_manifest(storage, key) is None:
                return None
            return read_summary(storage, key)
        except Exception as error:  # noqa: BLE001 - optional enrichment, never fatal
            log.info("no stored summary for %s: %s", key, error)
            return None

    return read
