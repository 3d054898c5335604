"""A short real-operator scenario in the kmock emulator, with the operator's own requests told apart.

The operator authenticates with its own token (as its ServiceAccount would), the test's Job driver with
another, so `operator_requests()` is exactly what the operator asked of the API server: the input of the
RBAC coverage check (test_chart_rbac.py) and of the secret-leak check (tests/test_security.py). The operator
runs with leader election, as the chart starts it (the Lease the chart names, in the release namespace).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.kube import Emulator, JobDriver, OperatorThread, PLAUSIBLE_METRICS, tiny_spec
from rzero_operator.kube.client import KubeApi, load_api_client
from rzero_operator.kube.leader import ElectionConfig

# What the chart's Deployment passes for release "rzero" in "rzero-system" (helm_render.RELEASE).
CHART_ELECTION = dict(namespace="rzero-system", name="rzero-rzero-operator", identity="rzero-operator-pod-1")

OPERATOR_TOKEN = "rzero-operator-serviceaccount-token"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    body: Any


def operator_requests(emulator: Emulator) -> list[Seen]:
    """Every request the emulator received with the operator's token."""
    return [
        Seen(r.method.upper(), r.path, r.query, r.data)
        for r in emulator.requests()
        if r.authorization == f"Bearer {OPERATOR_TOKEN}"
    ]


def operator_api(emulator: Emulator, workdir: Path) -> KubeApi:
    config = json.loads(emulator.kubeconfig.read_text())
    config["users"] = [{"name": "test", "user": {"token": OPERATOR_TOKEN}}]
    path = workdir / "operator-kubeconfig.json"
    path.write_text(json.dumps(config))
    return KubeApi(load_api_client(str(path)))


def run_scenario(emulator: Emulator, driver: JobDriver, workdir: Path, spec_overrides: dict | None = None) -> None:
    """Create a run, let one phase succeed and the next fail once (retried), then delete the run."""
    election = ElectionConfig(**CHART_ELECTION, lease_duration_s=2.0, renew_deadline_s=1.5, retry_period_s=0.2)
    operator = OperatorThread(operator_api(emulator, workdir), driver.namespace, election=election).start()
    try:
        driver.summary_metrics = lambda task: PLAUSIBLE_METRICS[task["phase"]]
        driver.create_run("demo", tiny_spec(workdir, **(spec_overrides or {})))
        driver.succeed(driver.wait_for_job("demo-i000-evaluate-a1"))
        driver.fail(driver.wait_for_job("demo-i001-challenger-a1"), exit_code=1)
        driver.wait_for_job("demo-i001-challenger-a2")
        driver.delete_run("demo")
    finally:
        operator.stop()
