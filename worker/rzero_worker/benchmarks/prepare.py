"""`rzero benchmarks prepare`: download the paper's benchmarks once, on a machine with internet access,
and stage them where runs read them (a directory or `s3://bucket/prefix`).

Each preset is loaded with the `datasets` library from its Hub source (benchmark_presets.HubSource), at
the commit its `revision` names or, when none is pinned, at the commit the Hub resolves now; rows are
written as `<name>.jsonl` with the published fields unchanged, checked against the preset's layout
exactly as a run will check them. `benchmarks.json` (written after the files) records for each file its
source (repo, config, split, resolved revision), rows, size and sha256; preparing more benchmarks later
adds to it. Phases never download: they read these files.

`datasets` and `huggingface_hub` are imported only here, when the command runs. A `fetch` callable
replaces the Hub (tests, air-gapped machines: `--from NAME=FILE` reads a published file through
`datasets` instead).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from ..benchmark_presets import PRESETS, Preset
from ..task import BenchmarkSpec, StorageLocation
from .items import BenchmarkError
from .loading import load_benchmark

log = logging.getLogger(__name__)

MANIFEST_FILE = "benchmarks.json"
MANIFEST_API_VERSION = "rzero.dev/benchmarks-v1"


class PrepareError(Exception):
    """A benchmark that cannot be prepared (missing library, unreachable source, unexpected layout)."""


@dataclass(frozen=True)
class Fetched:
    rows: list[dict]
    source: dict  # what the manifest records as the file's source


Fetch = Callable[[Preset], Fetched]


def _datasets():
    try:
        import datasets
    except ImportError:
        raise PrepareError(
            "rzero benchmarks prepare needs the `datasets` library: pip install 'datasets>=3' "
            "(it comes with the worker extra, pip install 'rzero[worker]')"
        ) from None
    return datasets


def hub_fetch(preset: Preset) -> Fetched:
    """The preset's split from the Hugging Face Hub, at a resolved commit (network)."""
    datasets = _datasets()
    from huggingface_hub import HfApi

    source = preset.source
    revision = HfApi().dataset_info(source.repo, revision=source.revision).sha
    table = datasets.load_dataset(source.repo, name=source.config, split=source.split, revision=revision)
    return Fetched(
        rows=table.to_list(),
        source={"hub": source.repo, "config": source.config, "split": source.split, "revision": revision},
    )


def file_fetch(files: dict[str, Path]) -> Fetch:
    """A fetch reading `files[preset name]` (JSONL or Parquet as published) through `datasets`."""

    def fetch(preset: Preset) -> Fetched:
        if preset.name not in files:
            raise PrepareError(f"{preset.name}: no local file given for it")
        path = Path(files[preset.name])
        if not path.is_file():
            raise PrepareError(f"{preset.name}: {path}: no such file")
        builder = "parquet" if path.suffix == ".parquet" else "json"
        with tempfile.TemporaryDirectory(prefix="rzero-datasets-cache-") as cache:  # leave no cache behind
            table = _datasets().load_dataset(builder, data_files=str(path), split="train", cache_dir=cache)
            rows = table.to_list()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return Fetched(
            rows=rows,
            source={"file": path.name, "revision": f"sha256:{digest}", "publishedAs": preset.source.repo},
        )

    return fetch


def resolve_names(names: Iterable[str]) -> list[str]:
    """Preset names in the paper's order; 'all' = the ten. Raises ValueError naming unknown ones."""
    wanted = set()
    for name in names:
        if name == "all":
            wanted.update(PRESETS)
        elif name in PRESETS:
            wanted.add(name)
        else:
            raise ValueError(f"unknown benchmark {name!r}; presets: {', '.join(PRESETS)} (or all)")
    return [name for name in PRESETS if name in wanted]


def prepare(names: Iterable[str], out: StorageLocation, fetch: Fetch = hub_fetch) -> dict:
    """Fetch, check and store each named preset under `out`; returns the updated manifest."""
    from ..storage import open_storage

    storage = open_storage(out)
    manifest = _read_manifest(storage)
    with tempfile.TemporaryDirectory(prefix="rzero-benchmarks-") as scratch:
        for name in resolve_names(names):
            entry = _prepare_one(PRESETS[name], fetch, Path(scratch), storage)
            manifest["files"] = [f for f in manifest["files"] if f.get("name") != name] + [entry]
            log.info("%s: %d rows -> %s", name, entry["rows"], storage.uri_for(entry["file"]))
    manifest["files"].sort(key=lambda f: list(PRESETS).index(f["name"]) if f.get("name") in PRESETS else len(PRESETS))
    storage.put_bytes(MANIFEST_FILE, (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode())
    return manifest


def _prepare_one(preset: Preset, fetch: Fetch, scratch: Path, storage) -> dict:
    fetched = fetch(preset)
    local = scratch / f"{preset.name}.jsonl"
    local.write_text(
        "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in fetched.rows), encoding="utf-8"
    )
    try:  # the same check a run makes, so a changed upstream layout fails here, not in a GPU Job
        load_benchmark(BenchmarkSpec(preset=preset.name, path=str(local)))
    except BenchmarkError as error:
        raise PrepareError(f"{preset.name}: the downloaded rows do not match the preset: {error}") from None
    data = local.read_bytes()
    storage.put_file(local.name, local)
    return {
        "name": preset.name,
        "file": local.name,
        "rows": len(fetched.rows),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "source": fetched.source,
        "preparedAt": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _read_manifest(storage) -> dict:
    try:
        manifest = json.loads(storage.get_bytes(MANIFEST_FILE))
    except FileNotFoundError:
        manifest = None
    except ValueError:
        raise PrepareError(f"{storage.uri_for(MANIFEST_FILE)} is not valid JSON; move it away first") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        manifest = {"apiVersion": MANIFEST_API_VERSION, "files": []}
    return manifest
