"""`pool`: one grading pool (one worker process, 5 s timeout) shared by a test module's cases.

Modules that need another pool (more workers, short timeouts, a pool they break on purpose) define their own
`pool` fixture, which takes precedence over this one."""

from __future__ import annotations

import pytest

from rzero_worker.grading import GradingPool


@pytest.fixture(scope="module")
def pool():
    with GradingPool(workers=1, timeout_s=5.0) as grading_pool:
        yield grading_pool
