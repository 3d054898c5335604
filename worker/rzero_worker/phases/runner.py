"""The one way every phase runs: commit rule, no-op re-runs, summary, termination log.

    run_phase(task, impl) -> 0

1. Output already committed: print the stored summary, write the termination log, return 0 without
   calling impl (re-running a committed phase is a no-op).
2. Otherwise check that the scratch and cache directories and the output's storage take a write (a
   read-only or full disk or bucket fails here in seconds, not after the phase: read-only or not permitted
   is a StorageConfigurationError, exit 2; no space a StorageError, exit 1, as space may be freed), then
   delete half-written files under task.output (a previous attempt died mid-upload). The
   `<output>.ckpt/` checkpoints stay: that is how a killed training phase resumes.
   Then delete the checkpoints `task.prune` names (spec.retention), recorded as metrics `pruned`.
3. metrics = impl(ctx) (plus `output_bytes`, the size of what is committed), with `ctx.trackers` open on
   rank 0 (TensorBoard under the staging dir's tensorboard/, and spec.tracking's trackers: tracking.py); send
   the summary's metrics to them and close them (`tracking_errors`: failed tracker calls); write summary.json
   into the staging dir; upload it under task.output; commit (manifest last); drop the now useless checkpoints;
   print the summary JSON; write the termination log.

Exceptions from impl propagate (nothing is committed); the CLI turns them into exit codes.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from rzero_worker import distributed, tracking
from rzero_worker.phases.context import (
    CACHE_DIR_ENV,
    ConfigurationError,
    InputNotReadyError,
    PhaseContext,
    default_cache_dir,
    is_main_process,
)
from rzero_worker.storage import (
    Storage,
    StorageConfigurationError,
    StorageError,
    commit,
    join_key,
    open_storage,
    read_manifest,
)
from rzero_worker.summary import SUMMARY_FILE, make_summary, read_summary, write_termination_log

log = logging.getLogger(__name__)

WORKDIR_ENV = "RZERO_WORKDIR"  # parent of the per-phase scratch directory
PROBE_NAME = ".rzero-write-probe"
_PROBE_BYTES = b"\0" * 4096

PhaseImpl = Callable[[PhaseContext], dict]


def run_phase(
    task,
    impl: PhaseImpl,
    *,
    storage: Storage | None = None,
    workdir: Path | None = None,
    cache_dir: Path | None = None,
) -> int:
    """Run `impl` for `task` under the commit rule; returns 0 (exceptions propagate)."""
    storage = storage or open_storage(task.storage)
    if read_manifest(storage, task.output) is not None:
        summary = stored_summary(storage, task)
        log.info("%s is already committed: nothing to do", storage.uri_for(task.output))
        _announce(summary)
        return 0

    try:
        tracking.check_clients(getattr(task, "tracking", None))
    except tracking.TrackingConfigurationError as error:
        raise ConfigurationError(str(error)) from None
    main = is_main_process()
    with _scratch(workdir, task.phase) as scratch:
        ctx = PhaseContext(
            task=task,
            storage=storage,
            workdir=scratch,
            staging=scratch / "staging",
            cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(),
            main_process=main,
        )
        _check_writable(ctx)
        pruned: dict[str, int] = {}
        if main:
            removed = storage.delete_prefix(task.output) - 1  # the write probe is not worth mentioning
            if removed > 0:
                log.info("removed %d half-written files under %s", removed, storage.uri_for(task.output))
            pruned = prune(storage, getattr(task, "prune", []))

        started = time.monotonic()
        if main:
            ctx.trackers = tracking.open_trackers(task, ctx.staging)
        try:
            metrics = _checked_metrics(impl(ctx))
        except BaseException:
            ctx.trackers.close()  # nothing is committed; the next attempt writes fresh event files
            raise
        metrics.setdefault("peak_rss_mb", peak_rss_mb())
        metrics.setdefault("cpu_seconds", cpu_seconds())
        if pruned:
            metrics["pruned"] = pruned
        summary = _tracked_summary(ctx, task, metrics, time.monotonic() - started)
        if main:
            _commit_output(ctx, summary)
    if main:  # the other ranks' metrics cover their share only; rank 0 speaks for the phase
        _announce(summary)
    return 0


def _tracked_summary(ctx: PhaseContext, task, metrics: dict, seconds: float) -> dict:
    """The summary, after its metrics went to the trackers and they were closed (their files are part of the
    output): `tracking_errors` counts the tracker calls that failed, `output_bytes` what is committed."""
    tracking.log_phase_summary(ctx.trackers, make_summary(task, metrics, seconds))
    ctx.trackers.close()
    if ctx.trackers.errors:
        metrics["tracking_errors"] = ctx.trackers.errors
    metrics["output_bytes"] = _tree_bytes(ctx.staging)
    return make_summary(task, metrics, seconds)


def prune(storage: Storage, prefixes: list[str]) -> dict[str, int]:
    """Delete the checkpoint prefixes spec.retention no longer keeps ({prefix: bytes freed}). Idempotent: a
    prefix already gone frees 0. Manifests go first (delete_prefix), so a half-deleted checkpoint never
    reads as committed."""
    freed = {}
    for prefix in prefixes:
        manifest = read_manifest(storage, prefix)
        size = manifest.total_bytes if manifest is not None else 0
        if storage.delete_prefix(prefix):
            log.info("retention: deleted %s (%d bytes)", storage.uri_for(prefix), size)
        freed[prefix] = size
    return freed


def _tree_bytes(directory: Path) -> int:
    """Bytes of the files a phase is about to commit (its staging directory)."""
    return sum(path.stat().st_size for path in Path(directory).rglob("*") if path.is_file())


def _check_writable(ctx: PhaseContext) -> None:
    """Every place the phase writes takes a small write now (the storage probe is left for the caller's
    delete_prefix to sweep)."""
    for directory, setting in ((ctx.staging, WORKDIR_ENV), (ctx.cache_dir, CACHE_DIR_ENV)):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            probe = directory / f"{PROBE_NAME}.{os.getpid()}"  # ranks of a node share these directories
            probe.write_bytes(_PROBE_BYTES)
            probe.unlink()
        except OSError as error:
            raise _write_error(f"{directory} ({setting})", error) from None
    if ctx.main_process:
        try:
            ctx.storage.put_bytes(join_key(ctx.task.output, PROBE_NAME), _PROBE_BYTES)
        except OSError as error:
            raise _write_error(f"storage {ctx.storage.uri_for(ctx.task.output)}", error) from None


def _write_error(where: str, error: OSError) -> StorageError:
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StorageConfigurationError(f"{where} is not writable: {error.strerror}")
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return StorageError(f"no space left for {where}: {error.strerror}")
    return StorageError(f"cannot write {where}: {error.strerror or error}")


def stored_summary(storage: Storage, task) -> dict:
    """The committed output's summary.json (a minimal one if it is missing or unreadable)."""
    summary = read_summary(storage, task.output)
    if summary is not None:
        return summary
    log.warning("%s is committed but has no readable %s", storage.uri_for(task.output), SUMMARY_FILE)
    return make_summary(task, {}, 0.0)


