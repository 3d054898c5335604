"""Benchmark files into items: a paper preset's file, a JSONL file with configurable fields, or the
built-in arithmetic set.

A file is JSONL (one JSON object per line) or, when its name ends in `.parquet`, Parquet as published on
the Hugging Face Hub; it comes from a local path or `s3://bucket/key`. A preset names the fields each row
must have (its layout, `benchmark_presets.Preset.fields`); a row that lacks one, or whose gold field does
not hold the expected kind of answer, is refused with a `BenchmarkError` naming the benchmark, the file,
the row and the field, so a wrong or truncated file fails the phase at once (exit 2) instead of scoring
nonsense.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from ..benchmark_presets import PRESETS, Preset
from ..task import BenchmarkSpec, StorageLocation
from .answers import GoldError, read_gold
from .arithmetic import arithmetic_benchmark
from .items import Benchmark, BenchmarkError, BenchmarkItem

def load_benchmark(spec: BenchmarkSpec, storage: StorageLocation | None = None) -> Benchmark:
    """The benchmark a spec describes, its first `spec.limit` items when a limit is set."""
    preset = PRESETS[spec.preset] if spec.preset else None
    if spec.kind == "arithmetic":
        items = arithmetic_benchmark(spec.size, spec.seed, spec.difficulty)
    else:
        rows = read_rows(spec.path, storage)
        items = [_item(spec, preset, index, row, where) for index, (where, row) in enumerate(rows)]
    return Benchmark(name=spec.name, items=items[: spec.limit] if spec.limit else items, preset=preset,
                     answer_type=spec.answer_type)


def _item(spec: BenchmarkSpec, preset: Preset | None, index: int, row, where: str) -> BenchmarkItem:
    """One row as an item; `where` names the file and row for error messages."""
    where = f"benchmark {spec.name!r} ({spec.path}) {where}"
    if not isinstance(row, dict):
        raise BenchmarkError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if preset is None:
        choice = spec.answer_type == "choice"
        fields = (spec.question_field, *((spec.options_field,) if choice else ()), spec.answer_field)
        hint = "set questionField/answerField" + ("/optionsField" if choice else "")
        question_field, gold_field = spec.question_field, spec.answer_field
        reading, options_field = ("option", spec.options_field) if choice else (spec.answer_format, None)
    else:
        fields = preset.fields
        hint = f"preset {preset.name} expects the layout of {preset.source.repo}: {', '.join(fields)}"
        question_field, gold_field, reading = preset.question_field, preset.gold_field, preset.gold_reading
        options_field = preset.options_field
    for field in fields:
        if field not in row:
            raise BenchmarkError(f"{where}: missing field {field!r} ({hint})")
    options = _options(row[options_field], where, options_field) if options_field else ()
    try:
        gold = read_gold(row[gold_field], reading, options)
    except GoldError as error:
        raise BenchmarkError(f"{where}: field {gold_field!r} {error}") from None
    # Presets number their items (ids stay unique whatever the source's own id fields hold).
    number = f"{spec.name}-{index:05d}"
    item_id = number if preset else str(row.get("id", number))
    return BenchmarkItem(id=item_id, question=str(row[question_field]), gold=gold, options=options)


def _options(value, where: str, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(option, str) for option in value):
        raise BenchmarkError(f"{where}: field {field!r} must be a non-empty list of option texts")
    if len(value) > 26:
        raise BenchmarkError(f"{where}: field {field!r} has {len(value)} options; at most 26 (A-Z) are lettered")
    return tuple(value)


# --------------------------------------------------------------------------------------------------
# Files


def read_rows(path: str, storage: StorageLocation | None) -> list[tuple[str, object]]:
    """(where, row) for each row of a JSONL or Parquet file, `where` being 'line N' or 'row N'."""
    data = read_bytes(path, storage)
    if path.endswith(".parquet"):
        rows = [(f"row {number}", row) for number, row in enumerate(_parquet_rows(path, data), start=1)]
    else:
        rows = []
        # split on \n only: U+2028, U+0085 and the like are text inside a JSON string, not line ends
        for line_no, line in enumerate(data.decode("utf-8").split("\n"), start=1):
            if not line.strip():
                continue
            try:
                rows.append((f"line {line_no}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise BenchmarkError(f"benchmark file {path}: line {line_no}: not valid JSON ({exc.msg})") from None
    if not rows:
        raise BenchmarkError(f"benchmark file {path}: no rows")
    return rows


def _parquet_rows(path: str, data: bytes) -> list[dict]:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise BenchmarkError(f"benchmark file {path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        return parquet.read_table(io.BytesIO(data)).to_pylist()
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise BenchmarkError(f"benchmark file {path}: not a readable Parquet file ({error})") from None


def read_bytes(path: str, storage: StorageLocation | None) -> bytes:
    """A benchmark file's bytes from a local path or s3://bucket/key (endpoint and region from the run's
    storage location; credentials from the standard AWS chain, as for all storage)."""
    if not path.startswith("s3://"):
        local = Path(path).expanduser()
        if not local.is_file():
            raise BenchmarkError(f"benchmark path {path!r}: no such file")
        return local.read_bytes()
    from ..storage import open_storage

    bucket, _, key = path[len("s3://") :].partition("/")
    location = StorageLocation(
        uri=f"s3://{bucket}",
        endpoint_url=storage.endpoint_url if storage else None,
        region=storage.region if storage else None,
    )
    try:
        return open_storage(location).get_bytes(key)
    except FileNotFoundError:
        raise BenchmarkError(f"benchmark path {path!r}: no such object") from None
