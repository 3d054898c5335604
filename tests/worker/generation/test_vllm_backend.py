"""The vLLM backend: its pure helpers on CPU (no vllm needed); end to end only with vllm and a GPU."""

from __future__ import annotations

import importlib.util

import pytest

from rzero_worker.generation.vllm_backend import (
    VLLMGenerator,
    prepare_model_dir,
    prompt_seed,
    to_vllm_sampling_kwargs,
    vllm_dtype,
)
from rzero_worker.models import LocalModel
from rzero_worker.task import DeviceHints, Sampling


def test_sampling_translates_to_vllm_keywords():
    kwargs = to_vllm_sampling_kwargs(Sampling(temperature=1.0, top_p=0.95, top_k=40, max_tokens=77), n=10, seed=3)
    assert kwargs == {
        "n": 10, "temperature": 1.0, "top_p": 0.95, "top_k": 40, "max_tokens": 77, "seed": 3,
        "skip_special_tokens": True,
    }


def test_top_k_off_becomes_vllm_zero():
    assert to_vllm_sampling_kwargs(Sampling(top_k=-1), n=2, seed=0)["top_k"] == 0


def test_greedy_asks_vllm_for_one_sample_with_neutral_filters():
    kwargs = to_vllm_sampling_kwargs(Sampling(temperature=0, top_p=0.5, top_k=40, max_tokens=5), n=8, seed=0)
    assert (kwargs["n"], kwargs["temperature"], kwargs["top_p"], kwargs["top_k"]) == (1, 0.0, 1.0, 0)


def test_prompt_seeds_are_distinct_per_prompt_and_reproducible():
    seeds = [prompt_seed(7, i) for i in range(1000)]
    assert len(set(seeds)) == 1000 and seeds == [prompt_seed(7, i) for i in range(1000)]
    assert prompt_seed(8, 0) != prompt_seed(7, 0)
    assert all(0 <= s < 2**31 for s in seeds)


def test_dtype_auto_means_bfloat16_on_vllm():
    assert vllm_dtype(DeviceHints()) == "bfloat16"
    assert vllm_dtype(DeviceHints(dtype="float16")) == "float16"


def test_hf_directories_and_hub_ids_go_to_vllm_as_they_are(tiny_model_dir, tmp_path):
    assert prepare_model_dir(LocalModel(path=tiny_model_dir), tmp_path) == str(tiny_model_dir)
    assert prepare_model_dir(LocalModel(path="org/model", hub=True), tmp_path) == "org/model"


@pytest.mark.slow
def test_a_gguf_model_is_converted_once_to_a_dense_hf_checkpoint(smollm2_gguf, tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    local = LocalModel(path=smollm2_gguf.parent, gguf_file=smollm2_gguf.name)
    converted = prepare_model_dir(local, tmp_path)
    stamp = (tmp_path / "vllm-from-gguf").stat().st_mtime_ns
    assert prepare_model_dir(local, tmp_path) == converted
    assert (tmp_path / "vllm-from-gguf").stat().st_mtime_ns == stamp
    assert not hasattr(AutoConfig.from_pretrained(converted), "quantization_config")
    assert AutoTokenizer.from_pretrained(converted).eos_token == "<|im_end|>"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None or not _cuda(), reason="needs vllm and a CUDA GPU")
def test_vllm_generates_n_samples_and_greedy_matches_transformers(tiny_model_dir):
    from rzero_worker.generation.hf import TransformersGenerator
    from rzero_worker.models import load_model

    hints = DeviceHints(device="cuda", dtype="float32", gpu_memory_utilization=0.3)
    generator = VLLMGenerator(str(tiny_model_dir), hints, seed=0)
    prompts = [[{"role": "user", "content": "What is 2+2?"}], "raw prompt"]
    sampled = generator.generate(prompts, n=4, sampling=Sampling(max_tokens=8), seed=1)
    assert [len(c) for c in sampled] == [4, 4]
    assert generator.generate(prompts, n=4, sampling=Sampling(max_tokens=8), seed=1) == sampled
    greedy = Sampling(temperature=0, max_tokens=8)
    model, tokenizer = load_model(LocalModel(path=tiny_model_dir), hints)
    expected = TransformersGenerator(model, tokenizer).generate(prompts, n=2, sampling=greedy, seed=0)
    assert generator.generate(prompts, n=2, sampling=greedy, seed=0) == expected
