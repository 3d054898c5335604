"""Entry point of `rzero operator`: kopf settings, structured logs, metrics endpoint, and the run loop.

    run_operator(namespaces=None, metrics_port=9090, election=None) -> exit code

`OperatorApp` is the same operator as an object, for embedding (tests, bench): construct it with a
`KubeApi`, then `await app.run(stop_flag=..., ready_flag=...)`, or with leader election (leader.py)
`await app.run_elected(elector, halt=...)`, its KubeApi fenced by `elector.is_leader`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import kopf
import kubernetes.client

from .client import KubeApi, load_api_client, size_pool
from .handlers import RESYNC_S, Handlers, Schedule
from .leader import LOST, STOPPED, ElectionConfig, LeaderElector
from .metrics import OperatorMetrics
from .reconcile import Reconciler

PREFIX = "rzero.dev"
TICK_ENV = "RZERO_OPERATOR_TICK_SECONDS"
RESYNC_ENV = "RZERO_OPERATOR_RESYNC_SECONDS"
KOPF_LOG_ENV = "RZERO_OPERATOR_KOPF_LOG_LEVEL"
# kopf says "Handler ... succeeded" and "... is processed" at INFO for every handler call: most of an
# operator's log at scale, and nothing a person needs (our own lines say what happened to each run, kopf's
# warnings and errors still show). RZERO_OPERATOR_KOPF_LOG_LEVEL=INFO (or DEBUG) brings them back.
KOPF_OBJECT_LOGGERS = ("kopf.objects",)
WATCHDOG_S = 0.1  # how often a leader checks it still holds the Lease (writes are fenced regardless)

log = logging.getLogger(__name__)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any run/namespace/reason extras."""

    EXTRAS = ("run", "namespace", "reason", "type")

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in self.EXTRAS:
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_kopf()


def quiet_kopf(level: str | None = None) -> None:
    """kopf's per-object lines from WARNING up unless asked otherwise (KOPF_LOG_ENV)."""
    name = (level or os.environ.get(KOPF_LOG_ENV) or "WARNING").upper()
    for logger in KOPF_OBJECT_LOGGERS:
        logging.getLogger(logger).setLevel(getattr(logging, name, logging.WARNING))


def build_settings(*, clusterwide: bool) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # kopf's own bookkeeping lives under our prefix, in annotations (never in .status, which the plan owns).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX, key="last-handled-configuration")
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    # Our Events are explicit (phase start/success/retry/failure); kopf's own chatter only from warnings up.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "rzero-operator"
    # Re-list now and then: a watch silently stuck behind a proxy must not stall runs for hours.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    # Never kopf's peering (it pauses every peer of equal priority: two replicas did nothing). Several
    # replicas elect one leader through a Lease (leader.py); kopf itself only ever runs in the leader.
    settings.peering.standalone = True
    settings.peering.clusterwide = clusterwide
    return settings


def _on_signals(handler: Callable[[], None]) -> None:
    """SIGINT/SIGTERM call `handler` (main thread only: elsewhere signals are not ours to take)."""
    if threading.current_thread() is threading.main_thread():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, handler)


