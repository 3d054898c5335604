"""Choosing and building the generation backend from the task's device hints.

auto: vLLM when it is installed and a CUDA device is available (and device is not forced to cpu),
else transformers. Forcing `vllm` where it cannot run is a configuration error naming device.backend.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rzero_worker.generation.base import Generator
from rzero_worker.task import DeviceHints


class BackendUnavailableError(ValueError):
    """The task forces a backend this machine cannot run: a configuration error, not worth retrying."""


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def choose_backend(hints: DeviceHints, *, has_vllm: bool | None = None, has_cuda: bool | None = None) -> str:
    """'vllm' or 'transformers' (has_vllm / has_cuda default to what this machine has)."""
    has_vllm = vllm_installed() if has_vllm is None else has_vllm
    has_cuda = (hints.device != "cpu" and cuda_available()) if has_cuda is None else has_cuda
    if hints.backend == "transformers":
        return "transformers"
    if hints.backend == "vllm":
        if not has_vllm:
            raise BackendUnavailableError(
                "device.backend is 'vllm' but vllm is not installed (pip install 'rzero[vllm]' "
                "or set device.backend to 'auto' or 'transformers')"
            )
        if hints.device == "cpu" or not has_cuda:
            raise BackendUnavailableError("device.backend is 'vllm' but no CUDA device is in use; vLLM needs a GPU")
        return "vllm"
    return "vllm" if has_vllm and has_cuda and hints.device != "cpu" else "transformers"


def make_generator(
    local, hints: DeviceHints, *, cache_dir: Path | None = None, batch_size: int = 16, seed: int = 0
) -> Generator:
    """A generator for the resolved model `local` (a models.LocalModel). On vLLM, cache_dir holds the
    dequantized Hugging Face copy of a GGUF model (required then)."""
    backend = choose_backend(hints)
    if backend == "vllm":
        from rzero_worker.generation.vllm_backend import VLLMGenerator, prepare_model_dir

        if cache_dir is None and local.gguf_file:
            raise ValueError("make_generator: a GGUF model on vLLM needs a cache_dir for its converted copy")
        return VLLMGenerator(prepare_model_dir(local, cache_dir), hints, seed=seed)
    from rzero_worker.generation.hf import TransformersGenerator
    from rzero_worker.models import load_model

    model, tokenizer = load_model(local, hints)
    return TransformersGenerator(model, tokenizer, batch_size=batch_size)
