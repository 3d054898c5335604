"""Kubernetes Events on the RZeroRun: what `kubectl describe rzr NAME` shows a user.

Posted directly as core/v1 Events by the reconciler (it also runs from the operator's own requeue loop,
outside any kopf handler, where kopf's event queue is not available). Messages come from the plan and from
worker termination messages; anything that looks like a credential is masked before it leaves. A failure
to post is logged and never fails the reconcile.

Events are idempotent: each one's name is derived from the status transition it reports (run uid,
metadata.generation, reason, message), so the reconciler posts them *before* writing the status. An
operator that dies between the two re-decides the same transition on restart and posts the same names:
the API server answers 409 for those already there. Two replicas (or a retried reconcile) do the same, so
an event is neither lost nor doubled.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime, timezone
from typing import Callable, Iterable

from .client import KubeApi, KubeError

log = logging.getLogger(__name__)

COMPONENT = "rzero-operator"
MAX_EVENT_MESSAGE = 1024
# KEY=value / KEY: value pairs whose key names a secret, and AWS access key ids.
_SECRET_PAIR = re.compile(r"(?i)\b([A-Z0-9_]*(?:SECRET|TOKEN|PASSWORD|ACCESS_KEY)[A-Z0-9_]*)(\s*[=:]\s*)(\S+)")
_AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{12,}\b")

EventPoster = Callable[[dict, str, str, str], None]  # (run body, type, reason, message)


def redact(message: str) -> str:
    message = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}***", message)
    return _AWS_KEY_ID.sub("***", message)[:MAX_EVENT_MESSAGE]


def event_name(run: dict, reason: str, message: str) -> str:
    """`<run>.<hash of uid, generation, reason, message>`: the same transition gets the same name."""
    meta = run["metadata"]
    key = "\x1f".join([str(meta.get("uid") or ""), str(meta.get("generation") or ""), reason, message])
    return f"{meta['name']}.{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def build_event(run: dict, type_: str, reason: str, message: str, now: datetime | None = None) -> dict:
    meta = run["metadata"]
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = redact(message)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(run, reason, message), "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": run.get("apiVersion", "rzero.dev/v1alpha1"), "kind": run.get("kind", "RZeroRun"),
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid"),
        },
        "type": type_,
        "reason": reason,
        "message": message,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def api_poster(api: KubeApi) -> EventPoster:
    def post(run: dict, type_: str, reason: str, message: str) -> None:
        try:
            api.create_core(run["metadata"]["namespace"], "events", build_event(run, type_, reason, message))
        except KubeError as error:
            if not error.conflict:  # 409: this transition's event is already there
                log.warning("could not post event %s: %s", reason, error)
        except Exception as error:  # noqa: BLE001 - an Event is a courtesy; the status is the record
            log.warning("could not post event %s: %s", reason, error)

    return post


def post_events(post: EventPoster, run: dict, events: Iterable[tuple[str, str, str]]) -> None:
    for type_, reason, message in events:
        post(run, type_, reason, redact(message))
