"""The oracles of a label shard: the exact one checks every kept question it can read, the model and endpoint
oracles a seeded random sample of `sampleSize` per iteration split across shards; label accuracy with its
interval per oracle, against hand-made labels."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rzero_worker.benchmarks.scoring import wilson_interval
from rzero_worker.oracles.endpoint import EndpointOracle
from rzero_worker.oracles.run import check_kept, sample_indices, sampled_oracles, shard_quota
from rzero_worker.task import LabelTask, ModelInput, OracleEndpointSettings, OracleSettings, Shard, StorageLocation

WRONG = {2, 5, 11, 17}  # rows whose hand-made label is off by one


def kept_rows() -> list[dict]:
    """20 kept questions 'What is 3 + i?' labelled 3+i, except the WRONG rows."""
    return [{"id": f"q{i}", "question": f"What is 3 + {i}?", "label": str(3 + i + (i in WRONG)), "score": 0.5}
            for i in range(20)]


def label_task(oracle: OracleSettings, shard: Shard = Shard(), seed: int = 7) -> LabelTask:
    return LabelTask(run="demo", iteration=1, storage=StorageLocation(uri="/tmp/none"), output="iter-001/label/x",
                     solver=ModelInput(source="/none"), questions="iter-001/generate", shard=shard, seed=seed,
                     oracle=oracle)


def endpoint_settings(server, **fields) -> OracleEndpointSettings:
    return OracleEndpointSettings(url=server.url, model="judge", backoff_seconds=0, **fields)


def test_shard_quotas_add_up_to_the_iteration_sample():
    assert [shard_quota(10, Shard(index=i, count=4)) for i in range(4)] == [3, 3, 2, 2]
    assert sum(shard_quota(64, Shard(index=i, count=7)) for i in range(7)) == 64


def test_the_sample_is_seeded_distinct_and_bounded():
    assert sample_indices(20, 5, seed=1) == sample_indices(20, 5, seed=1)
    assert sample_indices(20, 5, seed=1) != sample_indices(20, 5, seed=2)
    assert len(set(sample_indices(20, 5, seed=3))) == 5
    assert sample_indices(3, 10, seed=1) == [0, 1, 2] and sample_indices(5, 0, seed=1) == []


def test_the_arithmetic_oracle_checks_every_readable_kept_question(pool):
    rows = kept_rows()
    metrics = check_kept(rows, label_task(OracleSettings()), None, pool)
    assert (metrics["oracle"], metrics["oracle_checked"], metrics["oracle_correct"]) == ("arithmetic", 20, 16)
    assert metrics["label_accuracy"] == pytest.approx(0.8)
    assert metrics["label_accuracy_ci95"] == pytest.approx(list(wilson_interval(16, 20)))
    assert [row["label_correct"] for row in rows] == [i not in WRONG for i in range(20)]
    assert metrics["oracles"] == {"arithmetic": {"asked": 20, "checked": 20, "correct": 16}}


def test_the_endpoint_oracle_answers_a_seeded_sample_and_is_the_headline(pool, openai_server):
    openai_server.answers = {f"What is 3 + {i}?": rf"\boxed{{{3 + i}}}" for i in range(20)}
    settings = OracleSettings(sample_size=8, endpoint=endpoint_settings(openai_server))
    task = label_task(settings, shard=Shard(index=0, count=2))
    rows = kept_rows()
    oracle = EndpointOracle(settings.endpoint, budget=100)

    metrics = check_kept(rows, task, None, pool, oracles=[oracle])

    sample = sample_indices(20, 4, task.seed)  # shard 0 of 2 takes half of the 8
    asked = sorted(int(r["question"].split("+ ")[1].rstrip("?")) for r in openai_server.requests)
    assert asked == sample
    right = sum(1 for i in sample if i not in WRONG)
    assert (metrics["oracle"], metrics["oracle_checked"], metrics["oracle_correct"]) == ("endpoint", 4, right)
    assert metrics["label_accuracy_ci95"] == pytest.approx(list(wilson_interval(right, 4)))
    assert metrics["oracles"]["arithmetic"]["checked"] == 20  # the exact oracle still checks everything
    assert metrics["oracles"]["endpoint"] == {"asked": 4, "checked": 4, "correct": right, "requests": 4, "retries": 0,
                                              "malformed": 0, "no_answer": 0, "failed": 0, "over_budget": 0}
    sampled = [rows[i] for i in sample]
    assert all(row["oracle_answers"]["endpoint"] == str(3 + int(row["id"][1:])) for row in sampled)
    assert all("endpoint" not in row["oracle_answers"] for i, row in enumerate(rows) if i not in sample)


def test_an_unanswerable_sample_gives_no_accuracy_only_counts(pool, openai_server):
    settings = OracleSettings(arithmetic=False, sample_size=3, endpoint=endpoint_settings(openai_server))
    rows = kept_rows()
    metrics = check_kept(rows, label_task(settings), None, pool, oracles=[EndpointOracle(settings.endpoint, budget=9)])
    assert metrics["oracle_checked"] == 0 and metrics["label_accuracy"] is None and metrics["label_accuracy_ci95"] is None
    assert metrics["oracles"]["endpoint"]["no_answer"] == 3


def test_no_oracle_configured_means_no_oracle_metrics(pool):
    assert check_kept(kept_rows(), label_task(OracleSettings(arithmetic=False)), None, pool) == {}


def test_the_endpoint_oracle_reads_its_key_from_the_named_variable_and_its_budget_is_split(monkeypatch, openai_server):
    monkeypatch.setenv("MY_ORACLE_KEY", "sk-from-env")
    settings = OracleSettings(endpoint=endpoint_settings(openai_server, api_key_env="MY_ORACLE_KEY", max_requests=10))
    [oracle] = sampled_oracles(label_task(settings, shard=Shard(index=1, count=3)), SimpleNamespace())
    assert oracle.budget == 3 and oracle._headers() == {"Authorization": "Bearer sk-from-env"}
