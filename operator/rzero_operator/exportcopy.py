"""`rzero export`: copy an exported Solver (a plain Hugging Face directory) to a path or s3:// URI.

The export step commits `<run root>/iter-NNN/export/` (best/ and, when it differs, last/); the run's
status names both (`status.export.best.location`, `.last.location`). This copies one of them, checking
every file against the export's manifest (size and sha256) on the way, so a copy is never silently
short or corrupt. Sources and destinations are local directories or s3:// prefixes (boto3's credentials
chain; --endpoint for S3-compatible stores).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rzero_worker.storage import IntegrityError, NotCommittedError, open_storage, read_manifest, sha256_file
from rzero_worker.task import StorageLocation

EXPORT_DIR = "export"


def split_location(location: str) -> tuple[str, str]:
    """'<root>/iter-NNN/export/best' -> ('<root>/iter-NNN', 'best')."""
    parts = location.rstrip("/").rsplit("/", 2)
    if len(parts) != 3 or parts[1] != EXPORT_DIR or parts[2] not in ("best", "last"):
        raise ValueError(f"{location}: not an exported Solver (expected .../iter-NNN/export/best or .../last)")
    return parts[0], parts[2]


def copy_export(location: str, destination: str, *, endpoint: str | None = None, region: str | None = None) -> int:
    """Copy the exported directory at `location` to `destination`; returns the number of files."""
    parent, role = split_location(location)
    source = open_storage(StorageLocation(uri=parent, endpoint_url=endpoint, region=region))
    manifest = read_manifest(source, EXPORT_DIR)
    if manifest is None:
        raise NotCommittedError(f"{source.uri_for(EXPORT_DIR)} is not a committed export")
    entries = [entry for entry in manifest.files if entry.path.startswith(f"{role}/")]
    if not entries:
        raise NotCommittedError(f"{location}: the export holds no {role}/ directory")
    target = open_storage(StorageLocation(uri=destination, endpoint_url=endpoint, region=region))
    with tempfile.TemporaryDirectory(prefix="rzero-export-") as tmp:
        for entry in entries:
            local = Path(tmp) / "file"
            source.get_file(f"{EXPORT_DIR}/{entry.path}", local)
            if local.stat().st_size != entry.size or sha256_file(local) != entry.sha256:
                raise IntegrityError(f"{source.uri_for(EXPORT_DIR + '/' + entry.path)} does not match the export's manifest")
            target.put_file(entry.path[len(role) + 1 :], local)
    return len(entries)
