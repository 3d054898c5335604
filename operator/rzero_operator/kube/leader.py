"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go and controller-runtime do it.

Several operator replicas run; one holds the Lease and acts, the others wait as standbys. The rules:

- A standby takes the Lease when it is free (absent, no holder, or released) or when its record has not
  changed for a whole leaseDuration *as seen by the standby's own monotonic clock*, counted from when
  the standby last saw the record change (`may_acquire`). Nobody compares the record's renewTime with
  a local wall clock: machines' clocks differ, a monotonic clock does not jump.
- The leader counts itself leader only until renewDeadline after the *start* of its last successful
  renewal, by its own monotonic clock (`holds_lease`, a pure function: that is the fence). An observer's
  count starts only after the renewal landed and renewDeadline < leaseDuration, so the leader stops
  before any standby may start (clock rates may differ by up to (leaseDuration - renewDeadline) /
  leaseDuration). The reconciler asks `is_leader()` before every write (KubeApi's `fence`), so a leader
  that was paused (SIGSTOP, a long GC, a partition) and wakes up after a takeover writes nothing.
- Every write carries the Lease's resourceVersion: of two standbys acquiring at once the API server
  lets one win and answers 409 to the other.
- A leader that cannot renew within renewDeadline has lost: `run` returns LOST (the process exits
  non-zero and its pod restarts as a standby). A stopping leader releases the Lease (holderIdentity "",
  as client-go's ReleaseOnCancel does), so a standby takes over at its next retry, not a leaseDuration later.

Why not `kubernetes.leaderelection` (kubernetes 37.0.1)? Its installed source has no release (a stopping
leader leaves the Lease to expire: a rolling update would wait a whole leaseDuration), measures the renew
deadline with time.time() (a wall-clock step extends or cuts it), gives the leader's own code no way to ask
whether it still holds the Lease (no fencing), makes its API calls without a timeout through the global
default client (a hung request blocks the renew loop beyond the Lease), and calls sys.exit() on durations it
dislikes, refusing retry periods under one second.
"""

from __future__ import annotations

import logging
import math
import os
import random
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable

from .client import KubeApi, KubeError

log = logging.getLogger(__name__)

JITTER = 0.2  # a standby waits retryPeriod x [1, 1.2): standbys do not poll in lockstep
LEADING, STOPPED, LOST = "leading", "stopped", "lost"


def default_identity(env: dict[str, str] | None = None) -> str:
    """The pod's name (POD_NAME, as the chart sets it, or POD_ID), else hostname-pid-random. A restarted
    container of the same pod takes its own Lease back at once: the process that held it is gone."""
    env = os.environ if env is None else env
    for key in ("POD_NAME", "POD_ID"):
        if env.get(key):
            return env[key]
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def own_namespace(env: dict[str, str] | None = None, path: str = SERVICE_ACCOUNT_NAMESPACE) -> str | None:
    """Where the operator runs: $RZERO_OPERATOR_NAMESPACE (the chart sets it), else the pod's service
    account namespace file, else None (a workstation)."""
    env = os.environ if env is None else env
    if env.get("RZERO_OPERATOR_NAMESPACE"):
        return env["RZERO_OPERATOR_NAMESPACE"]
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def config_errors(lease_duration_s: float, renew_deadline_s: float, retry_period_s: float) -> list[str]:
    """What is wrong with these durations (client-go's rules), in the flags' words."""
    errors = []
    if retry_period_s <= 0:
        errors.append(f"--leader-election-retry-period ({retry_period_s}s) must be positive")
    if renew_deadline_s <= retry_period_s * (1 + JITTER):
        errors.append(f"--leader-election-renew-deadline ({renew_deadline_s}s) must be longer than "
                      f"{1 + JITTER} x --leader-election-retry-period ({retry_period_s}s)")
    if lease_duration_s <= renew_deadline_s:
        errors.append(f"--leader-election-lease-duration ({lease_duration_s}s) must be longer than "
                      f"--leader-election-renew-deadline ({renew_deadline_s}s)")
    return errors


@dataclass(frozen=True)
class ElectionConfig:
    """Which Lease, who we are, and the three durations (controller-runtime's defaults: 15/10/2;
    ours are shorter, 10/7/2, for a faster takeover)."""

    namespace: str
    name: str = "rzero-operator"
    identity: str = field(default_factory=default_identity)
    lease_duration_s: float = 10.0
    renew_deadline_s: float = 7.0
    retry_period_s: float = 2.0

    def __post_init__(self) -> None:
        errors = config_errors(self.lease_duration_s, self.renew_deadline_s, self.retry_period_s)
        if errors:
            raise ValueError("; ".join(errors))

    @property
    def lease_seconds(self) -> int:
        """What the Lease records (whole seconds, an int32 in the API): rounded up, never shorter."""
        return max(1, math.ceil(self.lease_duration_s))


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease's spec, as the election reads it."""

    holder: str
    lease_duration_s: int
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def from_lease(cls, lease: dict, default_duration_s: int) -> "LeaseRecord":
        spec = lease.get("spec") or {}
        return cls(holder=spec.get("holderIdentity") or "",
                   lease_duration_s=int(spec.get("leaseDurationSeconds") or default_duration_s),
                   acquire_time=spec.get("acquireTime"), renew_time=spec.get("renewTime"),
                   transitions=int(spec.get("leaseTransitions") or 0))

    def spec(self) -> dict:
        return {"holderIdentity": self.holder, "leaseDurationSeconds": self.lease_duration_s,
                "acquireTime": self.acquire_time, "renewTime": self.renew_time, "leaseTransitions": self.transitions}


# ------------------------------------------------------------------------------------ pure decisions


def holds_lease(renewed_at: float | None, now: float, renew_deadline_s: float) -> bool:
    """Am I leader now? Only if my last renewal started less than renewDeadline ago (monotonic seconds)."""
    return renewed_at is not None and 0.0 <= now - renewed_at < renew_deadline_s


def may_acquire(record: LeaseRecord | None, observed_at: float, now: float, identity: str) -> bool:
    """May this candidate write itself into the Lease? Yes when there is none, nobody holds it, we do,
    or the record has not changed for its whole leaseDuration since we saw it change (monotonic seconds)."""
    if record is None or not record.holder or record.holder == identity:
        return True
    return now - observed_at >= record.lease_duration_s


def next_record(current: LeaseRecord | None, identity: str, duration_s: int, now: str) -> LeaseRecord:
    """The record a successful acquire or renew writes (client-go's bookkeeping of acquireTime/transitions)."""
    if current is not None and current.holder == identity:
        return replace(current, lease_duration_s=duration_s, renew_time=now)
    transitions = current.transitions + 1 if current is not None else 0
    return LeaseRecord(identity, duration_s, acquire_time=now, renew_time=now, transitions=transitions)


def released_record(current: LeaseRecord, now: str) -> LeaseRecord:
    """What a stopping leader leaves behind: no holder, so the next candidate takes it at once."""
    return replace(current, holder="", lease_duration_s=1, acquire_time=now, renew_time=now)


def micro_time(now: datetime | None = None) -> str:
    """A Kubernetes MicroTime (RFC 3339, microseconds, UTC)."""
    return (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ------------------------------------------------------------------------------------------ elector


class LeaderElector:
    """One candidate. `run` blocks (call it in a thread); `is_leader` may be called from any thread.

    api: a KubeApi without a fence (the elector's own calls must never be fenced), whose request timeout
    bounds how long one renewal may hang. on_change(leading): told when this candidate starts or stops leading.
    """

    def __init__(self, api: KubeApi, config: ElectionConfig, *, clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[bool], None] | None = None):
        self.api = api
        self.config = config
        self.clock = clock
        self.on_change = on_change or (lambda leading: None)
        self._renewed_at: float | None = None
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._holding = False  # written into the Lease, not released or lost since
        self._lock = threading.RLock()  # one acquire/renew/release at a time

    @property
    def where(self) -> str:
        return f"lease {self.config.namespace}/{self.config.name}"

    def is_leader(self) -> bool:
        return holds_lease(self._renewed_at, self.clock(), self.config.renew_deadline_s)

    @property
    def observed_holder(self) -> str | None:
        return self._observed.holder if self._observed else None

    def try_acquire_or_renew(self) -> bool:
        """One attempt: read the Lease and write ourselves into it when the rules allow. True: we lead."""
        with self._lock:
            started = self.clock()
            try:
                written = self._attempt()
            except KubeError as error:
                log.info("%s: %s", self.where, error)
                written = None
            except Exception as error:  # noqa: BLE001 - a network failure is one failed attempt, never a crash
                log.info("%s: API server unreachable: %s", self.where, error)
                written = None
            if written is None:
                if self._holding and self.observed_holder not in (None, self.config.identity):
                    self._step_down(f"{self.observed_holder} holds the lease now")
                return False
            self._observed, self._observed_at = written, self.clock()
            first = not self._holding
            self._renewed_at, self._holding = started, True
            if first:
                log.info("became leader: %s held by %s", self.where, self.config.identity)
                self.on_change(True)
            return True

    def _attempt(self) -> LeaseRecord | None:
        config = self.config
        try:
            lease = self.api.get_lease(config.namespace, config.name)
        except KubeError as error:
            if not error.not_found:
                raise
            record = next_record(None, config.identity, config.lease_seconds, micro_time())
            self.api.create_lease(config.namespace, lease_body(config, record))
            return record
        current = LeaseRecord.from_lease(lease, config.lease_seconds)
        if current != self._observed:
            if self._observed is None or current.holder != self._observed.holder:
                log.info("%s is held by %s", self.where, current.holder or "nobody")
            self._observed, self._observed_at = current, self.clock()
        if not may_acquire(current, self._observed_at, self.clock(), config.identity):
            return None
        record = next_record(current, config.identity, config.lease_seconds, micro_time())
        self.api.replace_lease(config.namespace, config.name, {**lease, "spec": {**(lease.get("spec") or {}),
                                                                                  **record.spec()}})
        return record

    def _step_down(self, why: str) -> None:
        if self._holding:
            self._holding = False
            log.error("lost leadership of %s: %s", self.where, why)
        self.fence()

    def fence(self) -> None:
        """Stop leading at once (is_leader() is False from now on) without handing the Lease back yet."""
        with self._lock:
            if self._renewed_at is not None:
                self._renewed_at = None
                self.on_change(False)

    def release(self) -> bool:
        """Stop leading at once, then hand the Lease back (if it is still ours). True when released."""
        self.fence()
        with self._lock:
            if not self._holding:
                return False
            self._holding = False
            try:
                lease = self.api.get_lease(self.config.namespace, self.config.name)
                current = LeaseRecord.from_lease(lease, self.config.lease_seconds)
                if current.holder != self.config.identity:
                    return False
                spec = released_record(current, micro_time()).spec()
                self.api.replace_lease(self.config.namespace, self.config.name,
                                       {**lease, "spec": {**(lease.get("spec") or {}), **spec}})
            except Exception as error:  # noqa: BLE001 - the lease then expires on its own
                log.warning("could not release %s (it expires in %ss): %s", self.where,
                            self.config.lease_seconds, error)
                return False
            log.info("released %s", self.where)
            return True

    def run(self, stop: threading.Event, on_leading: Callable[[], None] = lambda: None,
            idle: threading.Event | None = None) -> str:
        """Wait as a standby until the Lease is ours, call on_leading, then renew every retryPeriod.
        Returns LOST when a renewal did not succeed within renewDeadline (or another holder was seen), and
        STOPPED when `stop` was set: as a leader it then stops leading at once, waits until `idle` is set
        (whatever acted for it has stopped, as controller-runtime stops its controllers before releasing;
        at most a lease duration) and releases the Lease."""
        config = self.config
        while not self.try_acquire_or_renew():
            if stop.wait(config.retry_period_s * (1 + random.random() * JITTER)):
                return STOPPED
        on_leading()
        while not stop.wait(config.retry_period_s):
            self.try_acquire_or_renew()
            if not self.is_leader():
                self._step_down(f"not renewed within the renew deadline ({config.renew_deadline_s}s)")
                return LOST
        self.fence()
        if idle is not None:
            idle.wait(config.lease_seconds)
        self.release()
        return STOPPED


def lease_body(config: ElectionConfig, record: LeaseRecord) -> dict:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": config.name, "namespace": config.namespace}, "spec": record.spec()}
