"""Phase summaries: `summary.json` in the committed output, and the pod's termination log.

Kubernetes keeps at most 4096 bytes of `/dev/termination-log` per container; the operator reads the
summary from there, so it is trimmed to fit by dropping the largest metric entries first (the full
summary stays in storage). Stdlib only: the operator imports this module.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

from .text import valid_text

log = logging.getLogger(__name__)

SUMMARY_API_VERSION = "rzero.dev/summary-v1"
SUMMARY_FILE = "summary.json"  # beside the outputs of every committed phase
TERMINATION_LOG = Path("/dev/termination-log")
TERMINATION_LOG_ENV = "RZERO_TERMINATION_LOG"  # tests point this at a temp file
TERMINATION_LOG_LIMIT = 4096


def read_summary(storage, output: str) -> dict | None:
    """The summary stored in a committed phase output (`storage`: an rzero_worker.storage.Storage), or
    None when it is missing, not listed in the manifest, not a JSON object, or differs from what the
    manifest lists (storage's IntegrityError is a ValueError; logged, as the data cannot be trusted)."""
    try:
        summary = json.loads(storage.get_committed_bytes(output.rstrip("/"), SUMMARY_FILE))
    except FileNotFoundError:
        return None
    except ValueError as error:
        log.warning("ignoring the summary of %s: %s", output, error)
        return None
    return summary if isinstance(summary, dict) else None


def make_summary(task, metrics: dict, seconds: float) -> dict:
    """The summary of a finished phase (docs/ARCHITECTURE.md "Summary")."""
    return {
        "apiVersion": SUMMARY_API_VERSION,
        "run": task.run,
        "phase": task.phase,
        "iteration": task.iteration,
        "output": task.output,
        "seconds": round(float(seconds), 3),
        "metrics": dict(metrics),
    }


def make_failure_summary(phase: str, error: str, task=None) -> dict:
    """What a failed phase leaves in the termination log: enough for the operator's message."""
    summary: dict = {"apiVersion": SUMMARY_API_VERSION, "phase": phase}
    if task is not None:
        summary.update(run=task.run, iteration=task.iteration, output=task.output)
    summary["error"] = error
    return summary


def encode_summary(summary: dict) -> bytes:
    return valid_text(json.dumps(summary, separators=(",", ":"), ensure_ascii=False, default=str)).encode()


def fit_summary(summary: dict, limit: int = TERMINATION_LOG_LIMIT) -> dict:
    """A copy of `summary` whose compact JSON fits in `limit` bytes.

    Drops the largest metric entries first and names them in `trimmedMetrics`; as a last resort cuts
    the error text and then the metrics altogether. The result is always valid JSON.
    """
    fitted = dict(summary)
    metrics = dict(fitted.get("metrics") or {})
    dropped: list[str] = []
    while len(encode_summary(_with_metrics(fitted, metrics, dropped))) > limit and metrics:
        largest = max(metrics, key=lambda name: len(encode_summary({name: metrics[name]})))
        del metrics[largest]
        dropped.append(largest)
    fitted = _with_metrics(fitted, metrics, dropped)
    if len(encode_summary(fitted)) > limit:
        fitted.pop("trimmedMetrics", None)
    if len(encode_summary(fitted)) > limit and isinstance(fitted.get("error"), str):
        overflow = len(encode_summary(fitted)) - limit
        text = fitted["error"].encode()
        # Keep the end of the error: the last traceback lines say what went wrong.
        fitted["error"] = "..." + text[overflow + 16 :].decode(errors="ignore")
    while len(encode_summary(fitted)) > limit:
        # Only pathological inputs (huge run names) get here: keep the identity fields that fit.
        removable = [k for k in fitted if k not in ("apiVersion", "phase")]
        if not removable:
            break
        fitted.pop(removable[-1])
    return fitted


def _with_metrics(summary: dict, metrics: dict, dropped: list[str]) -> dict:
    result = dict(summary)
    if "metrics" in summary:
        result["metrics"] = metrics
    if dropped:
        result["trimmedMetrics"] = list(dropped)
    return result


def termination_log_path(path: str | Path | None = None) -> Path | None:
    """Where the termination log goes: explicit path, $RZERO_TERMINATION_LOG, or /dev/termination-log
    when it exists (i.e. inside a Kubernetes container); None outside a pod."""
    if path is not None:
        return Path(path)
    if os.environ.get(TERMINATION_LOG_ENV):
        return Path(os.environ[TERMINATION_LOG_ENV])
    return TERMINATION_LOG if TERMINATION_LOG.exists() else None


def write_termination_log(summary: dict, path: str | Path | None = None) -> Path | None:
    """Write the (trimmed) summary to the termination log; returns the path written, or None."""
    target = termination_log_path(path)
    if target is None:
        return None
    target.write_bytes(encode_summary(fit_summary(summary)))
    return target


# --------------------------------------------------------------------------------------------------
# Reading a summary someone else wrote (the operator: pod termination messages, stored summary.json)

MAX_SUMMARY_BYTES = 64 * 1024  # a stored summary.json; a termination message is at most 4 KiB anyway
MAX_SUMMARY_DEPTH = 6
MAX_SUMMARY_STRING = 4096


def parse_untrusted_summary(text: str | bytes | None, limit: int = MAX_SUMMARY_BYTES) -> tuple[dict | None, str]:
    """(summary, "") for a JSON object within `limit` bytes, else (None, why). NaN/Infinity are refused
    here: Python's json would read them, and a status patch carrying one is refused by the API server."""
    if not text:
        return None, "empty"
    size = len(text.encode() if isinstance(text, str) else text)
    if size > limit:
        return None, f"{size:,} bytes, over the {limit:,}-byte limit"
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        return None, f"not JSON ({' '.join(str(error).split())[:120]})"
    if not isinstance(value, dict):
        return None, f"not a JSON object but {type(value).__name__}"
    return value, ""


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number")


def validate_summary(summary: dict, *, phase: str, iteration: int, output: str) -> list[str]:
    """Problems of a success summary for (phase, iteration, output); [] when it can go into a status."""
    problems = []
    if summary.get("apiVersion") != SUMMARY_API_VERSION:
        problems.append(f"apiVersion: expected {SUMMARY_API_VERSION!r}, got {_short(summary.get('apiVersion'))}")
    for key, expected in (("phase", phase), ("iteration", iteration), ("output", output)):
        if key in summary and summary[key] != expected:
            problems.append(f"{key}: expected {expected!r}, got {_short(summary[key])}")
    seconds = summary.get("seconds")
    if seconds is not None and (not _is_number(seconds) or seconds < 0):
        problems.append(f"seconds: expected a non-negative number, got {_short(seconds)}")
    if not isinstance(summary.get("metrics", {}), dict):
        problems.append(f"metrics: expected an object, got {type(summary['metrics']).__name__}")
    problems += _value_problems(summary.get("metrics", {}), "metrics", 0)
    return problems


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _value_problems(value, path: str, depth: int) -> list[str]:
    if depth > MAX_SUMMARY_DEPTH:
        return [f"{path}: nested too deeply"]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _value_problems(item, f"{path}.{key}", depth + 1)]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _value_problems(item, f"{path}[{i}]", depth + 1)]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{path}: {value} is not a finite number"]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return [f"{path}: integer too large for a status"]
    if isinstance(value, str) and len(value) > MAX_SUMMARY_STRING:
        return [f"{path}: string of {len(value):,} characters"]
    return []


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
