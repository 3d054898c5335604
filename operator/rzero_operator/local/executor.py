"""`rzero run FILE`: the R-Zero loop on this machine, one subprocess per phase shard.

The executor holds no algorithm: it loops observe -> decide -> write status -> act, like the Kubernetes
operator, with `rzero_operator.plan.decide` making every decision.

- observe: the attempt recorded in the status. Exit codes recorded by this process decide success or
  failure; after a crash or Ctrl-C (no exit codes) the committed outputs decide: an attempt whose every
  shard output is committed counts as succeeded (the worker finished, only the bookkeeping was lost);
  otherwise it is `absent`, and the plan starts it again under the same attempt number.
- write status: the state file (see local/state.py), atomically, before acting.
- act: run the StartPhase's tasks as `python -m rzero_worker PHASE --task FILE`, sleep out a retry
  backoff, stop when the run Succeeded or Failed.

Ctrl-C (or SIGTERM) stops the running worker, saves the state and exits 130; `rzero run FILE` again
resumes, and committed phases are never redone (the worker itself is a no-op on a committed output).

One `rzero run` per run: it holds the run lock (locks.py) from before it reads the state until it exits;
a second one is refused (exit 75) naming the holder's pid, as is a rerun while a worker of an earlier one
still owns an output. When the state cannot be saved (disk full, read-only) it stops with one line and
exit 74, leaving the last saved state intact: free space and run again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path


from rzero_operator.api import RZeroRun, RZeroRunStatus
from rzero_operator.local.layout import LOCAL_NAMESPACE, LocalLayout
from rzero_operator.local.locks import FileLock, LockBusy
from rzero_operator.local.processes import OutputBusy, ShardJob, last_line, run_shards, tail
from rzero_operator.local.progress import RunProgress
from rzero_operator.local.state import AttemptRecord, LocalState, load_state, new_uid, save_state
from rzero_operator.oversight import step_tasks
from rzero_operator.plan import Decision, Observed, StartPhase, decide, run_steps
from rzero_operator.sizing import phase_layout
from rzero_operator.sizing_auto import size
from rzero_operator.tasks import run_root_for
from rzero_operator.validate import InvalidManifest, load_manifest, validate_manifest
from rzero_worker.storage import Storage, StorageConfigurationError, StorageError, is_committed, open_storage
from rzero_worker.summary import read_summary
from rzero_worker.task import StorageLocation

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_IO_ERROR, EXIT_BUSY = 74, 75  # sysexits' EX_IOERR (state not saved) and EX_TEMPFAIL (already running)
TERMINAL = ("Succeeded", "Failed")


def load_run(path: Path) -> RZeroRun:
    """The one RZeroRun of a file (read and validated as `rzero validate` does); raises InvalidManifest
    naming the bad fields. A local run needs a real name: generateName is for `kubectl create`."""
    run = load_manifest(path)
    if not run.metadata.name:
        raise InvalidManifest(["metadata.name: a local run needs a name to resume by (generateName is only for "
                               "kubectl create)"])
    return run


def resolve_paths(run: RZeroRun, root: Path | None) -> None:
    """The manifest's local input paths (spec.corpus.uri, spec.anchors.uri, benchmark paths) made absolute as storage.uri is
    (relative: against --root, default the current directory), so that every phase process reads the same
    file wherever it starts."""
    for source in (run.spec.corpus, run.spec.anchors):
        if source is not None:
            source.uri = LocalLayout.resolve_path(source.uri, root)
    for benchmark in run.spec.evaluation.benchmarks:
        if benchmark.path:
            benchmark.path = LocalLayout.resolve_path(benchmark.path, root)


def spec_digest(run: RZeroRun) -> str:
    """Identity of the spec, to bump the local 'generation' when the manifest is edited between runs."""
    return hashlib.sha256(json.dumps(run.spec.wire(), sort_keys=True).encode()).hexdigest()


def open_state(run: RZeroRun, layout: LocalLayout) -> LocalState:
    """The run's saved state, or a fresh one with a new uid; the generation follows spec edits."""
    state = load_state(layout.state_file)
    digest = spec_digest(run)
    if state is None:
        uid = new_uid()
        root = run_root_for(layout.storage_uri, LOCAL_NAMESPACE, run.metadata.name, uid)
        return LocalState(name=run.metadata.name, uid=uid, run_root=root, spec_digest=digest)
    if state.spec_digest != digest:
        state.generation, state.spec_digest = state.generation + 1, digest
    return state


