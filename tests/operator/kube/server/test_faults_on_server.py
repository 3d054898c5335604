"""Faults only a real API server shows, with the operator as a process: SIGKILL at random points, suspend and
resume, a Job refused by admission (422), pods the Job controller cannot create (FailedCreate), and a status the
status subresource's schema refuses."""

from __future__ import annotations

import contextlib
import json
import random
import time

import pytest

from support.kube import PLAUSIBLE_METRICS, tiny_spec, wait_for
from support.kubelet import Kubelet, PodExit, summary
from support.operator_process import OperatorProcess

pytestmark = pytest.mark.timeout(600)
JOBS_PER_RUN = 11  # two iterations: evaluate(0) then five phases each
FAILED_CREATE_REACTION_S = 10.0  # STARTING_POLL_S (2 s) plus reconcile and watch latency, with slack for CI


def apply_run(control_plane, namespace: str, name: str, tmp_path, **spec) -> None:
    body = {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": name},
            "spec": tiny_spec(tmp_path, **spec)}
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))


def run_status(control_plane, namespace: str, name: str) -> dict:
    return control_plane.kube_api().get_run(namespace, name).get("status") or {}


def job_names(control_plane, namespace: str) -> list[str]:
    return sorted(j["metadata"]["name"] for j in control_plane.kube_api().list_jobs(
        namespace, {"app.kubernetes.io/managed-by": "rzero-operator"}))


def run_events(control_plane, namespace: str) -> list[dict]:
    items = control_plane.kube_api().request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
    return [e for e in items if e["involvedObject"].get("kind") == "RZeroRun"]


def finished(control_plane, namespace: str, name: str, timeout: float, operator=None) -> dict:
    def probe():
        status = run_status(control_plane, namespace, name)
        return status if status.get("phase") in ("Succeeded", "Failed") else None
    return wait_for(probe, timeout, f"run {name} to finish" + (f":\n{operator.output()[-2000:]}" if operator else ""))


@pytest.fixture
def operator_as_admin(control_plane, rzero_crd, real_namespace, tmp_path):
    """Start operators watching `real_namespace` (admin identity: RBAC is test_run_on_server's subject)."""
    started: list[OperatorProcess] = []

    def start() -> OperatorProcess:
        started.append(OperatorProcess(control_plane.kubeconfig, ["--namespace", real_namespace], tmp_path).start())
        return started[-1]
    yield start
    for operator in started:
        operator.terminate()


@pytest.fixture
def kubelet(control_plane, real_namespace):
    """Start the kubelet stand-in for `real_namespace` with an outcome; stopped at teardown."""
    started: list[Kubelet] = []

    def start(outcome) -> Kubelet:
        started.append(Kubelet(control_plane.kube_api(), real_namespace, outcome).start())
        return started[-1]
    yield start
    for one in started:
        one.stop()


def test_sigkill_at_random_points_never_duplicates_a_job(control_plane, real_namespace, operator_as_admin, kubelet,
                                                         tmp_path):
    rng = random.Random(17)
    # Pods take a random 0-0.6 s to "run", so kills land before, during and after Job creates and status writes.
    kubelet(lambda pod, task: PodExit(0, summary(task, PLAUSIBLE_METRICS[task["phase"]]))
            if task and rng.random() < 0.3 else None)
    operator = operator_as_admin()
    apply_run(control_plane, real_namespace, "killed", tmp_path)
    kills = 0
    while run_status(control_plane, real_namespace, "killed").get("phase") not in ("Succeeded", "Failed"):
        time.sleep(rng.uniform(0.3, 2.5))
        operator.kill()
        kills += 1
        operator = operator_as_admin()
        assert kills < 60, "the run made no progress across restarts"
    status = finished(control_plane, real_namespace, "killed", 5)
    assert status["phase"] == "Succeeded", status.get("message")
    names = job_names(control_plane, real_namespace)
    assert len(names) == JOBS_PER_RUN and all(name.endswith("-a1") for name in names), names
    # PhaseStarted is said once the Job exists, so it never names a Job that does not (a SIGKILL between the create
    # and the event loses that one event: events are best-effort, the status is the record).
    started = [e for e in run_events(control_plane, real_namespace) if e["reason"] in ("PhaseStarted", "PhaseRestarted")]
    assert started and {e["message"].split(":")[0] for e in started} <= set(names)
    print(f"\n{kills} SIGKILLs, {len(names)} Jobs, 0 duplicates")


