"""Leader election (kube/leader.py): one replica acts, a standby takes over when the leader stops renewing
(after about leaseDuration) or releases (within about one retry period), and a replica that no longer holds
the Lease writes nothing. The emulator checks resourceVersion on Lease writes (support/kube.py), but two
candidates racing for a free Lease are shown on a real API server (tests/operator/kube/server/)."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from rzero_operator.kube.client import KubeApi, NotLeader, load_api_client
from rzero_operator.kube.leader import (
    LOST, STOPPED, ElectionConfig, LeaderElector, LeaseRecord, config_errors, default_identity, holds_lease,
    may_acquire, next_record, own_namespace, released_record,
)
from rzero_operator.kube.metrics import OperatorMetrics
from rzero_operator.kube.reconcile import Reconciler
from support.kube import tiny_spec, wait_for
from support.operator_process import OperatorProcess

FAST = dict(namespace="rzero-system", name="rzero-operator", lease_duration_s=1.0, renew_deadline_s=0.6,
            retry_period_s=0.15)


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------------ pure decisions


def test_a_leader_leads_only_until_the_renew_deadline_after_its_last_renewal_began():
    assert holds_lease(100.0, 100.0, 7.0) and holds_lease(100.0, 106.99, 7.0)
    assert not holds_lease(100.0, 107.0, 7.0)
    assert not holds_lease(None, 100.0, 7.0)  # never renewed, or released
    assert not holds_lease(100.0, 99.0, 7.0)  # a clock that went backwards proves nothing


def test_a_standby_may_take_the_lease_only_when_free_or_unchanged_for_a_whole_lease_duration():
    held = LeaseRecord(holder="a", lease_duration_s=10)
    assert may_acquire(None, 0.0, 0.0, "b")  # no Lease yet
    assert may_acquire(LeaseRecord(holder="", lease_duration_s=1), 50.0, 50.0, "b")  # released
    assert may_acquire(held, 50.0, 50.0, "a")  # ours: a renewal
    assert not may_acquire(held, 50.0, 59.99, "b")
    assert may_acquire(held, 50.0, 60.0, "b")  # by the record's duration, counted on the standby's clock


def test_records_keep_the_acquire_time_on_renewal_and_count_transitions():
    first = next_record(None, "a", 10, "t1")
    assert (first.holder, first.acquire_time, first.renew_time, first.transitions) == ("a", "t1", "t1", 0)
    renewed = next_record(first, "a", 10, "t2")
    assert (renewed.acquire_time, renewed.renew_time, renewed.transitions) == ("t1", "t2", 0)
    taken = next_record(renewed, "b", 10, "t3")
    assert (taken.holder, taken.acquire_time, taken.transitions) == ("b", "t3", 1)
    assert released_record(taken, "t4").holder == "" and released_record(taken, "t4").transitions == 1
    lease = {"spec": taken.spec()}
    assert LeaseRecord.from_lease(lease, 99) == taken


def test_durations_follow_client_go_rules():
    assert config_errors(10, 7, 2) == []
    assert any("lease-duration" in e for e in config_errors(7, 7, 2))
    assert any("renew-deadline" in e for e in config_errors(10, 2.4, 2))
    with pytest.raises(ValueError, match="retry-period"):
        ElectionConfig(namespace="ns", lease_duration_s=3, renew_deadline_s=2, retry_period_s=0)
    assert ElectionConfig(namespace="ns", identity="x", lease_duration_s=2.5, renew_deadline_s=2,
                          retry_period_s=0.5).lease_seconds == 3  # the Lease holds whole seconds: rounded up


def test_identity_is_the_pod_name_else_unique_per_process(tmp_path):
    assert default_identity({"POD_NAME": "rzero-operator-abc"}) == "rzero-operator-abc"
    assert default_identity({"POD_ID": "rzero-operator-def"}) == "rzero-operator-def"
    assert default_identity({}) != default_identity({})
    assert own_namespace({"RZERO_OPERATOR_NAMESPACE": "ops"}) == "ops"
    (tmp_path / "namespace").write_text("rzero-system\n")
    assert own_namespace({}, str(tmp_path / "namespace")) == "rzero-system"
    assert own_namespace({}, str(tmp_path / "missing")) is None


# ------------------------------------------------------------------------------- against the emulator


def elector(kube_emulator, identity: str, clock=time.monotonic, **overrides) -> LeaderElector:
    api = KubeApi(load_api_client(str(kube_emulator.kubeconfig)), timeout_s=2.0)
    return LeaderElector(api, ElectionConfig(identity=identity, **{**FAST, **overrides}), clock=clock)


class Candidate:
    """An elector running in its own thread, as `rzero operator --leader-elect` runs it."""

    def __init__(self, elector: LeaderElector, on_leading=lambda: None):
        self.elector = elector
        self.stop = threading.Event()
        self.outcome: str | None = None
        self.led_at: float | None = None

        def leading() -> None:
            self.led_at = time.monotonic()
            on_leading()

        self.thread = threading.Thread(target=lambda: setattr(self, "outcome", elector.run(self.stop, leading)),
                                       daemon=True)
        self.thread.start()

    def halt(self) -> str | None:
        self.stop.set()
        self.thread.join(10)
        return self.outcome


def test_of_two_candidates_exactly_one_leads(kube_emulator):
    a, b = Candidate(elector(kube_emulator, "a")), Candidate(elector(kube_emulator, "b"))
    try:
        wait_for(lambda: a.led_at or b.led_at, 5, "a leader")
        deadline = time.monotonic() + 2.0  # more than a lease duration of renewals
        while time.monotonic() < deadline:
            assert [a.elector.is_leader(), b.elector.is_leader()].count(True) == 1
            time.sleep(0.02)
        leader = a if a.led_at else b
        lease = leader.elector.api.get_lease("rzero-system", "rzero-operator")
        assert lease["spec"]["holderIdentity"] == leader.elector.config.identity
        assert (a.led_at is None) != (b.led_at is None)
    finally:
        assert {a.halt(), b.halt()} == {STOPPED}


def test_when_the_leader_stops_renewing_the_standby_leads_after_a_lease_duration_never_before(kube_emulator):
    stale = elector(kube_emulator, "a")
    assert stale.try_acquire_or_renew()  # leads once, then never renews (a crashed or frozen process)
    overlap = []
    b = Candidate(elector(kube_emulator, "b"), on_leading=lambda: overlap.append(stale.is_leader()))
    try:
        wait_for(lambda: b.led_at, 5, "the standby to lead")
        waited = b.led_at - stale._renewed_at
        assert FAST["lease_duration_s"] <= waited <= FAST["lease_duration_s"] + 3 * FAST["retry_period_s"] + 0.5
        assert overlap == [False]  # the old leader's own deadline had passed before the standby started
        assert not stale.try_acquire_or_renew() and not stale.is_leader()  # and it cannot take it back
    finally:
        assert b.halt() == STOPPED


def test_a_stopping_leader_releases_and_the_standby_takes_over_within_about_one_retry_period(kube_emulator):
    a = Candidate(elector(kube_emulator, "a"))
    wait_for(lambda: a.led_at, 5, "a to lead")
    b = Candidate(elector(kube_emulator, "b"))
    time.sleep(0.5)
    assert b.led_at is None
    released = time.monotonic()
    assert a.halt() == STOPPED and not a.elector.is_leader()
    try:
        wait_for(lambda: b.led_at, 5, "b to lead")
        assert b.led_at - released <= FAST["retry_period_s"] * 1.2 + 0.45 < FAST["lease_duration_s"]
        lease = b.elector.api.get_lease("rzero-system", "rzero-operator")["spec"]
        assert lease["holderIdentity"] == "b" and lease["leaseTransitions"] == 1
    finally:
        assert b.halt() == STOPPED


def test_a_leader_that_cannot_renew_stops_at_its_renew_deadline_and_reports_lost(kube_emulator):
    a = Candidate(elector(kube_emulator, "a"))
    wait_for(lambda: a.led_at, 5, "a to lead")
    kube_emulator.admit(lambda r: (503, "ServiceUnavailable", "etcd is down")
                        if r.url.path.endswith("/leases/rzero-operator") else None)
    a.thread.join(FAST["renew_deadline_s"] + 2 * FAST["retry_period_s"] + 1)
    assert a.outcome == LOST and not a.elector.is_leader()


def test_a_replica_past_its_renew_deadline_creates_no_job_and_writes_nothing(kube_emulator, job_driver, tmp_path):
    clock = FakeClock()
    lease = elector(kube_emulator, "a", clock=clock)
    assert lease.try_acquire_or_renew()
    fenced = KubeApi(load_api_client(str(kube_emulator.kubeconfig)), fence=lease.is_leader)
    reconciler = Reconciler(api=fenced, metrics=OperatorMetrics(), read_storage_summaries=False)
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    before = len(kube_emulator.requests())

    clock.now += FAST["renew_deadline_s"]  # e.g. resumed after SIGSTOP: its deadline passed while stopped
    with pytest.raises(NotLeader):
        reconciler.reconcile(job_driver.namespace, "demo")
    writes = [r for r in kube_emulator.requests()[before:] if r.method != "GET"]
    assert writes == [] and job_driver.jobs() == [] and job_driver.status("demo") == {}
    assert kube_emulator.events() == []

    assert lease.try_acquire_or_renew()  # the same reconciler, leading again, does act
    assert reconciler.reconcile(job_driver.namespace, "demo").created == ["demo-i000-evaluate-a1"]


# ------------------------------------------------------------------------------ whole operators


def test_two_operators_one_acts_and_the_standby_carries_the_run_on_when_the_leader_stops(operators, job_driver,
                                                                                        tmp_path):
    election = dict(FAST, lease_duration_s=1.5, renew_deadline_s=1.0, retry_period_s=0.2)
    first = operators.start(election=ElectionConfig(identity="first", **election))
    second = operators.start(wait_ready=False, election=ElectionConfig(identity="second", **election))
    time.sleep(0.5)
    assert first.elector.is_leader() and not second.ready and not second.elector.is_leader()
    assert (leader_gauge(first), leader_gauge(second)) == (1, 0)
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1))
    job_driver.succeed(job_driver.wait_for_job("demo-i000-evaluate-a1"))
    job = job_driver.wait_for_job("demo-i001-challenger-a1")

    stopped = time.monotonic()
    operators.stop(first)  # SIGTERM-like: releases the Lease
    assert first.exit_code == 0
    job_driver.succeed(job)
    job_driver.wait_for_job("demo-i001-generate-a1", timeout=10)
    took_over = time.monotonic() - stopped
    assert second.ready and second.elector.is_leader()
    assert took_over < 5.0, took_over
    assert sorted(job_driver.job_names()) == ["demo-i000-evaluate-a1", "demo-i001-challenger-a1",
                                              "demo-i001-generate-a1"]


def test_an_operator_that_loses_the_lease_stops_and_exits_non_zero(operators, kube_emulator):
    election = ElectionConfig(identity="first", **FAST)
    first = operators.start(election=election)
    assert leader_gauge(first) == 1
    kube_emulator.admit(lambda r: (503, "ServiceUnavailable", "etcd is down")
                        if r.url.path.endswith("/leases/rzero-operator") and r.method.value == "PUT" else None)
    assert first.join(FAST["renew_deadline_s"] + 10), "the operator should stop by itself"
    assert first.exit_code == 1 and first.error is None
    assert leader_gauge(first) == 0


def leader_gauge(operator) -> float:
    return operator.app.metrics.registry.get_sample_value("rzero_operator_leader")


# ------------------------------------------------------------------------------ the real CLI


def lease_holder(api: KubeApi) -> str | None:
    try:
        return api.get_lease("rzero-system", "rzero-operator")["spec"].get("holderIdentity")
    except Exception:  # noqa: BLE001 - not created yet
        return None


def test_rzero_operator_processes_wait_lead_and_hand_over_on_sigterm(kube_emulator, kube_api, tmp_path):
    flags = ["-A", "--leader-elect", "--leader-election-namespace", "rzero-system", "--leader-election-lease-duration",
             "3", "--leader-election-renew-deadline", "2", "--leader-election-retry-period", "0.3"]

    def operator(identity: str) -> OperatorProcess:
        return OperatorProcess(kube_emulator.kubeconfig, flags, tmp_path, env={"POD_NAME": identity}).start()

    first = operator("op-1")
    processes = [first]
    try:
        wait_for(lambda: lease_holder(kube_api) == "op-1", 30, "op-1 to lead")
        second, third = operator("op-2"), operator("op-3")
        processes += [second, third]
        third.wait_for_log("lease rzero-system/rzero-operator is held by op-1", 30)
        assert third.terminate(10) == 0  # a standby stops at once
        assert lease_holder(kube_api) == "op-1"

        second.wait_for_log("is held by op-1", 30)
        first.signal(signal.SIGTERM)
        released = time.monotonic()
        wait_for(lambda: lease_holder(kube_api) == "op-2", 10, "op-2 to take over", interval=0.02)
        handover = time.monotonic() - released
        assert first.wait(15) == 0
        assert "released lease rzero-system/rzero-operator" in first.output()
        assert handover < 1.5, handover  # about one retry period (0.3 s) and kopf's stop, not the lease (3 s)

        assert second.terminate(15) == 0
        assert lease_holder(kube_api) == ""  # released: the next replica would not wait
    finally:
        for process in processes:
            process.kill()
