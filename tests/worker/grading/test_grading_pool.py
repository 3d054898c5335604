r"""The math-verify pool: equivalence decisions, the hard per-item timeout, and worker replacement."""

import os
import signal
import time

import pytest

from rzero_worker.grading import GradingPool

HANG = r"\dfrac{5^{5^{5^{5^5}}}}{5^{5^{5^5}}}"


def test_equivalent_answers_in_different_notations(grading_pool):
    pairs = [
        ("0.5", r"\frac{1}{2}"),
        ("1/2", r"\dfrac{1}{2}"),
        (r"\frac{\sqrt 2}{2}", r"\sqrt{2}/2"),
        ("x+1", "1+x"),
        (r"18 \text{ dollars}", "18"),
        ("x = 3", "3"),
    ]
    assert grading_pool.equivalent(pairs) == [True] * len(pairs)


def test_different_answers_are_not_equivalent(grading_pool):
    pairs = [("0.5", "0.25"), ("3", "4"), (r"\sqrt{2}", "2"), ("x+1", "x-1"), ("7", None), ("", "")]
    assert grading_pool.equivalent(pairs) == [False] * len(pairs)


def test_math_verify_decides_what_the_fast_paths_cannot(grading_pool):
    before = grading_pool.stats.checker_calls
    assert grading_pool.equivalent([(r"2\pi", r"\pi+\pi")]) == [True]
    assert grading_pool.stats.checker_calls == before + 1
    # the same question again (in either order) is answered from the cache
    assert grading_pool.equivalent([(r"\pi+\pi", r"2\pi")]) == [True]
    assert grading_pool.stats.checker_calls == before + 1


def test_plain_numbers_never_reach_math_verify(grading_pool):
    before = grading_pool.stats.checker_calls
    assert grading_pool.equivalent([("0.5", "1/2"), ("12", "13"), ("1,000", "1000")]) == [True, False, True]
    assert grading_pool.stats.checker_calls == before


def test_directed_comparison_reads_the_first_answer_as_gold(grading_pool):
    assert grading_pool.equivalent([("1/3", "0.333333")], directed=True) == [True]


def test_a_hang_input_finishes_within_the_timeout_and_is_ungradable():
    # The soft (in-worker) limit is set above the hard one, so only the parent's kill can stop the item.
    with GradingPool(workers=1, timeout_s=1.5, soft_timeout_s=30.0) as pool:
        first_pid = pool.worker_pids()[0]
        started = time.monotonic()
        results = pool.equivalent([("0.5", "1/3"), (HANG, r"\pi"), (r"2\pi", r"\pi+\pi")])
        elapsed = time.monotonic() - started
        assert results == [False, None, True]  # the item after the hang is still graded
        assert pool.stats.timeouts == 1 and pool.stats.restarts == 1
        assert pool.worker_pids()[0] != first_pid
        assert elapsed < 1.5 + 15  # the timeout plus a worker restart, not a hang
        # the pool still works afterwards
        assert pool.equivalent([(r"\frac{2}{4}", r"\sqrt{1/4}")]) == [True]


def test_soft_timeout_answers_none_without_losing_the_worker():
    with GradingPool(workers=1, timeout_s=2.0) as pool:
        pid = pool.worker_pids()[0]
        assert pool.equivalent([(HANG, "5")]) == [None]
        assert pool.stats.restarts == 0 and pool.worker_pids() == [pid]


def test_an_answer_that_keeps_hanging_is_skipped_afterwards():
    with GradingPool(workers=1, timeout_s=1.0) as pool:
        results = pool.equivalent([(HANG, r"\pi"), (HANG, r"\sqrt{3}"), (HANG, r"e^2"), (HANG, r"\ln 5")])
        assert results == [None] * 4
        assert pool.stats.timeouts == 1 and pool.stats.poisoned == 3  # one timeout, then skipped


def test_a_killed_worker_is_replaced(grading_pool):
    victim = grading_pool.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    time.sleep(0.2)
    restarts = grading_pool.stats.restarts
    assert grading_pool.equivalent([(r"3\pi", r"\pi+2\pi"), (r"\sqrt{8}", r"2\sqrt{2}")]) == [True, True]
    assert victim not in grading_pool.worker_pids()
    assert grading_pool.stats.restarts == restarts + 1


def test_bad_settings_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="timeout_s"):
        GradingPool(workers=1, timeout_s=0)


def test_a_closed_pool_refuses_work():
    pool = GradingPool(workers=1, timeout_s=5)
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.equivalent([("1", "2")])
