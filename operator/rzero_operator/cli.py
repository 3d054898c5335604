"""`rzero`: the one command line for users, Jobs and the operator pod.

    rzero run FILE            run the R-Zero loop locally (resumes where it stopped)
    rzero status [FILE]       per-iteration table of a local run
    rzero report [FILE]       PNG plots + report.md of a local run
    rzero approve FILE ...    approve (or reject) the gate a local run waits at
    rzero export ...          copy an exported Solver (Hugging Face directory) to a path or s3:// URI
    rzero validate FILE...    check RZeroRun manifests offline (exit 2 naming the bad fields)
    rzero init --model M ...  write a commented starting manifest sized for a model and the cluster's GPUs
    rzero crd                 print the generated CustomResourceDefinition
    rzero benchmarks ...      list the paper's benchmark presets; prepare (download) their files
    rzero operator            start the Kubernetes operator (kopf)
    rzero worker PHASE ...    run one phase (what each Job runs)

Every subcommand imports what it needs only when it runs: `rzero validate` and `rzero crd` stay fast and
never import torch, and the operator image (no torch) can run everything but `worker`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _add_run_location(parser: argparse.ArgumentParser, file_required: bool) -> None:
    parser.add_argument(
        "file", metavar="FILE", type=Path, nargs=None if file_required else "?", help="RZeroRun manifest (YAML)."
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="Base directory for a relative storage uri (default: the current directory); "
        "for s3:// storage, where local state and logs go (default: ./rzero-runs).",
    )


def _add_watch_commands(sub) -> None:
    """`rzero approve` and `rzero export` (see README "Monitoring label drift")."""
    approve = sub.add_parser("approve", help="Approve (or reject) the approval gate a local run waits at.")
    _add_run_location(approve, file_required=True)
    approve.add_argument("--iteration", type=int, required=True, help="The iteration whose gate to decide.")
    approve.add_argument("--reject", action="store_true", help="Reject: the run stops (Succeeded, reason Rejected).")
    approve.add_argument("--reason", default="", help="Why (recorded in status.approvals).")
    approve.add_argument("--by", default=None, help="Who decides (default: the login name).")
    approve.add_argument("--verdict", action="append", default=[], metavar="ID=correct|incorrect",
                         help="A per-item verdict on the audit sample (repeatable): a trained Verifier learns from it.")

    export = sub.add_parser("export", help="Copy an exported Solver to a directory or s3:// URI.")
    _add_run_location(export, file_required=False)
    export.add_argument("--from", dest="location", default=None,
                        help="An exported directory (status.export.best.location of a cluster run) instead of FILE.")
    export.add_argument("--to", required=True, help="Destination directory or s3://bucket/prefix.")
    export.add_argument("--which", choices=("best", "last"), default="best", help="The best (default) or last Solver.")
    export.add_argument("--endpoint", default=None, help="S3 endpoint URL (S3-compatible stores).")
    export.add_argument("--region", default=None, help="S3 region.")


def _add_leader_election(operator: argparse.ArgumentParser) -> None:
    """`rzero operator --leader-elect ...` (kube/leader.py); the defaults are leader.ElectionConfig's."""
    election = operator.add_argument_group("leader election (several replicas: one acts, the others wait)")
    election.add_argument("--leader-elect", action="store_true",
                          help="Act only while holding a coordination.k8s.io Lease; wait as a standby otherwise.")
    election.add_argument("--leader-election-namespace", default=None,
                          help="Namespace of the Lease (default: $RZERO_OPERATOR_NAMESPACE, else the pod's own).")
    election.add_argument("--leader-election-id", default="rzero-operator", help="Name of the Lease.")
    for flag, default, what in (("lease-duration", 10.0, "how long a standby waits after the last renewal it saw"),
                                ("renew-deadline", 7.0, "how long the leader keeps acting without a renewal"),
                                ("retry-period", 2.0, "how often the Lease is renewed or tried")):
        election.add_argument(f"--leader-election-{flag}", type=float, default=default, metavar="SECONDS",
                              help=f"{what.capitalize()} (default {default:g}).")
    # Removed: kopf peering pauses every replica of equal priority, so two replicas did nothing.
    operator.add_argument("--peering", default=None, help=argparse.SUPPRESS)


