"""Label-quality proxies recorded when no oracle answers: answer entropy and the share at the band's edges."""

import pytest

from rzero_worker.oracles.proxies import answer_entropy, band_edge_share, entropy_bits, proxy_metrics


def test_entropy_of_answer_classes_in_bits():
    assert entropy_bits([10]) == 0.0
    assert entropy_bits([5, 5]) == pytest.approx(1.0)
    assert entropy_bits([4, 4, 4, 4]) == pytest.approx(2.0)
    assert entropy_bits([]) == 0.0


def test_mean_answer_entropy_over_kept_questions():
    kept = [{"class_sizes": [5, 5]}, {"class_sizes": [6, 2, 2]}, {"class_sizes": [10]}]
    expected = (1.0 + entropy_bits([6, 2, 2]) + 0.0) / 3
    assert answer_entropy(kept) == pytest.approx(expected)
    assert answer_entropy([]) is None


def test_band_edge_share_counts_scores_one_vote_inside_either_edge():
    # paper band [0.25, 0.75] with m = 10: 0.3 and 0.7 are one vote from dropping out; 0.4-0.6 are not
    kept = [{"score": s} for s in (0.3, 0.4, 0.5, 0.6, 0.7)]
    assert band_edge_share(kept, (0.25, 0.75), samples=10) == pytest.approx(2 / 5)
    assert band_edge_share(kept, (0.3, 0.8), samples=10) == pytest.approx(1 / 5)  # the code band: only 0.3
    assert band_edge_share([], (0.25, 0.75), samples=10) is None


def test_proxy_metrics_names():
    assert set(proxy_metrics([], (0.25, 0.75), 10)) == {"answer_entropy", "band_edge_share"}
