"""`rzero tensorboard [FILE] [--root DIR]`: TensorBoard on a run's event files.

Every phase commits its TensorBoard run under its output (`<run root>/iter-001/challenger/tensorboard/...`,
worker/rzero_worker/tracking.py), so one `tensorboard --logdir <run root>` shows a run's whole history, the
iterations side by side. With FILE: that local run's root; without: `--root` (default: the current
directory), which may hold many runs. When TensorBoard is not installed here the command is printed instead.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def tensorboard_command(logdir: str, port: int | None = None) -> list[str]:
    command = ["tensorboard", "--logdir", logdir]
    return command + ["--port", str(port)] if port else command


def find_tensorboard() -> str | None:
    """The tensorboard executable on PATH, or beside this Python (a venv not activated)."""
    beside = Path(sys.executable).with_name("tensorboard")
    return shutil.which("tensorboard") or (str(beside) if beside.is_file() else None)


def logdir_for(file: Path | None, root: Path | None) -> str:
    if file is None:
        return str((root or Path.cwd()).resolve())
    from .commands import _located

    [(state, _)] = _located(file, root)
    return state.run_root


def run_tensorboard(file: Path | None, root: Path | None, port: int | None = None, print_only: bool = False) -> int:
    from rzero_operator.validate import InvalidManifest

    try:
        logdir = logdir_for(file, root)
    except (FileNotFoundError, InvalidManifest) as err:
        print(f"rzero tensorboard: {err}", file=sys.stderr)
        return 1
    command = tensorboard_command(logdir, port)
    if logdir.startswith("s3://"):
        print("rzero tensorboard: the run root is in S3; copy it first (e.g. `aws s3 sync "
              f"{logdir} ./run`) and run: {' '.join(tensorboard_command('./run', port))}", file=sys.stderr)
        return 1
    executable = find_tensorboard()
    if print_only or executable is None:
        if executable is None:
            print("rzero tensorboard: tensorboard is not installed here (pip install tensorboard); run:",
                  file=sys.stderr)
        print(" ".join(command))
        return 0 if print_only else 1
    return subprocess.call([executable, *command[1:]])
