"""Prometheus metrics of the operator (served by prometheus_client on --metrics-port).

- rzero_runs{phase}                       gauge: runs by run phase (Pending, Running, Suspended, ...)
- rzero_runs_by_stage{stage}              gauge: runs by stage (what they are doing now)
- rzero_phase_duration_seconds{phase}     histogram: wall time of succeeded phase attempts
- rzero_phase_starts_total{phase}         counter: attempts started (Jobs created)
- rzero_phase_retries_total{phase}        counter: failed attempts that will be retried
- rzero_phase_failures_total{phase}       counter: failed attempts (retried or final)
- rzero_run_failures_total                counter: runs that failed for good
- rzero_reconcile_seconds / rzero_reconcile_errors_total: the control loop itself

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

    def record_events(self, events: list[tuple[str, str, str]], old: RZeroRunStatus, now: datetime) -> None:
        """Count what a decision did, from the plan's event reasons."""
        phase = old.current.phase if old.current else "unknown"
        for _, reason, _ in events:
            if reason == "PhaseSucceeded" and old.current and old.current.started_at:
                self.duration.labels(phase=phase).observe(max(0.0, (now - old.current.started_at).total_seconds()))
            elif reason == "PhaseRetry":
                self.retries.labels(phase=phase).inc()
                self.failures.labels(phase=phase).inc()
            elif reason == "RunFailed":
                self.run_failures.inc()
                if old.current is not None:
                    self.failures.labels(phase=phase).inc()

    def record_start(self, phase: str) -> None:
        self.starts.labels(phase=phase).inc()