def _add_init_command(sub) -> None:
    """`rzero init` (rzero_operator.init, docs/gpu-sizing.md "What auto chooses")."""
    init = sub.add_parser("init", help="Write a starting RZeroRun sized for a model and the cluster's GPUs.")
    init.add_argument("--model", required=True, help="Base model (a Hugging Face id such as Qwen/Qwen3-4B-Base).")
    init.add_argument("--gpus", type=int, default=1, help="GPUs per node (default 1).")
    init.add_argument("--nodes", type=int, default=1, help="Nodes for multi-node training (default 1).")
    init.add_argument("--gpu-memory", default=None,
                      help="Memory of one GPU: a quantity (80Gi) or MiB as nodes are labelled (81559); "
                      "default: an 80 GB GPU.")
    init.add_argument("--name", default=None, help="metadata.name (default: from the model).")
    init.add_argument("--storage", default=None, help="spec.storage.uri (default: s3://rzero/runs).")
    init.add_argument("-o", "--output", type=Path, default=None, help="Write to this file (default: stdout).")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rzero", description="R-Zero self-evolving LLM training, locally or on Kubernetes.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="Run the R-Zero loop locally; run again to resume.")
    _add_run_location(run, file_required=True)
    run.add_argument("--iterations", type=int, default=None, help="Override spec.iterations.")
    run.add_argument("--no-progress", action="store_true", help="No progress bars (plain log lines).")
    run.add_argument("--parallel", type=int, default=1, help="Shards of a phase to run at once (default 1).")
    run.add_argument("--no-report", action="store_true", help="Do not write the report at the end.")
    run.add_argument("--gpus", type=int, default=None,
                     help="Use this machine's N GPUs like a pod with N GPUs: training and generation phases run as "
                     "ranks (default: one process per phase).")

    status = sub.add_parser("status", help="Per-iteration table of a local run.")
    _add_run_location(status, file_required=False)
    status.add_argument("--json", action="store_true", help="Print the raw status JSON instead.")

    report = sub.add_parser("report", help="Write PNG plots and report.md of a local run.")
    _add_run_location(report, file_required=False)
    report.add_argument("--out", type=Path, default=None, help="Output directory (default: <run dir>/report).")

    _add_watch_commands(sub)

    board = sub.add_parser("tensorboard", help="TensorBoard on a run's step-level curves (every phase, every iteration).")
    _add_run_location(board, file_required=False)
    board.add_argument("--port", type=int, default=None, help="TensorBoard's port (default: its own, 6006).")
    board.add_argument("--print", dest="print_only", action="store_true", help="Print the command instead of running it.")

    validate = sub.add_parser("validate", help="Validate RZeroRun manifests offline.")
    validate.add_argument("files", metavar="FILE", type=Path, nargs="+", help="YAML files (multi-document ok).")

    _add_init_command(sub)
    sub.add_parser("crd", help="Print the RZeroRun CustomResourceDefinition (YAML).")

    benchmarks = sub.add_parser("benchmarks", help="The paper's benchmark presets: list them, prepare their files.")
    actions = benchmarks.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="Each preset's source, layout, gold reading and grader.")
    prepare = actions.add_parser("prepare", help="Download benchmarks (datasets library) and stage them as JSONL.")
    prepare.add_argument("names", metavar="NAME", nargs="+", help="Preset names, or 'all'.")
    prepare.add_argument("--out", required=True, help="Directory or s3://bucket/prefix to write to.")
    prepare.add_argument("--endpoint", default=None, help="S3 endpoint URL (S3-compatible stores).")
    prepare.add_argument("--region", default=None, help="S3 region.")
    prepare.add_argument(
        "--from", dest="files", metavar="NAME=FILE", action="append", default=[],
        help="Read NAME from a local file in its published layout (JSONL or Parquet) instead of the Hub.",
    )

    operator = sub.add_parser("operator", help="Start the Kubernetes operator.")
    scope = operator.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", default=None, help="Namespace to watch (repeatable).")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="Watch every namespace (the default).")
    operator.add_argument(
        "--metrics-port", type=int, default=None,
        help="Serve Prometheus metrics on this port, on all interfaces (0.0.0.0: right in a pod; on a "
        "workstation it is reachable from the network).",
    )
    _add_leader_election(operator)

    worker = sub.add_parser("worker", help="Run one phase (what each Job runs).", add_help=False)
    worker.add_argument("worker_args", nargs=argparse.REMAINDER, help="PHASE --task FILE | --task-json JSON")
    return parser


