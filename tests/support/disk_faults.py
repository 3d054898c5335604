"""Full and read-only disks for one command, without root on the host and without FUSE or loop devices.

How: `unshare -Urm` gives the command its own user and mount namespace, in which it may mount. There
- a read-only disk is a read-only bind mount of a real directory over itself (the kernel answers EROFS,
  even to root: permissions cannot fake that, since root ignores them);
- a full disk is a tiny tmpfs, filled to the last block (the kernel answers ENOSPC). Its content is copied
  in before and out after the command, so the test can inspect what the command left behind.
The host's directories never change mounts; the namespace vanishes with the command.

Where unprivileged user namespaces are disabled, `namespaces_available()` is False and the tests skip with
that reason. (RLIMIT_FSIZE would only give EFBIG on large files and chmod does not stop root.)
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

SKIP_REASON = "needs `unshare -Urm` (unprivileged user and mount namespaces) to mount a read-only or full disk"

_READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@"'
_FULL = (
    'set -u; disk="$1"; source="$2"; out="$3"; size="$4"; shift 4; '
    'mount -t tmpfs -o "size=$size" tmpfs "$disk" || exit 97; '
    'cp -a "$source/." "$disk/"; '
    'dd if=/dev/zero of="$disk/.filler" bs=4k 2>/dev/null; '
    '"$@"; code=$?; rm -f "$disk/.filler"; cp -a "$disk/." "$out/"; exit $code'
)


@functools.cache
def namespaces_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt 2>/dev/null || "
                            "mount -t tmpfs -o size=4k tmpfs /tmp"], capture_output=True)
    return probe.returncode == 0


def run_read_only(directory: Path, command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run `command` with `directory` (and everything under it) mounted read-only."""
    return subprocess.run(["unshare", "-Urm", "sh", "-c", _READ_ONLY, "sh", str(directory), *command],
                          capture_output=True, text=True, **kwargs)


def run_on_full_disk(directory: Path, command: list[str], size: str = "256k", **kwargs) -> subprocess.CompletedProcess:
    """Run `command` with `directory` on a full tmpfs holding a copy of its content; afterwards `directory`
    holds what the command left on that disk (the filler removed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    before, after = directory.with_name(directory.name + ".before"), directory.with_name(directory.name + ".after")
    for path in (before, after):
        shutil.rmtree(path, ignore_errors=True)
    directory.rename(before)
    directory.mkdir()  # the mount point
    after.mkdir()
    try:
        result = subprocess.run(["unshare", "-Urm", "sh", "-c", _FULL, "sh", str(directory), str(before),
                                 str(after), size, *command], capture_output=True, text=True, **kwargs)
    finally:
        directory.rmdir()
        after.rename(directory)
        shutil.rmtree(before, ignore_errors=True)
    if result.returncode == 97:
        raise RuntimeError(f"could not mount a tmpfs: {result.stderr}")
    return result