class LocalExecutor:
    """One local run: its spec, where it lives, its state, and the loop that drives it."""

    def __init__(self, run: RZeroRun, layout: LocalLayout, progress: RunProgress, max_parallel: int = 1,
                 gpus: int | None = None):
        self.gpus = gpus  # this machine's GPUs for every phase, laid out as on a pod (sizing.phase_layout)
        self.sizing = size(run.spec, gpus)  # auto fields sized as the operator sizes them; refused in run_local
        self.run, self.spec, self.layout = run, self.sizing.spec, layout
        self.name = run.metadata.name
        self.state = open_state(run, layout)
        self.status = RZeroRunStatus.model_validate(self.state.status)
        self.work_dir = layout.work_dir(self.state.uid)
        self.storage: Storage = open_storage(
            StorageLocation(uri=self.state.run_root, endpoint_url=self.spec.storage.endpoint, region=self.spec.storage.region)
        )
        self.progress = progress
        self.max_parallel = max_parallel

    # -- observe -----------------------------------------------------------------------------------

    def observe(self) -> Observed:
        identity = dict(run_name=self.name, run_root=self.state.run_root, generation=self.state.generation,
                        annotations=dict(self.state.annotations), spec_warnings=tuple(self.sizing.warnings))
        current = self.status.current
        if current is None or current.retry_at is not None:
            return Observed(**identity)
        record = self.state.attempt
        if record is None or not record.matches(current.iteration, current.phase, current.attempt):
            # No record of the tasks (state from another executor version): rebuild them from the spec.
            tasks = [t.wire() for t in step_tasks(self.spec, self.status, self.name, current.iteration, current.phase)]
            record = AttemptRecord(current.iteration, current.phase, current.attempt, tasks)
        outputs = [task["output"] for task in record.tasks]
        codes = record.exit_codes
        finished = len(codes) == len(outputs) and all(code is not None for code in codes)
        if finished and any(code != 0 for code in codes):
            return Observed(state="failed", exit_code=_first_failure(codes), message=self._failure_message(record), **identity)
        if all(is_committed(self.storage, output) for output in outputs):
            return Observed(state="succeeded", summaries=tuple(self._summary(o) for o in outputs), **identity)
        if finished:  # every shard exited 0 yet something is not committed: a worker bug, retryable
            return Observed(state="failed", exit_code=1, message=f"{current.phase} exited 0 without committing its output", **identity)
        return Observed(state="absent", **identity)

    def _summary(self, output: str) -> dict:
        return read_summary(self.storage, output) or {}

    def _failure_message(self, record: AttemptRecord) -> str:
        for index, code in enumerate(record.exit_codes):
            if code not in (0, None):
                shard = f" shard {index}" if len(record.tasks) > 1 else ""
                cause = "timed out (phaseDeadlineSeconds)" if code == TIMED_OUT else describe_exit(code)
                log = record.logs[index] if index < len(record.logs) else ""
                # The worker's last line is its one-line verdict ("rzero worker PHASE: Error: ..."); the
                # full traceback stays in the log, whose path ends the message.
                return f"{record.phase}{shard} {cause}: {last_line(Path(log))} (log: {log})"
        return f"{record.phase} failed"

    # -- decide + write ----------------------------------------------------------------------------

    def step(self) -> Decision:
        """Observe, decide and save the new status (before acting, so a crash never loses a decision)."""
        decision = decide(self.spec, self.status, self.observe(), datetime.now(timezone.utc))
        self.status = decision.status
        if decision.start is not None:
            self.state.attempt = self._attempt_record(decision.start)
        self.state.status = self.status.wire()
        save_state(self.layout.state_file, self.state)
        for kind, reason, message in decision.events:
            self.progress.write(f"{'!' if kind == 'Warning' else '-'} {reason}: {message}")
        self.progress.show(self.state.status, len(run_steps(self.spec)))
        return decision

    def _attempt_record(self, start: StartPhase) -> AttemptRecord:
        base = f"iter-{start.iteration:03d}-{start.phase}-a{start.attempt}"
        logs = [str(self.work_dir / "logs" / f"{base}-shard-{i:05d}.log") for i in range(len(start.tasks))]
        return AttemptRecord(start.iteration, start.phase, start.attempt, [t.wire() for t in start.tasks], logs=logs)

    # -- act ---------------------------------------------------------------------------------------

    def run_attempt(self) -> None:
        """Run the recorded attempt's shards to completion and save their exit codes."""
        record = self.state.attempt
        assert record is not None
        jobs = []
        for index, task in enumerate(record.tasks):
            task_file = self.work_dir / "tasks" / f"iter-{record.iteration:03d}-{record.phase}-a{record.attempt}-shard-{index:05d}.json"
            task_file.parent.mkdir(parents=True, exist_ok=True)
            task_file.write_text(json.dumps(task, indent=2), encoding="utf-8")
            lock = self.work_dir / "locks" / (task["output"].replace("/", "--") + ".lock")
            jobs.append(ShardJob(phase=record.phase, task_file=task_file, log_file=Path(record.logs[index]),
                                 lock_file=lock, output=task["output"], args=tuple(self._rank_args(record.phase))))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        on_poll = lambda running: running and self.progress.worker_log(running[0].log_file)  # noqa: E731
        codes = run_shards(
            jobs, max_parallel=self.max_parallel, env=env, on_poll=on_poll, deadline=self.spec.phase_deadline_seconds
        )
        record.exit_codes = [TIMED_OUT if code is None else code for code in codes]
        save_state(self.layout.state_file, self.state)
        for job, code in zip(jobs, record.exit_codes):
            if code != 0:
                self.progress.write(f"--- {job.log_file} (exit code {code}), last lines:\n{tail(job.log_file, 15)}\n---")

    def _rank_args(self, phase: str) -> list[str]:
        if self.gpus is None:
            return []
        return phase_layout(self.spec, phase, gpus=self.gpus).launch_args()

    def loop(self) -> int:
        """Drive the run until it succeeds, fails or is suspended; returns the exit code."""
        while True:
            decision = self.step()
            if self.status.phase in TERMINAL:
                return EXIT_OK if self.status.phase == "Succeeded" else EXIT_FAILED
            if decision.start is not None:
                self.run_attempt()
            elif decision.requeue_after is not None:
                time.sleep(max(0.0, decision.requeue_after))
            elif self.status.phase == "Suspended":
                if self.status.approval is not None:
                    gate = self.status.approval
                    self.progress.write(f"run waits for approval of iteration {gate.iteration} (audit sample: "
                                        f"{gate.audit_sample}); `rzero approve FILE --iteration {gate.iteration} "
                                        "[--reject --reason TEXT]`, then run again")
                else:
                    self.progress.write("run is suspended (spec.suspend: true); set it to false and run again")
                return EXIT_OK
            else:
                raise RuntimeError(f"the plan made no progress (status {self.status.phase}: {self.status.message})")


