"""A run with a trained Verifier on a real control plane (real API server, etcd and Job controller; pods finished
by the kubelet stand-in): each iteration's `verifier` Job comes after its label Job and before its solver Job,
the label pod requests the Verifier's own GPUs (spec.verifier.gpus) beside its engine's, the next label Job
judges with the committed checkpoint, and status.iterationHistory and the printer column carry the record.
The kmock version is kube/test_trained_verifier_on_cluster.py."""

from __future__ import annotations

import json

import pytest

from support.kube import PLAUSIBLE_METRICS, tiny_spec, wait_for
from support.kubelet import Kubelet, succeed_with
from support.operator_process import OperatorProcess

pytestmark = pytest.mark.timeout(120)
ITERATIONS = 2
TRAINED = {"labeling": {"verifier": "veto"}, "verifier": {"mode": "trained", "gpus": 1},
           "resources": {"gpus": 1, "cpu": "1", "memory": "1Gi"}}
TRAINED_METRICS = {
    "examples": 50, "train_examples": 40, "held_out": 10, "sources": {"consensus": 44, "oracle": 6, "audit": 0},
    "audit_verdicts": 0, "accuracy_before": 0.4, "accuracy_after": 0.7, "accuracy_after_ci95": [0.4, 0.89],
    "oracle_held_out": 2, "oracle_accuracy_before": 0.5, "oracle_accuracy_after": 1.0, "steps": 5,
    "mean_reward": 0.62, "reward_std": 0.31, "weight_change": 2e-4, "resumed_from_step": None,
}
PHASES = ("challenger", "generate", "label", "verifier", "solver", "evaluate")


@pytest.fixture
def operator(control_plane, rzero_crd, real_namespace, tmp_path):
    process = OperatorProcess(control_plane.kubeconfig, ["--namespace", real_namespace], tmp_path).start()
    yield process
    process.terminate()


def test_a_trained_verifier_gets_its_job_between_label_and_solver_and_its_record_in_the_status(
        control_plane, real_namespace, operator, tmp_path):
    finished: list[tuple[int, str, str | None, dict]] = []  # (iteration, phase, GPUs requested, task) as finished
    succeed = succeed_with({**PLAUSIBLE_METRICS, "verifier": TRAINED_METRICS})

    def outcome(pod: dict, task: dict | None):
        exit_ = succeed(pod, task)
        if exit_ is not None:
            limits = pod["spec"]["containers"][0]["resources"].get("limits", {})
            finished.append((task["iteration"], task["phase"], limits.get("nvidia.com/gpu"), task))
        return exit_

    kubelet = Kubelet(control_plane.kube_api(), real_namespace, outcome).start()
    try:
        manifest = {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "judged"},
                    "spec": tiny_spec(tmp_path, iterations=ITERATIONS, **TRAINED)}
        control_plane.kubectl("apply", "-n", real_namespace, "-f", "-", input=json.dumps(manifest))
        run = wait_for(lambda: (r := control_plane.kube_api().get_run(real_namespace, "judged")).get(
            "status", {}).get("phase") in ("Succeeded", "Failed") and r, 90,
            f"the run to finish:\n{operator.output()[-3000:]}")
    finally:
        kubelet.stop()
    status = run["status"]
    assert status["phase"] == "Succeeded", status
    assert not kubelet.errors

    # label -> verifier -> solver in every iteration, one Job each
    assert [(i, p) for i, p, _, _ in finished] == [(0, "evaluate")] + [
        (i, p) for i in range(1, ITERATIONS + 1) for p in PHASES]
    gpus = {(i, p): g for i, p, g, _ in finished}
    assert gpus[(1, "label")] == "2"  # the label engine's GPU and the Verifier's own
    assert gpus[(1, "verifier")] == gpus[(1, "solver")] == gpus[(1, "generate")] == "1"
    tasks = {(i, p): t for i, p, _, t in finished}
    assert tasks[(1, "label")]["verifier"]["gpus"] == 1
    assert tasks[(1, "verifier")]["examples"] == "iter-001/label"
    assert tasks[(2, "label")]["verifier"]["model"] == {"artifact": "iter-001/verifier"}  # judges with the checkpoint

    for record in status["iterationHistory"][1:]:
        assert record["verifierCheckpoint"] == f"iter-{record['iteration']:03d}/verifier"
        trained = record["verifierTraining"]
        assert (trained["accuracyBefore"], trained["accuracyAfter"], trained["heldOut"]) == (0.4, 0.7, 10)
    assert status["latestVerifierAccuracy"] == 0.7
    wide = control_plane.kubectl("get", "rzr", "judged", "-n", real_namespace, "-o", "wide").stdout.splitlines()
    at = wide[0].index("VERIFIERACC")  # columns are aligned; an empty cell (LABELACC here) has no placeholder
    assert wide[1][at:].split()[0] == "0.7", wide