# --------------------------------------------------------------------------------------------------
# Subcommands


def cmd_validate(args: argparse.Namespace) -> int:
    """Exit 2 (a configuration error, as `rzero run` and `rzero worker` give for the same input) when any
    file is invalid, unreadable, too large, or holds other than one document."""
    from rzero_operator.validate import validate_file

    failed = False
    for path in args.files:
        try:
            errors = validate_file(path)
        except OSError as err:
            errors = [f"cannot read: {err.strerror or err}"]
        sized = None if errors else _sizing(path)
        errors = errors or sized.errors
        if errors:
            failed = True
            for message in errors:
                print(f"{path}: {message}", file=sys.stderr)
        else:
            print(f"{path}: valid")
            for choice in sized.choices:
                print(f"{path}: {choice}")
    return EXIT_USAGE if failed else EXIT_OK


def _sizing(path: Path):
    """GPU layout and memory of the file's (valid) run, its auto fields sized (rzero_operator.sizing_auto, as the
    operator sizes them): warnings are printed, errors (what cannot work) are the caller's."""
    from rzero_operator.sizing_auto import size
    from rzero_operator.validate import load_manifest

    sized = size(load_manifest(path).spec)
    for warning in sized.warnings:
        print(f"{path}: {warning}", file=sys.stderr)
    return sized


def cmd_init(args: argparse.Namespace) -> int:
    """Exit 2 when the input is impossible or no layout of the GPUs fits the model (the errors are printed)."""
    from rzero_operator.init import DEFAULT_STORAGE, Cluster, starter

    try:
        made = starter(args.model, Cluster(args.gpus, args.nodes, args.gpu_memory), name=args.name,
                       storage=args.storage or DEFAULT_STORAGE)
    except (ValueError, KeyError) as error:  # KeyError: a quantity with an unknown unit
        print(f"rzero init: {error}", file=sys.stderr)
        return EXIT_USAGE
    if made.errors:
        for message in made.errors:
            print(f"rzero init: {message}", file=sys.stderr)
        return EXIT_USAGE
    if args.output is None:
        sys.stdout.write(made.text)
        return EXIT_OK
    if args.output.exists():
        print(f"rzero init: {args.output} exists; remove it or choose another -o", file=sys.stderr)
        return EXIT_USAGE
    args.output.write_text(made.text, encoding="utf-8")
    print(f"wrote {args.output}; check it with `rzero validate {args.output}`")
    return EXIT_OK


def cmd_crd(args: argparse.Namespace) -> int:
    from rzero_operator.api.crd import render_crd_yaml

    sys.stdout.write(render_crd_yaml())
    return EXIT_OK


def cmd_benchmarks(args: argparse.Namespace) -> int:
    if args.action == "list":
        from rzero_worker.benchmark_presets import describe_presets

        print(describe_presets())
        return EXIT_OK
    from rzero_worker.benchmarks.prepare import PrepareError, file_fetch, hub_fetch, prepare
    from rzero_worker.task import StorageLocation

    try:
        files = dict(_name_equals_file(item) for item in args.files)
        out = StorageLocation(uri=args.out, endpoint_url=args.endpoint, region=args.region)
        manifest = prepare(args.names, out, fetch=file_fetch(files) if files else hub_fetch)
    except (PrepareError, ValueError) as error:
        print(f"rzero benchmarks prepare: {error}", file=sys.stderr)
        return EXIT_USAGE if isinstance(error, ValueError) else EXIT_FAILED
    for entry in manifest["files"]:
        print(f"{entry['name']}: {entry['rows']} rows, sha256 {entry['sha256'][:12]}..., {entry['file']}")
    print(f"manifest: {args.out.rstrip('/')}/benchmarks.json")
    return EXIT_OK


def _name_equals_file(item: str) -> tuple[str, Path]:
    name, sep, path = item.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"--from {item!r}: expected NAME=FILE")
    return name, Path(path)


