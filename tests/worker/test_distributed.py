"""rzero_worker.distributed: rank arithmetic, device pinning, FSDP settings; one process is the identity."""

from __future__ import annotations

import pytest

from rzero_worker import distributed
from rzero_worker.phases.context import ConfigurationError
from rzero_worker.task import DeviceHints, GRPOSettings

TORCHRUN = {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"}


def test_a_rank_knows_its_place_from_torchruns_variables(monkeypatch):
    for name, value in TORCHRUN.items():
        monkeypatch.setenv(name, value)
    ranks = distributed.current()
    assert (ranks.rank, ranks.world_size, ranks.local_rank, ranks.local_world_size) == (5, 8, 1, 4)
    assert ranks.distributed and not ranks.is_main and not ranks.is_local_main
    assert ranks.node_main == 4  # node 1's first rank


def test_one_process_is_not_distributed_and_every_collective_is_the_identity(monkeypatch):
    for name in (*TORCHRUN, "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert not distributed.current().distributed and distributed.current().is_main
    assert distributed.all_gather(["a"]) == [["a"]]
    assert distributed.broadcast({"x": 1}) == {"x": 1}
    distributed.barrier()


def test_parts_split_contiguously_and_add_up():
    parts = [distributed.split_evenly(10, 4, i) for i in range(4)]
    assert [(p.start, p.stop) for p in parts] == [(0, 3), (3, 6), (6, 8), (8, 10)]
    assert [distributed.split_evenly(2, 4, i).stop - distributed.split_evenly(2, 4, i).start for i in range(4)] == [1, 1, 0, 0]
    assert distributed.slices([3, 0, 2]) == [slice(0, 3), slice(3, 3), slice(3, 5)]


def test_each_engine_owns_its_own_block_of_gpus():
    visible = ["0", "1", "2", "3", "4", "5", "6", "7"]
    assert distributed.engine_devices(1, 2, visible) == ["2", "3"]
    assert distributed.engine_devices(0, 1, ["GPU-a", "GPU-b"]) == ["GPU-a"]
    with pytest.raises(ConfigurationError, match="needs 2 GPUs but the pod shows 3"):
        distributed.engine_devices(1, 2, visible[:3])


def test_pinning_restricts_what_the_rank_sees(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    distributed.pin_visible_devices(1, 2)
    import os

    assert os.environ["CUDA_VISIBLE_DEVICES"] == "6,7"


def settings(**changes) -> GRPOSettings:
    return GRPOSettings(steps=1, group_size=2, rollout_batch_size=4, update_batch_size=2, **changes)


def test_fsdp_is_a_full_shard_of_gpu_ranks_with_sharded_checkpoints(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    config = distributed.fsdp_config(settings(gradient_checkpointing=True, cpu_offload=True), "cuda")
    assert config == {"version": 2, "reshard_after_forward": True, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                      "cpu_offload": True, "state_dict_type": "SHARDED_STATE_DICT", "activation_checkpointing": True}
    assert distributed.fsdp_config(settings(), "cpu") is None  # gloo ranks train as DDP
    assert distributed.fsdp_config(settings(sharding="ddp"), "cuda") is None
    hints = DeviceHints(device="cuda")
    assert distributed.training_hints(hints, settings(), "cuda").device == "cpu"  # shards go to the GPU, not all
    assert distributed.training_hints(hints, settings(sharding="ddp"), "cuda").device == "cuda"


def test_outside_torchrun_a_gpu_process_does_not_shard(monkeypatch):
    for name in (*TORCHRUN, "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.fsdp_config(settings(), "cuda") is None


def test_a_ranks_helpers_get_its_share_of_the_cores(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 32)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert distributed.cpu_share() == 4


def test_cpu_offload_is_refused_without_vllm_rollouts(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ConfigurationError, match="cpuOffload needs vLLM rollouts"):
        distributed.check_offload(settings(cpu_offload=True), "cuda", use_vllm=False)
    distributed.check_offload(settings(cpu_offload=True), "cuda", use_vllm=True)
    distributed.check_offload(settings(cpu_offload=True), "cpu", use_vllm=False)  # CPU ranks do not shard


def test_a_task_must_carry_the_sized_offload_and_rollout_share_where_they_matter(monkeypatch):
    from rzero_worker.grpo import vllm_rollout_options

    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ConfigurationError, match=r"settings.grpo.cpuOffload is unset: the operator .* size it"):
        distributed.fsdp_config(settings(), "cuda")  # left at auto: only the operator knows the pod's GPUs
    with pytest.raises(ConfigurationError, match="settings.grpo.rolloutGpuMemoryUtilization is unset"):
        vllm_rollout_options(settings(cpu_offload=False), use_vllm=True)
    assert vllm_rollout_options(settings(), use_vllm=False) == {"use_vllm": False}  # unset is fine where unused
    assert distributed.fsdp_config(settings(), "cpu") is None
    assert vllm_rollout_options(settings(rollout_gpu_memory_utilization=0.6), True)["vllm_gpu_memory_utilization"] == 0.6


def test_a_verifier_with_gpus_of_its_own_takes_the_pods_last_ones_never_a_label_engines():
    pod = ["0", "1", "2", "3", "4", "5"]  # label engines on 0-3 (resources.gpus 4), the Verifier's 2 after them
    assert distributed.verifier_devices(pod, 2) == ["4", "5"]
    assert distributed.verifier_devices(["GPU-a", "GPU-b"], 1) == ["GPU-b"]
    assert distributed.verifier_devices(pod, 0) is None  # colocated: in the rank, on its own GPU
    assert distributed.verifier_devices([], 2) is None  # CPU: the field changes nothing
    with pytest.raises(ConfigurationError, match="verifier.gpus 2 leaves no GPU for the label engines"):
        distributed.verifier_devices(["0", "1"], 2)


def test_a_pinned_rank_still_knows_the_pods_gpus_for_the_verifier(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3,4,5")
    monkeypatch.delenv(distributed.POD_DEVICES_ENV, raising=False)
    distributed.pin_visible_devices(0, 2)  # rank 0 of 2 label engines of tensorParallelSize 2
    assert distributed.visible_devices() == ["0", "1"]
    assert distributed.verifier_devices(distributed.pod_devices(), 2) == ["4", "5"]