def test_suspend_lets_the_running_phase_finish_then_resume_continues(control_plane, real_namespace,
                                                                     operator_as_admin, kubelet, tmp_path):
    hold = {"on": True}
    kubelet(lambda pod, task: None if hold["on"] or not task
            else PodExit(0, summary(task, PLAUSIBLE_METRICS[task["phase"]])))
    operator_as_admin()
    apply_run(control_plane, real_namespace, "paused", tmp_path, iterations=1)
    wait_for(lambda: job_names(control_plane, real_namespace), 30, "the first Job")
    control_plane.kubectl("patch", "rzr", "paused", "-n", real_namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    hold["on"] = False  # the running evaluate finishes; nothing new starts
    wait_for(lambda: run_status(control_plane, real_namespace, "paused").get("phase") == "Suspended", 30, "Suspended")
    time.sleep(2)
    assert job_names(control_plane, real_namespace) == ["paused-i000-evaluate-a1"]
    control_plane.kubectl("patch", "rzr", "paused", "-n", real_namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    assert finished(control_plane, real_namespace, "paused", 60)["phase"] == "Succeeded"
    assert len(job_names(control_plane, real_namespace)) == 6


@contextlib.contextmanager
def admission_policy(control_plane, namespace: str, group: str, version: str, resource: str, operation: str,
                     expression: str, message: str):
    """A ValidatingAdmissionPolicy (the API server's own CEL admission) denying what `expression` rejects, in
    `namespace` only; the server answers 422 Invalid with `message`."""
    name = f"deny-{resource.replace('/', '-')}-{namespace}"
    control_plane.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
         "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [
             {"apiGroups": [group], "apiVersions": [version], "operations": [operation], "resources": [resource]}]},
             "validations": [{"expression": expression, "message": message, "reason": "Invalid"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": name},
         "spec": {"policyName": name, "validationActions": ["Deny"], "matchResources": {
             "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}}}]}))
    time.sleep(2)  # the admission plugin loads policies asynchronously
    try:
        yield
    finally:
        control_plane.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, check=False)


def test_a_job_refused_by_admission_fails_the_run_and_leaves_nothing_behind(control_plane, real_namespace,
                                                                           operator_as_admin, tmp_path):
    with admission_policy(control_plane, real_namespace, "batch", "v1", "jobs", "CREATE",
                          "!has(object.spec.template.spec.nodeSelector) || "
                          "!('pool' in object.spec.template.spec.nodeSelector)", "nodeSelector pool is reserved"):
        operator = operator_as_admin()
        apply_run(control_plane, real_namespace, "refused", tmp_path,
                  resources={"gpus": 0, "cpu": "1", "memory": "1Gi", "nodeSelector": {"pool": "gpu"}})
        status = finished(control_plane, real_namespace, "refused", 60, operator)
    assert status["phase"] == "Failed"
    assert "HTTP 422" in status["message"] and "nodeSelector pool is reserved" in status["message"]
    reasons = [e["reason"] for e in run_events(control_plane, real_namespace)]
    assert "RunFailed" in reasons and "PhaseStarted" not in reasons, reasons
    assert job_names(control_plane, real_namespace) == []
    maps = control_plane.kube_api().request("GET", f"/api/v1/namespaces/{real_namespace}/configmaps", query={
        "labelSelector": "app.kubernetes.io/managed-by=rzero-operator"})["items"]
    assert maps == []


def test_a_status_the_server_refuses_is_reported_and_nothing_starts_until_it_is_accepted(
        control_plane, real_namespace, operator_as_admin, kubelet, tmp_path):
    kubelet(lambda pod, task: PodExit(0, summary(task, PLAUSIBLE_METRICS[task["phase"]])) if task else None)
    with admission_policy(control_plane, real_namespace, "rzero.dev", "v1alpha1", "rzeroruns/status", "UPDATE",
                          "!has(object.status.stage) || object.status.stage != 'ChallengerTraining'",
                          "challenger training is paused by policy"):
        operator = operator_as_admin()
        apply_run(control_plane, real_namespace, "held", tmp_path, iterations=1)
        refused = wait_for(lambda: [e for e in run_events(control_plane, real_namespace)
                                    if e["reason"] == "StatusRejected"], 60, "a StatusRejected event")
        assert "challenger training is paused by policy" in refused[0]["message"]
        time.sleep(3)
        assert job_names(control_plane, real_namespace) == ["held-i000-evaluate-a1"]  # no unrecorded Challenger
        assert operator.alive
    # The policy is gone: the next try (30 s later at most) records the step and the run goes on.
    assert finished(control_plane, real_namespace, "held", 90, operator)["phase"] == "Succeeded"


def test_pods_that_cannot_be_created_fail_the_run_within_seconds(control_plane, real_namespace, operator_as_admin,
                                                                 tmp_path):
    """The real Job controller cannot create pods for a missing ServiceAccount and says FailedCreate, naming the
    Job by uid (observe.failed_create matches the uid: a predecessor's Events never fail a re-created Job)."""
    if not control_plane.has_controller_manager:
        pytest.skip("needs kube-controller-manager (the Job controller)")
    operator = operator_as_admin()
    apply_run(control_plane, real_namespace, "nosa", tmp_path,
              resources={"gpus": 0, "cpu": "1", "memory": "1Gi", "serviceAccountName": "trainer"})
    api = control_plane.kube_api()

    def first_failed_create():
        events = [e for e in api.request("GET", f"/api/v1/namespaces/{real_namespace}/events")["items"]
                  if e["reason"] == "FailedCreate"]
        return events[0] if events else None
    event = wait_for(first_failed_create, 60, "the Job controller's FailedCreate event")
    seen = time.monotonic()
    assert event["involvedObject"]["kind"] == "Job" and event["involvedObject"].get("uid")
    status = finished(control_plane, real_namespace, "nosa", 60, operator)
    reaction = time.monotonic() - seen
    assert status["phase"] == "Failed" and 'serviceaccount "trainer" not found' in status["message"]
    assert reaction < FAILED_CREATE_REACTION_S, reaction
    wait_for(lambda: job_names(control_plane, real_namespace) == [], 30, "the stuck Job to be deleted")
    print(f"\nFailedCreate -> run Failed in {reaction:.1f} s")


def test_a_summary_the_status_schema_refuses_fails_the_attempt_not_the_operator(control_plane, real_namespace,
                                                                             operator_as_admin, kubelet, tmp_path):
    """A worker's summary is untrusted: an integer beyond int64 is valid JSON and valid Python, but the status
    subresource refuses it. The attempt fails with a message; the operator lives on and the next attempt runs."""
    sent = {"bad": 0}

    def outcome(pod, task):
        if not task:
            return None
        metrics = PLAUSIBLE_METRICS[task["phase"]]
        if task["phase"] == "evaluate" and sent["bad"] == 0:
            sent["bad"] += 1
            metrics = {"scores": {"arithmetic": {"accuracy": 0.25, "n": 2**70}}, "mean_accuracy": 0.25}
        return PodExit(0, summary(task, metrics))
    kubelet(outcome)
    operator = operator_as_admin()
    apply_run(control_plane, real_namespace, "huge", tmp_path, iterations=1,
              retry={"maxAttempts": 2, "backoffSeconds": 0, "maxBackoffSeconds": 0})
    status = finished(control_plane, real_namespace, "huge", 90, operator)
    assert status["phase"] == "Succeeded", status.get("message")
    assert operator.alive
    names = job_names(control_plane, real_namespace)
    assert "huge-i000-evaluate-a2" in names, names
