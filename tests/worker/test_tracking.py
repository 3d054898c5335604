"""Step-level curves: TensorBoard event files in every phase's committed output, read back with TensorBoard's own
reader; W&B (offline) and MLflow (file store) get the same scalars; a failing tracker never fails a phase; a
configured tracker without its client is a configuration error; secrets are written nowhere."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rzero_worker import tracking
from rzero_worker.phases import load_phase
from rzero_worker.phases.context import ConfigurationError
from rzero_worker.phases.runner import run_phase
from rzero_worker.task import (
    ChallengerSettings,
    ChallengerTask,
    GRPOSettings,
    MlflowSettings,
    ModelInput,
    Sampling,
    SecretKeySelector,
    SolverSettings,
    SolverTask,
    StorageLocation,
    TrackingSettings,
    WandbSettings,
)
from support.artefacts import commit_jsonl_shards, die_after_checkpoint, summary_metrics

ROWS = [{"id": "q1", "question": "What is 2+2?", "label": "4", "score": 0.5},
        {"id": "q2", "question": "What is 3*3?", "label": "9", "score": 0.6}]
GRPO = dict(group_size=2, rollout_batch_size=2, update_batch_size=2, max_completion_tokens=8, save_every=1)
STEP_SCALARS = {"train/reward", "train/reward_std", "train/kl", "train/grad_norm", "train/learning_rate",
                "train/entropy", "train/completions/mean_length", "train/clip_ratio/region_mean",
                "train/step_time", "perf/tokens_per_second"}
SECRET = "sk-rzero-test-4f1c9e0b7d"


def run_root(tmp_path: Path) -> StorageLocation:
    return StorageLocation(uri=str(tmp_path / "runs" / "team-a" / "demo" / "0f3c-uid"))


def solver_task(location, model_dir, *, steps=3, tracking_settings=None) -> SolverTask:
    return SolverTask(run="demo", iteration=1, storage=location, output="iter-001/solver",
                      solver=ModelInput(source=str(model_dir)), dataset="iter-001/label",
                      settings=SolverSettings(grpo=GRPOSettings(steps=steps, **GRPO)),
                      tracking=tracking_settings or TrackingSettings())


def challenger_task(location, model_dir) -> ChallengerTask:
    return ChallengerTask(run="demo", iteration=1, storage=location, output="iter-001/challenger",
                          challenger=ModelInput(source=str(model_dir)), solver=ModelInput(source=str(model_dir)),
                          settings=ChallengerSettings(grpo=GRPOSettings(steps=2, **GRPO), solver_samples=2,
                                                      solver_sampling=Sampling(max_tokens=8)))


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_both_roles_leave_step_scalars_in_their_committed_output_one_point_per_update(tiny_model_dir, tmp_path):
    location = run_root(tmp_path)
    commit_jsonl_shards(location, "iter-001/label", "train.jsonl", [ROWS])
    run_phase(challenger_task(location, tiny_model_dir), load_phase("challenger"), cache_dir=tmp_path / "cache")
    run_phase(solver_task(location, tiny_model_dir), load_phase("solver"), cache_dir=tmp_path / "cache")

    root = Path(location.uri)
    # `tensorboard --logdir <run root>` finds one run per phase of each iteration, named by its output
    runs = sorted(str(path.parent.relative_to(root)) for path in root.rglob("events.out.tfevents.*"))
    assert runs == ["iter-001/challenger/tensorboard", "iter-001/solver/tensorboard"]
    for role, updates in (("challenger", 2), ("solver", 3)):
        curves = scalars(root / "iter-001" / role / "tensorboard")
        assert STEP_SCALARS <= curves.keys(), f"{role}: missing {STEP_SCALARS - curves.keys()}"
        assert [step for step, _ in curves["train/reward"]] == list(range(1, updates + 1))
        assert curves["train/learning_rate"][0][1] == pytest.approx(1e-6)
        assert curves["phase/steps"] == [(1, float(updates))]  # the summary, at step = iteration
        assert "tracking_errors" not in summary_metrics_of(location, role)


def summary_metrics_of(location, role):
    from rzero_worker.storage import open_storage

    return summary_metrics(open_storage(location), f"iter-001/{role}")


def test_a_resumed_phase_commits_whole_curves_each_update_once(tiny_model_dir, tmp_path, monkeypatch):
    location = run_root(tmp_path)
    commit_jsonl_shards(location, "iter-001/label", "train.jsonl", [ROWS])
    die_after_checkpoint(monkeypatch, 2, RuntimeError("killed after the checkpoint of update 2"))
    with pytest.raises(RuntimeError, match="killed"):
        run_phase(solver_task(location, tiny_model_dir), load_phase("solver"), cache_dir=tmp_path / "cache")
    assert not list(Path(location.uri).rglob("events.out.tfevents.*")), "nothing is committed by a killed attempt"
    run_phase(solver_task(location, tiny_model_dir), load_phase("solver"), cache_dir=tmp_path / "cache")

    events = list((Path(location.uri) / "iter-001" / "solver" / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    curves = scalars(events[0].parent)
    assert [step for step, _ in curves["train/reward"]] == [1, 2, 3]  # 1-2 replayed from the restored history


def test_label_summary_becomes_scalars_and_an_agreement_histogram(tmp_path):
    trackers = tracking.Trackers([tracking.TensorBoardTracker(tmp_path / "tb")])
    summary = {"phase": "label", "iteration": 2, "seconds": 4.0,
               "metrics": {"questions": 20, "kept": 5, "label_accuracy": 0.8, "dropped": {"out_of_band": 15},
                           "score_histogram": [0, 0, 1, 2, 3, 4, 5, 2, 2, 1]}}
    tracking.log_phase_summary(trackers, summary)
    trackers.close()

    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"histograms": 0, "scalars": 0})
    events.Reload()
    values = {tag: events.Scalars(tag)[0].value for tag in events.Tags()["scalars"]}
    assert values["phase/kept_share"] == 0.25 and values["phase/label_accuracy"] == pytest.approx(0.8)
    assert values["phase/dropped/out_of_band"] == 15 and values["phase/seconds"] == 4.0
    [histogram] = events.Histograms("label/agreement")
    assert histogram.step == 2 and histogram.histogram_value.num == 20
    assert list(histogram.histogram_value.bucket) == [0, 0, 1, 2, 3, 4, 5, 2, 2, 1]


def test_generate_summary_gives_questions_per_second_and_valid_share():
    recorded = []

    class Recording:
        name = "recording"

        def scalars(self, step, values):
            recorded.append((step, values))

    summary = {"phase": "generate", "iteration": 1, "seconds": 2.0,
               "metrics": {"requested": 10, "valid": 6, "invalid": 4, "duplicates": 0}}
    tracking.log_phase_summary(tracking.Trackers([Recording()]), summary)
    [(step, values)] = recorded
    assert step == 1 and values["phase/questions_per_second"] == 5.0 and values["phase/valid_share"] == 0.6


def test_a_failing_tracker_is_warned_about_and_counted_and_the_phase_commits(tmp_path, caplog):
    class Broken:
        name = "broken"

        def scalars(self, step, values):
            raise ConnectionError("tracker server unreachable")

    trackers = tracking.Trackers([Broken()])
    with caplog.at_level(logging.WARNING):
        trackers.scalars(1, {"a": 1.0})
        trackers.scalars(2, {"a": 2.0})  # dropped after its first failure: counted once
    trackers.close()
    assert trackers.errors == 1 and "tracker broken failed" in caplog.text


@pytest.mark.parametrize("field", ["wandb", "mlflow"])
def test_a_configured_tracker_without_its_client_is_a_configuration_error_naming_the_field(
    field, tmp_path, monkeypatch
):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == field else real(name, *a))
    settings = TrackingSettings(**{field: WandbSettings(mode="offline") if field == "wandb" else MlflowSettings()})
    task = solver_task(run_root(tmp_path), tmp_path, tracking_settings=settings)
    with pytest.raises(ConfigurationError, match=rf"tracking\.{field} is set but the {field} package"):
        run_phase(task, lambda ctx: {}, cache_dir=tmp_path / "cache")


needs_clients = pytest.mark.skipif(
    importlib.util.find_spec("wandb") is None or importlib.util.find_spec("mlflow") is None,
    reason="the rzero[wandb] and rzero[mlflow] extras are not installed",
)


@needs_clients
def test_wandb_offline_and_mlflow_file_store_get_the_same_scalars_and_no_secret_is_written(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    from support.wandb_offline import history, run_file

    monkeypatch.setenv("WANDB_API_KEY", SECRET)  # what the Job's secretKeyRef sets
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", SECRET)
    monkeypatch.setenv("RZERO_TERMINATION_LOG", str(tmp_path / "termination-log"))
    location = run_root(tmp_path)
    commit_jsonl_shards(location, "iter-001/label", "train.jsonl", [ROWS])
    settings = TrackingSettings(
        wandb=WandbSettings(mode="offline", tags=["nightly"], api_key_secret=SecretKeySelector(name="wb", key="k")),
        mlflow=MlflowSettings(tags={"team": "a"}),
    )
    run_phase(solver_task(location, tiny_model_dir, tracking_settings=settings), load_phase("solver"),
              cache_dir=tmp_path / "cache")

    output = Path(location.uri) / "iter-001" / "solver"
    board = scalars(output / "tensorboard")
    rows = [row for row in history(run_file(output / "wandb")) if "train/reward" in row]
    for tag in ("train/reward", "train/num_tokens", "train/entropy"):  # num_tokens grows: the points are distinct
        assert [(row["_step"], row[tag]) for row in rows] == [(step, pytest.approx(value)) for step, value in board[tag]]
    assert len(rows) == 3

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(output / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("rzero/team-a/demo")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "iter-001/solver" and run.data.tags["rzero.uid"] == "0f3c-uid"
    assert run.data.tags["team"] == "a" and run.data.tags["rzero.phase"] == "solver"
    for tag in ("train/reward", "train/num_tokens", "train/entropy"):
        points = client.get_metric_history(run.info.run_id, tag)
        assert [(m.step, m.value) for m in points] == [(step, pytest.approx(value)) for step, value in board[tag]]
    assert "tracking_errors" not in summary_metrics_of(location, "solver")

    leaked = [str(path) for path in Path(tmp_path / "runs").rglob("*")
              if path.is_file() and SECRET.encode() in path.read_bytes()]
    assert leaked == []
    assert SECRET not in capsys.readouterr().out + (tmp_path / "termination-log").read_text()
    assert SECRET not in json.dumps(settings.wire())
