"""Entry point of `rzero operator`: kopf settings, structured logs, metrics endpoint, and the run loop.

    run_operator(namespaces=None, metrics_port=9090, peering=None, standalone=None)

`OperatorApp` is the same operator as an object, for embedding (tests, bench): construct it with a
`KubeApi`, then `await app.run(stop_flag=..., ready_flag=...)`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import kopf

from .client import KubeApi, load_api_client
from .handlers import Handlers, Schedule
from .metrics import OperatorMetrics
from .reconcile import Reconciler

PREFIX = "rzero.dev"
TICK_ENV = "RZERO_OPERATOR_TICK_SECONDS"
RESYNC_ENV = "RZERO_OPERATOR_RESYNC_SECONDS"


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


def build_settings(*, peering: str | None, standalone: bool, clusterwide: bool) -> kopf.OperatorSettings:
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
    settings.peering.standalone = standalone
    settings.peering.clusterwide = clusterwide
    if peering:
        settings.peering.name = peering
        settings.peering.mandatory = True
    return settings


class OperatorApp:
    """One operator: reconciler, handlers, kopf registry and settings."""

    def __init__(
        self, api: KubeApi, *, tick_s: float | None = None, resync_s: float | None = None, workers: int = 16,
        metrics: OperatorMetrics | None = None, reconciler: Reconciler | None = None,
    ):
        tick = tick_s if tick_s is not None else float(os.environ.get(TICK_ENV, "1"))
        resync = resync_s if resync_s is not None else float(os.environ.get(RESYNC_ENV, "60"))
        self.metrics = metrics or OperatorMetrics()
        self.reconciler = reconciler or Reconciler(api=api, metrics=self.metrics)
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rzero-reconcile")
        self.handlers = Handlers(self.reconciler, Schedule(resync_s=resync), self.executor, tick_s=tick)
        self.registry = kopf.OperatorRegistry()
        self.handlers.register(self.registry)

    async def run(
        self, *, namespaces: list[str] | None = None, peering: str | None = None, standalone: bool = True,
        stop_flag: Any = None, ready_flag: Any = None, tune: Callable[[kopf.OperatorSettings], None] | None = None,
    ) -> None:
        """Run kopf and the requeue loop until stop_flag (or a signal, in the main thread).
        tune: adjusts the kopf settings (tests shorten timeouts meant for real clusters)."""
        clusterwide = not namespaces
        settings = build_settings(peering=peering, standalone=standalone, clusterwide=clusterwide)
        if tune is not None:
            tune(settings)
        requeue = asyncio.create_task(self.handlers.requeue_loop(), name="rzero-requeue")
        try:
            await kopf.operator(
                registry=self.registry, settings=settings, standalone=standalone, clusterwide=clusterwide,
                namespaces=namespaces or (), peering_name=peering, stop_flag=stop_flag, ready_flag=ready_flag,
            )
        finally:
            requeue.cancel()
            await asyncio.gather(requeue, return_exceptions=True)
            self.executor.shutdown(wait=True, cancel_futures=True)


def run_operator(
    namespaces: list[str] | None, metrics_port: int | None, peering: str | None = None, standalone: bool | None = None,
) -> None:
    """Run the operator until SIGINT/SIGTERM. namespaces: None or [] = cluster-wide. metrics_port: None =
    no metrics endpoint. peering: a KopfPeering name for several replicas (needs kopf's peering CRD).
    standalone: skip peering altogether (one replica); default: standalone unless `peering` is given."""
    if standalone is None:
        standalone = peering is None
    configure_logging()
    api = KubeApi(load_api_client())
    app = OperatorApp(api)
    if metrics_port:
        app.metrics.serve(metrics_port)
    asyncio.run(app.run(namespaces=namespaces, peering=peering, standalone=standalone))
