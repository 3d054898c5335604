"""What the API server's refusals mean for a run: a configuration error no retry can fix, or a transient
condition worth a retry with backoff. Pure; used for the operator's own creates (HTTP 4xx) and for a Job
whose pods cannot be created (the Job controller's `FailedCreate` event carries the server's message).

- 400 Bad Request, 413 Too Large, 415, 422 Invalid: the object is wrong -> configuration error (the run
  fails at once, naming the server's message).
- 403 Forbidden: a quota or an admission webhook may let it through later -> transient, unless the message
  says what no retry changes (a missing ServiceAccount or PriorityClass, a PodSecurity or LimitRange
  violation) -> configuration error.
- 404 (namespace terminating), 429, anything else -> transient.
"""

from __future__ import annotations

import re

CONFIG_STATUSES = (400, 413, 415, 422)
# Messages of refusals that a retry would not change (the Job controller's FailedCreate events included).
_PERMANENT = re.compile(
    r"error looking up service account|serviceaccount \"[^\"]*\" not found|no PriorityClass with name"
    r"|violates PodSecurity|is invalid|maximum .* usage per|minimum .* usage per|must be less than or equal"
    r"|Invalid value|Unsupported value|Required value",
    re.IGNORECASE,
)
_TRANSIENT = re.compile(r"exceeded quota|failed calling webhook|timeout|too many requests|try again", re.IGNORECASE)


def is_refusal(status: int) -> bool:
    """A 4xx the operator must surface (conflict and not-found have their own handling)."""
    return 400 <= status < 500 and status not in (404, 409)


def is_configuration_error(status: int | None, message: str) -> bool:
    """True when no retry can fix the refusal (the run fails, as for a worker's exit code 2)."""
    if _TRANSIENT.search(message or ""):
        return False
    if status in CONFIG_STATUSES:
        return True
    return bool(_PERMANENT.search(message or ""))
