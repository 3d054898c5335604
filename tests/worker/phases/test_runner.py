"""run_phase and PhaseContext: the commit rule, no-op re-runs, cleanup, checkpoints, inputs."""

from __future__ import annotations

import json

import pytest

from rzero_worker.phases import PHASE_ENTRYPOINTS, load_phase
from rzero_worker.phases.runner import InputNotReadyError, PhaseContext, run_phase
from rzero_worker.storage import MANIFEST_NAME, commit, is_committed, open_storage, read_manifest
from rzero_worker.task import WORKER_PHASES, parse_task

OUTPUT = "iter-001/generate/shard-00000-of-00001"


def generate_task(location, output: str = OUTPUT):
    return parse_task(
        {
            "phase": "generate",
            "run": "demo",
            "iteration": 1,
            "storage": location.wire(),
            "output": output,
            "challenger": {"artifact": "iter-001/challenger"},
        }
    )


@pytest.fixture
def termination_log(tmp_path, monkeypatch):
    path = tmp_path / "termination-log"
    monkeypatch.setenv("RZERO_TERMINATION_LOG", str(path))
    return path


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RZERO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def writes_questions(calls: list):
    def impl(ctx: PhaseContext) -> dict:
        calls.append(ctx)
        (ctx.staging / "questions.jsonl").write_text('{"id": "q1", "question": "1+1?", "answer": "2"}\n')
        return {"requested": 1, "valid": 1, "invalid": 0, "duplicates": 0}

    return impl


def test_a_phase_commits_its_staging_files_and_summary(storage_location, termination_log, cache_dir, capsys):
    task = generate_task(storage_location)
    calls: list = []
    assert run_phase(task, writes_questions(calls)) == 0
    store = open_storage(storage_location)
    manifest = read_manifest(store, OUTPUT)
    paths = [f.path for f in manifest.files]
    assert paths[:2] == ["questions.jsonl", "summary.json"]
    [events] = paths[2:]  # the phase's TensorBoard run (tracking.py): committed with its output
    assert events.startswith("tensorboard/events.out.tfevents.")
    summary = json.loads(store.get_bytes(f"{OUTPUT}/summary.json"))
    assert summary["apiVersion"] == "rzero.dev/summary-v1" and summary["output"] == OUTPUT
    peak = summary["metrics"].pop("peak_rss_mb")  # every phase reports its worker's peak memory
    cpu = summary["metrics"].pop("cpu_seconds")  # and CPU time
    assert 10 < peak < 100_000 and cpu >= 0
    committed_bytes = manifest.files[0].size + manifest.files[2].size  # all but the summary itself
    assert summary["metrics"] == {"requested": 1, "valid": 1, "invalid": 0, "duplicates": 0,
                                  "output_bytes": committed_bytes}
    summary["metrics"].update(peak_rss_mb=peak, cpu_seconds=cpu)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == summary
    assert json.loads(termination_log.read_text()) == summary
    assert calls[0].cache_dir == cache_dir and cache_dir.is_dir()
    assert not calls[0].workdir.exists(), "the scratch directory is removed after the phase"


def test_rerunning_a_committed_phase_is_a_no_op_with_the_same_summary(storage_location, termination_log, capsys):
    task = generate_task(storage_location)
    run_phase(task, writes_questions([]))
    first = capsys.readouterr().out.strip().splitlines()[-1]
    manifest_before = read_manifest(open_storage(storage_location), OUTPUT)

    calls: list = []
    assert run_phase(task, writes_questions(calls)) == 0
    assert calls == []
    assert capsys.readouterr().out.strip().splitlines()[-1] == first
    assert json.loads(termination_log.read_text()) == json.loads(first)
    assert read_manifest(open_storage(storage_location), OUTPUT) == manifest_before


