"""Leader-election takeover on a real control plane, with the DEFAULT durations (lease 10 s, renew deadline
7 s, retry 2 s: what the chart runs).

    .venv/bin/python bench/leader_takeover.py [--kills 3] [--terms 3]

Real kube-apiserver, etcd and kube-controller-manager (tests/support/control_plane.py; from ../shared/k8s
or KUBEBUILDER_ASSETS), `rzero operator --leader-elect` processes (the real CLI), pods finished by the test
kubelet stand-in. One run goes through its phases; at each measured transition the leader is stopped while
a phase's Job runs, that Job then finishes, and the time until the next Job exists is measured:
- SIGKILL (a node failure, an OOM kill): the standby waits out the Lease;
- SIGTERM (a rolling update, a drain): the leader stops kopf, releases the Lease, the standby takes it at
  its next retry.
After each, a fresh replica joins as the new standby (what a restarted pod does). The last line is one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.control_plane import ControlPlane, find_assets  # noqa: E402
from support.kube import PLAUSIBLE_METRICS, tiny_spec, wait_for  # noqa: E402
from support.kubelet import Kubelet, succeed_jobs  # noqa: E402
from support.operator_process import OperatorProcess  # noqa: E402
from support.tools import extract  # noqa: E402

LEASE_NAMESPACE, LEASE_NAME, RUN = "rzero-system", "rzero-operator", "bench"


class Bench:
    def __init__(self, plane: ControlPlane, namespace: str, workdir: Path):
        self.plane, self.namespace, self.workdir = plane, namespace, workdir
        self.api = plane.kube_api()
        self.replicas: dict[str, OperatorProcess] = {}
        self.allowed: set[str] = set()
        self.kubelet = Kubelet(self.api, namespace, succeed_jobs(self.allowed, PLAUSIBLE_METRICS)).start()
        self._count = 0

    def start_replica(self) -> str:
        self._count += 1
        identity = f"op-{self._count}"
        flags = ["--namespace", self.namespace, "--leader-elect", "--leader-election-namespace", LEASE_NAMESPACE]
        self.replicas[identity] = OperatorProcess(self.plane.kubeconfig, flags, self.workdir,
                                                  env={"POD_NAME": identity}).start()
        return identity

    def holder(self) -> str | None:
        try:
            return self.api.get_lease(LEASE_NAMESPACE, LEASE_NAME)["spec"].get("holderIdentity")
        except Exception:  # noqa: BLE001 - not created yet
            return None

    def jobs(self) -> list[str]:
        return sorted(j["metadata"]["name"] for j in self.api.list_jobs(self.namespace, {"rzero.dev/run": RUN}))

    def running_job(self) -> str:
        """The run's newest Job (the one whose pod the kubelet holds back)."""
        return wait_for(lambda: (current := (self.api.get_run(self.namespace, RUN).get("status") or {})
                                 .get("current", {}).get("name")) in self.jobs() and current,
                        60, "a running Job")

    def standby_ready(self, identity: str, leader: str) -> None:
        self.replicas[identity].wait_for_log(f"is held by {leader}", 60)

    def transition(self, sig: int) -> float:
        """Stop the leader with `sig` while a Job runs, let that Job finish, time until the next Job exists."""
        leader = self.holder()
        job = self.running_job()
        before = set(self.jobs())
        self.replicas[leader].signal(sig)
        stopped = time.monotonic()
        self.allowed.add(job)
        wait_for(lambda: set(self.jobs()) - before, 60, "the next Job", interval=0.02)
        took = time.monotonic() - stopped
        self.replicas[leader].wait(30)
        new_leader = self.holder()
        assert new_leader not in (None, "", leader), new_leader
        self.standby_ready(self.start_replica(), new_leader)
        return took

    def stop(self) -> None:
        self.kubelet.stop()
        for process in self.replicas.values():
            if process.alive:
                process.terminate(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=3, help="SIGKILL takeovers to measure")
    parser.add_argument("--terms", type=int, default=3, help="SIGTERM handovers to measure")
    args = parser.parse_args()
    assets = find_assets()
    if assets is None:
        sys.exit("no control-plane binaries: see tests/support/control_plane.py (KUBEBUILDER_ASSETS)")
    with tempfile.TemporaryDirectory(prefix="rzero-lt-") as tmp:
        plane = ControlPlane(assets=assets, workdir=Path(tmp), kubectl_binary=extract("kubectl133"))
        try:
            plane.start()
            plane.apply_crd(REPO / "crds" / "rzeroruns.rzero.dev.yaml")
            plane.kube_api().request("POST", "/api/v1/namespaces", body={
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}})
            namespace = plane.new_namespace("bench")
            bench = Bench(plane, namespace, Path(tmp))
            try:
                first, second = bench.start_replica(), bench.start_replica()
                wait_for(lambda: bench.holder() in (first, second), 60, "a leader")
                bench.standby_ready(second if bench.holder() == first else first, bench.holder())
                iterations = (args.kills + args.terms + 4) // 5 + 1
                run = {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": RUN},
                       "spec": tiny_spec(Path(tmp), iterations=iterations)}
                plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(run))
                kills = []
                for _ in range(args.kills):
                    kills.append(bench.transition(signal.SIGKILL))
                    print(f"SIGKILL -> next Job: {kills[-1]:.2f} s", flush=True)
                terms = []
                for _ in range(args.terms):
                    terms.append(bench.transition(signal.SIGTERM))
                    print(f"SIGTERM -> next Job: {terms[-1]:.2f} s", flush=True)
            finally:
                bench.stop()
        finally:
            plane.stop()
    print(json.dumps({
        "lease_duration_s": 10, "renew_deadline_s": 7, "retry_period_s": 2,
        "sigkill_takeover_s": [round(t, 2) for t in kills],
        "sigkill_takeover_median_s": round(statistics.median(kills), 2), "sigkill_takeover_max_s": round(max(kills), 2),
        "sigterm_handover_s": [round(t, 2) for t in terms],
        "sigterm_handover_median_s": round(statistics.median(terms), 2), "sigterm_handover_max_s": round(max(terms), 2),
        "note": "time from the signal to the next Job of the run existing (the phase's Job finished just after "
                "the signal); real kube-apiserver v1.36.2 on loopback, 2 shared CPU cores",
    }))


if __name__ == "__main__":
    main()
