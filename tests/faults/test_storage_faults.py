"""Storage faults through a fault-injecting proxy in front of moto's S3 server (tests/support/fault_proxy.py):
transient faults are recovered, a stalled endpoint fails within the network deadline, lost or damaged
objects are never committed, committed data changed afterwards is refused, and S3 configuration errors
exit 2 with one line naming the setting."""

from __future__ import annotations

import json
import time

import pytest

from rzero_worker.cli import main as worker_main
from rzero_worker.phases.context import PhaseContext
from rzero_worker.phases.runner import run_phase
from rzero_worker.storage import (
    IntegrityError,
    StorageConfigurationError,
    commit,
    download_committed,
    is_committed,
    open_storage,
    read_manifest,
)
from rzero_worker.storage_s3_policy import NETWORK_DEADLINE_ENV, StorageDeadlineExceeded
from rzero_worker.summary import read_summary
from rzero_worker.task import StorageLocation, parse_task
from support.fault_proxy import Fault, FaultProxy

OUTPUT = "iter-001/generate/shard-00000-of-00001"
DEADLINE_S = 3.0


@pytest.fixture
def proxy(s3_location):
    with FaultProxy(s3_location.endpoint_url) as running:
        yield running


def through(location: StorageLocation, proxy: FaultProxy) -> StorageLocation:
    return location.model_copy(update={"endpoint_url": proxy.url})


def checkpoint_dir(tmp_path, files: int = 11, name: str = "checkpoint"):
    directory = tmp_path / name
    (directory / "model").mkdir(parents=True)
    for index in range(files):
        (directory / "model" / f"part-{index:02d}.bin").write_bytes(bytes([index]) * (1000 + index))
    return directory


def generate_task(location: StorageLocation):
    return parse_task({"phase": "generate", "run": "demo", "iteration": 1, "storage": location.wire(),
                       "output": OUTPUT, "challenger": {"artifact": "iter-001/challenger"}})


def writes_questions(ctx: PhaseContext) -> dict:
    (ctx.staging / "questions.jsonl").write_text('{"id": "q1", "question": "1+1?", "answer": "2"}\n')
    return {"requested": 1, "valid": 1}


