"""The prompt rows a GRPO phase trains on: their order over the rollout steps (verl's epochs or a cycle) and the
prompts too long to train on."""

from __future__ import annotations

import logging

from .task import GRPOSettings

log = logging.getLogger(__name__)


def prompt_dataset(rows: list[dict], settings: GRPOSettings, *, seed: int):
    """A `datasets.Dataset` of exactly `steps x rollout_batch_size` prompt rows: one epoch of TRL's is the run.

    `settings.keeps_data_order` (the Solver's dataOrder "epochs", verl's loader): epochs of the rows, each a
    fresh seeded permutation cut into whole rollout batches (the rest of each epoch dropped, drop_last), in
    training order (TRL does not shuffle it: build_grpo_config). Otherwise ("cycled"): the rows cycled in a
    seeded order, which TRL's sampler then shuffles. TRL's sampler drops an incomplete last batch, so this size
    also guarantees `steps`."""
    import random

    from datasets import Dataset

    if not rows:
        raise ValueError("prompt_dataset: no rows to train on")
    rng, batch, count = random.Random(seed), settings.rollout_batch_size, len(rows)
    needed = settings.steps * batch

    def permutation() -> list[int]:
        order = list(range(count))
        rng.shuffle(order)
        return order

    if not settings.keeps_data_order:
        cycle = permutation()
        return Dataset.from_list([rows[cycle[i % count]] for i in range(needed)])
    if count < batch:
        raise ValueError(f"prompt_dataset: {count} rows make no whole rollout batch of {batch}")
    order: list[int] = []
    while len(order) < needed:
        order += permutation()[: count // batch * batch]
    return Dataset.from_list([rows[index] for index in order[:needed]])


def drop_long_prompts(rows: list[dict], tokenizer, max_tokens: int) -> tuple[list[dict], int]:
    """(rows whose chat prompt fits in `max_tokens`, how many were dropped). The reference filters overlong
    prompts out of its training data (verl `filter_overlong_prompts`) rather than truncating them: a question
    cut from the left would be another question with the same label."""
    from .generation.base import encode_prompts

    if not rows:
        return rows, 0
    lengths = [len(ids) for ids in encode_prompts(tokenizer, [row["prompt"] for row in rows])]
    kept = [row for row, length in zip(rows, lengths) if length <= max_tokens]
    if len(kept) < len(rows):
        log.warning("left %d of %d prompts out of training: longer than grpo.maxPromptTokens %d",
                    len(rows) - len(kept), len(rows), max_tokens)
    return kept, len(rows) - len(kept)
