"""On the cluster a run is sized and refused as `rzero validate` sizes and refuses it (issue 17).

The minimal manifest (a model and a bucket) runs: its unset cpuOffload, rolloutGpuMemoryUtilization and memory
are sized from the model and the pod's GPUs, and the Jobs carry the sized values. A run that cannot fit is
refused with InvalidSpec in `rzero validate`'s words and starts no Job; a run that only warns (idle GPUs) starts,
and each warning is one Warning event per generation, not one per resync.
"""

from __future__ import annotations

import yaml

from rzero_operator.cli import main
from support.kube import wait_for

MINIMAL = {"model": "Qwen/Qwen3-4B-Base", "storage": {"uri": "s3://rzero-test/runs"}}


def condition(status: dict, type_: str) -> dict:
    return next(c for c in status.get("conditions", []) if c["type"] == type_)


def posted(kube_emulator, namespace: str, reason: str) -> list[dict]:
    """Every Event POST with this reason (a repeated name answered 409 counts too: it is still a request)."""
    return [r.data for r in kube_emulator.requests()
            if r.method == "POST" and r.path == f"/api/v1/namespaces/{namespace}/events" and r.data.get("reason") == reason]


def validate_says(tmp_path, spec: dict, capsys, level: str) -> tuple[int, list[str]]:
    """`rzero validate`'s exit code and its messages of `level` (error, warning), without the file name."""
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun",
                                    "metadata": {"name": "demo"}, "spec": spec}))
    code = main(["validate", str(path)])
    lines = [line.removeprefix(f"{path}: ") for line in capsys.readouterr().err.splitlines()]
    return code, [line for line in lines if line.split(": ")[1] == level]


def container(job: dict) -> dict:
    return job["spec"]["template"]["spec"]["containers"][0]


def test_the_minimal_manifest_runs_with_offload_and_memory_sized_for_its_one_gpu(
        operators, job_driver, kube_emulator, tmp_path, capsys):
    assert validate_says(tmp_path, MINIMAL, capsys, "warning") == (0, [])
    operators.start()
    job_driver.create_run("demo", MINIMAL)
    job_driver.succeed(job_driver.wait_for_job("demo-i000-evaluate-a1"))
    challenger = job_driver.wait_for_job("demo-i001-challenger-a1")
    (task,) = job_driver.tasks(challenger)
    grpo = task["settings"]["grpo"]
    assert (grpo["cpuOffload"], grpo["rolloutGpuMemoryUtilization"]) == (True, 0.7)  # 70 GiB of state cannot stay
    limits = container(challenger)["resources"]["limits"]
    assert (limits["nvidia.com/gpu"], limits["memory"]) == ("1", "96Gi")  # offloaded state + sleeping Solver
    assert container(challenger)["command"][-2:] == ["--nproc-per-node", "1"]
    status = job_driver.status("demo")
    assert condition(status, "SpecValid")["status"] == "True" and condition(status, "SpecValid")["message"] == ""
    assert posted(kube_emulator, job_driver.namespace, "SizingWarning") == []


def test_a_run_that_cannot_fit_is_refused_in_the_words_of_rzero_validate_and_starts_no_job(
        operators, job_driver, kube_emulator, tmp_path, capsys):
    spec = {**MINIMAL, "challenger": {"grpo": {"cpuOffload": False, "rolloutGpuMemoryUtilization": 0.7}}}
    code, refused = validate_says(tmp_path, spec, capsys, "error")
    assert code == 2 and refused[0].startswith("spec.challenger.grpo.rolloutGpuMemoryUtilization: error: challenger: "
                                               "the vLLM rollout engine takes 0.7 of the 79.6 GiB GPU")
    operators.start()
    job_driver.create_run("demo", spec)
    status = wait_for(lambda: (s := job_driver.status("demo")).get("conditions") and s, 10, "a condition")
    spec_valid = condition(status, "SpecValid")
    assert (spec_valid["status"], spec_valid["reason"]) == ("False", "InvalidSpec")
    assert spec_valid["message"] == "; ".join(refused)
    assert [e["message"] for e in posted(kube_emulator, job_driver.namespace, "InvalidSpec")][-1] == \
        "invalid spec: " + "; ".join(refused)
    assert job_driver.jobs() == []
    job_driver.patch_spec("demo", {"challenger": {"grpo": {"cpuOffload": True}}})  # the fix validate names
    job_driver.wait_for_job("demo-i000-evaluate-a1")


def test_a_run_that_only_warns_starts_and_posts_each_warning_once_per_generation(
        operators, job_driver, kube_emulator, tmp_path, capsys):
    spec = {**MINIMAL, "resources": {"gpus": 2}}
    code, warned = validate_says(tmp_path, spec, capsys, "warning")
    assert code == 0 and warned == ["spec.resources.gpus: warning: 1 of the evaluate pod's 2 GPUs stay idle: "
                                    "evaluation runs one engine on spec.device.tensorParallelSize 1 GPUs"]
    operators.start()
    job_driver.create_run("demo", spec)
    job_driver.succeed(job_driver.wait_for_job("demo-i000-evaluate-a1"))
    job_driver.wait_for_job("demo-i001-challenger-a1")  # a few reconciles later
    events = posted(kube_emulator, job_driver.namespace, "SizingWarning")
    assert [(e["type"], e["message"]) for e in events] == [("Warning", warned[0])]
    assert condition(job_driver.status("demo"), "SpecValid")["message"] == f"sizing warnings: {warned[0]}"
    job_driver.patch_spec("demo", {"iterations": 2})  # a new generation is judged (and warned about) again
    wait_for(lambda: len(posted(kube_emulator, job_driver.namespace, "SizingWarning")) == 2, 10, "the second warning")
