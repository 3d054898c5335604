"""What became of the attempt recorded in `status.current`: read from its Job and the Job's pods.

The worker writes its summary JSON to /dev/termination-log, so a finished pod carries it in
`status.containerStatuses[].state.terminated.message`. When pods are gone (garbage-collected, TTL) the
summary is read from storage instead: `<run root>/<output>/summary.json` of a committed output — the same
commit rule every reader follows, so a restarted operator rebuilds what it missed from Jobs and storage.

Summaries are untrusted input: only pods the Job controller made for this Job (ownerReference to the Job's
uid) are read, and each summary is checked (`rzero_worker.summary.validate_summary`: schema, sizes,
finite numbers) before it can reach the status; a bad one fails the attempt with the reason. A running Job
whose pods cannot be created (the Job controller's `FailedCreate` event about this Job's uid: a missing
ServiceAccount or PriorityClass, a quota) is a failed attempt too, still `active` so the plan stops it.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Iterable

from rzero_worker.summary import TERMINATION_LOG_LIMIT, parse_untrusted_summary, validate_summary

from ..api.status import CurrentAttempt
from ..plan import CONFIG_ERROR_EXIT_CODE, Observed
from ..tasks import SHARDED_PHASES, phase_key
from . import naming
from .pod import CONTAINER
from .refusals import is_configuration_error

log = logging.getLogger(__name__)

SummaryReader = Callable[[str], "dict | None"]  # run-relative output key -> committed summary or None
EventLister = Callable[[str], list]  # Job name -> the namespace's Events about that Job


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
    return parse_untrusted_summary(message, TERMINATION_LOG_LIMIT)[0]


def _pod_index(pod: dict) -> int:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    try:
        return int(annotations.get(naming.COMPLETION_INDEX_ANNOTATION, 0))
    except ValueError:
        return 0


def owned_by(pod: dict, job: dict) -> bool:
    """The pod was made by this Job's controller: its controller reference names the Job's uid."""
    uid = (job.get("metadata") or {}).get("uid")
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("kind") == "Job" and ref.get("controller") and ref.get("uid") == uid for ref in refs)


def pod_summaries(pods: Iterable[dict]) -> dict[int, tuple[dict | None, str]]:
    """(summary, problem) of succeeded pods by completion index (0 for a non-indexed Job)."""
    found: dict[int, tuple[dict | None, str]] = {}
    for pod in pods:
        terminated = _terminated(pod)
        if terminated and terminated.get("exitCode") == 0:
            summary, problem = parse_untrusted_summary(terminated.get("message"), TERMINATION_LOG_LIMIT)
            name = (pod.get("metadata") or {}).get("name", "?")
            if summary is not None or _pod_index(pod) not in found:
                found[_pod_index(pod)] = (summary, f"pod {name}: summary is {problem}" if problem else "")
    return found


def succeeded(
    current: CurrentAttempt, pods: list[dict], read_summary: SummaryReader | None
) -> tuple[tuple[dict, ...], list[str]]:
    """(one summary per shard, problems): from the pods where they still are, else from committed
    storage; every summary checked before it may reach the status."""
    by_index = pod_summaries(pods)
    summaries: list[dict] = []
    problems: list[str] = []
    for index, key in enumerate(output_keys(current)):
        summary, problem = by_index.get(index, (None, ""))
        if summary is None and read_summary is not None:
            summary = read_summary(key)
        if summary is None:
            if problem:
                problems.append(problem)
            continue
        bad = validate_summary(summary, phase=current.phase, iteration=current.iteration, output=key)
        if bad:
            problems.append(f"summary of {key} is invalid: " + "; ".join(bad[:3]))
        else:
            summaries.append(summary)
    return tuple(summaries), problems


def pods_answer(job: dict, pods: Iterable[dict]) -> bool:
    """Whether these pods (the pod watch's view) tell all a finished Job's pods could: every pod the Job
    counts as succeeded or failed is among them, terminated. Else the reconciler lists the Job's pods."""
    status = job.get("status") or {}
    counted = int(status.get("succeeded") or 0) + int(status.get("failed") or 0)
    ended = [pod for pod in pods if owned_by(pod, job) and _terminated(pod) is not None]
    return job_finished(job) and counted > 0 and len(ended) >= counted


def awaiting_pods(job: dict) -> bool:
    """The Job should have pods and has none yet. A suspended Job (Kueue) has none on purpose."""
    if (job.get("spec") or {}).get("suspend"):
        return False
    status = job.get("status") or {}
    return not any(status.get(key) for key in ("active", "succeeded", "failed", "ready", "terminating"))


def failed_create(job: dict, list_events: EventLister | None) -> str | None:
    """The newest `FailedCreate` message of a Job that has no pods yet, or None."""
    if list_events is None or not awaiting_pods(job):
        return None
    meta = job.get("metadata") or {}
    name, uid = meta.get("name"), meta.get("uid")
    # By uid as well as name: a re-created Job of the same name (a new run, an attempt made again) must not
    # be failed by its predecessor's FailedCreate, which the Job controller's Event names by the old uid.
    events = [e for e in list_events(name) if e.get("reason") == "FailedCreate"
              and (e.get("involvedObject") or {}).get("kind") == "Job"
              and (e.get("involvedObject") or {}).get("name") == name
              and uid and (e.get("involvedObject") or {}).get("uid") == uid]
    if not events:
        return None
    events.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return str(events[-1].get("message") or "pods cannot be created")


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
    list_events: EventLister | None = None,
    **identity: Any,
) -> Observed:
    """The plan's `Observed` for `current`. `identity`: run_name, run_root, generation (passed through)."""
    if current is None:
        return Observed(state="absent", **identity)
    job = find_job(jobs, current.name, run_uid)
    if job is None:
        return Observed(state="absent", **identity)
    if job_condition(job, "Complete") is not None:
        pods = [pod for pod in list_pods(current.name) if owned_by(pod, job)]
        summaries, problems = succeeded(current, pods, read_summary)
        if problems:
            return Observed(state="failed", message="; ".join(problems), **identity)
        return Observed(state="succeeded", summaries=summaries, **identity)
    if job_condition(job, "Failed") is not None:
        message, exit_code = failure(job, [pod for pod in list_pods(current.name) if owned_by(pod, job)])
        return Observed(state="failed", message=message, exit_code=exit_code, **identity)
    refused = failed_create(job, list_events)
    if refused is not None:
        code = CONFIG_ERROR_EXIT_CODE if is_configuration_error(None, refused) else None
        return Observed(state="failed", message=f"Job {current.name} cannot create its pods: {refused}",
                        exit_code=code, active=True, **identity)
    return Observed(state="running", starting=awaiting_pods(job), **identity)


def storage_summary_reader(run_root: str, storage_options: dict[str, Any]) -> SummaryReader:
    """Read `<output>/summary.json` of committed outputs. Failures only cost the status some numbers, so
    they are logged (once per reader) and swallowed. The chart gives the operator no storage credentials by
    design (Jobs get them by Secret reference), so that case is said plainly, not as boto3's
    "Unable to locate credentials"."""
    said = []

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
            if not said:
                said.append(key)
                log.info("summary of %s not read from storage: %s", key, _storage_problem(error))
            return None

    return read


def _storage_problem(error: Exception) -> str:
    if _caused_by(error, ("NoCredentialsError", "PartialCredentialsError")):
        return ("the operator has no storage access (by design: the chart gives it no credentials; the "
                "workers read storage through the run's Secret), so the status keeps the numbers of the "
                "pods' termination messages only")
    return f"{type(error).__name__}: {error}"


def _caused_by(error: BaseException | None, names: tuple[str, ...]) -> bool:
    """Whether the error or one it was raised from has one of these class names (the storage layer wraps
    boto3's errors in its own)."""
    seen = 0
    while error is not None and seen < 8:
        if type(error).__name__ in names:
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False
