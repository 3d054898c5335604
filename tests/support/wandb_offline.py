"""Read back what W&B's offline mode wrote: the run's `.wandb` file is a LevelDB-style log of protobuf records
(a 7-byte file header, 32 KiB blocks, each record chunk with a 7-byte header: crc32, length, type; types
1 full, 2 first, 3 middle, 4 last). This W&B release ships no Python reader, so tests parse it here."""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32768
HEADER = 7


def _chunks(data: bytes):
    position = HEADER  # ":W&B", magic, version
    while position + HEADER <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < HEADER:
            position += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + HEADER])
        if kind == 0 and length == 0:  # zero padding at the end of a block
            position += left_in_block
            continue
        yield kind, data[position + HEADER : position + HEADER + length]
        position += HEADER + length


def records(path: Path):
    from wandb.proto import wandb_internal_pb2

    pending = b""
    for kind, payload in _chunks(Path(path).read_bytes()):
        pending = payload if kind in (1, 2) else pending + payload
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""


def history(path: Path) -> list[dict]:
    """Each logged history row as {key: value} (steps under `_step`)."""
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return rows


def run_file(directory: Path) -> Path:
    [path] = Path(directory).glob("wandb/offline-run-*/run-*.wandb")
    return path