@pytest.fixture
def worker_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RZERO_TERMINATION_LOG", str(tmp_path / "termination-log"))
    monkeypatch.setenv("RZERO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(NETWORK_DEADLINE_ENV, str(DEADLINE_S))


def run_worker(location: StorageLocation, capsys) -> tuple[int, str, float]:
    """`rzero worker generate` in this process: (exit code, its one-line verdict, seconds)."""
    task = {"phase": "generate", "run": "demo", "iteration": 1, "storage": location.wire(), "output": OUTPUT,
            "challenger": {"artifact": "iter-001/challenger"}}
    started = time.monotonic()
    code = worker_main(["generate", "--task-json", json.dumps(task)])
    elapsed = time.monotonic() - started
    verdicts = [line for line in capsys.readouterr().err.splitlines() if line.startswith("rzero worker ")]
    return code, (verdicts[-1] if verdicts else ""), elapsed


# --------------------------------------------------------------------------------------------------
# Transient faults: recovered


@pytest.mark.fault("S3 5xx storm", outcome="recovered")
@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_storm_is_ridden_out_and_the_commit_verifies(s3_location, proxy, tmp_path, status, fault_losses):
    store = open_storage(through(s3_location, proxy))
    proxy.add(Fault("status", times=4, status=status))
    commit(store, "ckpt", store.upload_dir(checkpoint_dir(tmp_path, files=3), "ckpt"))
    assert len(proxy.injected("status")) == 4
    manifest = download_committed(open_storage(s3_location), "ckpt", tmp_path / "back")
    fault_losses.add(3 - len(manifest.files), "files missing from the commit")


@pytest.mark.fault("S3 dropped connections", outcome="recovered")
@pytest.mark.parametrize("method", ["PUT", "GET", "HEAD"])
def test_dropped_connections_are_retried(s3_location, proxy, method, fault_losses):
    store = open_storage(through(s3_location, proxy))
    proxy.add(Fault("drop", method=method, times=2))
    store.put_bytes("a/data.json", b'{"x": 1}')
    commit(store, "a")
    assert store.get_committed_bytes("a", "data.json") == b'{"x": 1}'
    assert len(proxy.injected("drop")) == 2


@pytest.mark.fault("S3 download cut short", outcome="recovered")
@pytest.mark.parametrize("reader", ["file", "bytes"])
def test_a_download_cut_short_is_fetched_again(s3_location, proxy, tmp_path, reader):
    open_storage(s3_location).put_bytes("out/w.bin", b"w" * 100_000)
    commit(open_storage(s3_location), "out")
    store = open_storage(through(s3_location, proxy))
    proxy.add(Fault("truncate", method="GET", path=r"w\.bin$", times=2))
    if reader == "file":
        download_committed(store, "out", tmp_path / "dl")
        assert (tmp_path / "dl" / "w.bin").read_bytes() == b"w" * 100_000
    else:
        assert store.get_committed_bytes("out", "w.bin") == b"w" * 100_000
    assert len(proxy.injected("truncate")) == 2


@pytest.mark.fault("S3 endpoint stalls once", outcome="recovered")
def test_one_stalled_request_is_retried_after_the_read_timeout(s3_location, proxy, monkeypatch):
    monkeypatch.setenv(NETWORK_DEADLINE_ENV, "10")  # read timeout 2 s: the stall costs one attempt
    store = open_storage(through(s3_location, proxy))
    proxy.add(Fault("stall", method="PUT"))
    started = time.monotonic()
    store.put_bytes("k", b"v")
    assert open_storage(s3_location).get_bytes("k") == b"v"
    assert time.monotonic() - started < 10


# --------------------------------------------------------------------------------------------------
# A stalled endpoint: bounded


@pytest.mark.fault("S3 endpoint stalls", outcome="failed cleanly")
@pytest.mark.parametrize("operation", ["get", "put", "list"])
def test_a_stalled_endpoint_fails_within_the_network_deadline(s3_location, proxy, monkeypatch, operation):
    monkeypatch.setenv(NETWORK_DEADLINE_ENV, str(DEADLINE_S))
    store = open_storage(through(s3_location, proxy))
    proxy.add(Fault("stall", times=None))
    calls = {"get": lambda: store.get_bytes("k"), "put": lambda: store.put_bytes("k", b"v"),
             "list": lambda: store.list("iter-001")}
    started = time.monotonic()
    with pytest.raises(StorageDeadlineExceeded, match=f"did not succeed within {DEADLINE_S:g}s"):
        calls[operation]()
    assert time.monotonic() - started <= DEADLINE_S + 1.0


@pytest.mark.fault("S3 endpoint stalls", outcome="failed cleanly")
def test_a_worker_on_a_stalled_endpoint_exits_1_within_the_deadline(s3_location, proxy, worker_env, capsys):
    proxy.add(Fault("stall", times=None))
    code, verdict, elapsed = run_worker(through(s3_location, proxy), capsys)
    assert code == 1 and "StorageDeadlineExceeded" in verdict and NETWORK_DEADLINE_ENV in verdict
    assert elapsed <= DEADLINE_S + 2.0


# --------------------------------------------------------------------------------------------------
# Lost or damaged objects: never committed


@pytest.mark.fault("S3 object lost after upload", outcome="refused")
def test_a_checkpoint_missing_one_file_is_not_committed_and_resume_uses_the_previous_one(
    s3_location, proxy, tmp_path, fault_losses
):
    store = open_storage(through(s3_location, proxy))
    task = parse_task({"phase": "solver", "run": "demo", "iteration": 1, "storage": s3_location.wire(),
                       "output": "iter-001/solver", "solver": {"artifact": "iter-000/base"},
                       "dataset": "iter-001/label"})
    ctx = PhaseContext(task=task, storage=store, workdir=tmp_path / "work", staging=tmp_path / "staging",
                       cache_dir=tmp_path / "cache")
    ctx.save_checkpoint(1, checkpoint_dir(tmp_path))
    proxy.add(Fault("lose", method="PUT", path=r"part-07\.bin$"))
    with pytest.raises(IntegrityError, match=r"part-07\.bin is missing from storage"):
        ctx.save_checkpoint(2, checkpoint_dir(tmp_path, name="checkpoint-2"))
    assert ctx.committed_checkpoint_steps() == [1]
    step, local = ctx.latest_checkpoint()
    assert step == 1 and len(list((local / "model").iterdir())) == 11
    fault_losses.add(11 - len(read_manifest(store, ctx.checkpoint_prefix(1)).files), "checkpoint files")


@pytest.mark.fault("S3 object lost after upload", outcome="refused")
def test_a_phase_whose_output_storage_lost_is_not_committed_and_a_rerun_commits_it(
    s3_location, proxy, tmp_path, monkeypatch, fault_losses
):
    monkeypatch.setenv("RZERO_TERMINATION_LOG", str(tmp_path / "termination-log"))
    task = generate_task(through(s3_location, proxy))
    proxy.add(Fault("lose", method="PUT", path=r"questions\.jsonl$"))
    with pytest.raises(IntegrityError, match="questions.jsonl is missing from storage"):
        run_phase(task, writes_questions, cache_dir=tmp_path / "cache")
    assert not is_committed(open_storage(s3_location), OUTPUT)
    assert run_phase(task, writes_questions, cache_dir=tmp_path / "cache") == 0
    manifest = download_committed(open_storage(s3_location), OUTPUT, tmp_path / "dl")
    outputs = [f for f in manifest.files if not f.path.startswith("tensorboard/")]  # besides the phase's events
    fault_losses.add(2 - len(outputs), "output files")


@pytest.mark.fault("S3 object damaged in transit", outcome="refused")
def test_bytes_damaged_on_the_way_up_are_caught_by_the_etag_before_the_commit(s3_location, proxy, tmp_path):
    store = open_storage(through(s3_location, proxy))
    proxy.add(Fault("corrupt", method="PUT", path=r"part-03\.bin$"))
    sent = store.upload_dir(checkpoint_dir(tmp_path, files=5), "ckpt")
    with pytest.raises(IntegrityError, match=r"part-03\.bin does not match what was uploaded: S3 stored bytes with MD5"):
        commit(store, "ckpt", sent)
    assert not is_committed(store, "ckpt")


# --------------------------------------------------------------------------------------------------
# Committed data changed afterwards: refused by readers


def tamper(location: StorageLocation, key: str, data: bytes) -> None:
    """Overwrite a stored object behind rzero's back (another tool, a bad restore)."""
    import boto3

    if location.uri.startswith("s3://"):
        bucket, _, base = location.uri[len("s3://"):].partition("/")
        boto3.client("s3", endpoint_url=location.endpoint_url).put_object(Bucket=bucket, Key=f"{base}/{key}", Body=data)
    else:
        (open_storage(location).root / key).write_bytes(data)


@pytest.mark.fault("committed data changed afterwards", outcome="refused")
@pytest.mark.parametrize("change", ["same size", "longer"])
def test_a_committed_jsonl_changed_afterwards_is_refused_by_the_reader(storage_location, tmp_path, change):
    store = open_storage(storage_location)
    original = b'{"id": "q1", "question": "1+1?", "answer": "2"}\n'
    store.put_bytes(f"{OUTPUT}/questions.jsonl", original)
    commit(store, OUTPUT)
    changed = original.replace(b'"2"', b'"3"') if change == "same size" else original * 2
    tamper(storage_location, f"{OUTPUT}/questions.jsonl", changed)
    task = parse_task({"phase": "label", "run": "demo", "iteration": 1, "storage": storage_location.wire(),
                       "output": "iter-001/label/shard-00000-of-00001", "solver": {"artifact": "iter-000/base"},
                       "questions": "iter-001/generate"})
    ctx = PhaseContext(task=task, storage=store, workdir=tmp_path, staging=tmp_path / "s", cache_dir=tmp_path / "c")
    with pytest.raises(IntegrityError, match="questions.jsonl does not match its manifest"):
        ctx.read_input_jsonl("iter-001/generate", "questions.jsonl")


@pytest.mark.fault("committed data changed afterwards", outcome="refused")
def test_a_changed_summary_is_not_trusted(storage_location, caplog):
    store = open_storage(storage_location)
    store.put_bytes(f"{OUTPUT}/summary.json", b'{"metrics": {"valid": 5}}')
    commit(store, OUTPUT)
    tamper(storage_location, f"{OUTPUT}/summary.json", b'{"metrics": {"valid": 9}}')
    assert read_summary(store, OUTPUT) is None
    assert "does not match its manifest" in caplog.text


# --------------------------------------------------------------------------------------------------
# Configuration errors: exit 2, one line naming the setting


def _no_credentials(monkeypatch, location, proxy):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return location


def _access_denied(monkeypatch, location, proxy):
    proxy.add(Fault("status", status=403, times=None))
    return through(location, proxy)


CONFIG_ERRORS = {
    "no such bucket": (lambda mp, loc, px: loc.model_copy(update={"uri": "s3://no-such-bucket-here/runs"}),
                       "bucket 'no-such-bucket-here' does not exist"),
    "invalid bucket name": (lambda mp, loc, px: loc.model_copy(update={"uri": "s3://Bad_Bucket!/runs"}),
                            'Invalid bucket name "Bad_Bucket!"'),
    "missing credentials": (_no_credentials, "no S3 credentials"),
    "unreachable endpoint": (lambda mp, loc, px: loc.model_copy(update={"endpoint_url": "http://127.0.0.1:9"}),
                             "S3 endpoint http://127.0.0.1:9 unreachable"),
    "access denied": (_access_denied, "access refused (AccessDenied"),
}


@pytest.mark.fault("S3 configuration error", outcome="refused")
@pytest.mark.parametrize("case", list(CONFIG_ERRORS))
def test_s3_configuration_errors_exit_2_with_one_line_naming_the_setting(
    s3_location, proxy, worker_env, monkeypatch, capsys, case
):
    configure, expected = CONFIG_ERRORS[case]
    location = configure(monkeypatch, s3_location, proxy)
    code, verdict, elapsed = run_worker(location, capsys)
    assert code == 2, verdict
    assert verdict.startswith("rzero worker generate: configuration error: storage.uri 's3://")
    assert expected in verdict and "Parameter validation failed" not in verdict
    assert elapsed < DEADLINE_S + 10


@pytest.mark.fault("S3 configuration error", outcome="refused")
def test_a_bad_s3_model_source_names_the_model_field(s3_location, tmp_path, worker_env, capsys):
    task = {"phase": "generate", "run": "demo", "iteration": 1, "storage": s3_location.wire(), "output": OUTPUT, "challenger": {"source": "s3://no-such-model-bucket/models/m"},
            "device": {"device": "cpu"}}
    code = worker_main(["generate", "--task-json", json.dumps(task)])
    verdict = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "challenger.source 's3://no-such-model-bucket/models/m'" in verdict
    assert "does not exist" in verdict


@pytest.mark.fault("S3 transient error outlasts the retries", outcome="failed cleanly")
def test_a_503_storm_longer_than_the_retries_exits_1_to_be_retried(s3_location, proxy, worker_env, capsys):
    proxy.add(Fault("status", status=503, times=None))
    code, verdict, elapsed = run_worker(through(s3_location, proxy), capsys)
    assert code == 1 and ("SlowDown" in verdict or "did not succeed within" in verdict), verdict
    assert elapsed <= DEADLINE_S + 2.0


def test_the_network_deadline_setting_is_checked(monkeypatch, s3_location):
    monkeypatch.setenv(NETWORK_DEADLINE_ENV, "soon")
    with pytest.raises(StorageConfigurationError, match=f"{NETWORK_DEADLINE_ENV}='soon'"):
        open_storage(s3_location)



def committed_model(location: StorageLocation) -> None:
    store = open_storage(location)
    store.put_bytes("iter-001/solver/model/config.json", b'{"model_type": "llama"}')
    store.put_bytes("iter-001/solver/model/model.safetensors", b"w" * 5000)
    commit(store, "iter-001/solver")


@pytest.mark.fault("committed data changed afterwards", outcome="refused")
def test_a_model_artifact_changed_in_storage_is_refused(storage_location, tmp_path):
    from rzero_worker.models import resolve_model
    from rzero_worker.task import ModelInput

    committed_model(storage_location)
    tamper(storage_location, "iter-001/solver/model/model.safetensors", b"x" * 5000)
    with pytest.raises(IntegrityError, match="model.safetensors does not match its manifest"):
        resolve_model(ModelInput(artifact="iter-001/solver"), open_storage(storage_location), tmp_path / "cache")


@pytest.mark.fault("cached copy damaged locally", outcome="recovered")
def test_a_truncated_cached_model_file_is_fetched_again(storage_location, tmp_path):
    from rzero_worker.models import resolve_model
    from rzero_worker.task import ModelInput

    committed_model(storage_location)
    store = open_storage(storage_location)
    local = resolve_model(ModelInput(artifact="iter-001/solver"), store, tmp_path / "cache")
    weights = local.path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # a disk that lost the tail of the file
    again = resolve_model(ModelInput(artifact="iter-001/solver"), store, tmp_path / "cache")
    assert (again.path / "model.safetensors").read_bytes() == b"w" * 5000