def _commit_output(ctx: PhaseContext, summary: dict) -> None:
    (ctx.staging / SUMMARY_FILE).write_text(json.dumps(summary, indent=1) + "\n")
    commit(ctx.storage, ctx.task.output, ctx.storage.upload_dir(ctx.staging, ctx.task.output))
    # The output is final; its resume checkpoints (possibly many GB) are no longer needed.
    ctx.storage.delete_prefix(ctx.checkpoint_root)


def peak_rss_mb() -> float:
    """This worker process's peak resident memory so far, in MiB (Linux reports ru_maxrss in KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds() -> float:
    """CPU time (user + system) this worker process has used: unlike wall time, it hardly depends on what
    else the machine runs (on an idle machine wall time is about this divided by the threads in use)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 1)


def _checked_metrics(metrics) -> dict:
    """Metrics must be a JSON object of finite values: the operator parses them from the summary."""
    if not isinstance(metrics, dict):
        raise TypeError(f"a phase must return its metrics as a dict, got {type(metrics).__name__}")
    try:
        text = json.dumps(metrics, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"phase metrics are not JSON-serializable: {error}") from None
    return json.loads(text)


def _announce(summary: dict) -> None:
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    write_termination_log(summary)


@contextmanager
def _scratch(workdir: Path | None, phase: str) -> Iterator[Path]:
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        yield Path(workdir)
        return
    parent = os.environ.get(WORKDIR_ENV) or None
    if distributed.current().distributed:  # ranks of a node share one scratch directory (distributed.py)
        with distributed.shared_scratch(phase, parent) as path:
            yield path
        return
    try:
        scratch = tempfile.TemporaryDirectory(prefix=f"rzero-{phase}-", dir=parent)
    except OSError as error:
        raise _write_error(f"{parent or tempfile.gettempdir()} ({WORKDIR_ENV})", error) from None
    with scratch as path:
        yield Path(path)


__all__ = [
    "ConfigurationError",
    "InputNotReadyError",
    "PhaseContext",
    "PhaseImpl",
    "SUMMARY_FILE",
    "run_phase",
    "stored_summary",
]
