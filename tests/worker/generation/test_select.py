"""Choosing the generation backend from the task's device hints."""

from __future__ import annotations

import pytest

from rzero_worker.generation import BackendUnavailableError, choose_backend, make_generator
from rzero_worker.generation.hf import TransformersGenerator
from rzero_worker.models import LocalModel
from rzero_worker.task import DeviceHints, Sampling


@pytest.mark.parametrize(
    "has_vllm, has_cuda, device, expected",
    [
        (True, True, "auto", "vllm"),
        (True, False, "auto", "transformers"),
        (False, True, "auto", "transformers"),
        (True, True, "cpu", "transformers"),
    ],
)
def test_auto_picks_vllm_only_with_vllm_installed_and_a_gpu(has_vllm, has_cuda, device, expected):
    hints = DeviceHints(device=device)
    assert choose_backend(hints, has_vllm=has_vllm, has_cuda=has_cuda) == expected


def test_transformers_can_be_forced_anywhere():
    assert choose_backend(DeviceHints(backend="transformers"), has_vllm=True, has_cuda=True) == "transformers"


def test_forcing_vllm_without_it_is_a_configuration_error_naming_the_field():
    with pytest.raises(BackendUnavailableError, match="device.backend.*not installed"):
        choose_backend(DeviceHints(backend="vllm"), has_vllm=False, has_cuda=True)
    with pytest.raises(BackendUnavailableError, match="device.backend.*GPU"):
        choose_backend(DeviceHints(backend="vllm", device="cpu"), has_vllm=True, has_cuda=True)
    assert issubclass(BackendUnavailableError, ValueError)


def test_forcing_vllm_on_this_machine_fails_clearly_when_it_is_missing(tiny_model_dir):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    with pytest.raises(BackendUnavailableError, match="device.backend"):
        make_generator(LocalModel(path=tiny_model_dir), DeviceHints(backend="vllm"))


def test_make_generator_on_cpu_builds_a_working_transformers_generator(tiny_model_dir):
    generator = make_generator(LocalModel(path=tiny_model_dir), DeviceHints(device="cpu"), batch_size=2)
    assert isinstance(generator, TransformersGenerator) and generator.batch_size == 2
    out = generator.generate([[{"role": "user", "content": "1+1?"}]], n=2, sampling=Sampling(max_tokens=3), seed=0)
    assert [len(c) for c in out] == [2]
