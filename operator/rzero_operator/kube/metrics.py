"""Prometheus metrics of the operator (served by prometheus_client on --metrics-port).

- rzero_runs{phase}                       gauge: runs by run phase (Pending, Running, Suspended, ...)
- rzero_runs_by_stage{stage}              gauge: runs by stage (what they are doing now)
- rzero_phase_duration_seconds{phase}     histogram: wall time of succeeded phase attempts
- rzero_phase_starts_total{phase}         counter: attempts started (Jobs created)
- rzero_phase_retries_total{phase}        counter: failed attempts that will be retried
- rzero_phase_failures_total{phase}       counter: failed attempts (retried or final)
- rzero_run_failures_total                counter: runs that failed for good
- rzero_reconcile_seconds / rzero_reconcile_errors_total: the control loop itself
- rzero_label_accuracy{namespace,run}     gauge: oracle-checked accuracy of the latest pseudo-labels
- rzero_label_accuracy_lower{namespace,run}  gauge: its 95% interval's lower bound (what the guard uses)
- rzero_verifier_accuracy{namespace,run} gauge: held-out accuracy of the latest trained Verifier (spec.verifier.mode
                                          trained), and rzero_verifier_accuracy_lower its 95% lower bound (the guard's)
- rzero_best_score{namespace,run} / rzero_best_iteration{namespace,run}: the best iteration so far
- rzero_iteration{namespace,run} / rzero_iterations{namespace,run}: iteration in progress (or last finished) and
                                          the run's planned iterations (status.progress "i/N")
- rzero_awaiting_approval{namespace,run}  gauge: 1 while a run waits at an approval gate
- rzero_storage_bytes{namespace,run}      gauge: bytes the run's committed outputs hold
- rzero_guard_trips_total{action} / rzero_approval_decisions_total{decision}: counters
- rzero_operator_leader                   gauge: 1 while this replica leads (holds the leader lease, or runs
                                          without leader election), 0 while it waits as a standby

Each `OperatorMetrics` has its own registry, so several operators (tests) can live in one process.
"""

from __future__ import annotations

import threading
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ..api.status import RZeroRunStatus

