"""Names and labels of the objects the operator creates for a run.

Job names come from the plan (`plan.attempt_name`): a pure function of (run, iteration, phase, attempt),
so an operator that restarts finds ("adopts") the Job it created before instead of creating a second one.
Jobs are selected by the run's uid label, so a re-created run (same name, new uid) never adopts its
predecessor's Jobs.
"""

from __future__ import annotations

import hashlib

APP_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
RUN_LABEL = "rzero.dev/run"
RUN_UID_LABEL = "rzero.dev/run-uid"
ITERATION_LABEL = "rzero.dev/iteration"
PHASE_LABEL = "rzero.dev/phase"
ATTEMPT_LABEL = "rzero.dev/attempt"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
JOB_NAME_POD_LABEL = "batch.kubernetes.io/job-name"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"

APP_NAME = "rzero"
MANAGER = "rzero-operator"


def service_name(job: str) -> str:
    """A Service name must be a DNS-1035 label (start with a letter); Job names may start with a digit."""
    return job if job[:1].isalpha() else f"s{job}"[:63].rstrip("-")


def label_value(text: str) -> str:
    """A label value is at most 63 characters."""
    if len(text) <= 63:
        return text
    return f"{text[:54].rstrip('-.')}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def run_selector(run_uid: str) -> dict[str, str]:
    """Labels selecting every Job of one run (by uid: a re-created run is a different run)."""
    return {MANAGED_BY_LABEL: MANAGER, RUN_UID_LABEL: run_uid}


def attempt_labels(run_name: str, run_uid: str, iteration: int, phase: str, attempt: int) -> dict[str, str]:
    return {
        APP_LABEL: APP_NAME,
        MANAGED_BY_LABEL: MANAGER,
        RUN_LABEL: label_value(run_name),
        RUN_UID_LABEL: run_uid,
        ITERATION_LABEL: str(iteration),
        PHASE_LABEL: phase,
        ATTEMPT_LABEL: str(attempt),
    }
