"""`rzero worker PHASE --task FILE --nproc-per-node N [--nnodes M --node-rank R --master-addr A --master-port P]`:
run a phase as N ranks on this node (and M nodes), torchrun's way, keeping the worker's exit-code contract.

The task is validated first, in this process: a bad task exits 2 before any rank starts. The ranks are then
started by torch's elastic agent (what `torchrun` runs) with no restarts: a rank that dies stops the others
and fails the pod, and the retry resumes from the last committed checkpoint. Each rank runs
`python -m rzero_worker PHASE --task-json ...` with torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK...).

Exit code: 0 when every rank finished; 2 when a rank reported a configuration error (so the Job's
podFailurePolicy still fails at once instead of retrying); 1 otherwise.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from dataclasses import dataclass

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
RENDEZVOUS_TIMEOUT_S = 900  # multi-node: how long the first pod waits for the others to be scheduled


@dataclass(frozen=True)
class RankLayout:
    """Where this node's ranks belong: N per node, M nodes, this node's index and the rendezvous address."""

    nproc_per_node: int
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int = 29500

    def __post_init__(self):
        if self.nproc_per_node < 1 or self.nnodes < 1:
            raise ValueError("--nproc-per-node and --nnodes must be >= 1")
        if self.nnodes > 1 and not self.master_addr:
            raise ValueError("--nnodes > 1 needs --master-addr (the first pod's address)")
        if not 0 <= self.node_rank < self.nnodes:
            raise ValueError(f"--node-rank {self.node_rank} must be in [0, {self.nnodes})")


def launch_config(layout: RankLayout):
    """torch's LaunchConfig for `layout`: on one node a private c10d rendezvous on a free port (several runs may
    share a machine); across nodes torchrun's static rendezvous at the first pod."""
    from torch.distributed.launcher.api import LaunchConfig

    common = dict(min_nodes=layout.nnodes, max_nodes=layout.nnodes, nproc_per_node=layout.nproc_per_node,
                  max_restarts=0, monitor_interval=1, start_method="spawn")
    if layout.nnodes == 1:
        return LaunchConfig(run_id=str(uuid.uuid4()), rdzv_backend="c10d", rdzv_endpoint="localhost:0", **common)
    return LaunchConfig(run_id="rzero", rdzv_backend="static", rdzv_endpoint=f"{layout.master_addr}:{layout.master_port}",
                        rdzv_configs={"rank": layout.node_rank, "timeout": RENDEZVOUS_TIMEOUT_S}, **common)


def rank_command(phase: str, task) -> list[str]:
    """What each rank runs: this worker, in-process, on the already validated task."""
    return ["-m", "rzero_worker", phase, "--task-json", json.dumps(task.wire(), separators=(",", ":"))]


def exit_code_of(failures: dict[int, int]) -> int:
    """The pod's exit code from the failed ranks' exit codes (negative: killed by that signal)."""
    return EXIT_INVALID if EXIT_INVALID in failures.values() else EXIT_FAILED


def launch(phase: str, task, layout: RankLayout) -> int:
    """Run the ranks of this node to completion; returns the worker exit code (module docstring)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch

    log.info("starting %d ranks on node %d of %d", layout.nproc_per_node, layout.node_rank, layout.nnodes)
    try:
        elastic_launch(launch_config(layout), sys.executable)(*rank_command(phase, task))
    except ChildFailedError as error:
        failures = {rank: failure.exitcode for rank, failure in error.failures.items()}
        code = exit_code_of(failures)
        if all(exit_code < 0 for exit_code in failures.values()):
            _report_killed(phase, task, failures)
        return code
    return EXIT_OK


def _report_killed(phase: str, task, failures: dict[int, int]) -> None:
    """A rank killed by a signal (OOM killer, preemption) wrote no termination log of its own: say which."""
    from rzero_worker.summary import make_failure_summary, write_termination_log

    which = ", ".join(f"rank {rank} by signal {-code}" for rank, code in sorted(failures.items()))
    message = f"killed: {which}"
    print(f"rzero worker {phase}: {message}", file=sys.stderr, flush=True)
    try:
        write_termination_log(make_failure_summary(phase, message, task))
    except OSError as error:
        log.warning("could not write the termination log: %s", error)