RUN_PHASES = ("Pending", "Running", "Suspended", "Succeeded", "Failed")
DURATION_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400, float("inf"))


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Gauge("rzero_runs", "RZeroRuns by run phase.", ["phase"], registry=r)
        self.stages = Gauge("rzero_runs_by_stage", "RZeroRuns by stage.", ["stage"], registry=r)
        self.duration = Histogram(
            "rzero_phase_duration_seconds", "Wall time of succeeded phase attempts.", ["phase"],
            buckets=DURATION_BUCKETS, registry=r,
        )
        self.starts = Counter("rzero_phase_starts_total", "Phase attempts started.", ["phase"], registry=r)
        self.retries = Counter("rzero_phase_retries_total", "Failed attempts to be retried.", ["phase"], registry=r)
        self.failures = Counter("rzero_phase_failures_total", "Failed phase attempts.", ["phase"], registry=r)
        self.run_failures = Counter("rzero_run_failures_total", "Runs failed for good.", registry=r)
        self.reconcile_seconds = Histogram("rzero_reconcile_seconds", "Duration of one reconcile.", registry=r)
        self.reconcile_errors = Counter("rzero_reconcile_errors_total", "Reconciles that raised.", registry=r)
        per_run = ["namespace", "run"]
        self.label_accuracy = Gauge("rzero_label_accuracy", "Oracle-checked label accuracy, latest.", per_run, registry=r)
        self.label_accuracy_lower = Gauge(
            "rzero_label_accuracy_lower", "Lower bound of the latest label accuracy's 95% interval.", per_run, registry=r
        )
        self.verifier_accuracy = Gauge("rzero_verifier_accuracy", "Held-out accuracy of the latest trained Verifier.",
                                       per_run, registry=r)
        self.verifier_accuracy_lower = Gauge(
            "rzero_verifier_accuracy_lower", "Lower bound of the trained Verifier's held-out accuracy's 95% interval.",
            per_run, registry=r,
        )
        self.best_score = Gauge("rzero_best_score", "Mean evaluation score of the best iteration.", per_run, registry=r)
        self.best_iteration = Gauge("rzero_best_iteration", "The best iteration.", per_run, registry=r)
        self.iteration = Gauge("rzero_iteration", "Iteration in progress (or last finished).", per_run, registry=r)
        self.iterations = Gauge("rzero_iterations", "Iterations the run plans (spec.iterations).", per_run, registry=r)
        self.awaiting_approval = Gauge("rzero_awaiting_approval", "1 while waiting at an approval gate.", per_run, registry=r)
        self.storage_bytes = Gauge("rzero_storage_bytes", "Bytes of the run's committed outputs.", per_run, registry=r)
        self.guard_trips = Counter("rzero_guard_trips_total", "Drift guard trips.", ["action"], registry=r)
        self.decisions = Counter("rzero_approval_decisions_total", "Decisions at approval gates.", ["decision"], registry=r)
        self.leader = Gauge("rzero_operator_leader", "1 while this replica leads, 0 while it is a standby.",
                            registry=r)
        self._run_gauges = (self.label_accuracy, self.label_accuracy_lower, self.best_score, self.best_iteration,
                            self.iteration, self.iterations, self.awaiting_approval, self.storage_bytes,
                            self.verifier_accuracy, self.verifier_accuracy_lower)
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str], tuple[str, str]] = {}  # run -> (phase, stage)
        self._seen_stages: set[str] = set()
        for phase in RUN_PHASES:
            self.runs.labels(phase=phase).set(0)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        start_http_server(port, addr=addr, registry=self.registry)

    def track_run(self, key: tuple[str, str], status: RZeroRunStatus | None) -> None:
        """Update the by-phase/by-stage gauges with a run's latest status (None: the run is gone)."""
        with self._lock:
            if status is None:
                self._known.pop(key, None)
            else:
                self._known[key] = (status.phase, status.stage)
            phases = [phase for phase, _ in self._known.values()]
            stages = [stage for _, stage in self._known.values()]
            for phase in set(RUN_PHASES) | set(phases):
                self.runs.labels(phase=phase).set(phases.count(phase))
            self._seen_stages.update(stages)
            for stage in self._seen_stages:  # stages no run is in any more drop to 0
                self.stages.labels(stage=stage).set(stages.count(stage))
            self._track_labels(key, status)

    def _track_labels(self, key: tuple[str, str], status: RZeroRunStatus | None) -> None:
        """Per-run gauges of label accuracy, the best iteration, the gate and storage (None: remove them)."""
        for gauge in self._run_gauges:
            try:
                gauge.remove(*key)
            except KeyError:
                pass
        if status is None:
            return
        latest = next((r for r in reversed(status.iteration_history) if r.label_accuracy is not None), None)
        trained = next((r.verifier_training for r in reversed(status.iteration_history)
                        if r.verifier_training is not None and r.verifier_training.accuracy_after is not None), None)
        values = {
            self.verifier_accuracy: trained.accuracy_after if trained else None,
            self.verifier_accuracy_lower: trained.accuracy_after_ci95[0] if trained and trained.accuracy_after_ci95 else None,
            self.label_accuracy: latest.label_accuracy if latest else None,
            self.label_accuracy_lower: latest.label_accuracy_ci95[0] if latest and latest.label_accuracy_ci95 else None,
            self.best_score: status.best_iteration.score if status.best_iteration else None,
            self.best_iteration: status.best_iteration.iteration if status.best_iteration else None,
            self.iteration: status.iteration,
            self.iterations: planned_iterations(status.progress),
            self.awaiting_approval: 1.0 if status.approval is not None else 0.0,
            self.storage_bytes: status.storage_bytes,
        }
        for gauge, value in values.items():
            if value is not None:
                gauge.labels(*key).set(value)

    def record_events(self, events: list[tuple[str, str, str]], old: RZeroRunStatus, now: datetime) -> None:
        """Count what a decision did, from the plan's event reasons."""
        phase = old.current.phase if old.current else "unknown"
        for _type, reason, message in events:
            if reason == "PhaseSucceeded" and old.current and old.current.started_at:
                self.duration.labels(phase=phase).observe(max(0.0, (now - old.current.started_at).total_seconds()))
            elif reason == "PhaseRetry":
                self.retries.labels(phase=phase).inc()
                self.failures.labels(phase=phase).inc()
            elif reason == "GuardTripped":
                self.guard_trips.labels(action="pause" if "(pause)" in message else "stop").inc()
            elif reason in ("Approved", "Rejected"):
                self.decisions.labels(decision=reason).inc()
            elif reason == "RunFailed":
                self.run_failures.inc()
                if old.current is not None:
                    self.failures.labels(phase=phase).inc()

    def record_start(self, phase: str) -> None:
        self.starts.labels(phase=phase).inc()


def planned_iterations(progress: str) -> int | None:
    """N of the status's "i/N" progress (None before the plan has written one)."""
    _, _, total = progress.partition("/")
    return int(total) if total.isdigit() else None
