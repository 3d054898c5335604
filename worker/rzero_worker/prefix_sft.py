"""Supervised fine-tuning on prompt/completion chats, with a batch's shared prompt computed once.

The format warm-up's Challenger examples all share one prompt: the reference's ~200-token Challenger system
prompt, against completions of ~25 tokens. Trained as ordinary padded sequences, eight of them cost eight
passes over that prompt; here the prompt runs once (batch 1, with gradients), its key/value cache is repeated
for the batch, and only the completions run batched on top of it. This is exact, not an approximation: the
eight copies of the prompt would have identical activations, and the backward pass through the repeat sums
their gradients, as the eight separate copies would. Batches whose prompts differ (the Solver's examples)
take the ordinary path: right-padded prompt + completion, loss on the completion only.

Loss: the mean cross-entropy over the batch's completion tokens (the completion ends with the tokenizer's eos,
so the model learns to stop). Optimiser: AdamW on the trainable weights, constant learning rate, gradient
norm clipped at 1.0. `compute_dtype` other than float32 runs the forward passes under autocast.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

IGNORE = -100


def encode_example(tokenizer, example: dict) -> tuple[list[int], list[int]]:
    """(prompt ids ending with the open assistant turn, completion ids ending with eos)."""
    prompt = tokenizer.apply_chat_template(example["prompt"], tokenize=False, add_generation_prompt=True)
    prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    text = example["completion"][-1]["content"]
    completion_ids = list(tokenizer(text, add_special_tokens=False)["input_ids"]) + [tokenizer.eos_token_id]
    return prompt_ids, completion_ids


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([row + [value] * (width - len(row)) for row in rows], dtype=torch.long)


def shared_prompt_loss(model, prompt: list[int], completions: list[list[int]]) -> torch.Tensor:
    """Mean completion-token cross-entropy of one prompt with several completions (module notes)."""
    device = model.device
    prompt_out = model(input_ids=torch.tensor([prompt], device=device), use_cache=True)
    cache = prompt_out.past_key_values
    cache.batch_repeat_interleave(len(completions))
    ids = _pad(completions, 0).to(device)
    mask = _pad([[1] * len(c) for c in completions], 0).to(device)
    attention = torch.cat([torch.ones(len(completions), len(prompt), dtype=torch.long, device=device), mask], dim=1)
    positions = torch.arange(len(prompt), len(prompt) + ids.shape[1], device=device).expand(len(completions), -1)
    out = model(input_ids=ids, attention_mask=attention, position_ids=positions, past_key_values=cache)
    # the prompt's last position predicts the first completion token; each completion position the next one
    logits = torch.cat([prompt_out.logits[:, -1:].expand(len(completions), -1, -1), out.logits[:, :-1]], dim=1)
    labels = ids.masked_fill(mask == 0, IGNORE)
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE)


def padded_loss(model, examples: list[tuple[list[int], list[int]]]) -> torch.Tensor:
    """Mean completion-token cross-entropy of right-padded prompt + completion sequences."""
    device = model.device
    rows = [prompt + completion for prompt, completion in examples]
    labels = [[IGNORE] * len(prompt) + completion for prompt, completion in examples]
    ids, targets = _pad(rows, 0).to(device), _pad(labels, IGNORE).to(device)
    attention = _pad([[1] * len(row) for row in rows], 0).to(device)
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1]
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets[:, 1:].reshape(-1), ignore_index=IGNORE)


def batch_loss(model, batch: list[tuple[list[int], list[int]]]) -> torch.Tensor:
    prompts = {tuple(prompt) for prompt, _ in batch}
    if len(prompts) == 1 and len(batch) > 1:
        return shared_prompt_loss(model, batch[0][0], [completion for _, completion in batch])
    return padded_loss(model, batch)


def train(
    model, batches: list[list[tuple[list[int], list[int]]]], *, learning_rate: float, compute_dtype: str = "float32",
    on_step: Callable[[int, int, float], None] | None = None,
) -> list[float]:
    """One optimizer step per batch; returns the loss of each step."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
    autocast = (torch.autocast(model.device.type, dtype=getattr(torch, compute_dtype))
                if compute_dtype != "float32" else contextlib.nullcontext())
    model.train()
    losses = []
    for step, batch in enumerate(batches, start=1):
        with autocast:
            loss = batch_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if on_step:
            on_step(step, len(batches), losses[-1])
    model.eval()
    return losses
