"""The local run's state file: the RZeroRun status plus what only a local executor needs to remember.

A cluster keeps the status in the RZeroRun object and the attempt in a Job. Locally both live in one JSON
file, `<base>/local/<run name>/state.json`, beside the run roots it points to. It holds:

- the run's `uid`, generated once, so `rzero run` again continues the same run root;
- the status exactly as the plan wrote it (camelCase, the same document a cluster would store);
- the attempt being executed: its tasks (so a restart knows which outputs to look for), the exit code of
  each shard once it finished, and where each shard's log is;
- the run's annotations: where `rzero approve` writes a person's decision at an approval gate, as
  `kubectl annotate` does on a cluster (approval.py).

Writes are atomic (temporary file + os.replace): a crash leaves the old state or the new one, never half.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rzero_worker.storage import write_bytes_atomically

STATE_API_VERSION = "rzero.dev/local-state-v1"
STATE_FILE_NAME = "state.json"


@dataclass
class AttemptRecord:
    """One phase attempt as the executor ran it: one task, exit code and log per shard."""

    iteration: int
    phase: str
    attempt: int
    tasks: list[dict]
    exit_codes: list[int | None] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def matches(self, iteration: int, phase: str, attempt: int) -> bool:
        return (self.iteration, self.phase, self.attempt) == (iteration, phase, attempt)

    def to_json(self) -> dict:
        return {
            "iteration": self.iteration,
            "phase": self.phase,
            "attempt": self.attempt,
            "tasks": self.tasks,
            "exitCodes": self.exit_codes,
            "logs": self.logs,
        }

    @classmethod
    def from_json(cls, data: dict) -> "AttemptRecord":
        return cls(
            iteration=int(data["iteration"]),
            phase=str(data["phase"]),
            attempt=int(data["attempt"]),
            tasks=list(data.get("tasks", [])),
            exit_codes=list(data.get("exitCodes", [])),
            logs=list(data.get("logs", [])),
        )


@dataclass
class LocalState:
    """Everything `rzero run` needs to resume a local run."""

    name: str
    uid: str
    run_root: str
    status: dict = field(default_factory=dict)
    generation: int = 1
    spec_digest: str = ""
    attempt: AttemptRecord | None = None
    annotations: dict[str, str] = field(default_factory=dict)  # a cluster run's metadata.annotations (approval)

    def to_json(self) -> dict:
        return {
            "apiVersion": STATE_API_VERSION,
            "name": self.name,
            "uid": self.uid,
            "runRoot": self.run_root,
            "generation": self.generation,
            "specDigest": self.spec_digest,
            "status": self.status,
            "attempt": self.attempt.to_json() if self.attempt else None,
            "annotations": dict(self.annotations),
        }

    @classmethod
    def from_json(cls, data: dict) -> "LocalState":
        if data.get("apiVersion") != STATE_API_VERSION:
            raise ValueError(f"unsupported state file apiVersion {data.get('apiVersion')!r}")
        attempt = data.get("attempt")
        return cls(
            name=str(data["name"]),
            uid=str(data["uid"]),
            run_root=str(data["runRoot"]),
            status=dict(data.get("status") or {}),
            generation=int(data.get("generation", 1)),
            spec_digest=str(data.get("specDigest", "")),
            attempt=AttemptRecord.from_json(attempt) if attempt else None,
            annotations={str(k): str(v) for k, v in (data.get("annotations") or {}).items()},
        )


def state_dir(base: Path, run_name: str) -> Path:
    """Where a local run keeps its state file (one directory per run name)."""
    return Path(base) / "local" / run_name


def state_path(base: Path, run_name: str) -> Path:
    return state_dir(base, run_name) / STATE_FILE_NAME


def new_uid() -> str:
    return str(uuid.uuid4())


def load_state(path: Path) -> LocalState | None:
    """The saved state, or None when the run was never started here."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"state file {path} is not valid JSON: {err}") from err
    return LocalState.from_json(data)


def save_state(path: Path, state: LocalState) -> None:
    """Write the state atomically: readers see the old file or the new one, never a torn one."""
    text = json.dumps(state.to_json(), indent=2, sort_keys=True)
    write_bytes_atomically(Path(path), text.encode("utf-8"))
