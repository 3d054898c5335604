"""Two `rzero operator --leader-elect` processes (the real CLI, as the chart's ServiceAccount, each with a
token of its own) against a real API server: they race for the Lease and exactly one wins (the server's
resourceVersion checks decide, which kmock cannot show); SIGKILL the active one mid-run and the standby
carries the run on within leaseDuration + 2 x retryPeriod + startup; SIGSTOP a leader until a standby has
taken over, SIGCONT it, and it writes nothing more and exits 1. The audit log proves the last two: every
successful write of the whole run, ordered by the time the server received it, comes from one replica's
token after another, never interleaved."""

from __future__ import annotations

import base64
import json
import shutil
import signal
import time
from datetime import datetime

import pytest

from support.control_plane import install_chart
from support.kube import PLAUSIBLE_METRICS, tiny_spec, wait_for
from support.kubelet import Kubelet, succeed_jobs
from support.operator_process import OperatorProcess

pytestmark = pytest.mark.timeout(300)

LEASE, RENEW, RETRY = 3.0, 2.0, 0.5
# Takeover: the standby waits out the lease (at most LEASE after the last renewal it saw, seen within one
# jittered retry), polls once more, then starts kopf and reconciles; STARTUP bounds the last part here.
STARTUP = 3.0
TAKEOVER_BOUND = LEASE + 2 * RETRY + STARTUP
WRITES = ("create", "update", "patch", "delete")
CREDENTIAL = "authentication.kubernetes.io/credential-id"


class Replicas:
    """Operator processes with a token each (so the audit log tells them apart) and their Lease."""

    def __init__(self, control_plane, chart, watched: str, workdir):
        self.control_plane, self.chart, self.watched, self.workdir = control_plane, chart, watched, workdir
        self.processes: dict[str, OperatorProcess] = {}
        self.credentials: dict[str, str] = {}  # audit credential id -> identity

    def start(self, identity: str) -> OperatorProcess:
        token_config = self.workdir / f"{identity}.kubeconfig"
        shutil.copy(self.control_plane.service_account_kubeconfig(self.chart.namespace, f"{self.chart.release}-rzero-operator",
                                                                  create=False), token_config)
        flags = ["--namespace", self.watched, "--leader-elect", "--leader-election-namespace", self.chart.namespace,
                 "--leader-election-id", f"{self.chart.release}-rzero-operator",
                 "--leader-election-lease-duration", str(LEASE), "--leader-election-renew-deadline", str(RENEW),
                 "--leader-election-retry-period", str(RETRY)]
        process = OperatorProcess(token_config, flags, self.workdir, env={"POD_NAME": identity}).start()
        self.processes[identity] = process
        self.credentials[f"JTI={token_id(token_config)}"] = identity
        return process

    def holder(self) -> str | None:
        try:
            lease = self.control_plane.kube_api().get_lease(self.chart.namespace, f"{self.chart.release}-rzero-operator")
        except Exception:  # noqa: BLE001 - not created yet
            return None
        return lease["spec"].get("holderIdentity")

    def leaders(self) -> list[str]:
        return [name for name, p in self.processes.items() if "became leader" in p.output()]

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.alive:
                process.signal(signal.SIGCONT)
                process.terminate(20)

    def writes(self) -> list[tuple[float, str, str, str, int]]:
        """(received, identity, verb, uri, code) of every write the operators' tokens sent, refused ones too,
        in the order the server received them."""
        time.sleep(1.5)  # the audit log is written in batches of at most one second
        found = []
        for event in self.control_plane.audit_events(user=self.chart.username):
            if event["verb"] not in WRITES:
                continue
            credential = (event["user"].get("extra") or {}).get(CREDENTIAL, [""])[0]
            received = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
            found.append((received, self.credentials.get(credential, credential), event["verb"], event["requestURI"],
                          event.get("responseStatus", {}).get("code", 0)))
        return sorted(found)


def token_id(kubeconfig) -> str:
    """The `jti` of a bound ServiceAccount token: the audit log's credential id for it."""
    token = json.loads(kubeconfig.read_text())["users"][0]["user"]["token"]
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


def jobs(control_plane, namespace: str) -> dict[str, dict]:
    made = control_plane.kube_api().list_jobs(namespace, {"app.kubernetes.io/managed-by": "rzero-operator"})
    return {job["metadata"]["name"]: job for job in made}


def wait_for_job(control_plane, namespace: str, name: str, timeout: float, replicas: Replicas) -> float:
    """Wait until Job `name` exists; the monotonic time it was first seen (polled every 20 ms)."""
    logs = lambda: "\n".join(f"--- {n}:\n{p.output()[-1500:]}" for n, p in replicas.processes.items())  # noqa: E731
    wait_for(lambda: name in jobs(control_plane, namespace), timeout, f"Job {name}\n{logs()}", interval=0.02)
    return time.monotonic()


