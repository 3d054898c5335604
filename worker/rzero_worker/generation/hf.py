"""The transformers generation backend (CPU and GPU; the only backend on CPU).

It works on an already-loaded model, so the Challenger phase can sample the Solver's answers inside its
reward function with the model it has in memory. Prompts are repeated `n` times and generated in
batches of at most `batch_size` sequences (the same work as `num_return_sequences`, with the memory
bounded however large n is). Sampling draws from torch's global RNG, so each call seeds it inside
`fork_rng`: the caller's RNG state (e.g. a trainer's) is left exactly as it was.
"""

from __future__ import annotations

import contextlib

import torch
from transformers import GenerationConfig

from rzero_worker.generation.base import Prompt, check_request, encode_prompts, stop_token_ids
from rzero_worker.task import Sampling


class TransformersGenerator:
    def __init__(self, model, tokenizer, *, batch_size: int = 16):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.stop_ids = stop_token_ids(tokenizer, model.generation_config.eos_token_id)

    def generate(self, prompts: list[Prompt], *, n: int, sampling: Sampling, seed: int) -> list[list[str]]:
        check_request(prompts, n)
        prompt_ids = encode_prompts(self.tokenizer, prompts)
        greedy = sampling.temperature == 0
        copies = 1 if greedy else n  # greedy decoding gives n identical answers: compute one
        jobs = [index for index in range(len(prompt_ids)) for _ in range(copies)]
        config = self._generation_config(sampling)
        completions: list[list[str]] = [[] for _ in prompt_ids]
        device = self.model.device
        with _seeded(seed, device), torch.inference_mode(), _eval_mode(self.model):
            for start in range(0, len(jobs), self.batch_size):
                batch = jobs[start : start + self.batch_size]
                texts = self._generate_batch([prompt_ids[i] for i in batch], config, device)
                for index, text in zip(batch, texts):
                    completions[index].append(text)
        return [texts * n for texts in completions] if greedy else completions

    def _generation_config(self, sampling: Sampling) -> GenerationConfig:
        # Every knob set explicitly, so the model's own generation_config.json defaults never leak in.
        greedy = sampling.temperature == 0
        return GenerationConfig(
            max_new_tokens=sampling.max_tokens,
            do_sample=not greedy,
            temperature=1.0 if greedy else sampling.temperature,
            top_p=1.0 if greedy else sampling.top_p,
            top_k=0 if greedy or sampling.top_k == -1 else sampling.top_k,  # 0 = off in transformers
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
            num_return_sequences=1,
        )

    def _generate_batch(self, batch: list[list[int]], config: GenerationConfig, device) -> list[str]:
        # Left padding: every prompt ends at the same column, so new tokens line up on the right.
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids) :] = 1
        output = self.model.generate(
            input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), generation_config=config
        )
        return self.tokenizer.batch_decode(
            output[:, width:], skip_special_tokens=True, clean_up_tokenization_spaces=False
        )


@contextlib.contextmanager
def _seeded(seed: int, device):
    devices = [device] if getattr(device, "type", str(device)) == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _eval_mode(model):
    """Dropout off while generating; a model in training mode goes back to it afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