TIMED_OUT = 124  # recorded exit code of a shard stopped at phaseDeadlineSeconds (like timeout(1))


def describe_exit(code: int) -> str:
    """'exited with code 1', or for a process killed by a signal (128 + N) which one: 137 is SIGKILL,
    the kernel's OOM killer's signal."""
    if code > 128 and code - 128 in signal.valid_signals():
        name = signal.Signals(code - 128).name
        hint = ": out of memory? (the OOM killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"was killed by {name} (exit code {code}{hint})"
    return f"exited with code {code}"


def _first_failure(codes: list[int | None]) -> int:
    return next(code for code in codes if code not in (0, None))


def _raise_interrupt(signum, frame):  # SIGTERM behaves like Ctrl-C: stop the worker, save, exit
    raise KeyboardInterrupt


def run_local(
    file: Path,
    *,
    root: Path | None = None,
    iterations: int | None = None,
    progress: bool = True,
    max_parallel: int = 1,
    write_report: bool = True,
    gpus: int | None = None,
) -> int:
    """`rzero run`: returns 0 when the run succeeded, 1 when it failed, 2 for an invalid manifest, 130 when
    interrupted."""
    try:
        run = load_run(file)
        if iterations is not None:
            run.spec.iterations = iterations
            run = validate_manifest(run.model_dump(mode="json", by_alias=True, exclude_none=True))
        errors = size(run.spec, gpus).errors  # what cannot fit is refused as `rzero validate` refuses it
        if errors:
            raise InvalidManifest(errors)
    except InvalidManifest as invalid:
        for message in invalid.errors:
            print(f"{file}: {message}", file=sys.stderr)
        return EXIT_INVALID
    layout = LocalLayout.resolve(run.metadata.name, run.spec.storage.uri, root)
    resolve_paths(run, root)
    lock = FileLock(layout.state_file.parent / "run.lock")
    try:
        lock.acquire(os.getpid())
        bar = RunProgress(run.metadata.name, len(run_steps(run.spec)), enabled=progress)
        try:
            return _drive(LocalExecutor(run, layout, bar, max_parallel=max_parallel, gpus=gpus), file, write_report, bar)
        finally:
            bar.close()
    except LockBusy as busy:
        return _refuse(f"run {run.metadata.name!r} is already running here (pid {busy.holder}, lock {busy.path}); "
                       f"wait for it or stop it (kill {busy.holder})", EXIT_BUSY)
    except OutputBusy as busy:
        return _refuse(str(busy), EXIT_BUSY)
    except OSError as error:
        return _refuse(f"cannot write {error.filename or 'the run state'}: {error.strerror or error}"
                       f"{disk_hint(error)}; the saved state is unchanged: fix it and run again", EXIT_IO_ERROR)
    except StorageError as error:
        code = EXIT_INVALID if isinstance(error, StorageConfigurationError) else EXIT_FAILED
        return _refuse(f"storage: {error}", code)
    finally:
        lock.release()