def test_two_replicas_one_acts_a_standby_takes_over_within_seconds_and_never_two_at_once(
        control_plane, real_namespace, kube_tools, tmp_path, capsys):
    if not control_plane.has_controller_manager:
        pytest.skip("needs kube-controller-manager (the Job controller)")
    chart = install_chart(control_plane, kube_tools.get("helm4"), [real_namespace])
    replicas = Replicas(control_plane, chart, real_namespace, tmp_path)
    allowed: set[str] = set()  # the Jobs whose pods may finish
    kubelet = Kubelet(control_plane.kube_api(), real_namespace, succeed_jobs(allowed, PLAUSIBLE_METRICS)).start()
    try:
        # Both start at once and race for the (absent) Lease: the server lets exactly one win.
        replicas.start("op-a"), replicas.start("op-b")
        wait_for(lambda: replicas.holder() in ("op-a", "op-b"), 60, "a Lease holder")
        first = replicas.holder()
        standby = "op-b" if first == "op-a" else "op-a"
        replicas.processes[standby].wait_for_log(f"is held by {first}", 30)
        time.sleep(2 * LEASE)  # renewals go on; the standby keeps waiting
        assert replicas.holder() == first and replicas.leaders() == [first]

        run = {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "ha"},
               "spec": tiny_spec(tmp_path, iterations=1)}
        control_plane.kubectl("apply", "-n", real_namespace, "-f", "-", input=json.dumps(run))
        allowed.add("ha-i000-evaluate-a1")
        wait_for_job(control_plane, real_namespace, "ha-i001-challenger-a1", 60, replicas)

        # 1. SIGKILL the leader mid-phase; the phase then finishes: only the standby can start the next one.
        replicas.processes[first].signal(signal.SIGKILL)
        killed = time.monotonic()
        allowed.add("ha-i001-challenger-a1")
        took_over = wait_for_job(control_plane, real_namespace, "ha-i001-generate-a1", 30, replicas) - killed
        assert replicas.holder() == standby
        assert took_over <= TAKEOVER_BOUND, took_over
        assert took_over >= LEASE - RETRY * 1.2 - 0.2, took_over  # it waited for the lease, not less

        # 2. A restarted pod joins as standby; SIGSTOP the leader until that standby has taken over.
        third = "op-c"
        replicas.start(third).wait_for_log(f"is held by {standby}", 30)
        replicas.processes[standby].signal(signal.SIGSTOP)
        stopped = time.monotonic()
        allowed.add("ha-i001-generate-a1")  # the frozen leader's watch queues this; it must not act on it
        paused_takeover = wait_for_job(control_plane, real_namespace, "ha-i001-label-a1", 30, replicas) - stopped
        assert replicas.holder() == third and paused_takeover <= TAKEOVER_BOUND, paused_takeover
        allowed.add("ha-i001-label-a1")
        wait_for_job(control_plane, real_namespace, "ha-i001-solver-a1", 30, replicas)
        # It wakes up to a queue of Job events and a phase that just finished: work to do, were it leader.
        resumed = time.time()
        allowed.add("ha-i001-solver-a1")
        replicas.processes[standby].signal(signal.SIGCONT)
        woken_exit = replicas.processes[standby].wait(10)  # 10 s to act, if it would (then SIGKILL)
        allowed.add("ha-i001-evaluate-a1")
        wait_for(lambda: control_plane.kube_api().get_run(real_namespace, "ha").get("status", {}).get("phase")
                 == "Succeeded", 60, "the run to succeed")
        assert sorted(jobs(control_plane, real_namespace)) == sorted(
            ["ha-i000-evaluate-a1"] + [f"ha-i001-{p}-a1" for p in ("challenger", "generate", "label", "solver",
                                                                     "evaluate")])

        writes = replicas.writes()
        late = [(verb, uri, code) for at, identity, verb, uri, code in writes if identity == standby and at >= resumed]
        assert late == []  # the frozen leader sent no write at all once it woke up, not even a refused one
        # Every successful write in the order the server received it: one replica's, then the next one's.
        writers = [identity for _, identity, _, _, code in writes if code < 400]
        order = [w for i, w in enumerate(writers) if i == 0 or writers[i - 1] != w]
        assert order == [first, standby, third], order
        assert woken_exit == 1 and "no longer holds" in replicas.processes[standby].output()  # and it left
        print(f"\ntakeover after SIGKILL: {took_over:.2f} s; after SIGSTOP: {paused_takeover:.2f} s "
              f"(lease {LEASE:g} s, renew deadline {RENEW:g} s, retry {RETRY:g} s; bound {TAKEOVER_BOUND:g} s)")
    finally:
        kubelet.stop()
        replicas.stop_all()
