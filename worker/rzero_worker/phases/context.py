"""What a phase implementation gets to work with: `PhaseContext`.

A phase is `run(ctx: PhaseContext) -> dict` (its metrics). It reads inputs through the context, writes
its output files into `ctx.staging`, and, if it trains, saves resumable checkpoints with
`ctx.save_checkpoint`. The runner (runner.py) uploads and commits the staging directory afterwards.

Every phase writes its JSONL files with `write_jsonl` (and `ctx.read_input_jsonl` reads them back): rows carry
text from models, benchmark files and documents, so the writer must not fail on any `str` it is given. A `str`
can hold a lone surrogate (json.loads('"\\ud800"') makes one) that UTF-8 cannot encode: it is written as
U+FFFD, the replacement character, so the file stays valid UTF-8 for every reader (people, jq, the next phase's
tokenizer), rather than kept as a `\\ud800` escape that would hand the same unencodable `str` to each reader. A
surrogate pair held as two code points is written as the character it encodes. U+2028, U+2029 and U+0085,
which JSON leaves raw but `str.splitlines` splits on, are written as escapes: one row is one line for any
reader.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from rzero_worker.storage import (
    MANIFEST_NAME,
    Manifest,
    Storage,
    check_key,
    commit,
    download_committed,
    is_committed,
    join_key,
    read_manifest,
)
from rzero_worker.text import valid_text
from rzero_worker.tracking import NoTrackers, Trackers

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "RZERO_CACHE_DIR"
_STEP_DIR = re.compile(r"^step-(\d{6,})$")
_SHARD_DIR = re.compile(r"^shard-(\d{5})-of-(\d{5})$")


class ConfigurationError(Exception):
    """The task cannot succeed as configured (bad benchmark file, unknown model...): exit code 2, the
    operator does not retry. Raise it from a phase for problems no retry can fix."""


class InputNotReadyError(Exception):
    """A run-relative input is not (fully) committed. Exit 1: the operator may retry."""


_LINE_SEPARATORS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def jsonl_bytes(rows: list[dict]) -> bytes:
    """One JSON object per line, UTF-8 (see the module's docstring: never fails on text)."""
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return valid_text(text).translate(_LINE_SEPARATORS).encode("utf-8")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """The phases' one JSONL writer: `rows` into the file `path`."""
    Path(path).write_bytes(jsonl_bytes(rows))


def parse_jsonl(data: bytes) -> list[dict]:
    """The rows of a file `write_jsonl` wrote (lines split on \\n only, as it writes them)."""
    return [json.loads(line) for line in data.decode("utf-8").split("\n") if line.strip()]


def default_cache_dir() -> Path:
    """$RZERO_CACHE_DIR, else ~/.cache/rzero (Jobs mount an emptyDir there: the root fs is read-only)."""
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "rzero")


