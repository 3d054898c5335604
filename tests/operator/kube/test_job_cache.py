"""The watch caches: the Job cache keeps what the reconciler reads of each Job, newest first from the watch; the
run cache our own reads and writes of a run, never an older version; the pod cache the pods' container states."""

from __future__ import annotations

from rzero_operator.kube.job_cache import FailedCreates, JobCache, PodCache, RunCache, slim, slim_pod


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


def run(version: str, phase: str = "Running", **meta) -> dict:
    return {"metadata": {"name": "r", "namespace": "ns", "resourceVersion": version, **meta},
            "spec": {"iterations": 1}, "status": {"phase": phase}}


def test_the_run_cache_holds_our_own_reads_and_writes_and_takes_only_newer_watch_events():
    runs = RunCache()
    runs.watched(run("5"))
    assert runs.get("ns", "r") is None  # the watch alone does not fill it: the first reconcile GETs the run
    runs.read(run("7"))
    runs.watched(run("6", "Pending"))  # an event older than our own write's answer
    assert runs.get("ns", "r")["status"] == {"phase": "Running"}
    runs.watched(run("9", "Succeeded"))
    assert runs.get("ns", "r")["metadata"]["resourceVersion"] == "9"
    runs.watched(run("9", "Succeeded"))  # the same version again: kept
    assert runs.get("ns", "r")["status"] == {"phase": "Succeeded"}


def test_a_run_whose_versions_cannot_be_ordered_is_dropped_and_read_again():
    runs = RunCache()
    runs.read(run("1"))
    runs.watched(run("1", "Failed"))  # the same version with another content (an emulator that never bumps it)
    assert runs.get("ns", "r") is None
    runs.read(run("x"))
    runs.watched(run("y"))  # not numbers
    assert runs.get("ns", "r") is None
    runs.read(run("3"))
    runs.gone("ns", "r")
    assert runs.get("ns", "r") is None and len(runs) == 0


def test_the_run_cache_hands_out_copies():
    runs = RunCache()
    runs.read(run("3"))
    runs.get("ns", "r")["status"]["phase"] = "Broken"
    assert runs.get("ns", "r")["status"] == {"phase": "Running"}


def pod(name: str, job_name: str, exit_code: int | None, **extra) -> dict:
    state = {"terminated": {"exitCode": exit_code, "message": "{}"}} if exit_code is not None else {"running": {}}
    return {"metadata": {"name": name, "namespace": "ns", "labels": {"batch.kubernetes.io/job-name": job_name},
                         "annotations": {"batch.kubernetes.io/job-completion-index": "0",
                                         "rzero.dev/task.json": "{" + " " * 1000 + "}"},
                         "ownerReferences": [{"kind": "Job", "name": job_name, "uid": "ju", "controller": True}]},
            "spec": {"containers": [{"name": "worker", "image": "x", "env": [{"name": "BIG", "value": "x" * 1000}]}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "worker", "state": state, "image": "x",
                                                                  "ready": False, **extra}]}}


def test_the_pod_cache_keeps_each_jobs_pods_names_owners_and_container_states_only():
    pods = PodCache("batch.kubernetes.io/job-name")
    pods.seen(pod("j-0", "j", None))
    pods.seen(pod("j-0", "j", 0))  # the same pod, terminated
    pods.seen(pod("k-0", "k", 1))
    (kept,) = pods.of("ns", "j")
    assert kept == slim_pod(pod("j-0", "j", 0))
    assert kept["metadata"]["annotations"] == {"batch.kubernetes.io/job-completion-index": "0"}  # no task
    assert "spec" not in kept and kept["status"]["containerStatuses"] == [
        {"name": "worker", "state": {"terminated": {"exitCode": 0, "message": "{}"}}}]
    pods.gone(pod("j-0", "j", 0))
    assert pods.of("ns", "j") == [] and len(pods.of("ns", "k")) == 1
    pods.forget_job("ns", "k")  # its summaries are in the status: not kept
    assert pods.of("ns", "k") == []


def test_runs_looking_for_a_failed_create_at_about_the_same_time_share_one_listing():
    now, listed = [0.0], []
    failed = {"reason": "FailedCreate", "involvedObject": {"kind": "Job", "name": "a"}, "message": "quota"}

    def list_events(namespace):
        listed.append(namespace)
        return [failed]

    looks = FailedCreates(list_events, max_age_s=1.0, clock=lambda: now[0])
    assert looks.of("ns", "a") == [failed] and looks.of("ns", "b") == []
    now[0] = 0.9
    assert looks.of("ns", "a") == [failed]
    assert listed == ["ns"]  # three looks, one LIST
    looks.of("other", "a")
    now[0] = 1.5  # older than max_age_s: listed again
    looks.of("ns", "b")
    assert listed == ["ns", "other", "ns"]
