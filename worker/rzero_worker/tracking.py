"""Where a phase's curves go: TensorBoard always, Weights & Biases and MLflow when `spec.tracking` names them.

    trackers = open_trackers(task, staging)      # the runner does this for every phase (rank 0 only)
    trackers.scalars(step, {"train/reward": 0.4})
    trackers.histogram(step, "label/agreement", bin_edges, counts)
    trackers.close()                             # before the staging directory is committed

TensorBoard event files go to `<staging>/tensorboard/`, so they are committed with the phase output
(`<run root>/iter-001/challenger/tensorboard/...`): `tensorboard --logdir <run root>` shows every phase of every
iteration as a run of its own, side by side. A restarted phase starts from a fresh staging directory (the
runner deletes a half-written output first), so the committed event files are always one attempt's; a
resumed training phase replays the restored log history first (`TrackerCallback`), so its curves are whole.

Names: W&B project `wandb.project`, group `<namespace>/<name>/<uid>`, run `<name>/<output>`; MLflow experiment
`rzero/<namespace>/<name>`, run `<output>`; both tagged with namespace, run, uid, iteration and phase. The
run's identity comes from the run root `<storage>/<namespace>/<name>/<uid>` (DESIGN §3).

Credentials reach the clients only as environment variables (WANDB_API_KEY, MLFLOW_TRACKING_TOKEN) that the
Job takes from Secret references: nothing here logs, stores or sends them as configuration. A tracker whose
call raises is logged once as a warning, counted (`errors`) and left alone for the rest of the phase: it never
fails the phase. TensorBoard failures are counted the same way.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from pathlib import Path
from typing import Iterable

log = logging.getLogger(__name__)

TENSORBOARD_DIR = "tensorboard"
WANDB_DIR = "wandb"
MLFLOW_DIR = "mlruns"
EXTRAS = {"wandb": ("wandb", "rzero[wandb]"), "mlflow": ("mlflow", "rzero[mlflow]")}


class TrackingConfigurationError(Exception):
    """spec.tracking names a tracker whose client is not installed (the CLI exits 2)."""


def run_identity(task) -> dict[str, str]:
    """namespace, name and uid of the run (from the run root's last three path segments), iteration, phase
    and output key: the names and tags every tracker uses."""
    parts = [part for part in str(task.storage.uri).rstrip("/").split("/") if part]
    namespace, name, uid = parts[-3:] if len(parts) >= 3 and parts[-2] == task.run else ("local", task.run, "")
    return {"namespace": namespace, "run": name, "uid": uid, "iteration": str(task.iteration), "phase": task.phase,
            "output": task.output}


def check_clients(settings) -> None:
    """Raise TrackingConfigurationError naming the field when a configured tracker's client is missing."""
    for field, (module, extra) in EXTRAS.items():
        if getattr(settings, field, None) is not None and importlib.util.find_spec(module) is None:
            raise TrackingConfigurationError(
                f"tracking.{field} is set but the {module} package is not installed in the worker "
                f"(install {extra!r}, or remove tracking.{field})"
            )


def finite_scalars(values: dict, prefix: str = "") -> dict[str, float]:
    """The finite numbers of `values` (nested dicts flattened with '/'), booleans left out."""
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(finite_scalars(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


class TensorBoardTracker:
    name = "tensorboard"

    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, global_step=step)

    def histogram(self, step: int, tag: str, edges: list[float], counts: list[int]) -> None:
        """A pre-binned histogram: `counts[i]` values in [edges[i], edges[i+1])."""
        total = sum(counts)
        centres = [(low + high) / 2 for low, high in zip(edges, edges[1:])]
        self.writer.add_histogram_raw(
            tag, min=edges[0], max=edges[-1], num=total, sum=sum(c * n for c, n in zip(centres, counts)),
            sum_squares=sum(c * c * n for c, n in zip(centres, counts)), bucket_limits=list(edges[1:]),
            bucket_counts=list(counts), global_step=step)

    def close(self) -> None:
        self.writer.close()


class Trackers:
    """Fan-out to every open tracker; a tracker that raises is warned about, counted and dropped."""

    def __init__(self, trackers: Iterable):
        self.trackers = list(trackers)
        self.errors = 0

    def _each(self, method: str, *args) -> None:
        for tracker in list(self.trackers):
            try:
                getattr(tracker, method)(*args)
            except Exception as error:  # noqa: BLE001 - a tracker never fails a phase
                self.errors += 1
                self.trackers.remove(tracker)
                log.warning("tracker %s failed (%s: %s); the phase goes on without it", tracker.name,
                            type(error).__name__, error)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if values:
            self._each("scalars", step, values)

    def histogram(self, step: int, tag: str, edges: list[float], counts: list[int]) -> None:
        if sum(counts):
            self._each("histogram", step, tag, edges, counts)

    def close(self) -> None:
        self._each("close")
        self.trackers = []


def open_trackers(task, staging: Path) -> Trackers:
    """TensorBoard under `staging/tensorboard`, plus the trackers `task.tracking` configures (their clients
    were checked by `check_clients`). A tracker that cannot start is counted and skipped, like one that fails."""
    from .tracking_clients import MlflowTracker, WandbTracker

    trackers = Trackers([])
    settings = getattr(task, "tracking", None)
    starters = [("tensorboard", lambda: TensorBoardTracker(Path(staging) / TENSORBOARD_DIR))]
    if settings is not None and settings.wandb is not None:
        starters.append(("wandb", lambda: WandbTracker(settings.wandb, run_identity(task), Path(staging) / WANDB_DIR)))
    if settings is not None and settings.mlflow is not None:
        starters.append(("mlflow", lambda: MlflowTracker(settings.mlflow, run_identity(task),
                                                         Path(staging) / MLFLOW_DIR)))
    for name, start in starters:
        try:
            trackers.trackers.append(start())
        except Exception as error:  # noqa: BLE001 - a tracker never fails a phase
            trackers.errors += 1
            log.warning("tracker %s did not start (%s: %s); the phase goes on without it", name,
                        type(error).__name__, error)
    return trackers


def warmup_step_logger(trackers: Trackers):
    """An `on_step(step, steps, loss)` for prefix_sft.train that sends the loss."""

    def on_step(step: int, steps: int, loss: float) -> None:
        trackers.scalars(step, {"train/loss": loss})

    return on_step


def log_phase_summary(trackers: Trackers, summary: dict) -> None:
    """The summary's metrics (module notes) at step = the iteration."""
    metrics = summary.get("metrics", {})
    step = int(summary.get("iteration", 0))
    values = finite_scalars(metrics, "phase/")
    values["phase/seconds"] = float(summary.get("seconds", 0.0))
    requested, seconds = metrics.get("requested"), summary.get("seconds") or 0.0
    if summary.get("phase") == "generate" and requested:
        values["phase/valid_share"] = metrics.get("valid", 0) / requested
        if seconds > 0:
            values["phase/questions_per_second"] = requested / seconds
    if summary.get("phase") == "label" and metrics.get("questions"):
        values["phase/kept_share"] = metrics.get("kept", 0) / metrics["questions"]
    trackers.scalars(step, values)
    histogram = metrics.get("score_histogram")
    if summary.get("phase") == "label" and isinstance(histogram, list) and histogram:
        edges = [index / len(histogram) for index in range(len(histogram) + 1)]
        trackers.histogram(step, "label/agreement", edges, [int(count) for count in histogram])


class NoTrackers(Trackers):
    """What ranks other than 0 (and code run outside a phase) log to: nothing."""

    def __init__(self):
        super().__init__([])
