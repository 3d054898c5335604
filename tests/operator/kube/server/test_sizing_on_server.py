"""On a real API server, the smallest manifest a user writes is accepted by the server, by `rzero validate` and by
the operator alike; one that cannot fit is accepted by the server (no schema can size GPUs) but refused by the
operator in `rzero validate`'s words, before any Job exists."""

from __future__ import annotations

import pytest
import yaml

from rzero_operator import sizing
from rzero_operator.validate import load_manifest, validate_file
from support.kube import wait_for
from support.operator_process import OperatorProcess

pytestmark = pytest.mark.timeout(300)
MINIMAL = {"model": "Qwen/Qwen3-4B-Base", "storage": {"uri": "s3://rzero-test/runs"}}
# 8B on one GPU without offload: weights, gradients and AdamW state cannot fit beside the rollout engine.
OVERSIZED = {**MINIMAL, "model": "Qwen/Qwen3-8B-Base", "challenger": {"grpo": {"cpuOffload": False}}}


def manifest_file(tmp_path, name: str, spec: dict):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun",
                                    "metadata": {"name": name}, "spec": spec}))
    return path


@pytest.fixture
def operator(control_plane, rzero_crd, real_namespace, tmp_path):
    process = OperatorProcess(control_plane.kubeconfig, ["--namespace", real_namespace], tmp_path).start()
    yield process
    process.terminate()


def spec_valid(control_plane, namespace: str, name: str) -> dict | None:
    status = control_plane.kube_api().get_run(namespace, name).get("status") or {}
    return next((c for c in status.get("conditions", []) if c["type"] == "SpecValid"), None)


def test_the_minimal_manifest_is_valid_everywhere_and_starts_its_first_job(control_plane, real_namespace, operator,
                                                                         tmp_path):
    path = manifest_file(tmp_path, "minimal", MINIMAL)
    assert validate_file(str(path)) == []
    assert [f for f in sizing.check(load_manifest(str(path)).spec) if f.level == "error"] == []
    control_plane.kubectl("create", "-n", real_namespace, "-f", str(path))  # the server accepts it
    condition = wait_for(lambda: spec_valid(control_plane, real_namespace, "minimal"), 60, "SpecValid")
    assert condition["status"] == "True", condition
    jobs = wait_for(lambda: control_plane.kube_api().list_jobs(real_namespace, {"app.kubernetes.io/managed-by":
                                                                                "rzero-operator"}), 30, "a Job")
    assert [j["metadata"]["name"] for j in jobs] == ["minimal-i000-evaluate-a1"]


def test_a_run_that_cannot_fit_is_refused_by_the_operator_in_validates_words(control_plane, real_namespace, operator,
                                                                           tmp_path):
    path = manifest_file(tmp_path, "oversized", OVERSIZED)
    errors = [str(f).split(": error: ", 1) for f in sizing.check(load_manifest(str(path)).spec) if f.level == "error"]
    assert errors, "the manifest was meant not to fit"
    control_plane.kubectl("create", "-n", real_namespace, "-f", str(path))  # no schema sizes GPUs
    condition = wait_for(lambda: (c := spec_valid(control_plane, real_namespace, "oversized")) and
                         c["status"] == "False" and c, 60, "SpecValid False")
    assert condition["reason"] == "InvalidSpec"
    for field_path, message in errors:
        assert field_path in condition["message"] and message in condition["message"], (field_path, condition)
    status = control_plane.kube_api().get_run(real_namespace, "oversized")["status"]
    assert status["phase"] == "Pending"  # until the spec is fixed: an edit is a new generation, sized again
    assert control_plane.kube_api().list_jobs(real_namespace, {"app.kubernetes.io/managed-by": "rzero-operator"}) == []


def test_every_rzero_init_starting_point_is_accepted_by_the_api_server(control_plane, rzero_crd, real_namespace,
                                                                       tmp_path):
    """`rzero init` for the paper's models on 1, 4, 8 and 2 x 8 GPUs: clean for validate and for the server."""
    from rzero_operator.cli import main

    for model in ("Qwen/Qwen3-4B-Base", "Qwen/Qwen3-8B-Base"):
        for gpus, nodes in ((1, 1), (4, 1), (8, 1), (8, 2)):
            path = tmp_path / f"{model.split('/')[-1].lower()}-{nodes}x{gpus}.yaml"
            assert main(["init", "--model", model, "--gpus", str(gpus), "--nodes", str(nodes), "-o", str(path)]) == 0
            assert validate_file(str(path)) == [], path.name
            result = control_plane.kubectl("create", "--dry-run=server", "-n", real_namespace, "-f", str(path),
                                           check=False)
            assert result.returncode == 0, (path.name, result.stderr)
