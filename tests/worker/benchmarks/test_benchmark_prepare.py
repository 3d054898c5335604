"""`rzero benchmarks prepare`: the real `datasets` library reads local files in each benchmark's published
layout in place of the Hub (no network); the JSONL written and its manifest are what runs read."""

import hashlib
import json
import sys
from types import SimpleNamespace

import pytest

from rzero_worker.benchmark_presets import PRESETS
from rzero_worker.benchmarks import load_benchmark
from rzero_worker.benchmarks import prepare as prepare_module
from rzero_worker.benchmarks.prepare import MANIFEST_FILE, PrepareError, file_fetch, hub_fetch, prepare
from rzero_worker.storage import open_storage
from rzero_worker.task import BenchmarkSpec, StorageLocation
from support.benchmark_files import PUBLISHED_ROWS, write_all_published, write_published


def test_all_ten_are_prepared_as_jsonl_with_a_manifest_of_sources_and_digests(tmp_path):
    sources = write_all_published(tmp_path / "published")
    out = tmp_path / "staged"

    manifest = prepare(["all"], StorageLocation(uri=str(out)), fetch=file_fetch(sources))

    assert [entry["name"] for entry in manifest["files"]] == list(PRESETS)
    assert json.loads((out / MANIFEST_FILE).read_text()) == manifest
    for entry in manifest["files"]:
        data = (out / entry["file"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
        source_bytes = sources[entry["name"]].read_bytes()
        assert entry["source"]["revision"] == f"sha256:{hashlib.sha256(source_bytes).hexdigest()}"
        assert entry["source"]["publishedAs"] == PRESETS[entry["name"]].source.repo
        rows = [json.loads(line) for line in data.decode().splitlines()]
        assert rows == PUBLISHED_ROWS[entry["name"]] and entry["rows"] == len(rows)  # every published field kept
        benchmark = load_benchmark(BenchmarkSpec(preset=entry["name"], path=str(out / entry["file"])))
        assert len(benchmark.items) == len(rows)


def test_preparing_more_later_adds_to_the_manifest_and_replaces_what_is_redone(tmp_path):
    sources = write_all_published(tmp_path / "published")
    location = StorageLocation(uri=str(tmp_path / "staged"))
    prepare(["gsm8k", "bbeh"], location, fetch=file_fetch(sources))
    first = {e["name"]: e for e in json.loads((tmp_path / "staged" / MANIFEST_FILE).read_text())["files"]}

    sources["gsm8k"] = write_published(tmp_path / "newer", "gsm8k", PUBLISHED_ROWS["gsm8k"][:1])
    manifest = prepare(["gsm8k", "aime24"], location, fetch=file_fetch(sources))

    names = [entry["name"] for entry in manifest["files"]]
    assert names == ["gsm8k", "aime24", "bbeh"]  # the paper's order
    by_name = {entry["name"]: entry for entry in manifest["files"]}
    assert by_name["bbeh"] == first["bbeh"]
    assert by_name["gsm8k"]["rows"] == 1 and by_name["gsm8k"]["sha256"] != first["gsm8k"]["sha256"]


def test_prepared_files_go_to_s3_and_runs_read_them_there(s3_location, tmp_path):
    sources = write_all_published(tmp_path / "published")
    bucket = s3_location.uri[len("s3://") :].split("/")[0]
    out = s3_location.model_copy(update={"uri": f"s3://{bucket}/benchmarks/v1"})

    prepare(["mmlu-pro", "olympiadbench"], out, fetch=file_fetch(sources))

    manifest = json.loads(open_storage(out).get_bytes(MANIFEST_FILE))
    assert [entry["name"] for entry in manifest["files"]] == ["olympiadbench", "mmlu-pro"]
    spec = BenchmarkSpec(preset="mmlu-pro", path=f"s3://{bucket}/benchmarks/v1/mmlu-pro.jsonl")
    assert [item.gold for item in load_benchmark(spec, s3_location).items] == ["I", "C", "J"]


def test_a_source_that_does_not_match_its_preset_is_refused_and_nothing_is_recorded(tmp_path):
    rows = [{key: value for key, value in row.items() if key != "options"} for row in PUBLISHED_ROWS["mmlu-pro"]]
    sources = {"mmlu-pro": write_published(tmp_path / "published", "mmlu-pro", rows)}
    location = StorageLocation(uri=str(tmp_path / "staged"))
    with pytest.raises(PrepareError, match=r"mmlu-pro: the downloaded rows do not match the preset: .*missing field 'options'"):
        prepare(["mmlu-pro"], location, fetch=file_fetch(sources))
    assert not (tmp_path / "staged" / MANIFEST_FILE).exists()


def test_unknown_names_are_refused_before_anything_is_fetched(tmp_path):
    def fetch(preset):
        raise AssertionError("nothing may be fetched")

    with pytest.raises(ValueError, match="unknown benchmark 'math'; presets: math500, gsm8k"):
        prepare(["gsm8k", "math"], StorageLocation(uri=str(tmp_path)), fetch=fetch)


def test_the_hub_fetch_asks_for_the_presets_repo_config_split_at_a_resolved_commit(tmp_path, monkeypatch):
    """The Hub replaced by a local file: the real `datasets` loads it; what the Hub was asked is recorded."""
    import datasets
    import huggingface_hub

    published = write_published(tmp_path, "aime25")
    asked = {}

    def dataset_info(self, repo_id, revision=None):
        asked["info"] = (repo_id, revision)
        return SimpleNamespace(sha="0123abcd" * 5)

    real_load = datasets.load_dataset

    def load_dataset(path, name=None, split=None, revision=None):
        asked["load"] = (path, name, split, revision)
        return real_load("json", data_files=str(published), split="train", cache_dir=str(tmp_path / "cache"))

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", dataset_info)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)

    fetched = hub_fetch(PRESETS["aime25"])

    assert asked == {"info": ("yentinglin/aime_2025", None),
                     "load": ("yentinglin/aime_2025", "default", "train", "0123abcd" * 5)}
    assert fetched.source == {"hub": "yentinglin/aime_2025", "config": "default", "split": "train",
                              "revision": "0123abcd" * 5}
    assert fetched.rows == PUBLISHED_ROWS["aime25"]


def test_without_the_datasets_library_the_message_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(PrepareError, match=r"needs the `datasets` library: pip install"):
        prepare_module.file_fetch({"gsm8k": write_published(tmp_path, "gsm8k")})(PRESETS["gsm8k"])
