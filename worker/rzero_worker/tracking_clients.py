"""The optional trackers behind tracking.py's interface (scalars, histogram, close): W&B and MLflow.

Their clients are the `rzero[wandb]` / `rzero[mlflow]` extras, imported only when spec.tracking names them.
Neither gets anything but the run's identity (tracking.run_identity) as configuration; credentials come from
the environment the Job sets from Secret references (WANDB_API_KEY, MLFLOW_TRACKING_TOKEN).
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def _tags(identity: dict[str, str]) -> list[str]:
    return [f"namespace:{identity['namespace']}", f"run:{identity['run']}", f"iter-{int(identity['iteration']):03d}",
            identity["phase"]]


class WandbTracker:
    name = "wandb"

    def __init__(self, settings, identity: dict[str, str], directory: Path):
        import wandb

        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.step = 0
        options = {"base_url": settings.base_url} if settings.base_url else {}
        self.run = wandb.init(
            project=settings.project, entity=settings.entity, mode=settings.mode, dir=str(directory),
            group=f"{identity['namespace']}/{identity['run']}/{identity['uid']}",
            name=f"{identity['run']}/{identity['output']}", job_type=identity["phase"],
            tags=[*_tags(identity), *settings.tags], config=dict(identity),
            settings=wandb.Settings(silent=True, console="off", **options), reinit="create_new",
        )

    def scalars(self, step: int, values: dict) -> None:
        """W&B steps only go forward: values for an earlier step (the phase summary at step = iteration, after
        the training updates) go to the W&B run's summary instead."""
        if step >= self.step:
            self.run.log(dict(values), step=step)
            self.step = step
        else:
            self.run.summary.update(dict(values))

    def histogram(self, step: int, tag: str, edges: list[float], counts: list[int]) -> None:
        import wandb

        self.scalars(step, {tag: wandb.Histogram(np_histogram=(list(counts), list(edges)))})

    def close(self) -> None:
        self.run.finish()
        for link in [path for path in self.directory.rglob("*") if path.is_symlink()]:
            link.unlink()  # latest-run, debug.log: links into the run's folder, which storage does not copy


class MlflowTracker:
    name = "mlflow"

    def __init__(self, settings, identity: dict[str, str], directory: Path):
        from mlflow.tracking import MlflowClient

        uri = settings.tracking_uri
        self.file_store = None if uri else Path(directory).resolve()
        if uri is None:  # offline: a file store in the output (MLflow 3 keeps it in maintenance mode, behind a flag)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = Path(directory).resolve().as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        experiment_name = settings.experiment or f"rzero/{identity['namespace']}/{identity['run']}"
        experiment = self.client.get_experiment_by_name(experiment_name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(experiment_name)
        tags = {f"rzero.{key}": value for key, value in identity.items()} | dict(settings.tags)
        self.run_id = self.client.create_run(experiment_id, run_name=identity["output"], tags=tags).info.run_id

    def scalars(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key=_mlflow_key(tag), value=value, timestamp=now, step=step) for tag, value in values.items()]
        for start in range(0, len(metrics), 1000):  # the store's batch limit
            self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000])

    def histogram(self, step: int, tag: str, edges: list[float], counts: list[int]) -> None:
        """MLflow has no histograms: one metric per bin, `<tag>/<low>-<high>`."""
        self.scalars(step, {f"{tag}/{low:g}-{high:g}": float(count)
                            for low, high, count in zip(edges, edges[1:], counts)})

    def close(self) -> None:
        self.client.set_terminated(self.run_id)
        if self.file_store is not None:  # storage keeps files only; MLflow wants each run's params/, artifacts/
            for folder in [path for path in self.file_store.rglob("*") if path.is_dir() and not any(path.iterdir())]:
                (folder / ".keep").write_bytes(b"")


def _mlflow_key(tag: str) -> str:
    """MLflow keys allow letters, digits, '_', '-', '.', ' ', '/' (and ':' on some stores): others become '_'."""
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in tag)
