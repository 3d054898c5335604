"""The Job builders: what one phase attempt looks like on a cluster (pure, no API server)."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from rzero_operator.api.spec import RZeroRunSpec
from rzero_operator.kube import naming
from rzero_operator.kube.jobs import RunRef, build_phase_objects
from rzero_operator.kube.pod import StorageDefaults
from rzero_operator.plan import StartPhase, attempt_name
from rzero_operator.sizing_auto import resolve
from rzero_operator.tasks import build_tasks

K8S_VERSION = "1.33.0"
RUN = RunRef(name="demo", namespace="ml", uid="0f6b2c2e-1111-2222-3333-444455556666")
SECRET_VALUE = "AKIA-THIS-MUST-NEVER-APPEAR"


def make_spec(**overrides) -> RZeroRunSpec:
    """A spec as the reconciler hands it to the builders: its auto fields sized (sizing_auto.resolve)."""
    doc = {
        "model": "builtin:smollm2-135m-instruct",
        "iterations": 1,
        "storage": {"uri": "s3://bucket/runs", "endpoint": "http://minio:9000",
                    "secretRef": {"name": "s3-creds"}},
    }
    doc.update(overrides)
    return resolve(RZeroRunSpec.model_validate(doc))


def start_for(spec: RZeroRunSpec, iteration: int, phase: str, attempt: int = 1) -> StartPhase:
    tasks = build_tasks(spec, f"s3://bucket/runs/ml/demo/{RUN.uid}", RUN.name, iteration, phase)
    name = attempt_name(RUN.name, iteration, phase, attempt)
    return StartPhase(iteration=iteration, phase=phase, attempt=attempt, name=name, tasks=tasks)


def validate_all(objects) -> None:
    for obj in (objects.config_map, objects.service, objects.job):
        if obj is not None:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def container(job: dict) -> dict:
    return job["spec"]["template"]["spec"]["containers"][0]


def test_single_task_job_runs_the_worker_on_the_mounted_task_file():
    spec = make_spec()
    objects = build_phase_objects(RUN, spec, start_for(spec, 1, "challenger"))
    validate_all(objects)
    job = objects.job
    assert job["metadata"]["name"] == "demo-i001-challenger-a1"
    # one GPU (the default): one training rank, still started by the launcher (FSDP, CPU offload, one code path)
    assert container(job)["command"] == ["rzero", "worker", "challenger", "--task", "/etc/rzero/task.json",
                                         "--nproc-per-node", "1"]
    task = json.loads(objects.tasks["task.json"])
    assert task["phase"] == "challenger" and task["output"] == "iter-001/challenger"
    mounts = {m["mountPath"]: m for m in container(job)["volumeMounts"]}
    assert mounts["/etc/rzero"]["readOnly"] is True
    # The task travels in the Job: a pod annotation the downward API mounts as /etc/rzero/task.json.
    assert objects.config_map is None
    assert job["spec"]["template"]["metadata"]["annotations"]["rzero.dev/task.json"] == objects.tasks["task.json"]
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["task"]["downwardAPI"]["items"] == [
        {"path": "task.json", "fieldRef": {"fieldPath": "metadata.annotations['rzero.dev/task.json']"}}]
    assert "completionMode" not in job["spec"] and objects.service is None


def test_every_object_carries_the_standard_labels_and_a_controller_owner_reference():
    spec = make_spec()
    objects = build_phase_objects(RUN, spec, start_for(spec, 1, "label", attempt=2))
    for obj in (objects.job, objects.job["spec"]["template"]):
        labels = obj["metadata"]["labels"]
        assert labels[naming.APP_LABEL] == "rzero"
        assert labels[naming.MANAGED_BY_LABEL] == "rzero-operator"
        assert labels[naming.RUN_LABEL] == "demo"
        assert labels[naming.ITERATION_LABEL] == "1"
        assert labels[naming.PHASE_LABEL] == "label"
        assert labels[naming.ATTEMPT_LABEL] == "2"
    (owner,) = objects.job["metadata"]["ownerReferences"]
    assert owner == {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "name": "demo", "uid": RUN.uid,
                     "controller": True, "blockOwnerDeletion": True}


@pytest.mark.parametrize("phase", ["challenger", "generate", "label", "solver", "evaluate"])
def test_tracker_credentials_reach_every_phase_job_only_as_secret_references(phase):
    spec = make_spec(tracking={
        "wandb": {"mode": "offline", "apiKeySecret": {"name": "wandb", "key": "api-key"}},
        "mlflow": {"trackingUri": "http://mlflow:5000", "tokenSecret": {"name": "mlflow", "key": "token"}},
    })
    objects = build_phase_objects(RUN, spec, start_for(spec, 1, phase))
    env = {item["name"]: item for item in container(objects.job)["env"]}
    assert env["WANDB_API_KEY"] == {"name": "WANDB_API_KEY", "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "api-key"}}}
    assert env["MLFLOW_TRACKING_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "mlflow", "key": "token"}
    task = json.loads(next(iter(objects.tasks.values())))
    assert task["tracking"]["wandb"]["apiKeySecret"] == {"name": "wandb", "key": "api-key"}  # the name, not a value
    assert task["tracking"]["mlflow"]["trackingUri"] == "http://mlflow:5000"


def test_no_tracker_credentials_without_spec_tracking():
    spec = make_spec()
    env = {item["name"] for item in container(build_phase_objects(RUN, spec, start_for(spec, 1, "solver")).job)["env"]}
    assert not env & {"WANDB_API_KEY", "MLFLOW_TRACKING_TOKEN"}


def test_credentials_travel_only_as_secret_references():
    spec = make_spec(resources={"env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}]})
    objects = build_phase_objects(RUN, spec, start_for(spec, 1, "solver"))
    env = {item["name"]: item for item in container(objects.job)["env"]}
    assert env["AWS_ACCESS_KEY_ID"] == {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"}}}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "s3-creds", "key": "AWS_SECRET_ACCESS_KEY"}
    assert "value" not in env["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio:9000"
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf", "key": "token"}
    assert "secretAccessKey" not in json.dumps(objects.tasks) and SECRET_VALUE not in json.dumps(objects.job)


def test_only_the_evaluate_jobs_that_judge_a_win_rate_get_the_oracle_endpoints_key():
    """Open-ended: iteration 0's evaluation has no win rate to judge (there is no Solver to compare yet), so
    its Job gets no oracle key; from iteration 1 the evaluate Job gets it, as a Secret reference only."""
    oracle = {"url": "https://judge.example/v1", "model": "judge", "apiKeyEnv": "ORACLE_KEY",
              "apiKeySecret": {"name": "oracle-key", "key": "token"}}
    spec = make_spec(iterations=2, task={"kind": "open-ended", "description": "short persuasive emails",
                                         "heldOut": {"uri": "s3://tasks/held.jsonl"}}, oracle={"endpoint": oracle})
    base = build_phase_objects(RUN, spec, start_for(spec, 0, "evaluate"))
    assert all(e["name"] != "ORACLE_KEY" for e in container(base.job)["env"])
    for iteration in (1, 2):
        later = build_phase_objects(RUN, spec, start_for(spec, iteration, "evaluate"))
        keys = [e for e in container(later.job)["env"] if e["name"] == "ORACLE_KEY"]
        assert keys == [{"name": "ORACLE_KEY", "valueFrom": {"secretKeyRef": {"name": "oracle-key", "key": "token"}}}]
        validate_all(later)


def test_operator_storage_defaults_fill_in_what_the_spec_leaves_empty():
    defaults = StorageDefaults(endpoint="http://minio.rzero-system:9000", secret_name="rzero-s3")
    bare = make_spec(storage={"uri": "s3://bucket/runs"})
    env = {item["name"]: item for item in container(
        build_phase_objects(RUN, bare, start_for(bare, 1, "label"), storage_defaults=defaults).job)["env"]}
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio.rzero-system:9000"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "rzero-s3", "key": "AWS_ACCESS_KEY_ID"}
    # The spec's own settings win over the operator's defaults.
    own = make_spec()
    env = {item["name"]: item for item in container(
        build_phase_objects(RUN, own, start_for(own, 1, "label"), storage_defaults=defaults).job)["env"]}
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio:9000"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "s3-creds"


def test_pods_are_hardened_and_failures_follow_the_exit_code_contract():
    spec = make_spec(phaseDeadlineSeconds=3600)
    objects = build_phase_objects(RUN, spec, start_for(spec, 0, "evaluate"))
    job_spec = objects.job["spec"]
    pod = job_spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(objects.job)["securityContext"]
    assert security == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    writable = {m["mountPath"] for m in container(objects.job)["volumeMounts"] if not m.get("readOnly")}
    assert {"/tmp", "/cache"} <= writable
    assert container(objects.job)["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert job_spec["backoffLimit"] == 0 and job_spec["activeDeadlineSeconds"] == 3600
    assert job_spec["ttlSecondsAfterFinished"] > 0
    rules = job_spec["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob" and rules[0]["onExitCodes"]["values"] == [2]
    assert rules[1]["action"] == "Ignore" and rules[1]["onPodConditions"][0]["type"] == "DisruptionTarget"


def test_resources_placement_and_identity_come_from_the_spec():
    spec = make_spec(resources={
        "image": "registry.example/rzero/worker:v9", "gpus": 2, "cpu": "8", "memory": "64Gi",
        "nodeSelector": {"gpu": "h100"}, "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
        "priorityClassName": "training", "serviceAccountName": "rzero-worker",
        "phases": {"evaluate": {"gpus": 1, "memory": "16Gi"}},
    })
    objects = build_phase_objects(RUN, spec, start_for(spec, 1, "solver"))
    validate_all(objects)
    pod = objects.job["spec"]["template"]["spec"]
    assert container(objects.job)["image"] == "registry.example/rzero/worker:v9"
    assert container(objects.job)["resources"] == {
        "requests": {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "2"},
        "limits": {"memory": "64Gi", "nvidia.com/gpu": "2"},
    }
    assert pod["nodeSelector"] == {"gpu": "h100"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["affinity"]["nodeAffinity"]
    assert pod["priorityClassName"] == "training" and pod["serviceAccountName"] == "rzero-worker"
    evaluate = build_phase_objects(RUN, spec, start_for(spec, 1, "evaluate"))
    assert container(evaluate.job)["resources"]["limits"] == {"memory": "16Gi", "nvidia.com/gpu": "1"}


def test_the_operator_default_image_applies_when_the_spec_sets_none(monkeypatch):
    monkeypatch.setenv("RZERO_WORKER_IMAGE", "mirror.local/rzero-worker:pinned")
    spec = make_spec()
    objects = build_phase_objects(RUN, spec, start_for(spec, 1, "generate"))
    assert container(objects.job)["image"] == "mirror.local/rzero-worker:pinned"


def test_sharded_phase_is_an_indexed_job_reading_its_shard_task_from_the_completion_index():
    spec = make_spec(sharding={"generate": 3}, generation={"numQuestions": 30})
    objects = build_phase_objects(RUN, spec, start_for(spec, 1, "generate"))
    validate_all(objects)
    job_spec = objects.job["spec"]
    assert (job_spec["completionMode"], job_spec["completions"], job_spec["parallelism"]) == ("Indexed", 3, 3)
    assert container(objects.job)["command"][-1] == "/etc/rzero/task-$(JOB_COMPLETION_INDEX).json"
    shards = [json.loads(objects.tasks[f"task-{i}.json"])["shard"] for i in range(3)]
    assert shards == [{"index": i, "count": 3} for i in range(3)]


def test_a_sharded_evaluation_is_an_indexed_job_too():
    spec = make_spec(sharding={"evaluate": 2})
    objects = build_phase_objects(RUN, spec, start_for(spec, 0, "evaluate"))
    validate_all(objects)
    assert (objects.job["spec"]["completionMode"], objects.job["spec"]["completions"]) == ("Indexed", 2)
    tasks = [json.loads(objects.tasks[f"task-{i}.json"]) for i in range(2)]
    assert [task["output"] for task in tasks] == [f"iter-000/evaluate/shard-0000{i}-of-00002" for i in range(2)]


def test_a_training_phase_with_8_gpus_on_one_node_runs_8_ranks():
    spec = make_spec(resources={"gpus": 1, "phases": {"solver": {"gpus": 8}, "challenger": {"gpus": 8}}},
                     challenger={"solverGpus": 2})
    solver = build_phase_objects(RUN, spec, start_for(spec, 1, "solver"))
    challenger = build_phase_objects(RUN, spec, start_for(spec, 1, "challenger"))
    validate_all(solver)
    validate_all(challenger)
    assert container(solver.job)["command"] == ["rzero", "worker", "solver", "--task", "/etc/rzero/task.json",
                                                "--nproc-per-node", "8"]
    assert container(solver.job)["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert "completionMode" not in solver.job["spec"] and solver.service is None  # one pod: no rendezvous service
    # the Challenger trains on the 6 GPUs its 2 Solver GPUs leave
    assert container(challenger.job)["command"][-2:] == ["--nproc-per-node", "6"]


def test_generation_and_labelling_pods_run_one_rank_per_vllm_engine():
    spec = make_spec(resources={"gpus": 8}, device={"tensorParallelSize": 2}, sharding={"label": 2})
    generate = build_phase_objects(RUN, spec, start_for(spec, 1, "generate"))
    label = build_phase_objects(RUN, spec, start_for(spec, 1, "label"))
    validate_all(generate)
    validate_all(label)
    assert container(generate.job)["command"][-2:] == ["--nproc-per-node", "4"]  # 8 GPUs / 2 per engine
    assert container(label.job)["command"] == ["rzero", "worker", "label", "--task",
                                               "/etc/rzero/task-$(JOB_COMPLETION_INDEX).json", "--nproc-per-node", "4"]
    one_gpu = make_spec(resources={"gpus": 1})
    assert container(build_phase_objects(RUN, one_gpu, start_for(one_gpu, 1, "generate")).job)["command"][-1] == (
        "/etc/rzero/task.json")  # one engine: no ranks to start


def test_multi_node_training_starts_ranks_on_every_pod_with_rank_from_the_index_and_a_headless_service():
    spec = make_spec(resources={"gpus": 8, "nodes": 4})
    objects = build_phase_objects(RUN, spec, start_for(spec, 2, "solver"))
    validate_all(objects)
    name = objects.job["metadata"]["name"]
    service = objects.service
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": name}
    assert objects.job["spec"]["template"]["spec"]["subdomain"] == service["metadata"]["name"]
    assert (objects.job["spec"]["completionMode"], objects.job["spec"]["completions"]) == ("Indexed", 4)
    command = container(objects.job)["command"]
    assert command[:5] == ["rzero", "worker", "solver", "--task", "/etc/rzero/task.json"]
    assert command[command.index("--nnodes") + 1] == "4"
    assert command[command.index("--nproc-per-node") + 1] == "8"
    assert command[command.index("--node-rank") + 1] == "$(NODE_RANK)"
    assert command[command.index("--master-addr") + 1] == "$(MASTER_ADDR)"
    env = {item["name"]: item for item in container(objects.job)["env"]}
    assert env["MASTER_ADDR"]["value"] == f"{name}-0.{service['metadata']['name']}"
    assert env["NNODES"]["value"] == "4"
    assert "job-completion-index" in env["NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"]
    # Data-parallel phases are not multi-node: generation in the same run is a plain single pod.
    generate = build_phase_objects(RUN, spec, start_for(spec, 2, "generate"))
    assert generate.service is None and "--nnodes" not in container(generate.job)["command"]
    validate_all(generate)


def test_a_queue_name_adds_the_kueue_label_and_creates_the_job_suspended():
    spec = make_spec(queueName="gpu-queue")
    objects = build_phase_objects(RUN, spec, start_for(spec, 1, "label"))
    validate_all(objects)
    assert objects.job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    assert objects.job["spec"]["suspend"] is True
    plain = build_phase_objects(RUN, make_spec(), start_for(make_spec(), 1, "label"))
    assert "suspend" not in plain.job["spec"]


def test_job_names_stay_deterministic_dns_labels_for_long_run_names():
    long_run = RunRef(name="a" * 63, namespace="ml", uid=RUN.uid)
    spec = make_spec()
    start = StartPhase(iteration=12, phase="generate", attempt=10, name=attempt_name(long_run.name, 12, "generate", 10),
                       tasks=build_tasks(spec, "s3://bucket/x", long_run.name, 12, "generate"))
    first = build_phase_objects(long_run, spec, start)
    again = build_phase_objects(long_run, spec, start)
    assert first == again
    assert len(first.job["metadata"]["name"]) <= 63
    assert len(first.job["metadata"]["labels"][naming.RUN_LABEL]) <= 63
    validate_all(first)


def test_a_start_without_tasks_is_refused():
    spec = make_spec()
    start = StartPhase(iteration=1, phase="solver", attempt=1, name="demo-i001-solver-a1", tasks=[])
    with pytest.raises(ValueError, match="no tasks"):
        build_phase_objects(RUN, spec, start)


def test_tasks_too_large_for_annotations_travel_in_a_configmap_mounted_at_the_same_paths(monkeypatch):
    spec = make_spec(sharding={"generate": 3}, generation={"numQuestions": 30})
    inline = build_phase_objects(RUN, spec, start_for(spec, 1, "generate"))
    size = sum(len(f"rzero.dev/{file}") + len(text) for file, text in inline.tasks.items())
    monkeypatch.setattr("rzero_operator.kube.jobs.INLINE_TASKS_LIMIT", size - 1)
    objects = build_phase_objects(RUN, spec, start_for(spec, 1, "generate"))
    validate_all(objects)
    assert objects.config_map["data"] == inline.tasks == objects.tasks
    assert objects.config_map["metadata"]["ownerReferences"] == objects.job["metadata"]["ownerReferences"]
    assert "annotations" not in objects.job["spec"]["template"]["metadata"]
    volumes = {v["name"]: v for v in objects.job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["task"] == {"name": "task", "configMap": {"name": "demo-i001-generate-a1"}}
    assert container(objects.job)["command"] == container(inline.job)["command"]
    monkeypatch.setattr("rzero_operator.kube.jobs.INLINE_TASKS_LIMIT", size)
    assert build_phase_objects(RUN, spec, start_for(spec, 1, "generate")).config_map is None


def test_each_shards_task_is_a_file_of_its_own_in_every_pod():
    spec = make_spec(sharding={"generate": 3}, generation={"numQuestions": 30})
    objects = build_phase_objects(RUN, spec, start_for(spec, 1, "generate"))
    volumes = {v["name"]: v for v in objects.job["spec"]["template"]["spec"]["volumes"]}
    assert [item["path"] for item in volumes["task"]["downwardAPI"]["items"]] == [f"task-{i}.json" for i in range(3)]
    annotations = objects.job["spec"]["template"]["metadata"]["annotations"]
    assert {key: json.loads(value)["shard"]["index"] for key, value in annotations.items()} == {
        f"rzero.dev/task-{i}.json": i for i in range(3)}


def test_a_label_pod_requests_the_verifiers_own_gpus_beside_its_engines():
    spec = make_spec(resources={"gpus": 4}, labeling={"verifier": "veto"}, verifier={"gpus": 2})
    label = build_phase_objects(RUN, spec, start_for(spec, 1, "label"))
    validate_all(label)
    assert container(label.job)["resources"]["limits"]["nvidia.com/gpu"] == "6"  # 4 label engines + 2 for the Verifier
    assert container(label.job)["command"][-2:] == ["--nproc-per-node", "4"]  # one rank per label engine
    generate = build_phase_objects(RUN, spec, start_for(spec, 1, "generate"))
    assert container(generate.job)["resources"]["limits"]["nvidia.com/gpu"] == "4"  # only the label pod judges
