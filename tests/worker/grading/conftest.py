"""A grading pool shared by the grading tests (starting worker processes costs about a second each)."""

import pytest

from rzero_worker.grading import GradingPool


@pytest.fixture(scope="session")
def grading_pool():
    with GradingPool(workers=2, timeout_s=10.0) as pool:
        yield pool
