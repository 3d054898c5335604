"""The generation seam: one `Generator` protocol, implemented by the transformers and vLLM backends.

A prompt is a chat (a list of `{"role", "content"}` messages, rendered with the model's chat template
and an open assistant turn) or a raw string (used as is, already rendered). A generator returns, per
prompt, `n` completion strings: the completion only, with special tokens stripped.

This module imports no ML library.
"""

from __future__ import annotations

from typing import Protocol, Union

from rzero_worker.task import Sampling

Prompt = Union[list[dict], str]


class Generator(Protocol):
    def generate(self, prompts: list[Prompt], *, n: int, sampling: Sampling, seed: int) -> list[list[str]]:
        """`n` completions for each prompt, in prompt order. temperature 0 = greedy (all n identical)."""
        ...


def render_prompts(tokenizer, prompts: list[Prompt]) -> list[str]:
    """Chats through the tokenizer's chat template (with the assistant turn opened); strings as given."""
    rendered = []
    for index, prompt in enumerate(prompts):
        if isinstance(prompt, str):
            rendered.append(prompt)
        elif isinstance(prompt, list) and all(isinstance(m, dict) and "role" in m for m in prompt):
            rendered.append(tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True))
        else:
            raise TypeError(f"prompts[{index}]: expected a list of chat messages or a string")
    return rendered


def encode_prompts(tokenizer, prompts: list[Prompt]) -> list[list[int]]:
    """Token ids of each rendered prompt. No special tokens are added: chat templates already carry
    them, and both backends must see exactly the same tokens."""
    encoded = []
    for index, text in enumerate(render_prompts(tokenizer, prompts)):
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if not ids:
            raise ValueError(f"prompts[{index}] is empty")
        encoded.append(ids)
    return encoded


def stop_token_ids(tokenizer, model_eos=None) -> list[int]:
    """Token ids that end a completion: the tokenizer's eos and the model's generation eos (they differ
    for some chat models, e.g. eos `<|endoftext|>` but turns end with `<|im_end|>`)."""
    ids = [tokenizer.eos_token_id]
    ids += model_eos if isinstance(model_eos, (list, tuple)) else [model_eos]
    return sorted({int(i) for i in ids if i is not None})


def check_request(prompts: list, n: int) -> None:
    if not isinstance(prompts, list):
        raise TypeError("prompts must be a list")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")


def greedy_replies(generator: Generator, prompts: list[Prompt], *, max_tokens: int, batch_size: int,
                   log=None, what: str = "replies") -> list[str | None]:
    """One greedy (temperature 0, seed 0) reply per prompt, `batch_size` prompts per call: the judges' way to ask
    a model (the model oracle, the model Verifier). A prompt the backend returned nothing for reads None."""
    sampling = Sampling(temperature=0.0, max_tokens=max_tokens)
    replies: list[str | None] = []
    for start in range(0, len(prompts), batch_size):
        outputs = generator.generate(prompts[start : start + batch_size], n=1, sampling=sampling, seed=0)
        replies.extend(samples[0] if samples else None for samples in outputs)
        if log is not None:
            log.info("%s: %d/%d", what, len(replies), len(prompts))
    return replies