def test_a_failing_phase_commits_nothing_and_the_next_run_cleans_up(storage_location, termination_log):
    task = generate_task(storage_location)
    store = open_storage(storage_location)
    store.put_bytes(f"{OUTPUT}/stale-from-a-killed-upload.jsonl", b"partial")

    def fails(ctx):
        (ctx.staging / "questions.jsonl").write_text("half\n")
        raise RuntimeError("generation crashed")

    with pytest.raises(RuntimeError, match="generation crashed"):
        run_phase(task, fails)
    assert not is_committed(store, OUTPUT)
    assert store.list(OUTPUT) == [], "half-written files are deleted before the phase runs"

    store.put_bytes(f"{OUTPUT}/stale-from-a-killed-upload.jsonl", b"partial")
    run_phase(task, writes_questions([]))
    listed = store.list(OUTPUT)
    assert listed[:3] == [f"{OUTPUT}/{MANIFEST_NAME}", f"{OUTPUT}/questions.jsonl", f"{OUTPUT}/summary.json"]
    assert [key.split("/")[-2] for key in listed[3:]] == ["tensorboard"]  # this attempt's event file only


@pytest.mark.parametrize("metrics", [None, [1, 2], {"x": float("nan")}, {"x": object()}])
def test_metrics_must_be_a_json_object(local_location, termination_log, metrics):
    with pytest.raises(TypeError, match="metrics"):
        run_phase(generate_task(local_location), lambda ctx: metrics)
    assert not is_committed(open_storage(local_location), OUTPUT)


