"""Refusals the kmock emulator does not make but a real API server does, as emulator admission checks.

Each factory returns a check `(request) -> (status, reason, message) | None` for
`Emulator.admit(check)`; messages follow the real server's wording (v1.28), so tests can assert that the
server's message reaches the run's condition and events.

- `pod_template_validation()`: a Job whose pod template the server's validation refuses (HTTP 422):
  tolerations (operator Exists with a value, Equal without key), nodeSelector keys that are not label
  keys, and node affinity operators that do not exist;
- `json_numbers_only()`: a body with NaN or Infinity (HTTP 400 "invalid character 'N' ..."): Go's JSON
  decoder refuses them, Python's json writes them;
- `still_there_until(plural, name, gone)`: a create of that name is a conflict until the test says the
  object is gone (an object being deleted);
- `quota_exceeded(times)`: the first `times` Job creates are refused by a ResourceQuota (HTTP 403);
- `fail_status_writes(times)`: the first `times` status patches fail with HTTP 500 (an operator that dies
  between posting events and writing the status looks the same from the server).
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Callable

import kmock

Refusal = tuple[int, str, str]
Check = Callable[[Any], "Refusal | None"]

_QUALIFIED = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_NODE_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


def _is(request: Any, action: Any, plural: str, subresource: str | None = None) -> bool:
    return (request.action == action and request.resource is not None and request.resource.plural == plural
            and request.subresource == subresource)


def _pod_spec_errors(pod: dict) -> list[str]:
    errors = []
    for index, toleration in enumerate(pod.get("tolerations") or []):
        where = f"spec.template.spec.tolerations[{index}]"
        if toleration.get("operator") == "Exists" and toleration.get("value"):
            errors.append(f"{where}.operator: Invalid value: {toleration!r}: value must be empty when "
                          "`operator` is 'Exists'")
        if not toleration.get("key") and toleration.get("operator", "Equal") != "Exists":
            errors.append(f"{where}.operator: Invalid value: {toleration.get('operator')!r}: operator must be "
                          "Exists when `key` is empty, which means \"match all values and all keys\"")
    for key in pod.get("nodeSelector") or {}:
        if not _QUALIFIED.match(key):
            errors.append(f"spec.template.spec.nodeSelector: Invalid value: {key!r}: name part must consist of "
                          "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                          "character")
    required = (((pod.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for t, term in enumerate(required.get("nodeSelectorTerms") or []):
        for e, expression in enumerate(term.get("matchExpressions") or []):
            if expression.get("operator") not in _NODE_SELECTOR_OPERATORS:
                errors.append(
                    "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
                    f"nodeSelectorTerms[{t}].matchExpressions[{e}].operator: Unsupported value: "
                    f"\"{expression.get('operator')}\": supported values: \"DoesNotExist\", \"Exists\", \"Gt\", "
                    "\"In\", \"Lt\", \"NotIn\"")
    return errors


def pod_template_validation() -> Check:
    def check(request: Any) -> Refusal | None:
        if not _is(request, kmock.action.CREATE, "jobs") or not isinstance(request.data, dict):
            return None
        pod = ((request.data.get("spec") or {}).get("template") or {}).get("spec") or {}
        errors = _pod_spec_errors(pod)
        if not errors:
            return None
        name = (request.data.get("metadata") or {}).get("name")
        return 422, "Invalid", f'Job.batch "{name}" is invalid: ' + ", ".join(errors)

    return check


def json_numbers_only() -> Check:
    def refuse(literal: str) -> Any:
        raise ValueError(literal)

    def check(request: Any) -> Refusal | None:
        if not request.body:
            return None
        try:
            json.loads(request.body, parse_constant=refuse)
        except ValueError as error:
            literal = str(error) if str(error) in ("NaN", "Infinity", "-Infinity") else None
            if literal is not None:
                return 400, "BadRequest", f"invalid character '{literal[0]}' looking for beginning of value"
        return None

    return check


def still_there_until(plural: str, name: str, gone: threading.Event) -> Check:
    """A create of `name` answers 409 until `gone` is set: an object that is being deleted (kmock lets a
    create replace an object with a deletionTimestamp; a real server keeps it until its finalizers ran)."""
    def check(request: Any) -> Refusal | None:
        if _is(request, kmock.action.CREATE, plural) and not gone.is_set() \
                and (request.data or {}).get("metadata", {}).get("name") == name:
            return 409, "AlreadyExists", f'{plural} "{name}" already exists'
        return None

    return check


def _countdown(times: int, check: Check) -> Check:
    left = [times]
    lock = threading.Lock()

    def limited(request: Any) -> Refusal | None:
        refusal = check(request)
        if refusal is None:
            return None
        with lock:
            if left[0] <= 0:
                return None
            left[0] -= 1
        return refusal

    return limited


def quota_exceeded(times: int) -> Check:
    def check(request: Any) -> Refusal | None:
        if not _is(request, kmock.action.CREATE, "jobs"):
            return None
        name = (request.data or {}).get("metadata", {}).get("name")
        return 403, "Forbidden", (f'jobs.batch "{name}" is forbidden: exceeded quota: gpu-quota, requested: '
                                  "count/jobs.batch=1, used: count/jobs.batch=4, limited: count/jobs.batch=4")

    return _countdown(times, check)


def fail_status_writes(times: int) -> Check:
    def check(request: Any) -> Refusal | None:
        if request.subresource == "status" and request.resource is not None and request.resource.plural == "rzeroruns" \
                and request.action == kmock.action.UPDATE:
            return 500, "InternalError", "etcdserver: request timed out"
        return None

    return _countdown(times, check)
