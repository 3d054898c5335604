"""Test helpers for phase artefacts in storage (a plain module, not a pytest plugin)."""

from __future__ import annotations

import json

from rzero_worker.storage import commit, join_key, open_storage


def read_jsonl(storage, key: str) -> list[dict]:
    return [json.loads(line) for line in storage.get_bytes(key).decode().splitlines() if line.strip()]


def summary_metrics(storage, output: str) -> dict:
    return json.loads(storage.get_bytes(join_key(output, "summary.json")))["metrics"]


def commit_jsonl_shards(location, key: str, filename: str, shards: list[list[dict]]) -> None:
    """A committed sharded output written by hand: `filename` in `<key>/shard-IIIII-of-KKKKK/`, one per shard."""
    storage = open_storage(location)
    for index, rows in enumerate(shards):
        prefix = f"{key}/shard-{index:05d}-of-{len(shards):05d}"
        storage.put_bytes(join_key(prefix, filename), "".join(json.dumps(row) + "\n" for row in rows).encode())
        commit(storage, prefix)


def die_after_checkpoint(monkeypatch, step: int, error: BaseException) -> None:
    """Make a training phase raise `error` right after the checkpoint of optimizer update `step` is uploaded, once:
    a kill whose resume point is committed; the next attempt runs as usual."""
    from rzero_worker.grpo import CheckpointUploader

    upload, killed = CheckpointUploader.on_save, []

    def upload_then_die(self, args, state, control, **kwargs):
        upload(self, args, state, control, **kwargs)
        if state.global_step == step and not killed:
            killed.append(step)
            raise error

    monkeypatch.setattr(CheckpointUploader, "on_save", upload_then_die)
