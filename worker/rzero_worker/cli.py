"""`rzero worker PHASE (--task FILE | --task-json JSON)`: what each phase Job runs.

Exit codes (docs/ARCHITECTURE.md): 0 done or already committed; 2 invalid task/configuration (the
Job's podFailurePolicy fails at once, no retry): a bad task, a phase's ConfigurationError, a model source
that cannot be found (ModelSourceError, e.g. a builtin model whose wheel is not installed), storage that
cannot work as configured (StorageConfigurationError: see storage_s3_policy.py); 1 anything else (retryable).

The task is validated before anything heavy is imported: a bad task fails in well under a second and
never loads torch. The phase module (and with it the ML stack) is imported only when the phase runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from pydantic import ValidationError

from rzero_worker.task import WORKER_PHASES, parse_task

log = logging.getLogger("rzero_worker")

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
PARENT_PID_ENV = "RZERO_PARENT_PID"  # set by `rzero run`: the worker dies with it (Linux)


class InvalidTask(Exception):
    """The task document is unreadable or invalid (exit 2); the message names the field."""


def main(argv: list[str] | None = None) -> int:
    _die_with_parent()
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:  # argparse already printed the usage error
        return int(stop.code or 0)
    _configure_logging()
    try:
        task = load_task(args)
        if task.phase != args.phase:
            raise InvalidTask(f"phase: the command line says {args.phase!r} but the task is for {task.phase!r}")
    except InvalidTask as error:
        return _fail(args.phase, f"invalid task: {error}", EXIT_INVALID)
    if args.nproc_per_node is not None:  # the pod's ranks, started from here once the task is known to be valid
        return _launch(task, args)
    return _run(task)


def _die_with_parent() -> None:
    """Started by `rzero run` (RZERO_PARENT_PID): ask Linux for SIGKILL when that parent dies, so killing
    `rzero run` never leaves a worker writing an output that a rerun starts again. The variable is removed
    so this process's own children (grading workers, torchrun ranks) do not act on it."""
    expected = os.environ.pop(PARENT_PID_ENV, "")
    if not expected.isdigit() or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != int(expected):  # the parent died before the request above took effect
        os._exit(EXIT_FAILED)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rzero worker", description="Run one R-Zero phase for a task.")
    parser.add_argument("phase", choices=WORKER_PHASES, help="The phase to run; must match the task's phase.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--task", metavar="FILE", help="Task document, JSON or YAML ('-' = stdin).")
    source.add_argument("--task-json", metavar="JSON", help="Task document as a JSON string.")
    ranks = parser.add_argument_group("ranks", "Run the phase as torchrun ranks (launch.py): one per GPU of the pod.")
    ranks.add_argument("--nproc-per-node", type=int, default=None, help="Ranks on this node.")
    ranks.add_argument("--nnodes", type=int, default=1, help="Nodes (pods) in all.")
    ranks.add_argument("--node-rank", type=int, default=0, help="This node's index.")
    ranks.add_argument("--master-addr", default=None, help="Address of node 0 (multi-node rendezvous).")
    ranks.add_argument("--master-port", type=int, default=29500, help="Rendezvous port on node 0.")
    return parser


def load_task(args: argparse.Namespace):
    """Read and validate the task document; raises InvalidTask naming the file or field. The reader is
    `rzero_worker.documents` (size limit, UTF-8, duplicate keys, JSON-like scalars), as for manifests."""
    from rzero_worker.documents import MAX_DOCUMENT_BYTES, DocumentError, check_values, parse_documents, read_bytes

    try:
        if args.task_json is not None:
            origin, data = "--task-json", args.task_json
        elif args.task == "-":
            origin, data = "stdin", getattr(sys.stdin, "buffer", sys.stdin).read(MAX_DOCUMENT_BYTES + 1)
        else:
            origin, data = args.task, read_bytes(args.task, f"task file {args.task}")
        docs = parse_documents(data, origin)
        if len(docs) != 1:
            found = f"{len(docs)} documents" if docs else "no document"
            raise InvalidTask(f"{origin}: holds {found}; a task file holds exactly one")
        problems = check_values(docs[0])
        if problems:
            raise InvalidTask(f"{origin}: {problems[0]}")
    except DocumentError as error:
        raise InvalidTask(str(error)) from None
    if not isinstance(docs[0], dict):
        raise InvalidTask(f"{origin}: the task must be a mapping, got {type(docs[0]).__name__}")
    try:
        return parse_task(docs[0])
    except ValidationError as error:
        raise InvalidTask(format_validation_error(error)) from None


def format_validation_error(error: ValidationError) -> str:
    """One line per problem, each starting with the field path, e.g.
    `settings.grpo.steps: Input should be greater than or equal to 1`."""
    lines = []
    for item in error.errors():
        loc = list(item["loc"])
        if loc and loc[0] in WORKER_PHASES:  # the discriminated union prefixes the phase tag: not a field
            loc = loc[1:]
        path = ".".join(str(part) for part in loc) or "phase"
        lines.append(f"{path}: {item['msg']}")
    return "\n".join(lines)


def _launch(task, args: argparse.Namespace) -> int:
    from rzero_worker.launch import RankLayout, launch

    try:
        layout = RankLayout(args.nproc_per_node, args.nnodes, args.node_rank, args.master_addr, args.master_port)
    except ValueError as error:
        return _fail(task.phase, f"invalid rank layout: {error}", EXIT_INVALID, task)
    return launch(task.phase, task, layout)


def _run(task) -> int:
    from rzero_worker.models import ModelSourceError
    from rzero_worker import distributed
    from rzero_worker.phases import phase_for  # light: just the registry
    from rzero_worker.phases.runner import ConfigurationError, run_phase
    from rzero_worker.storage import StorageConfigurationError, StorageError

    def impl(ctx):
        return phase_for(task)(ctx)  # the ML stack is imported here, only when needed

    try:
        if distributed.current().distributed:
            distributed.setup_for_task(task)
        return run_phase(task, impl)
    except (ConfigurationError, ModelSourceError, StorageConfigurationError) as error:  # no retry fixes these
        return _fail(task.phase, f"configuration error: {error}", EXIT_INVALID, task)
    except StorageError as error:  # says what and where (no space, deadline, integrity): no traceback needed
        return _fail(task.phase, f"{type(error).__name__}: {error}", EXIT_FAILED, task)
    except Exception as error:  # noqa: BLE001 - every failure must reach the termination log
        log.error("phase %s failed:\n%s", task.phase, traceback.format_exc())
        return _fail(task.phase, f"{type(error).__name__}: {error}", EXIT_FAILED, task)


def _fail(phase: str, message: str, code: int, task=None) -> int:
    from rzero_worker.summary import make_failure_summary, write_termination_log

    print(f"rzero worker {phase}: {message}", file=sys.stderr, flush=True)
    try:
        write_termination_log(make_failure_summary(phase, message, task))
    except OSError as error:  # the log is a courtesy to the operator; the exit code is what counts
        log.warning("could not write the termination log: %s", error)
    return code


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
