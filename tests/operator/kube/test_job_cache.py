"""The Job cache keeps what the reconciler reads of each Job, newest first from the watch."""

from __future__ import annotations

from rzero_operator.kube.job_cache import JobCache, slim


def job(name: str, **status) -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "uid": "u1", "labels": {"a": "b"},
                         "ownerReferences": [{"kind": "RZeroRun", "name": "r", "controller": True}]},
            "spec": {"suspend": False, "template": {"spec": {"containers": [{"name": "worker", "image": "x"}]}}},
            "status": status}


def test_only_what_the_reconciler_reads_is_kept():
    kept = slim(job("j", active=1))
    assert kept == {"metadata": {"name": "j", "namespace": "ns", "uid": "u1", "labels": {"a": "b"},
                                 "ownerReferences": [{"kind": "RZeroRun", "name": "r", "controller": True}]},
                    "spec": {"suspend": False}, "status": {"active": 1}}


def test_a_create_answer_never_replaces_what_the_watch_showed_since():
    cache = JobCache()
    cache.seen(job("j", succeeded=1))
    cache.created(job("j"))  # the create's answer, processed after the watch showed the Job complete
    assert cache.get("ns", "j")["status"] == {"succeeded": 1}
    cache.created(job("k"))
    assert cache.get("ns", "k")["status"] == {}


def test_a_deleted_job_is_gone_and_a_later_event_shows_it_again():
    cache = JobCache()
    cache.seen(job("j", active=1))
    cache.gone("ns", "j")
    assert cache.get("ns", "j") is None and len(cache) == 0
    cache.seen(job("j", failed=1))
    assert cache.get("ns", "j")["status"] == {"failed": 1}
