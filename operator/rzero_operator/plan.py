"""The plan: a pure function from (spec, status, observed outcome, now) to the next decision. No I/O.

Executors (local subprocesses, Kubernetes Jobs) loop: observe -> decide -> write status -> act.
The run is the step sequence (0, evaluate), then (i, challenger/generate/label/solver/evaluate) for
i = 1..spec.iterations (with spec.verifier.mode trained, (i, verifier) right after (i, label)). The next step is the first one whose history record is not Succeeded, so raising
`spec.iterations` on a finished run simply continues it. Tasks are built from the spec at the moment a
phase (or a retry) starts, so spec changes apply from the next start.

`decide` is idempotent: calling it again with the same inputs returns the same status and no new events,
and it never loses work: an attempt whose Job/process vanished (`absent`) is started again under the same
name and attempt number (a committed output makes the worker a no-op).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from rzero_worker.task import iteration_phases

from . import approval, oversight
from .api.history import apply_summaries, summary_seconds
from .api.spec import RZeroRunSpec
from .api.status import STAGE_OF_PHASE, Condition, CurrentAttempt, IterationRecord, PhaseRecord, RZeroRunStatus
from .tasks import AnyTask, phase_key

ObservedState = Literal["absent", "running", "succeeded", "failed"]
Event = tuple[str, str, str]  # (type Normal|Warning, reason, message)
CONFIG_ERROR_EXIT_CODE = 2
MAX_MESSAGE = 1000
STARTING_POLL_S = 2.0  # how soon a running attempt with no pods yet is looked at again (Observed.starting)
# ... and at most how long after: each look waits as long as the attempt has waited already, so a Job the
# scheduler or a busy Job controller keeps without pods for minutes costs a few looks, not one every 2 s
# (the Job controller's FailedCreate comes at its first try, seconds after the Job: the 2 s look sees it).
STARTING_POLL_MAX_S = 30.0


@dataclass(frozen=True)
class Observed:
    """What the executor found for the attempt recorded in `status.current` (and the run's identity).

    state: absent (no Job/process), running, succeeded, failed. An executor that stopped an attempt
    removes it, so it reads `absent` afterwards. summaries: one summary dict per shard when succeeded.
    message / exit_code: when failed (exit code 2 = configuration error, never retried). active: a failed
    attempt whose Job/process still exists (its pods cannot be created, say): the decision stops it.
    run_name: metadata.name (tasks and attempt names need it). run_root: the run's storage prefix, used
    when status.runRoot is still empty (see tasks.run_root_for). generation: metadata.generation.
    annotations: metadata.annotations (locally: the state file's), where approval gates read decisions.
    starting: running, but no pod of the attempt exists yet (and it is not held on purpose, as a queued Job
    is): the executor looks again within STARTING_POLL_S (then after as long as it has waited, at most
    STARTING_POLL_MAX_S), so pods that cannot be created (the Job controller's FailedCreate: a missing
    ServiceAccount, a quota) fail the attempt in seconds, not at the next resync.
    spec_warnings: the spec's sizing warnings (sizing_auto.size: idle GPUs, a tight fit), reported in the
    SpecValid condition and as one Warning event each, once per generation.
    """

    state: ObservedState = "absent"
    summaries: tuple[dict[str, Any], ...] = ()
    message: str = ""
    exit_code: int | None = None
    active: bool = False
    run_name: str = ""
    run_root: str = ""
    generation: int | None = None
    annotations: dict[str, str] = field(default_factory=dict)  # the run's rzero.dev/ decisions (approval.py)
    starting: bool = False
    spec_warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class StartPhase:
    """Start attempt `attempt` of `phase` in `iteration` under the deterministic `name`; one task per shard."""

    iteration: int
    phase: str
    attempt: int
    name: str
    tasks: list[AnyTask]


@dataclass(frozen=True)
class Decision:
    """What to write and do. `stop` is the attempt to stop (and remove), e.g. on suspend or deadline."""

    status: RZeroRunStatus
    start: StartPhase | None = None
    stop: CurrentAttempt | None = None
    requeue_after: float | None = None
    events: list[Event] = field(default_factory=list)


# An Indexed Job's pods are named (and get hostnames) `<job>-<index>`: leave room for "-1023" (at most
# 1024 shards) so that the hostname is still a 63-character DNS label.
MAX_ATTEMPT_NAME = 63 - len("-1023")


def attempt_name(run_name: str, iteration: int, phase: str, attempt: int) -> str:
    """Job / process name of an attempt, e.g. 'demo-i001-label-a1'. At most MAX_ATTEMPT_NAME characters:
    long run names are cut and given a hash so names stay unique and deterministic."""
    suffix = f"-i{iteration:03d}-{phase}-a{attempt}"
    if len(run_name) + len(suffix) <= MAX_ATTEMPT_NAME:
        return run_name + suffix
    digest = hashlib.sha256(run_name.encode()).hexdigest()[:6]
    head = run_name[: MAX_ATTEMPT_NAME - len(suffix) - 7].rstrip("-")
    return f"{head}-{digest}{suffix}"


def steps(iterations: int, warmup: bool = False, trained_verifier: bool = False) -> list[tuple[int, str]]:
    """Every (iteration, phase) of a run in order: the optional warm-up and the base evaluation (iteration
    0), then every phase of each iteration (a trained Verifier's after the label phase)."""
    base = [(0, "warmup")] if warmup else []
    phases = iteration_phases(trained_verifier)
    return base + [(0, "evaluate")] + [(i, p) for i in range(1, iterations + 1) for p in phases]


def run_steps(spec: RZeroRunSpec) -> list[tuple[int, str]]:
    """The steps of the run `spec` describes."""
    return steps(spec.iterations, spec.warmup.enabled, spec.trained_verifier)


def next_step(spec: RZeroRunSpec, status: RZeroRunStatus) -> tuple[int, str] | None:
    """The first step not yet succeeded, or None when the run is complete."""
    for iteration, phase in run_steps(spec):
        record = status.record(iteration)
        done = record is not None and phase in record.phases and record.phases[phase].state == "Succeeded"
        if not done:
            return iteration, phase
    return None


# --------------------------------------------------------------------------------------------------


@dataclass
class _Context:
    """The mutable working state of one decide() call (status is a deep copy of the input)."""

    spec: RZeroRunSpec
    status: RZeroRunStatus
    observed: Observed
    now: datetime
    events: list[Event] = field(default_factory=list)

    def decision(self, **kwargs: Any) -> Decision:
        self.status.progress = f"{self.status.iteration}/{self.spec.iterations}"
        if self.observed.generation is not None:  # every condition is re-judged against this generation
            for condition in self.status.conditions:
                condition.observed_generation = self.observed.generation
        return Decision(status=self.status, events=self.events, **kwargs)

    def condition(self, type_: str, value: bool, reason: str, message: str = "") -> None:
        set_condition(self.status, type_, value, reason, message, self.now, self.observed.generation)


def set_condition(
    status: RZeroRunStatus, type_: str, value: bool, reason: str, message: str, now: datetime, generation: int | None
) -> None:
    """Set a condition in place; lastTransitionTime changes only when the True/False value does."""
    text = "True" if value else "False"
    existing = status.condition(type_)
    if existing is None:
        status.conditions.append(
            Condition(type=type_, status=text, reason=reason, message=message,
                      last_transition_time=now, observed_generation=generation)
        )
        return
    if existing.status != text:
        existing.last_transition_time = now
    existing.status, existing.reason, existing.message = text, reason, message
    existing.observed_generation = generation


def decide(spec: RZeroRunSpec, status: RZeroRunStatus, observed: Observed, now: datetime) -> Decision:
    """The next decision for a run. Pure: the input status is not modified."""
    ctx = _Context(spec=spec, status=status.model_copy(deep=True), observed=observed, now=now)
    st = ctx.status
    if not st.run_root:
        if not observed.run_root:
            raise ValueError("observed.run_root is required until status.runRoot is set")
        st.run_root = observed.run_root
    if observed.generation is not None:
        st.observed_generation = observed.generation
    _spec_valid(ctx)
    if st.phase == "Failed":
        return ctx.decision()  # terminal: the failure stays visible until the run is recreated
    if st.current is not None:
        decision = _handle_current(ctx)
        if decision is not None:
            return decision
    return _advance(ctx)


def _spec_valid(ctx: _Context) -> None:
    """SpecValid True, its message the sizing warnings; each warning also becomes a Warning event when this
    generation is judged valid for the first time (not on every resync: the condition records the generation)."""
    before, warnings = ctx.status.condition("SpecValid"), ctx.observed.spec_warnings
    judged = before is not None and before.status == "True" and before.observed_generation == ctx.observed.generation
    if not judged:
        ctx.events += [("Warning", "SizingWarning", warning) for warning in warnings]
    message = ("sizing warnings: " + "; ".join(warnings))[:MAX_MESSAGE] if warnings else ""
    ctx.condition("SpecValid", True, "Valid", message)


def decide_invalid_spec(status: RZeroRunStatus, errors: list[str], generation: int | None, now: datetime) -> Decision:
    """For executors whose spec failed validation: report it (SpecValid False) and start nothing."""
    st = status.model_copy(deep=True)
    if generation is not None:
        st.observed_generation = generation
    message = "; ".join(errors)[:MAX_MESSAGE]
    set_condition(st, "SpecValid", False, "InvalidSpec", message, now, generation)
    st.message = f"invalid spec: {message}"
    return Decision(status=st, events=[("Warning", "InvalidSpec", st.message)])


def _handle_current(ctx: _Context) -> Decision | None:
    """Act on the recorded attempt. None means it succeeded and was recorded: advance to the next step."""
    cur, state = ctx.status.current, ctx.observed.state
    assert cur is not None
    if cur.retry_at is not None:
        return _after_failed_attempt(ctx, cur)
    if state == "succeeded":
        _record_success(ctx, cur)
        return None
    if state == "failed":
        stop = cur.model_copy(deep=True) if ctx.observed.active else None
        return _fail_attempt(ctx, cur, ctx.observed.message, ctx.observed.exit_code, stop=stop)
    if state == "absent":
        if ctx.spec.suspend:
            return _suspend(ctx)
        return _start(ctx, cur.iteration, cur.phase, cur.attempt, restarted=True)
    return _while_running(ctx, cur)


def _after_failed_attempt(ctx: _Context, cur: CurrentAttempt) -> Decision:
    """A failed attempt waits out its backoff, then the next attempt starts (unless suspended)."""
    if ctx.spec.suspend:
        return _suspend(ctx)
    assert cur.retry_at is not None
    wait = (cur.retry_at - ctx.now).total_seconds()
    if wait > 0:
        return ctx.decision(requeue_after=wait)
    return _start(ctx, cur.iteration, cur.phase, cur.attempt + 1)


def _while_running(ctx: _Context, cur: CurrentAttempt) -> Decision:
    deadline = ctx.spec.phase_deadline_seconds
    elapsed = (ctx.now - cur.started_at).total_seconds() if cur.started_at else 0.0
    if deadline is not None and elapsed > deadline:
        message = f"exceeded phaseDeadlineSeconds ({deadline}s)"
        return _fail_attempt(ctx, cur, message, None, stop=cur.model_copy(deep=True))
    if ctx.spec.suspend and ctx.spec.stop_running_on_suspend:
        decision = _suspend(ctx)
        return Decision(status=decision.status, stop=cur.model_copy(deep=True), events=decision.events)
    st = ctx.status
    st.phase = "Running"
    if ctx.spec.suspend:
        ctx.condition("Suspended", False, "SuspendPending", "suspend requested: the running phase finishes first")
    requeue = max(1.0, deadline - elapsed) if deadline is not None else None
    if ctx.observed.starting:
        poll = min(STARTING_POLL_MAX_S, max(STARTING_POLL_S, elapsed))
        requeue = min(requeue or poll, poll)
    return ctx.decision(requeue_after=requeue)


def _advance(ctx: _Context) -> Decision:
    """No attempt in flight: finish, stay suspended, or start the next step."""
    st, spec = ctx.status, ctx.spec
    hold = oversight.before_next(spec, st, ctx.observed.annotations, ctx.now, ctx.events)
    if hold == "wait":
        return _await_approval(ctx)
    step = None if hold == "finish" else next_step(spec, st)
    if step is None:
        step = oversight.final_step(spec, st)  # the export, while it is due
        if step is None:
            return _succeed_run(ctx)
    if spec.suspend:
        return _suspend(ctx)
    return _start(ctx, step[0], step[1], 1)


def _record(st: RZeroRunStatus, iteration: int, now: datetime) -> IterationRecord:
    record = st.record(iteration)
    if record is None:
        record = IterationRecord(iteration=iteration, started_at=now)
        st.iteration_history.append(record)
        st.iteration_history.sort(key=lambda r: r.iteration)
    return record


def _start(ctx: _Context, iteration: int, phase: str, attempt: int, restarted: bool = False) -> Decision:
    st, spec = ctx.status, ctx.spec
    try:
        tasks = oversight.step_tasks(spec, st, ctx.observed.run_name, iteration, phase)
    except ValueError as error:  # pydantic's ValidationError included: the spec cannot make a valid task
        return _fail_run(ctx, iteration, phase, f"cannot build the {phase} task of iteration {iteration}: {error}")
    name = attempt_name(ctx.observed.run_name, iteration, phase, attempt)
    if st.phase == "Suspended":  # whichever way it was suspended (between phases, or stopped mid-phase)
        ctx.events.append(("Normal", "Resumed", "run resumed"))
    st.current = CurrentAttempt(
        iteration=iteration, phase=phase, attempt=attempt, name=name, shards=len(tasks), started_at=ctx.now
    )
    record = _record(st, iteration, ctx.now)
    phase_record = record.phases.setdefault(phase, PhaseRecord(state="Running", started_at=ctx.now))
    phase_record.state, phase_record.attempts = "Running", attempt
    st.phase, st.iteration, st.stage = "Running", iteration, STAGE_OF_PHASE[phase]
    st.message = f"iteration {iteration}: {phase} (attempt {attempt})"
    ctx.condition("Progressing", True, "PhaseRunning", st.message)
    ctx.condition("Ready", False, "InProgress", st.message)
    ctx.condition("Suspended", False, "NotSuspended")
    reason = "PhaseRestarted" if restarted else "PhaseStarted"
    ctx.events.append(("Normal", reason, f"{name}: started {phase} of iteration {iteration}, attempt {attempt}"))
    # Look again soon: a Job whose pods cannot be created says so only in an Event (see Observed.starting).
    start = StartPhase(iteration=iteration, phase=phase, attempt=attempt, name=name, tasks=tasks)
    return ctx.decision(start=start, requeue_after=STARTING_POLL_S)


def _record_success(ctx: _Context, cur: CurrentAttempt) -> None:
    st = ctx.status
    record = _record(st, cur.iteration, ctx.now)
    summaries = list(ctx.observed.summaries)
    apply_summaries(record, cur.phase, phase_key(cur.iteration, cur.phase), summaries)
    phase_record = record.phases.setdefault(cur.phase, PhaseRecord(state="Succeeded", started_at=cur.started_at))
    phase_record.state, phase_record.finished_at, phase_record.message = "Succeeded", ctx.now, ""
    phase_record.attempts = cur.attempt
    phase_record.seconds = summary_seconds(summaries)
    if cur.phase == "label":
        st.kept_questions = record.questions_kept
    if cur.phase == "evaluate":
        record.finished_at = ctx.now
        st.latest_score = record.mean_score
    st.current = None
    ctx.events.append(("Normal", "PhaseSucceeded", f"{cur.name}: {cur.phase} of iteration {cur.iteration} succeeded"))
    ctx.events += tracking_events(cur, summaries)
    ctx.events += oversight.after_success(ctx.spec, st, cur.iteration, cur.phase, summaries, ctx.now)


def tracking_events(cur: CurrentAttempt, summaries: list[dict]) -> list[Event]:
    """A Warning when spec.tracking's trackers failed in a phase that succeeded (`tracking_errors` in its
    summaries: a tracker never fails a phase; its TensorBoard files are committed all the same)."""
    errors = sum(int(metrics.get("tracking_errors") or 0) for metrics in
                 (s.get("metrics") for s in summaries if isinstance(s, dict)) if isinstance(metrics, dict))
    if not errors:
        return []
    return [("Warning", "TrackingFailed", f"{cur.name}: {errors} tracker call(s) failed in {cur.phase} of iteration "
             f"{cur.iteration} (see the phase log); its TensorBoard files are in its output")]


def _fail_attempt(
    ctx: _Context, cur: CurrentAttempt, message: str, exit_code: int | None, stop: CurrentAttempt | None = None
) -> Decision:
    """Count a failed attempt: fail the run (config error / attempts exhausted) or schedule a retry."""
    st, retry = ctx.status, ctx.spec.retry
    if not message:
        message = f"exit code {exit_code}" if exit_code is not None else "failed"
    message = message.strip()[:MAX_MESSAGE]
    st.failed_attempts += 1
    phase_record = _record(st, cur.iteration, ctx.now).phases.setdefault(cur.phase, PhaseRecord(state="Running"))
    phase_record.message = message
    where = f"{cur.phase} of iteration {cur.iteration}"
    if exit_code == CONFIG_ERROR_EXIT_CODE:
        return _fail_run(ctx, cur.iteration, cur.phase, f"{where} failed with a configuration error: {message}", stop)
    if cur.attempt >= retry.max_attempts:
        text = f"{where} failed after {cur.attempt} attempt(s): {message}"
        return _fail_run(ctx, cur.iteration, cur.phase, text, stop)
    delay = retry.backoff_after(cur.attempt)
    cur.retry_at = ctx.now + timedelta(seconds=delay)
    phase_record.state = "Retrying"
    st.message = f"{where}: attempt {cur.attempt} failed ({message}); retrying in {delay}s"
    ctx.condition("Progressing", True, "Retrying", st.message)
    ctx.events.append(("Warning", "PhaseRetry", f"{cur.name}: {st.message}"))
    return ctx.decision(stop=stop, requeue_after=float(delay))


def _fail_run(ctx: _Context, iteration: int, phase: str, message: str, stop: CurrentAttempt | None = None) -> Decision:
    st = ctx.status
    phase_record = _record(st, iteration, ctx.now).phases.setdefault(phase, PhaseRecord(state="Failed"))
    phase_record.state, phase_record.finished_at = "Failed", ctx.now
    if st.current is not None:
        st.current.retry_at = None
    st.phase, st.message = "Failed", message
    ctx.condition("Failed", True, "PhaseFailed", message)
    ctx.condition("Ready", False, "Failed", message)
    ctx.condition("Progressing", False, "Failed", message)
    ctx.events.append(("Warning", "RunFailed", message))
    return ctx.decision(stop=stop)


def _suspend(ctx: _Context) -> Decision:
    st = ctx.status
    if st.phase != "Suspended":
        ctx.events.append(("Normal", "Suspended", "run suspended: no new phase starts until spec.suspend is false"))
    st.phase = "Suspended"
    st.message = "suspended"
    ctx.condition("Suspended", True, "SpecSuspend", "spec.suspend is true")
    ctx.condition("Progressing", False, "Suspended", "spec.suspend is true")
    return ctx.decision()


def _await_approval(ctx: _Context) -> Decision:
    """A gate waits for a person (approval.py): nothing starts; the status says what to do."""
    st = ctx.status
    assert st.approval is not None
    st.phase, st.stage = "Suspended", "AwaitingApproval"
    st.message = approval.waiting_message(st.approval)
    ctx.condition("Suspended", True, "AwaitingApproval", st.message)
    ctx.condition("Progressing", False, "AwaitingApproval", st.message)
    return ctx.decision()


def _succeed_run(ctx: _Context) -> Decision:
    st = ctx.status
    reason, message, iteration = oversight.finish(ctx.spec, st)
    if st.phase != "Succeeded":
        ctx.events.append(("Normal", "RunSucceeded" if reason == "Succeeded" else reason, message))
    st.phase, st.stage, st.iteration = "Succeeded", "Done", iteration
    st.message = message
    ctx.condition("Ready", True, reason, st.message)
    ctx.condition("Progressing", False, "Succeeded", st.message)
    ctx.condition("Suspended", False, "NotSuspended")
    return ctx.decision()
