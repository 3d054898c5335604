"""Write a run's status: only through the /status subresource, only when it changed, as a merge patch
(conditional on the run's resourceVersion when the status it changes was read from the watch cache).

A JSON merge patch keeps keys it does not mention, so a field the new status drops (e.g. `current` after a
phase succeeds) must be sent as null. The status we write is authoritative: keys the model does not know
(a stale or hand-edited status) are nulled too, which is how a stale status gets rebuilt.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import ValidationError

from ..api.status import RZeroRunStatus
from .client import KubeApi

log = logging.getLogger(__name__)


def parse_status(raw: dict | None) -> RZeroRunStatus:
    """The stored status, or a fresh one when it is missing or unreadable (rebuilt from Jobs/storage)."""
    if not raw:
        return RZeroRunStatus()
    try:
        return RZeroRunStatus.model_validate(raw)
    except ValidationError as error:
        log.warning("status unreadable, rebuilding it from Jobs and storage: %s", error.errors()[:3])
        return RZeroRunStatus()


def merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch turning `old` into `new` (None when they are equal)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None if old == new else new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            if isinstance(old[key], dict) and isinstance(value, dict):
                patch[key] = merge_patch(old[key], value)
            else:
                patch[key] = value
    return patch


def write_status(
    api: KubeApi, namespace: str, name: str, raw_old: dict | None, new: RZeroRunStatus,
    resource_version: str | None = None,
) -> dict | None:
    """Patch the status subresource with the difference; the server's answer (the run as written), or None
    when nothing was sent. `resource_version`: write only over that version of the run (a precondition:
    the server answers 409 when the run changed since; for a status read from the watch cache)."""
    patch = merge_patch(raw_old or {}, new.wire())
    if not patch:
        return None
    try:  # the API server refuses a body with NaN/Infinity (HTTP 400) and then every later write too
        json.dumps(patch, allow_nan=False)
    except ValueError as error:
        raise ValueError(f"refusing to write a status with a non-finite number: {error}") from None
    return api.patch_run_status(namespace, name, patch, resource_version=resource_version)
