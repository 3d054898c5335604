"""The transformers backend on the tiny random model: shapes, seeds, greedy, max_tokens, batching, eos."""

from __future__ import annotations

import pytest
import torch

from rzero_worker.generation.base import encode_prompts, render_prompts
from rzero_worker.generation.hf import TransformersGenerator
from rzero_worker.models import LocalModel, load_model
from rzero_worker.task import DeviceHints, Sampling

SAMPLE = Sampling(temperature=1.0, top_p=0.95, top_k=40, max_tokens=6)
GREEDY = Sampling(temperature=0, max_tokens=6)
PROMPTS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "Answer in \\boxed{}."}, {"role": "user", "content": "A much longer question, " * 4}],
    [{"role": "user", "content": "Hi"}],
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(LocalModel(path=tiny_model_dir), DeviceHints(device="cpu"))


@pytest.fixture
def generator(tiny):
    model, tokenizer = tiny
    return TransformersGenerator(model, tokenizer, batch_size=4)


class GenerateSpy:
    """Records, for each real model.generate call, its batch size and how many new tokens it produced."""

    def __init__(self, model, monkeypatch):
        self.batch_sizes: list[int] = []
        self.new_tokens: list[int] = []
        original = model.generate

        def spying(*args, **kwargs):
            output = original(*args, **kwargs)
            self.batch_sizes.append(kwargs["input_ids"].shape[0])
            self.new_tokens.append(output.shape[1] - kwargs["input_ids"].shape[1])
            return output

        monkeypatch.setattr(model, "generate", spying)


def test_returns_n_completion_strings_per_prompt_in_order(generator):
    out = generator.generate(PROMPTS, n=5, sampling=SAMPLE, seed=0)
    assert [len(c) for c in out] == [5, 5, 5]
    assert all(isinstance(text, str) and text for texts in out for text in texts)
    assert len({text for texts in out for text in texts}) > 5  # sampled, not copies


def test_completions_exclude_the_prompt_and_special_tokens(generator):
    for text in generator.generate(PROMPTS, n=2, sampling=SAMPLE, seed=1)[0]:
        assert "<|im_start|>" not in text and "What is 2+2?" not in text


def test_same_seed_same_samples_other_seed_other_samples(generator):
    first = generator.generate(PROMPTS, n=3, sampling=SAMPLE, seed=7)
    assert generator.generate(PROMPTS, n=3, sampling=SAMPLE, seed=7) == first
    assert generator.generate(PROMPTS, n=3, sampling=SAMPLE, seed=8) != first


def test_generation_leaves_the_callers_random_state_alone(generator):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    generator.generate(PROMPTS[:1], n=2, sampling=SAMPLE, seed=99)
    assert torch.equal(torch.rand(3), expected)


def test_greedy_is_deterministic_and_repeats_one_answer_n_times(generator, tiny, monkeypatch):
    spy = GenerateSpy(tiny[0], monkeypatch)
    out = generator.generate(PROMPTS, n=4, sampling=GREEDY, seed=0)
    assert all(len(set(texts)) == 1 and len(texts) == 4 for texts in out)
    assert len(spy.new_tokens) == 1  # 3 prompts x 1 copy fit one batch of 4: the n copies cost nothing
    assert generator.generate(PROMPTS, n=4, sampling=GREEDY, seed=12345) == out


def test_max_tokens_bounds_new_tokens(generator, tiny, monkeypatch):
    spy = GenerateSpy(tiny[0], monkeypatch)
    short = generator.generate(PROMPTS, n=1, sampling=GREEDY.model_copy(update={"max_tokens": 3}), seed=0)
    longer = generator.generate(PROMPTS, n=1, sampling=GREEDY.model_copy(update={"max_tokens": 9}), seed=0)
    assert spy.new_tokens == [3, 9]  # a random model never says eos: it runs to the limit
    for a, b in zip(short, longer):
        assert b[0].startswith(a[0]) and len(b[0]) > len(a[0])


def test_batching_does_not_change_greedy_results(tiny):
    model, tokenizer = tiny
    prompts = PROMPTS * 3  # prompt lengths differ, so batches mix padding
    one_by_one = TransformersGenerator(model, tokenizer, batch_size=1).generate(prompts, n=1, sampling=GREEDY, seed=0)
    batched = TransformersGenerator(model, tokenizer, batch_size=8).generate(prompts, n=1, sampling=GREEDY, seed=0)
    assert batched == one_by_one


def test_samples_are_split_into_batches_of_at_most_batch_size(tiny, monkeypatch):
    model, tokenizer = tiny
    spy = GenerateSpy(model, monkeypatch)
    out = TransformersGenerator(model, tokenizer, batch_size=4).generate(PROMPTS, n=3, sampling=SAMPLE, seed=0)
    assert spy.batch_sizes == [4, 4, 1] and [len(c) for c in out] == [3, 3, 3]


def test_generation_stops_at_the_models_eos(tiny, monkeypatch):
    model, tokenizer = tiny
    first_text = TransformersGenerator(model, tokenizer).generate(
        PROMPTS[:1], n=1, sampling=GREEDY.model_copy(update={"max_tokens": 1}), seed=0
    )[0][0]
    first_token = tokenizer(first_text, add_special_tokens=False)["input_ids"][0]
    # Declare the token greedy decoding emits first to be an end-of-sequence token: output stops there.
    monkeypatch.setattr(model.generation_config, "eos_token_id", [tokenizer.eos_token_id, first_token])
    out = TransformersGenerator(model, tokenizer).generate(PROMPTS[:1], n=2, sampling=GREEDY, seed=0)
    assert out == [[first_text, first_text]]


def test_raw_string_prompts_are_used_as_given(generator, tiny):
    _model, tokenizer = tiny
    rendered = render_prompts(tokenizer, PROMPTS[:1])[0]
    assert rendered.endswith("<|im_start|>assistant\n")
    chat = generator.generate(PROMPTS[:1], n=1, sampling=GREEDY, seed=0)
    assert generator.generate([rendered], n=1, sampling=GREEDY, seed=0) == chat
    assert encode_prompts(tokenizer, [rendered]) == encode_prompts(tokenizer, PROMPTS[:1])


def test_a_training_model_is_used_in_eval_mode_and_left_training(tiny):
    model, tokenizer = tiny
    model.train()
    try:
        TransformersGenerator(model, tokenizer).generate(PROMPTS[:1], n=1, sampling=GREEDY, seed=0)
        assert model.training
    finally:
        model.eval()


def test_bad_requests_are_refused(generator):
    assert generator.generate([], n=3, sampling=SAMPLE, seed=0) == []
    with pytest.raises(ValueError, match="n must be >= 1"):
        generator.generate(PROMPTS, n=0, sampling=SAMPLE, seed=0)
    with pytest.raises(TypeError, match=r"prompts\[1\]"):
        generator.generate([PROMPTS[0], 42], n=1, sampling=SAMPLE, seed=0)
    with pytest.raises(ValueError, match=r"prompts\[0\] is empty"):
        generator.generate([""], n=1, sampling=SAMPLE, seed=0)
