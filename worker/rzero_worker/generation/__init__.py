"""Generation behind one seam: `Generator.generate(prompts, n=, sampling=, seed=)`.

Backends: `hf.TransformersGenerator` (CPU and GPU) and `vllm_backend.VLLMGenerator` (GPU, only when
vllm is installed). `make_generator` picks one from the task's device hints. Importing this package
imports no ML library; the backends import theirs when used.
"""

from rzero_worker.generation.base import Generator, Prompt, encode_prompts, render_prompts
from rzero_worker.generation.select import BackendUnavailableError, choose_backend, make_generator

__all__ = [
    "BackendUnavailableError",
    "Generator",
    "Prompt",
    "choose_backend",
    "encode_prompts",
    "make_generator",
    "render_prompts",
]