def is_main_process() -> bool:
    """torchrun starts one worker per GPU; only global rank 0 writes to storage."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass
class PhaseContext:
    task: object  # one of rzero_worker.task.*Task
    storage: Storage
    workdir: Path  # local scratch, removed after the phase
    staging: Path  # the phase's output files; uploaded under task.output and committed
    cache_dir: Path  # downloaded models and inputs, kept across phases on the same machine
    keep_checkpoints: int = 2  # committed checkpoints kept in storage; older ones are pruned
    main_process: bool = field(default_factory=is_main_process)
    trackers: Trackers = field(default_factory=NoTrackers)  # TensorBoard + spec.tracking (tracking.py); rank 0

    # ---------------------------------------------------------------------------------------------
    # Training checkpoints: <output>.ckpt/step-NNNNNN/, each committed with its own manifest

    @property
    def checkpoint_root(self) -> str:
        return f"{self.task.output}.ckpt"

    def checkpoint_prefix(self, step: int) -> str:
        if step < 0:
            raise ValueError(f"checkpoint step must be >= 0, got {step}")
        return join_key(self.checkpoint_root, f"step-{step:06d}")

    def save_checkpoint(self, step: int, local_dir: Path) -> Manifest | None:
        """Upload a checkpoint directory and commit it; prune older ones. Other ranks: no-op (several ranks
        that each hold part of a checkpoint go through `rzero_worker.distributed.save_checkpoint`)."""
        if not self.main_process:
            return None
        self.begin_checkpoint(step)
        files = self.storage.upload_dir(Path(local_dir), self.checkpoint_prefix(step))
        return self.finish_checkpoint(step, files)

    def begin_checkpoint(self, step: int) -> None:
        """Clear the step's prefix of an attempt killed mid-upload, before its files are uploaded."""
        self.storage.delete_prefix(self.checkpoint_prefix(step))

    def finish_checkpoint(self, step: int, files: list | None = None) -> Manifest:
        """Commit the uploaded step (verifying `files`, what was uploaded) and prune all but the newest
        `keep_checkpoints`."""
        manifest = commit(self.storage, self.checkpoint_prefix(step), files)
        for old in self.committed_checkpoint_steps()[: -self.keep_checkpoints]:
            self.storage.delete_prefix(self.checkpoint_prefix(old))
        return manifest

    def committed_checkpoint_steps(self) -> list[int]:
        """Steps with a manifest, ascending (an uncommitted, half-uploaded step is not listed)."""
        steps = []
        for key in self.storage.list(self.checkpoint_root):
            parts = key[len(self.checkpoint_root) + 1 :].split("/")
            match = _STEP_DIR.match(parts[0])
            if match and parts[1:] == [MANIFEST_NAME]:
                steps.append(int(match.group(1)))
        return sorted(steps)

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        """The newest committed checkpoint, downloaded and verified into the workdir, or None."""
        for step in reversed(self.committed_checkpoint_steps()):
            if read_manifest(self.storage, self.checkpoint_prefix(step)) is None:
                continue  # unparsable manifest: not committed
            local = self.workdir / "resume" / f"step-{step:06d}"
            download_committed(self.storage, self.checkpoint_prefix(step), local)
            log.info("resuming from committed checkpoint step %d", step)
            return step, local
        return None

    # ---------------------------------------------------------------------------------------------
    # Inputs: committed outputs of earlier phases

    def input_prefix(self, key: str) -> str:
        """`key` itself, checked to be committed (e.g. 'iter-001/solver')."""
        if not is_committed(self.storage, check_key(key)):
            raise InputNotReadyError(f"input {self.storage.uri_for(key)} is not committed")
        return key

    def input_prefixes(self, key: str) -> list[str]:
        """The committed prefixes making up an input: `key` when it is committed itself, else all its
        `shard-IIIII-of-KKKKK` sub-prefixes, which must all be committed."""
        if is_committed(self.storage, check_key(key)):
            return [key]
        shards: dict[int, set[int]] = {}
        for stored in self.storage.list(key):
            parts = stored[len(key) + 1 :].split("/")
            match = _SHARD_DIR.match(parts[0])
            if match and parts[1:] == [MANIFEST_NAME]:
                shards.setdefault(int(match.group(2)), set()).add(int(match.group(1)))
        if not shards:
            raise InputNotReadyError(f"input {self.storage.uri_for(key)} has no committed output or shards")
        if len(shards) > 1:
            raise InputNotReadyError(f"input {self.storage.uri_for(key)} mixes shard counts {sorted(shards)}")
        (count, present), = shards.items()
        missing = sorted(set(range(count)) - present)
        if missing:
            raise InputNotReadyError(
                f"input {self.storage.uri_for(key)}: {len(present)} of {count} shards committed, "
                f"missing {', '.join(f'shard-{i:05d}-of-{count:05d}' for i in missing[:5])}"
            )
        return [join_key(key, f"shard-{i:05d}-of-{count:05d}") for i in range(count)]

    def read_input_jsonl(self, key: str, filename: str) -> list[dict]:
        """The rows of `filename` in every committed shard of input `key`, in shard order; each file is
        checked against its manifest (size and sha256) and refused (IntegrityError) when it differs."""
        rows: list[dict] = []
        for prefix in self.input_prefixes(key):
            rows.extend(parse_jsonl(self.storage.get_committed_bytes(prefix, filename)))
        return rows

    def download_input(self, prefix: str) -> Path:
        """Download a committed prefix into the cache (verified; reused when already there)."""
        local = self.input_cache_dir(prefix)
        download_committed(self.storage, self.input_prefix(prefix), local)
        return local

    def input_cache_dir(self, prefix: str) -> Path:
        """Cache location of a run-relative prefix; the storage uri is hashed in so runs never collide."""
        root = hashlib.sha256(self.storage.uri.encode()).hexdigest()[:16]
        return self.cache_dir / "artifacts" / root / check_key(prefix)
