"""The fault suite's bookkeeping (pytest plugin, listed in tests/conftest.py).

Every fault or bad-input test carries one marker naming the row of `docs/reliability.md` it belongs to and
the outcome it proves:

    @pytest.mark.fault("S3 endpoint stalls", outcome="failed cleanly")

- row: the fault or input class, as a reader of the table would name it ("giant number in an answer").
- outcome: "recovered" (the work finished, nothing lost), "refused" (a clear one-line message, nothing
  started or changed), or "failed cleanly" (a bounded, clear failure: the right exit code, nothing committed
  that is corrupt or incomplete).

Parametrized cases count as separate cases. A test that loses something says so through the `fault_losses`
fixture (`fault_losses.add(2, "committed files missing")`); the table's "lost" column must stay 0. A test
marked `faults_long` runs only in `make test-faults`.

With RZERO_FAULT_REPORT=path set, every marked test run is written to that JSON file at the end of the
session: row, outcome, case id, result (passed / failed / skipped), whether it hung (pytest-timeout fired)
and what it lost. `tests/faults/reliability_table.py` runs the suite and renders the table from that file.
The plugin works for marked tests anywhere (the operator restart tests in tests/operator/kube are rows too).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

OUTCOMES = ("recovered", "refused", "failed cleanly")
REPORT_ENV = "RZERO_FAULT_REPORT"
_RECORDS = pytest.StashKey[list]()
_LOSSES = pytest.StashKey["FaultLosses"]()


@dataclass
class FaultLosses:
    """What one fault case lost (must stay empty): each entry is (count, what)."""

    entries: list[tuple[int, str]] = field(default_factory=list)

    def add(self, count: int, what: str) -> None:
        if count:
            self.entries.append((count, what))

    @property
    def total(self) -> int:
        return sum(count for count, _ in self.entries)


@pytest.fixture
def fault_losses(request) -> FaultLosses:
    losses = FaultLosses()
    request.node.stash[_LOSSES] = losses
    return losses


def fault_marker(item) -> tuple[str, str] | None:
    marker = item.get_closest_marker("fault")
    if marker is None:
        return None
    if len(marker.args) != 1 or not isinstance(marker.args[0], str) or not marker.args[0].strip():
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.fault needs one row name, e.g. fault('S3 5xx storm', ...)")
    outcome = marker.kwargs.get("outcome")
    if outcome not in OUTCOMES:
        raise pytest.UsageError(f"{item.nodeid}: fault outcome must be one of {OUTCOMES}, not {outcome!r}")
    return marker.args[0].strip(), outcome


def pytest_configure(config) -> None:
    config.stash[_RECORDS] = []


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        fault_marker(item)  # a malformed marker fails the collection, not silently the table


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    marker = fault_marker(item)
    if marker is None or not _is_final(report):
        return
    row, expected = marker
    longrepr = str(report.longrepr or "")
    losses = item.stash.get(_LOSSES, FaultLosses())
    item.config.stash[_RECORDS].append({
        "row": row,
        "outcome": expected,
        "nodeid": item.nodeid,
        "case": getattr(getattr(item, "callspec", None), "id", ""),
        "result": "skipped" if report.skipped else ("passed" if report.passed else "failed"),
        "hung": report.failed and "Timeout" in longrepr,
        "lost": losses.total,
        "lost_detail": [what for _, what in losses.entries],
        "seconds": round(report.duration, 3),
    })


def _is_final(report) -> bool:
    # One record per test: the call phase, or the setup phase when setup failed or skipped.
    return report.when == "call" or (report.when == "setup" and not report.passed)


def pytest_sessionfinish(session) -> None:
    path = os.environ.get(REPORT_ENV)
    if path:
        Path(path).write_text(json.dumps(session.config.stash[_RECORDS], indent=1) + "\n")
