"""Running phases as several ranks on the CPU (gloo), for tests: the real launcher, torchrun, and a rank that dies.

- `worker_with_ranks(phase, task, ranks)`: `python -m rzero_worker PHASE --task FILE --nproc-per-node N`, the
  command a Job runs (the launcher starts the ranks with torch's elastic agent).
- `torchrun(script, *args, ranks)`: `python -m torch.distributed.run --nproc-per-node N SCRIPT ARGS`.
- Run as a script under torchrun, this module is a worker whose rank `RZERO_TEST_DIE_RANK` kills itself
  (SIGKILL, as the OOM killer would) right after the checkpoint of update `RZERO_TEST_DIE_AFTER` is committed:

      torchrun --nproc-per-node 2 tests/support/ranks.py solver --task FILE
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

TIMEOUT_S = 600
DIE_RANK_ENV, DIE_AFTER_ENV = "RZERO_TEST_DIE_RANK", "RZERO_TEST_DIE_AFTER"


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # One thread per rank: two ranks on a 2-core machine must not each start a thread per core.
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **(extra or {})}


def write_task(task, directory: Path) -> Path:
    path = Path(directory) / f"{task.phase}-task.json"
    path.write_text(json.dumps(task.wire()))
    return path


def worker_with_ranks(task, ranks: int, directory: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The worker CLI with `--nproc-per-node ranks` on `task` (written to a file in `directory`)."""
    command = [sys.executable, "-m", "rzero_worker", task.phase, "--task", str(write_task(task, directory)),
               "--nproc-per-node", str(ranks)]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(env))


def torchrun(script: Path | str, *args: str, ranks: int, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks),
               str(script), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(env))


def _die_after_checkpoint() -> None:
    from rzero_worker import distributed

    upload = distributed.save_checkpoint
    rank, after = int(os.environ[DIE_RANK_ENV]), int(os.environ[DIE_AFTER_ENV])

    def upload_then_die(ctx, step, local_dir):
        upload(ctx, step, local_dir)
        if step == after and distributed.current().rank == rank:
            os.kill(os.getpid(), signal.SIGKILL)

    distributed.save_checkpoint = upload_then_die


if __name__ == "__main__":
    sys.path[:0] = [str(Path(__file__).resolve().parents[1])]
    _die_after_checkpoint()
    from rzero_worker.cli import main

    sys.exit(main(sys.argv[1:]))