def test_only_rank_zero_writes_to_storage(local_location, termination_log, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    calls: list = []
    assert run_phase(generate_task(local_location), writes_questions(calls)) == 0
    assert calls[0].main_process is False
    assert open_storage(local_location).list("") == []


# --------------------------------------------------------------------------------------------------
# Checkpoints


def make_checkpoint(tmp_path, step: int):
    local = tmp_path / f"trainer-ckpt-{step}"
    (local / "weights").mkdir(parents=True)
    (local / "weights" / "model.bin").write_bytes(f"weights at step {step}".encode())
    (local / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return local


def test_latest_committed_checkpoint_wins_and_an_uncommitted_newer_one_is_ignored(
    storage_location, termination_log, tmp_path
):
    seen = {}

    def trains(ctx: PhaseContext):
        assert ctx.latest_checkpoint() is None
        assert ctx.checkpoint_prefix(2) == f"{OUTPUT}.ckpt/step-000002"
        ctx.save_checkpoint(1, make_checkpoint(tmp_path, 1))
        ctx.save_checkpoint(2, make_checkpoint(tmp_path, 2))
        # step 3 died mid-upload: files but no manifest
        ctx.storage.upload_dir(make_checkpoint(tmp_path, 3), ctx.checkpoint_prefix(3))
        step, local = ctx.latest_checkpoint()
        seen.update(step=step, weights=(local / "weights" / "model.bin").read_text(), under=local)
        raise KeyboardInterrupt  # the pod is killed here: nothing is committed

    with pytest.raises(KeyboardInterrupt):
        run_phase(generate_task(storage_location), trains)
    assert seen["step"] == 2 and seen["weights"] == "weights at step 2"
    store = open_storage(storage_location)
    assert is_committed(store, f"{OUTPUT}.ckpt/step-000002"), "checkpoints survive the output cleanup"

    resumed = {}

    def resumes(ctx: PhaseContext):
        step, local = ctx.latest_checkpoint()
        resumed.update(step=step, state=json.loads((local / "trainer_state.json").read_text()))
        (ctx.staging / "model.bin").write_text("final")
        return {"steps": 3, "resumed_from_step": step}

    run_phase(generate_task(storage_location), resumes)
    assert resumed == {"step": 2, "state": {"global_step": 2}}
    assert store.list(f"{OUTPUT}.ckpt") == [], "checkpoints are dropped once the output is committed"


def test_old_checkpoints_are_pruned_keeping_the_newest(local_location, tmp_path):
    store = open_storage(local_location)
    ctx = PhaseContext(
        task=generate_task(local_location), storage=store, workdir=tmp_path / "w", staging=tmp_path / "s",
        cache_dir=tmp_path / "c", keep_checkpoints=2, main_process=True,
    )
    for step in (1, 2, 3):
        ctx.save_checkpoint(step, make_checkpoint(tmp_path, step))
    assert ctx.committed_checkpoint_steps() == [2, 3]
    assert store.list(ctx.checkpoint_prefix(1)) == []


# --------------------------------------------------------------------------------------------------
# Retention: the task's `prune` list


def commit_checkpoint(store, prefix: str, payload: bytes) -> None:
    store.put_bytes(f"{prefix}/model/model.safetensors", payload)
    commit(store, prefix)


def test_the_prefixes_a_task_names_are_deleted_before_it_runs_and_nothing_else(storage_location, termination_log):
    store = open_storage(storage_location)
    for iteration in (1, 2):
        commit_checkpoint(store, f"iter-{iteration:03d}/solver", b"w" * 100 * iteration)
        commit_checkpoint(store, f"iter-{iteration:03d}/challenger", b"c" * 10)
    commit_checkpoint(store, "iter-002/solver.ckpt/step-000003", b"resume")
    store.put_bytes("iter-001/label/shard-00000-of-00001/train.jsonl", b"{}\n")
    before = set(store.list(""))
    task = generate_task(storage_location)
    task.prune = ["iter-001/solver", "iter-002/solver.ckpt", "iter-009/solver"]  # the last one is long gone

    run_phase(task, writes_questions([]))

    removed = before - set(store.list(""))
    assert removed and removed == {key for key in before if key.startswith(("iter-001/solver/", "iter-002/solver.ckpt/"))}
    assert is_committed(store, "iter-002/solver") and is_committed(store, "iter-001/challenger")
    assert store.exists("iter-001/label/shard-00000-of-00001/train.jsonl")
    summary = json.loads(store.get_bytes(f"{OUTPUT}/summary.json"))
    assert summary["metrics"]["pruned"] == {"iter-001/solver": 100, "iter-002/solver.ckpt": 0, "iter-009/solver": 0}


def test_a_task_may_name_only_training_checkpoints_for_deletion(local_location):
    from pydantic import ValidationError

    for key in ("iter-001/label", "iter-001/solver/../../etc", "/abs", "", "iter-001/evaluate"):
        with pytest.raises(ValidationError, match="prune"):
            parse_task({**generate_task(local_location).wire(), "prune": [key]})
    assert parse_task({**generate_task(local_location).wire(), "prune": ["iter-012/challenger.ckpt"]}).prune


# --------------------------------------------------------------------------------------------------
# Inputs


def context_for(location, tmp_path) -> PhaseContext:
    return PhaseContext(
        task=generate_task(location), storage=open_storage(location), workdir=tmp_path / "w",
        staging=tmp_path / "s", cache_dir=tmp_path / "cache", main_process=True,
    )


def test_sharded_inputs_are_returned_only_when_every_shard_is_committed(local_location, tmp_path):
    ctx = context_for(local_location, tmp_path)
    with pytest.raises(InputNotReadyError, match="no committed output"):
        ctx.input_prefixes("iter-001/generate")
    for index in (0, 2):
        ctx.storage.put_bytes(f"iter-001/generate/shard-{index:05d}-of-00003/questions.jsonl", b"{}\n")
        commit(ctx.storage, f"iter-001/generate/shard-{index:05d}-of-00003")
    ctx.storage.put_bytes("iter-001/generate/shard-00001-of-00003/questions.jsonl", b"{}\n")  # uncommitted
    with pytest.raises(InputNotReadyError, match="2 of 3 shards committed, missing shard-00001-of-00003"):
        ctx.input_prefixes("iter-001/generate")
    commit(ctx.storage, "iter-001/generate/shard-00001-of-00003")
    assert ctx.input_prefixes("iter-001/generate") == [f"iter-001/generate/shard-{i:05d}-of-00003" for i in range(3)]


def test_download_input_fetches_a_committed_prefix_into_the_cache(storage_location, tmp_path):
    ctx = context_for(storage_location, tmp_path)
    with pytest.raises(InputNotReadyError, match="not committed"):
        ctx.download_input("iter-001/solver")
    ctx.storage.put_bytes("iter-001/solver/model/config.json", b"{}")
    commit(ctx.storage, "iter-001/solver")
    local = ctx.download_input("iter-001/solver")
    assert local.is_relative_to(tmp_path / "cache") and (local / "model" / "config.json").read_bytes() == b"{}"
    assert ctx.input_prefixes("iter-001/solver") == ["iter-001/solver"]


def test_the_registry_names_every_phase_and_imports_lazily():
    assert set(PHASE_ENTRYPOINTS) == set(WORKER_PHASES)
    with pytest.raises(ValueError, match="unknown phase 'train'"):
        load_phase("train")
