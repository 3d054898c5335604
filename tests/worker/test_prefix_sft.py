"""Supervised fine-tuning with a shared prompt computed once: the same loss and gradients as padded copies."""

import pytest
import torch

from rzero_worker.models import LocalModel, load_model
from rzero_worker.prefix_sft import batch_loss, encode_example, padded_loss, shared_prompt_loss, train
from rzero_worker.task import DeviceHints


@pytest.fixture()
def tiny(tiny_model_dir):
    return load_model(LocalModel(path=tiny_model_dir), DeviceHints(device="cpu"), trainable=True)


def gradients(model, loss):
    model.zero_grad()
    loss.backward()
    return [p.grad.clone() for p in model.parameters()]


def test_a_shared_prompt_gives_the_loss_and_gradients_of_padded_copies(tiny):
    model, _ = tiny
    prompt, completions = [5, 6, 7, 8, 9, 10], [[11, 12, 13], [21, 22], [31, 32, 33, 34]]

    shared = shared_prompt_loss(model, prompt, completions)
    shared_grads = gradients(model, shared)
    padded = padded_loss(model, [(prompt, c) for c in completions])
    padded_grads = gradients(model, padded)

    assert shared.item() == pytest.approx(padded.item(), rel=1e-5)
    assert max((a - b).abs().max().item() for a, b in zip(shared_grads, padded_grads)) < 1e-5


def test_batches_with_different_prompts_take_the_padded_path_and_training_lowers_the_loss(tiny):
    model, tokenizer = tiny
    chat = lambda q, a: {"prompt": [{"role": "user", "content": q}], "completion": [{"role": "assistant", "content": a}]}
    examples = [encode_example(tokenizer, chat("2+2?", "4")), encode_example(tokenizer, chat("3+3?", "6"))]
    assert examples[0][1][-1] == tokenizer.eos_token_id  # the model learns to stop
    before = batch_loss(model, examples).item()

    losses = train(model, [examples] * 8, learning_rate=1e-2)

    assert len(losses) == 8 and losses[-1] < before
    assert not model.training
