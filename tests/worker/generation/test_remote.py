"""Generators in processes of their own (the Challenger's Solver engines): same answers as in-process, requests
spread over several engines in prompt order, failures reported with the engine's own message."""

from __future__ import annotations

import pytest

from rzero_worker.generation import make_generator
from rzero_worker.generation.remote import EngineProcessError, ProcessGenerator, SplitGenerator, start_engines
from rzero_worker.models import LocalModel
from rzero_worker.task import DeviceHints, Sampling

CPU = DeviceHints(device="cpu", backend="transformers")
SAMPLE = Sampling(temperature=1.0, top_k=40, max_tokens=5)
PROMPTS = [[{"role": "user", "content": f"Question {i}?"}] for i in range(5)]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    with ProcessGenerator(LocalModel(path=tiny_model_dir), CPU) as generator:
        yield generator


def test_an_engine_process_answers_as_the_same_backend_in_this_process(engine, tiny_model_dir):
    local = make_generator(LocalModel(path=tiny_model_dir), CPU)

    remote = engine.generate(PROMPTS, n=3, sampling=SAMPLE, seed=7)

    assert remote == local.generate(PROMPTS, n=3, sampling=SAMPLE, seed=7)
    assert [len(samples) for samples in remote] == [3] * 5


def test_a_failed_request_raises_the_engines_message_and_the_engine_serves_on(engine):
    with pytest.raises(EngineProcessError, match="expected a list of chat messages"):
        engine.generate([42], n=1, sampling=SAMPLE, seed=0)
    assert len(engine.generate(PROMPTS[:1], n=1, sampling=SAMPLE, seed=0)) == 1


def test_an_engine_that_cannot_start_says_why(tmp_path):
    with pytest.raises(EngineProcessError, match="could not start the engine"):
        ProcessGenerator(LocalModel(path=tmp_path / "no-model"), CPU)


class Recorder:
    def __init__(self, name):
        self.name, self.seeds = name, []

    def generate(self, prompts, *, n, sampling, seed):
        self.seeds.append(seed)
        return [[f"{self.name}:{prompt}"] * n for prompt in prompts]

    def close(self):
        self.closed = True


def test_a_request_is_spread_over_the_engines_and_answered_in_prompt_order():
    engines = [Recorder("a"), Recorder("b"), Recorder("c")]
    answers = SplitGenerator(engines).generate(["p0", "p1", "p2", "p3"], n=2, sampling=SAMPLE, seed=10)
    assert answers == [["a:p0"] * 2, ["a:p1"] * 2, ["b:p2"] * 2, ["c:p3"] * 2]
    assert [engine.seeds for engine in engines] == [[10], [10 + 1_000_003], [10 + 2 * 1_000_003]]
    assert SplitGenerator(engines).generate(["only"], n=1, sampling=SAMPLE, seed=0) == [["a:only"]]


def test_engines_already_started_are_closed_when_a_later_one_cannot_start():
    started = []

    def start(index):
        if index == 2:
            raise EngineProcessError("no GPU left")
        started.append(Recorder(str(index)))
        return started[-1]

    with pytest.raises(EngineProcessError, match="no GPU left"):
        start_engines(3, start)
    assert [getattr(engine, "closed", False) for engine in started] == [True, True]
    assert len(start_engines(2, lambda index: Recorder(str(index))).generators) == 2
