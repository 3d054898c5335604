"""The vLLM generation backend (GPU). `vllm` is imported only when a VLLMGenerator is built, so this
module's helpers (sampling translation, per-prompt seeds, model preparation) work and are tested without it.

Prompts are rendered and tokenized by the same code as the transformers backend (`encode_prompts`) and
handed to vLLM as token ids, so both backends see exactly the same prompt tokens.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from rzero_worker.generation.base import Prompt, check_request, encode_prompts, stop_token_ids
from rzero_worker.task import DeviceHints, Sampling

log = logging.getLogger(__name__)

_COMPLETE_MARK = ".rzero-complete"


def to_vllm_sampling_kwargs(sampling: Sampling, n: int, seed: int) -> dict:
    """`vllm.SamplingParams` keyword arguments for one prompt. Greedy asks for one sample (the caller
    repeats it n times); top_k -1 (our 'off') becomes vLLM's 0."""
    greedy = sampling.temperature == 0
    return {
        "n": 1 if greedy else n,
        "temperature": 0.0 if greedy else sampling.temperature,
        "top_p": 1.0 if greedy else sampling.top_p,
        "top_k": 0 if greedy or sampling.top_k == -1 else sampling.top_k,
        "max_tokens": sampling.max_tokens,
        "seed": seed,
        "skip_special_tokens": True,
    }


def prompt_seed(seed: int, index: int) -> int:
    """A distinct, reproducible seed per prompt. vLLM seeds each request on its own: one seed for all
    would give identical samples to identical prompts (the Challenger's prompts are all the same)."""
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def vllm_dtype(hints: DeviceHints) -> str:
    return "bfloat16" if hints.dtype == "auto" else hints.dtype


def prepare_model_dir(local, cache_dir: Path) -> str:
    """What vLLM should load: a hub id or HF directory as is; a GGUF file first saved once as a
    dequantized Hugging Face checkpoint under cache_dir (keyed by the file's path, size and mtime)."""
    if local.hub or not local.gguf_file:
        return local.pretrained_name
    gguf = Path(local.path) / local.gguf_file
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    target = Path(cache_dir) / "vllm-from-gguf" / key
    if not (target / _COMPLETE_MARK).is_file():
        from rzero_worker.models import load_model, save_checkpoint

        log.info("converting %s to a Hugging Face checkpoint for vLLM in %s", gguf, target)
        model, tokenizer = load_model(local, DeviceHints(device="cpu", dtype="float32"))
        save_checkpoint(model, tokenizer, target)
        (target / _COMPLETE_MARK).write_text("ok")
    return str(target)


def _model_eos(model_dir: str):
    """The eos id(s) of the model's generation_config.json, if it has one."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(model_dir).eos_token_id
    except OSError:
        return None


def engine_options(model_dir: str, hints: DeviceHints, *, seed: int = 0, max_model_len: int | None = None,
                   sleep: bool = False) -> dict:
    """`vllm.LLM` keyword arguments: one engine on `device.tensorParallelSize` GPUs taking
    `device.gpuMemoryUtilization` of each; `sleep`: it can free its memory between requests (sleep mode)."""
    options = {
        "model": model_dir,
        "dtype": vllm_dtype(hints),
        "gpu_memory_utilization": hints.gpu_memory_utilization,
        "tensor_parallel_size": hints.tensor_parallel_size,
        "seed": seed,
        "enable_prefix_caching": True,  # the m answers of one question share its prompt
    }
    if max_model_len:
        options["max_model_len"] = max_model_len
    if sleep:
        options["enable_sleep_mode"] = True
    return options


class VLLMGenerator:
    """Wraps `vllm.LLM` for offline batched generation. `sleep_between_calls`: the engine sleeps (weights to host
    memory, KV cache freed) except while it answers, for an engine that shares its GPU with training."""

    def __init__(self, model_dir: str, hints: DeviceHints, *, seed: int = 0, max_model_len: int | None = None,
                 sleep_between_calls: bool = False):
        from vllm import LLM

        from rzero_worker.models import LocalModel, load_tokenizer

        self.tokenizer = load_tokenizer(LocalModel(path=Path(model_dir)))
        self.llm = LLM(**engine_options(model_dir, hints, seed=seed, max_model_len=max_model_len,
                                        sleep=sleep_between_calls))
        self.stop_ids = stop_token_ids(self.tokenizer, _model_eos(model_dir))
        self.sleeping = False
        self.sleep_between_calls = sleep_between_calls
        if sleep_between_calls:
            self.llm.sleep(level=1)
            self.sleeping = True

    def generate(self, prompts: list[Prompt], *, n: int, sampling: Sampling, seed: int) -> list[list[str]]:
        if self.sleeping:
            self.llm.wake_up()
            self.sleeping = False
        try:
            return self._generate(prompts, n=n, sampling=sampling, seed=seed)
        finally:
            if self.sleep_between_calls:
                self.llm.sleep(level=1)
                self.sleeping = True

    def _generate(self, prompts: list[Prompt], *, n: int, sampling: Sampling, seed: int) -> list[list[str]]:
        from vllm import SamplingParams

        check_request(prompts, n)
        prompt_ids = encode_prompts(self.tokenizer, prompts)
        params = [
            SamplingParams(**to_vllm_sampling_kwargs(sampling, n, prompt_seed(seed, i)), stop_token_ids=self.stop_ids)
            for i in range(len(prompt_ids))
        ]
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in prompt_ids], params, use_tqdm=False)
        repeat = n if sampling.temperature == 0 else 1
        return [[choice.text for choice in output.outputs] * repeat for output in outputs]
