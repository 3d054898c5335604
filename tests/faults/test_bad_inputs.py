"""Bad input to the three readers — `rzero validate` and `rzero run` (manifests), `rzero worker` (task
files) — is refused: exit code 2 (a configuration error, never retried), one line naming the file or
field, no traceback, nothing created. One row per input class; every reproduction of issue 14 (items 2, 7
and 8) and issue 13 (item 4) is a case. The one reader is `rzero_worker.documents`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rzero_operator.cli import main as rzero
from rzero_worker.cli import main as worker
from rzero_worker.documents import MAX_DOCUMENT_BYTES

GOOD = """apiVersion: rzero.dev/v1alpha1
kind: RZeroRun
metadata:
  name: demo
spec:
  model: builtin:smollm2-135m-instruct
  storage:
    uri: runs
"""

GOOD_TASK = {
    "apiVersion": "rzero.dev/task-v1", "phase": "evaluate", "run": "demo", "iteration": 0,
    "storage": {"uri": "runs"}, "output": "iter-000/evaluate", "model": {"source": "builtin:smollm2-135m-instruct"},
}


def spec_line(text: str) -> str:
    """GOOD with `text` (a YAML line) added under spec."""
    return GOOD + "".join(f"  {line}\n" for line in text.splitlines())


def refused_by_rzero(capsys, tmp_path: Path, content: bytes | str, expected: str) -> None:
    """`rzero validate FILE` and `rzero run FILE` both exit 2 with one line holding `expected`."""
    path = tmp_path / "run.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    root = tmp_path / "root"
    for argv in (["validate", str(path)], ["run", str(path), "--root", str(root), "--no-progress"]):
        capsys.readouterr()
        code = rzero(argv)
        out = capsys.readouterr()
        lines = out.err.strip().splitlines()
        assert code == 2, (argv[0], code, out.err[-500:])
        assert len(lines) == 1 and expected in lines[0], (argv[0], lines[:3])
        assert "Traceback" not in out.err and lines[0].startswith(str(path))
    assert not root.exists() or not any(root.rglob("*")), "a refused run must create nothing"


def refused_by_worker(capsys, tmp_path: Path, content: bytes | str, expected: str, phase: str = "evaluate") -> None:
    """`rzero worker PHASE --task FILE` exits 2 with one line holding `expected`."""
    path = tmp_path / "task.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    capsys.readouterr()
    code = worker([phase, "--task", str(path)])
    out = capsys.readouterr()
    lines = [line for line in out.err.strip().splitlines() if line.startswith("rzero worker")]
    assert code == 2, (code, out.err[-500:])
    assert len(lines) == 1 and expected in lines[0], out.err[-500:]
    assert "Traceback" not in out.err


def task(**changes) -> str:
    return json.dumps({**GOOD_TASK, **changes})


# ----------------------------------------------------------------------------------------------- rows

NON_UTF8 = [
    pytest.param(b"\xff\xfe" + GOOD.encode(), id="utf16-bom-bytes"),
    pytest.param(GOOD.replace("demo", "d\xe9mo").encode("latin-1"), id="latin1-name"),
    pytest.param(GOOD.encode() + b"  region: \x80\x81\n", id="stray-continuation-bytes"),
]


@pytest.mark.fault("non-UTF-8 manifest or task file", outcome="refused")
@pytest.mark.parametrize("content", NON_UTF8)
def test_non_utf8_bytes(capsys, tmp_path, content):
    refused_by_rzero(capsys, tmp_path, content, "not UTF-8 text")
    refused_by_worker(capsys, tmp_path, content, "not UTF-8 text")


@pytest.mark.fault("nesting 100,000 levels deep", outcome="refused")
@pytest.mark.parametrize("text", [pytest.param("[" * 100_000, id="brackets"),
                                  pytest.param("a: " + "{b: " * 50_000, id="flow-maps"),
                                  pytest.param(spec_line("x: " + "[" * 100 + "]" * 100), id="under-spec-100")])
def test_deep_nesting(capsys, tmp_path, text):
    refused_by_rzero(capsys, tmp_path, text, "nested")
    refused_by_worker(capsys, tmp_path, text, "nested")


@pytest.mark.fault("integer with 5,000 digits or beyond int64", outcome="refused")
@pytest.mark.parametrize(("line", "field"), [
    pytest.param("iterations: " + "9" * 5000, "spec.iterations: integer beyond int64 (5000 digits)", id="5000-digits"),
    pytest.param("unknownKey: " + "1" * 5000, "spec.unknownKey: integer beyond int64", id="5000-digits-unknown-key"),
    pytest.param(f"iterations: {2**63}", f"spec.iterations: integer {2**63} is beyond int64", id="2^63"),
    pytest.param(f"seed: {-(2**63) - 1}", "spec.seed: integer", id="below-int64"),
    pytest.param(f"evaluation: {{benchmarks: [{{name: a, kind: arithmetic, seed: {2**64}}}]}}",
                 "spec.evaluation.benchmarks[0].seed: integer", id="nested-2^64"),
])
def test_huge_integers(capsys, tmp_path, line, field):
    refused_by_rzero(capsys, tmp_path, spec_line(line), field)


@pytest.mark.fault("integer with 5,000 digits or beyond int64", outcome="refused")
@pytest.mark.parametrize("raw", [pytest.param("9" * 5000, id="task-5000-digits"), pytest.param(str(2**64), id="task-2^64")])
def test_huge_integers_in_a_task(capsys, tmp_path, raw):
    refused_by_worker(capsys, tmp_path, task().replace('"iteration": 0', f'"iteration": {raw}'), "iteration: integer")


@pytest.mark.fault("duplicate keys", outcome="refused")
@pytest.mark.parametrize(("content", "expected"), [
    pytest.param(GOOD.replace("  name: demo\n", "  name: demo\n  name: other\n"), "duplicate key 'name'",
                 id="metadata.name-twice-would-rename-the-run"),
    pytest.param(spec_line("model: other"), "duplicate key 'model' (first at line 6)", id="spec-key"),
    pytest.param('{"apiVersion": "rzero.dev/v1alpha1", "apiVersion": "x"}', "duplicate key 'apiVersion'", id="json"),
])
def test_duplicate_keys(capsys, tmp_path, content, expected):
    refused_by_rzero(capsys, tmp_path, content, expected)


@pytest.mark.fault("duplicate keys", outcome="refused")
def test_duplicate_keys_in_a_task(capsys, tmp_path):
    refused_by_worker(capsys, tmp_path, task()[:-1] + ', "output": "iter-009/evaluate"}', "duplicate key 'output'")


COERCIONS = [  # (spec line, what the message says) — refused as the API server refuses them
    ('iterations: "3"', "spec.iterations: must be an integer, got string '3'"),
    ("iterations: true", "spec.iterations: must be an integer, got boolean True"),
    # YAML 1.1 scalars: kubectl reads 0x10 as 16, 010 as 8, yes/on as true; YAML 1.2 reads strings. Refused
    # with both readings rather than guessed (rzero_worker.yaml_scalars).
    ("iterations: 0x10", "spec.iterations: 0x10 means 16 to kubectl (YAML 1.1) but the string '0x10' to YAML 1.2"),
    ("iterations: 010", "spec.iterations: 010 means 8 to kubectl (YAML 1.1)"),
    ("iterations: 1_0", "spec.iterations: 1_0 means 10 to kubectl (YAML 1.1)"),
    ('suspend: "true"', "spec.suspend: must be a boolean (true or false), got string 'true'"),
    ('suspend: "yes"', "spec.suspend: must be a boolean (true or false), got string 'yes'"),
    ("suspend: yes", "spec.suspend: yes means true to kubectl (YAML 1.1) but the string 'yes' to YAML 1.2"),
    ("suspend: on", "spec.suspend: on means true to kubectl (YAML 1.1)"),
    ("resources: {nodeSelector: {pool: y}}", "spec.resources.nodeSelector.pool: y means true to kubectl"),
    ("resources: {nodeSelector: {on: demand}}", "spec.resources.nodeSelector: mapping key on means true to kubectl"),
    ("suspend: 1", "spec.suspend: must be a boolean (true or false), got integer 1"),
    ('resources: {gpus: "1"}', "spec.resources.gpus: must be an integer, got string '1'"),
    ('solver: {grpo: {learningRate: "1e-6"}}', "spec.solver.grpo.learningRate: must be a number, got string"),
    ('generation: {sampling: {temperature: "0.5"}}', "spec.generation.sampling.temperature: must be a number"),
    ("generation: {sampling: {temperature: .nan}}", "spec.generation.sampling.temperature: kubectl (YAML 1.1) reads "
     ".nan as a number JSON cannot carry"),
    ('evaluation: {benchmarks: [{name: g, kind: jsonl, path: ""}]}', "spec.evaluation.benchmarks[0].path"),
]


@pytest.mark.fault("string coercion and YAML 1.1 scalars", outcome="refused")
@pytest.mark.parametrize(("line", "expected"), COERCIONS, ids=[line for line, _ in COERCIONS])
def test_coercions_are_refused_naming_the_field(capsys, tmp_path, line, expected):
    refused_by_rzero(capsys, tmp_path, spec_line(line), expected)


@pytest.mark.fault("string coercion and YAML 1.1 scalars", outcome="refused")
@pytest.mark.parametrize(("changes", "expected"), [
    ({"iteration": "3"}, "iteration: Input should be a valid integer"),
    ({"seed": True}, "seed: Input should be a valid integer"),
    ({"device": {"gpuMemoryUtilization": "0.5"}}, "device.gpuMemoryUtilization: Input should be a valid number"),
])
def test_coercions_in_a_task_are_refused(capsys, tmp_path, changes, expected):
    refused_by_worker(capsys, tmp_path, task(**changes), expected)


@pytest.mark.fault("several documents in one file", outcome="refused")
@pytest.mark.parametrize("content", [pytest.param(GOOD + "---\n" + GOOD, id="two-runs"),
                                     pytest.param(GOOD + "---\n" + GOOD.replace("demo", "other") + "---\n", id="two-named")])
def test_validate_and_run_agree_on_several_documents(capsys, tmp_path, content):
    refused_by_rzero(capsys, tmp_path, content, "holds 2 documents; a manifest file holds exactly one")
    refused_by_worker(capsys, tmp_path, "a: 1\n---\nb: 2\n", "holds 2 documents")


@pytest.mark.fault("NUL byte in a run name", outcome="refused")
@pytest.mark.parametrize("name", ['"de\\0mo"', '"demo\\x00"'])
def test_nul_byte_in_a_run_name(capsys, tmp_path, name):
    refused_by_rzero(capsys, tmp_path, GOOD.replace("name: demo", f"name: {name}"), "metadata.name: contains a NUL byte")
    refused_by_worker(capsys, tmp_path, task().replace('"run": "demo"', '"run": "de\\u0000mo"'), "run: contains a NUL byte")


@pytest.mark.fault("oversized manifest or task file (50 MB)", outcome="refused")
@pytest.mark.parametrize("kind", ["list-items-under-unknown-key", "comment", "annotation"])
def test_a_50_mb_manifest_is_refused_before_parsing(capsys, tmp_path, monkeypatch, kind):
    size = 50 * 1024 * 1024
    filler = {"list-items-under-unknown-key": lambda: spec_line("junk: [" + "1," * (size // 2) + "1]"),
              "comment": lambda: GOOD + "#" + "x" * size + "\n",
              "annotation": lambda: GOOD.replace("  name: demo\n", "  name: demo\n  annotations: {a: " + "x" * size + "}\n")}
    import rzero_worker.documents as documents

    def never(*args, **kwargs):
        raise AssertionError("a file over the limit must not be parsed")

    monkeypatch.setattr(documents.yaml, "load_all", never)
    monkeypatch.setattr(documents.json, "loads", never)
    refused_by_rzero(capsys, tmp_path, filler[kind](), f"over the {MAX_DOCUMENT_BYTES:,}-byte (1.5 MiB) limit")
    refused_by_worker(capsys, tmp_path, filler[kind](), f"over the {MAX_DOCUMENT_BYTES:,}-byte (1.5 MiB) limit")


@pytest.mark.fault("oversized manifest or task file (50 MB)", outcome="refused")
def test_annotations_over_the_servers_256_kib_are_refused(capsys, tmp_path):
    content = GOOD.replace("  name: demo\n", "  name: demo\n  annotations: {a: " + "x" * 300_000 + "}\n")
    refused_by_rzero(capsys, tmp_path, content, "metadata.annotations: 300,001 bytes in all; the API server allows 262,144")


@pytest.mark.fault("output path escaping the run root", outcome="refused")
@pytest.mark.parametrize(("changes", "field"), [
    ({"output": "../../x"}, "output: String should match pattern"),
    ({"output": "/etc/x"}, "output: String should match pattern"),
    ({"output": "iter-000/../../x"}, "output: String should match pattern"),
    ({"model": {"artifact": "../other-run/iter-001/solver"}}, "model.artifact: String should match pattern"),
])
def test_output_paths_outside_the_run_root(capsys, tmp_path, changes, field):
    refused_by_worker(capsys, tmp_path, task(**changes), field)


@pytest.mark.fault("output path escaping the run root", outcome="refused")
def test_a_label_task_reading_outside_the_run_root(capsys, tmp_path):
    label = {**GOOD_TASK, "phase": "label", "output": "iter-001/label", "questions": "../../x",
             "solver": {"source": "m"}}
    label.pop("model")
    refused_by_worker(capsys, tmp_path, json.dumps(label), "questions: String should match pattern", phase="label")


@pytest.mark.fault("unreadable manifest or task file", outcome="refused")
@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "not-a-mapping", "tab-indented-yaml"])
def test_unreadable_files(capsys, tmp_path, kind):
    path = tmp_path / "run.yaml"
    expected = {"missing": "cannot read", "directory": "is a directory", "empty": "holds no document",
                "not-a-mapping": "document must be a mapping", "tab-indented-yaml": "not valid YAML or JSON: line 2"}[kind]
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_text("")
    elif kind == "not-a-mapping":
        path.write_text("- 1\n- 2\n")
    elif kind == "tab-indented-yaml":
        path.write_text("a:\n\tb: 1\n")
    capsys.readouterr()
    assert rzero(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and "Traceback" not in err[0], err