def _drive(executor: LocalExecutor, file: Path, write_report: bool, bar: RunProgress) -> int:
    from rzero_operator.local.commands import print_table, report_for

    bar.write(f"run {executor.name}: state {executor.layout.state_file}, artefacts {executor.state.run_root}")
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        code = executor.loop()
    except KeyboardInterrupt:
        save_state(executor.layout.state_file, executor.state)
        bar.close()
        print(f"\ninterrupted; run `rzero run {file}` again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
        bar.close()
    print_table(executor.name, executor.state.status)
    if write_report:
        try:
            path = report_for(executor.state, executor.storage, executor.work_dir / "report", executor.spec)
            print(f"\nreport: {path}")
        except OSError as error:  # the run itself is done and saved; only the report is missing
            print(f"rzero run: could not write the report: {error.strerror or error}{disk_hint(error)}; "
                  f"`rzero report {file}` writes it later", file=sys.stderr)
        except Exception as error:  # noqa: BLE001 - a report bug must not turn a finished run into a traceback
            print(f"rzero run: the run is saved but its report failed ({type(error).__name__}: {error}); please "
                  f"report this with `rzero report {file}`'s output", file=sys.stderr)
    return code


def _refuse(message: str, code: int) -> int:
    print(f"rzero run: {message}", file=sys.stderr)
    return code


def disk_hint(error: OSError) -> str:
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return " (disk full)"
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return " (read-only or not permitted)"
    return ""
