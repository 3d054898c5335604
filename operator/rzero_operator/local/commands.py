"""`rzero status` and `rzero report` for local runs: find the state file(s), then print or plot.

With a manifest FILE the run is located exactly as `rzero run FILE` locates it. Without one, every run
under `--root` (default ./rzero-runs) is shown. `rzero report` exits 74 with one line when it cannot write
the report (disk full, read-only), like `rzero run` when it cannot save its state.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rzero_operator.local.layout import DEFAULT_ROOT, LOCAL_NAMESPACE, LocalLayout, find_state_files
from rzero_operator.local.state import LocalState, load_state
from rzero_operator.local.table import format_status_table


def print_table(run_name: str, status: dict) -> None:
    print(format_status_table(run_name, status))


def _located(file: Path | None, root: Path | None) -> list[tuple[LocalState, LocalLayout]]:
    """The state of the run a manifest names, or of every run under root."""
    if file is not None:
        from rzero_operator.local.executor import load_run

        run = load_run(file)
        layout = LocalLayout.resolve(run.metadata.name, run.spec.storage.uri, root)
        state = load_state(layout.state_file)
        if state is None:
            raise FileNotFoundError(f"run {run.metadata.name!r} has not started yet (no {layout.state_file})")
        return [(state, layout)]
    base = Path(root) if root is not None else DEFAULT_ROOT
    found = []
    for path in find_state_files(base):
        state = load_state(path)
        # The run root is <storage uri>/local/<name>/<uid>: recover the storage uri from it.
        storage_uri = state.run_root[: -len(f"/{LOCAL_NAMESPACE}/{state.name}/{state.uid}")]
        found.append((state, LocalLayout(state.name, storage_uri, base.resolve())))
    if not found:
        raise FileNotFoundError(f"no local runs under {base.resolve()} (give the manifest, or --root DIR)")
    return found


def print_status(file: Path | None, root: Path | None = None, as_json: bool = False) -> int:
    from rzero_operator.validate import InvalidManifest

    try:
        located = _located(file, root)
    except (FileNotFoundError, InvalidManifest) as err:
        print(f"rzero status: {err}", file=sys.stderr)
        return 1
    for index, (state, _) in enumerate(located):
        if as_json:
            print(json.dumps({"name": state.name, "uid": state.uid, "status": state.status}, indent=2))
        else:
            print(("\n" if index else "") + format_status_table(state.name, state.status))
    return 0


def report_for(state: LocalState, storage, out_dir: Path, spec=None) -> Path:
    """Write the report of one run (histograms read from its committed label outputs)."""
    from rzero_operator.report import read_evaluation, read_label_histograms, write_report
    from rzero_operator.report_training import read_training_curves

    iterations = [int(e.get("iteration", 0)) for e in state.status.get("iterationHistory") or []]
    histograms = read_label_histograms(storage, [i for i in iterations if i > 0])
    evaluation = read_evaluation(storage, iterations)
    training = read_training_curves(storage, [i for i in iterations if i > 0])
    band = spec.labeling.band_edges() if spec is not None else None
    return write_report(out_dir, state.name, state.status, histograms, band, evaluation, training)


def make_report(file: Path | None, root: Path | None = None, out: Path | None = None) -> int:
    from rzero_operator.validate import InvalidManifest
    from rzero_worker.storage import open_storage
    from rzero_worker.task import StorageLocation

    try:
        located = _located(file, root)
    except (FileNotFoundError, InvalidManifest) as err:
        print(f"rzero report: {err}", file=sys.stderr)
        return 1
    spec = None
    if file is not None:
        from rzero_operator.local.executor import load_run

        spec = load_run(file).spec
    for state, layout in located:
        storage_location = StorageLocation(
            uri=state.run_root,
            endpoint_url=spec.storage.endpoint if spec else None,
            region=spec.storage.region if spec else None,
        )
        default_out = layout.work_dir(state.uid) / "report"
        target = out / state.name if (out is not None and len(located) > 1) else (out or default_out)
        try:
            path = report_for(state, open_storage(storage_location), target, spec)
        except OSError as error:
            from rzero_operator.local.executor import EXIT_IO_ERROR, disk_hint

            print(f"rzero report: cannot write {error.filename or target}: {error.strerror or error}"
                  f"{disk_hint(error)}", file=sys.stderr)
            return EXIT_IO_ERROR
        print(f"{state.name}: {path}")
    return 0


def exported_location(file: Path, root: Path | None, which: str, endpoint: str | None, region: str | None):
    """(location, endpoint, region) of a local run's exported Solver `which` (best or last)."""
    from rzero_operator.local.executor import load_run

    run = load_run(file)
    [(state, _)] = _located(file, root)
    exported = (state.status or {}).get("export")
    if not exported:
        raise ValueError(f"run {state.name!r} has no export yet (spec.export.enabled, and the run must have ended)")
    return exported[which]["location"], endpoint or run.spec.storage.endpoint, region or run.spec.storage.region
