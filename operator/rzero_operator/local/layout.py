"""Where a local run keeps things.

- Storage (phase outputs, the commit rule): `<storage uri>/local/<run name>/<uid>` — the same layout as on
  a cluster, with namespace `local`. A relative storage uri is resolved against `--root` (default: the
  current directory); an s3:// uri is used as is.
- The state file: `<state base>/local/<run name>/state.json`, found without knowing the uid. The state base
  is the storage directory for local storage, or `--root` (default ./rzero-runs) for s3 storage.
- Local working files (task files, phase logs, the report): the run root itself for local storage, or
  `<state base>/local/<run name>/<uid>` for s3 storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rzero_operator.local.state import state_path

LOCAL_NAMESPACE = "local"
DEFAULT_ROOT = Path("rzero-runs")


@dataclass(frozen=True)
class LocalLayout:
    run_name: str
    storage_uri: str  # absolute local path or s3://bucket/prefix
    state_base: Path

    @classmethod
    def resolve(cls, run_name: str, storage_uri: str | None, root: Path | None = None) -> "LocalLayout":
        """Resolve the manifest's storage uri for this machine (see the module docstring)."""
        uri = (storage_uri or "").strip()
        if uri.startswith("s3://"):
            return cls(run_name, uri.rstrip("/"), Path(root or DEFAULT_ROOT).resolve())
        base = Path(root) if root is not None else Path.cwd()
        local = (base / (uri or DEFAULT_ROOT)).expanduser().resolve()
        return cls(run_name, str(local), local)

    @staticmethod
    def resolve_path(uri: str, root: Path | None = None) -> str:
        """A manifest's local path made absolute (relative: against `root`, default the current directory);
        an s3:// uri as it is."""
        if uri.startswith("s3://"):
            return uri
        base = Path(root) if root is not None else Path.cwd()
        return str((base / Path(uri).expanduser()).resolve())

    @property
    def is_s3(self) -> bool:
        return self.storage_uri.startswith("s3://")

    @property
    def state_file(self) -> Path:
        return state_path(self.state_base, self.run_name)

    def run_root(self, uid: str) -> str:
        return f"{self.storage_uri}/{LOCAL_NAMESPACE}/{self.run_name}/{uid}"

    def work_dir(self, uid: str) -> Path:
        """Task files, logs and the report (always on this machine)."""
        if self.is_s3:
            return self.state_base / LOCAL_NAMESPACE / self.run_name / uid
        return Path(self.run_root(uid))


def find_state_files(root: Path) -> list[Path]:
    """Every local run's state file under a storage directory (for `rzero status --root DIR`)."""
    return sorted(Path(root).glob(f"{LOCAL_NAMESPACE}/*/state.json"))