def cmd_worker(args: argparse.Namespace) -> int:
    from rzero_worker.cli import main as worker_main

    return int(worker_main(list(args.worker_args)) or 0)


def cmd_operator(args: argparse.Namespace) -> int:
    from rzero_operator.kube.leader import ElectionConfig, own_namespace
    from rzero_operator.kube.main import run_operator

    if args.peering is not None:
        print("rzero operator: --peering was removed (kopf peering paused every replica of equal priority, so "
              "two replicas did nothing); run each replica with --leader-elect instead", file=sys.stderr)
        return EXIT_USAGE
    election = None
    if args.leader_elect:
        namespace = args.leader_election_namespace or own_namespace()
        if not namespace:
            print("rzero operator: --leader-elect needs --leader-election-namespace outside a pod", file=sys.stderr)
            return EXIT_USAGE
        try:
            election = ElectionConfig(
                namespace=namespace, name=args.leader_election_id,
                lease_duration_s=args.leader_election_lease_duration,
                renew_deadline_s=args.leader_election_renew_deadline, retry_period_s=args.leader_election_retry_period,
            )
        except ValueError as error:
            print(f"rzero operator: {error}", file=sys.stderr)
            return EXIT_USAGE
    namespaces = None if args.all_namespaces else args.namespace
    return int(run_operator(namespaces=namespaces, metrics_port=args.metrics_port, election=election) or 0)


def cmd_run(args: argparse.Namespace) -> int:
    from rzero_operator.local.executor import run_local

    return run_local(
        args.file,
        root=args.root,
        iterations=args.iterations,
        progress=not args.no_progress and sys.stderr.isatty(),
        max_parallel=args.parallel,
        write_report=not args.no_report,
        gpus=args.gpus,
    )


def cmd_status(args: argparse.Namespace) -> int:
    from rzero_operator.local.commands import print_status

    return print_status(args.file, root=args.root, as_json=args.json)


def cmd_report(args: argparse.Namespace) -> int:
    from rzero_operator.local.commands import make_report

    return make_report(args.file, root=args.root, out=args.out)


def cmd_tensorboard(args: argparse.Namespace) -> int:
    from rzero_operator.local.tensorboard import run_tensorboard

    return run_tensorboard(args.file, args.root, port=args.port, print_only=args.print_only)


def cmd_approve(args: argparse.Namespace) -> int:
    from rzero_operator.local.approve import cmd_approve as approve

    return approve(args.file, args.root, args.iteration, args.reject, args.reason, args.by, args.verdict)


def cmd_export(args: argparse.Namespace) -> int:
    from rzero_operator.exportcopy import copy_export
    from rzero_operator.local.commands import exported_location
    from rzero_operator.validate import InvalidManifest
    from rzero_worker.storage import StorageConfigurationError, StorageError

    endpoint, region = args.endpoint, args.region
    try:
        if args.location is None:
            if args.file is None:
                raise ValueError("give the run's manifest FILE or --from LOCATION")
            location, endpoint, region = exported_location(args.file, args.root, args.which, endpoint, region)
        else:
            location = args.location
        count = copy_export(location, args.to, endpoint=endpoint, region=region)
    except (InvalidManifest, ValueError, OSError, StorageError) as error:
        print(f"rzero export: {error}", file=sys.stderr)
        # A bad location, bucket or credentials (StorageConfigurationError) needs a fix, not a retry.
        return EXIT_USAGE if isinstance(error, StorageConfigurationError) else EXIT_FAILED
    print(f"copied {count} files from {location} to {args.to}")
    return EXIT_OK


COMMANDS = {
    "run": cmd_run,
    "status": cmd_status,
    "report": cmd_report,
    "tensorboard": cmd_tensorboard,
    "approve": cmd_approve,
    "export": cmd_export,
    "validate": cmd_validate,
    "init": cmd_init,
    "crd": cmd_crd,
    "benchmarks": cmd_benchmarks,
    "operator": cmd_operator,
    "worker": cmd_worker,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `rzero worker ...` hands every argument (even --help) to the worker's own parser.
    if argv[:1] == ["worker"]:
        return cmd_worker(argparse.Namespace(worker_args=argv[1:]))
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