class OperatorApp:
    """One operator: reconciler, handlers, kopf registry and settings."""

    def __init__(
        self, api: KubeApi, *, tick_s: float | None = None, resync_s: float | None = None, workers: int = 16,
        metrics: OperatorMetrics | None = None, reconciler: Reconciler | None = None,
    ):
        tick = tick_s if tick_s is not None else float(os.environ.get(TICK_ENV, "1"))
        resync = resync_s if resync_s is not None else float(os.environ.get(RESYNC_ENV, str(RESYNC_S)))
        # One pooled connection per reconcile worker, and a few for the requeue loop and the event posts.
        size_pool(api.api_client, workers + 4)
        self.metrics = metrics or OperatorMetrics()
        self.reconciler = reconciler or Reconciler(api=api, metrics=self.metrics)
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rzero-reconcile")
        self.handlers = Handlers(self.reconciler, Schedule(resync_s=resync), self.executor, tick_s=tick)
        self.registry = kopf.OperatorRegistry()
        self.handlers.register(self.registry)

    async def run(
        self, *, namespaces: list[str] | None = None, stop_flag: Any = None, ready_flag: Any = None,
        tune: Callable[[kopf.OperatorSettings], None] | None = None, on_signal: Callable[[], None] | None = None,
    ) -> None:
        """Run kopf and the requeue loop until stop_flag (or a signal, in the main thread).
        tune: adjusts the kopf settings (tests shorten timeouts meant for real clusters).
        on_signal: takes SIGINT/SIGTERM over from kopf (it must then set stop_flag itself)."""
        clusterwide = not namespaces
        settings = build_settings(clusterwide=clusterwide)
        if tune is not None:
            tune(settings)
        requeue = asyncio.create_task(self.handlers.requeue_loop(), name="rzero-requeue")
        existing = asyncio.all_tasks()  # kopf.operator's bookkeeping: these are not kopf's to cancel
        try:
            tasks = await kopf.spawn_tasks(
                registry=self.registry, settings=settings, standalone=True, clusterwide=clusterwide,
                namespaces=namespaces or (), stop_flag=stop_flag, ready_flag=ready_flag,
            )
            if on_signal is not None:
                _on_signals(on_signal)  # after spawn_tasks, which installs kopf's own handlers
            await kopf.run_tasks(tasks, ignored=existing)
        finally:
            requeue.cancel()
            await asyncio.gather(requeue, return_exceptions=True)
            self.executor.shutdown(wait=True, cancel_futures=True)

    async def run_elected(
        self, elector: LeaderElector, *, namespaces: list[str] | None = None, halt: threading.Event | None = None,
        ready_flag: Any = None, tune: Callable[[kopf.OperatorSettings], None] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> int:
        """Wait as a standby until `elector` holds the Lease, then run the operator while it does.
        Returns 0 when stopped (halt, SIGINT/SIGTERM; the Lease released) and 1 when the Lease was lost:
        writes stopped the moment the renew deadline passed (the reconciler's KubeApi is fenced by
        `elector.is_leader`), and the process should exit so its pod restarts as a standby. on_lost: called
        the moment the loss is seen (the CLI exits there and then: kopf's own bookkeeping patches are not
        fenced, so it gets no chance to send one); None: kopf is stopped gracefully (embedding, tests)."""
        loop = asyncio.get_running_loop()
        halt = halt or threading.Event()
        leading, stop_kopf, idle = asyncio.Event(), asyncio.Event(), threading.Event()
        _on_signals(halt.set)  # a standby stops at once; a leader stops acting, then releases (elector.run)
        election = asyncio.ensure_future(
            asyncio.to_thread(elector.run, halt, lambda: loop.call_soon_threadsafe(leading.set), idle))
        started = asyncio.ensure_future(leading.wait())
        await asyncio.wait({election, started}, return_when=asyncio.FIRST_COMPLETED)
        if not leading.is_set():
            started.cancel()
            return 0 if await election == STOPPED else 1
        operator = asyncio.create_task(self.run(namespaces=namespaces, stop_flag=stop_kopf, ready_flag=ready_flag,
                                                tune=tune, on_signal=halt.set))
        lost = False
        while not operator.done():
            if not halt.is_set() and not elector.is_leader():
                lost = True
                log.error("stopping: this replica no longer holds %s", elector.where)
                if on_lost is not None:
                    on_lost()
                halt.set()
            if halt.is_set():
                stop_kopf.set()
            await asyncio.wait({operator}, timeout=WATCHDOG_S)
        halt.set()
        idle.set()  # kopf has stopped: the Lease may go
        outcome = await election
        operator.result()  # kopf's own failure, if any, after the Lease is released
        return 1 if lost or outcome == LOST else 0


def elected_app(api_client: kubernetes.client.ApiClient, election: ElectionConfig,
                **app_options: Any) -> tuple[OperatorApp, LeaderElector]:
    """An operator whose writes are fenced by a leader elector, and the elector (which drives the
    rzero_operator_leader gauge). The elector has its own connection pool and a request timeout within
    the renew deadline: a hung renewal never waits on reconciles, and fails while there is time to retry."""
    metrics = app_options.pop("metrics", None) or OperatorMetrics()
    lease_api = KubeApi(kubernetes.client.ApiClient(configuration=api_client.configuration),
                        timeout_s=max(1.0, election.renew_deadline_s - election.retry_period_s))
    elector = LeaderElector(lease_api, election, on_change=lambda leading: metrics.leader.set(int(leading)))
    app = OperatorApp(KubeApi(api_client, fence=elector.is_leader), metrics=metrics, **app_options)
    return app, elector


def run_operator(namespaces: list[str] | None, metrics_port: int | None, election: ElectionConfig | None = None) -> int:
    """Run the operator until SIGINT/SIGTERM. namespaces: None or [] = cluster-wide. metrics_port: None =
    no metrics endpoint. election: act only while holding this Lease (several replicas); None = always act
    (one replica). Returns the exit code: 1 when the Lease was lost."""
    configure_logging()
    api_client = load_api_client()
    if election is None:
        app = OperatorApp(KubeApi(api_client))
        app.metrics.leader.set(1)
    else:
        app, elector = elected_app(api_client, election)
    if metrics_port:
        app.metrics.serve(metrics_port)
    if election is None:
        asyncio.run(app.run(namespaces=namespaces))
        return 0
    log.info("standby: waiting to hold %s as %s", elector.where, election.identity)
    return asyncio.run(app.run_elected(elector, namespaces=namespaces, on_lost=exit_at_once))


def exit_at_once() -> None:
    """Leave now, exit code 1 (its pod restarts as a standby): no shutdown during which kopf might write."""
    logging.shutdown()
    os._exit(1)
