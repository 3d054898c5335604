"""GRPO rollouts from vLLM (TRL's colocate mode) where vLLM and a GPU exist; the transformers path elsewhere.

The options and the choice are checked on the CPU; the end-to-end runs need vLLM and CUDA and are skipped
with that reason elsewhere (vLLM has no useful CPU build, DESIGN §2)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from rzero_worker import distributed
from rzero_worker.generation.vllm_backend import engine_options
from rzero_worker.grpo import build_grpo_config, vllm_rollout_options
from rzero_worker.task import DeviceHints, GRPOSettings

HAS_VLLM_AND_CUDA = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
NEEDS_VLLM_AND_CUDA = pytest.mark.skipif(
    not HAS_VLLM_AND_CUDA, reason="needs vllm and a CUDA GPU (no useful CPU build of vLLM): runs on the GPU image")

SETTINGS = GRPOSettings(steps=1, group_size=4, rollout_batch_size=16, update_batch_size=4,
                        max_prompt_tokens=512, max_completion_tokens=1024, rollout_tensor_parallel_size=2,
                        rollout_gpu_memory_utilization=0.6)


def test_rollouts_use_trls_colocated_vllm_engine_sleeping_through_the_updates():
    config = build_grpo_config(SETTINGS, Path("/tmp/unused"), seed=0, world_size=2, use_vllm=True)
    assert (config.use_vllm, config.vllm_mode, config.vllm_tensor_parallel_size) == (True, "colocate", 2)
    assert config.vllm_gpu_memory_utilization == 0.6 and config.vllm_enable_sleep_mode
    assert config.vllm_max_model_length == 512 + 1024  # prompt and completion of the longest rollout
    assert config.vllm_importance_sampling_correction is False  # the ratio is against the actor's own log-probs


def test_without_vllm_rollouts_come_from_the_trained_model_itself():
    assert vllm_rollout_options(SETTINGS, False) == {"use_vllm": False}
    assert build_grpo_config(SETTINGS, Path("/tmp/unused"), seed=0).use_vllm is False


def test_vllm_rollouts_need_cuda_and_are_off_when_the_backend_says_transformers(monkeypatch):
    monkeypatch.setattr("rzero_worker.generation.select.vllm_installed", lambda: True)
    monkeypatch.setattr("rzero_worker.generation.select.cuda_available", lambda: True)
    assert distributed.vllm_rollouts(DeviceHints(), "cuda")
    assert not distributed.vllm_rollouts(DeviceHints(), "cpu")
    assert not distributed.vllm_rollouts(DeviceHints(backend="transformers"), "cuda")


def test_an_inference_engine_spans_tensor_parallel_gpus_and_may_sleep_between_requests():
    options = engine_options("/models/solver", DeviceHints(tensor_parallel_size=4, gpu_memory_utilization=0.5),
                             seed=3, sleep=True)
    assert options["tensor_parallel_size"] == 4 and options["gpu_memory_utilization"] == 0.5
    assert options["enable_sleep_mode"] is True and options["seed"] == 3
    assert "enable_sleep_mode" not in engine_options("/models/solver", DeviceHints())


@NEEDS_VLLM_AND_CUDA
def test_a_solver_phase_trains_with_vllm_rollouts_on_the_gpu(local_location, tiny_model_dir, tmp_path):
    from rzero_worker.phases import load_phase
    from rzero_worker.phases.runner import run_phase
    from rzero_worker.storage import is_committed, open_storage
    from rzero_worker.task import ModelInput, SolverSettings, SolverTask
    from support.artefacts import commit_jsonl_shards, summary_metrics

    rows = [{"id": f"q{i}", "question": f"What is {i}+1?", "label": str(i + 1), "score": 0.5} for i in range(4)]
    commit_jsonl_shards(local_location, "iter-001/label", "train.jsonl", [rows])
    grpo = GRPOSettings(steps=2, group_size=2, rollout_batch_size=4, update_batch_size=2, max_completion_tokens=16,
                        max_prompt_tokens=128, rollout_gpu_memory_utilization=0.3)
    task = SolverTask(run="demo", iteration=1, storage=local_location, output="iter-001/solver",
                      solver=ModelInput(source=str(tiny_model_dir)), dataset="iter-001/label",
                      device=DeviceHints(device="cuda"), settings=SolverSettings(grpo=grpo))

    run_phase(task, load_phase("solver"), cache_dir=tmp_path / "cache")

    storage = open_storage(local_location)
    assert is_committed(storage, task.output) and summary_metrics(storage, task.output)["steps"] == 2


@NEEDS_VLLM_AND_CUDA
def test_a_sleeping_vllm_engine_wakes_for_each_request(tiny_model_dir):
    from rzero_worker.generation.vllm_backend import VLLMGenerator
    from rzero_worker.task import Sampling

    engine = VLLMGenerator(str(tiny_model_dir), DeviceHints(gpu_memory_utilization=0.2), sleep_between_calls=True)
    first = engine.generate([[{"role": "user", "content": "Hi"}]], n=2, sampling=Sampling(max_tokens=4), seed=1)
    again = engine.generate([[{"role": "user", "content": "Hi"}]], n=2, sampling=Sampling(max_tokens=4), seed=1)
    assert first == again and engine.sleeping
