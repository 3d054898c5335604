"""Phase summaries and the Kubernetes termination log (4096 bytes at most)."""

from __future__ import annotations

import json

from rzero_worker.summary import (
    TERMINATION_LOG_LIMIT,
    encode_summary,
    fit_summary,
    make_failure_summary,
    make_summary,
    write_termination_log,
)
from rzero_worker.task import parse_task

LABEL_TASK = {
    "phase": "label",
    "run": "demo",
    "iteration": 1,
    "storage": {"uri": "/tmp/runs"},
    "output": "iter-001/label/shard-00000-of-00001",
    "solver": {"artifact": "iter-000/solver"},
    "questions": "iter-001/generate",
}


def test_make_summary_follows_the_documented_format():
    summary = make_summary(parse_task(LABEL_TASK), {"kept": 3, "questions": 8}, 12.34567)
    assert summary == {
        "apiVersion": "rzero.dev/summary-v1",
        "run": "demo",
        "phase": "label",
        "iteration": 1,
        "output": "iter-001/label/shard-00000-of-00001",
        "seconds": 12.346,
        "metrics": {"kept": 3, "questions": 8},
    }


def test_failure_summary_names_the_phase_and_error():
    failure = make_failure_summary("label", "RuntimeError: boom", parse_task(LABEL_TASK))
    assert failure["apiVersion"] == "rzero.dev/summary-v1"
    assert (failure["phase"], failure["error"], failure["iteration"]) == ("label", "RuntimeError: boom", 1)
    assert make_failure_summary("solver", "bad") == {"apiVersion": "rzero.dev/summary-v1", "phase": "solver", "error": "bad"}


def test_termination_log_goes_to_the_env_path(tmp_path, monkeypatch):
    target = tmp_path / "termination-log"
    monkeypatch.setenv("RZERO_TERMINATION_LOG", str(target))
    summary = make_summary(parse_task(LABEL_TASK), {"kept": 3}, 1.0)
    assert write_termination_log(summary) == target
    assert json.loads(target.read_text()) == summary


def test_a_lone_surrogate_in_the_error_text_is_written_as_the_replacement_character(tmp_path, monkeypatch):
    target = tmp_path / "termination-log"
    monkeypatch.setenv("RZERO_TERMINATION_LOG", str(target))
    lone = json.loads('"\\ud800"')  # document text an error message may quote (task fields cannot hold one)

    write_termination_log(make_failure_summary("label", f"line 3: {lone} is not a number", parse_task(LABEL_TASK)))

    assert json.loads(target.read_bytes().decode("utf-8"))["error"] == "line 3: \ufffd is not a number"


def test_no_termination_log_outside_a_pod(monkeypatch, tmp_path):
    monkeypatch.delenv("RZERO_TERMINATION_LOG", raising=False)
    monkeypatch.setattr("rzero_worker.summary.TERMINATION_LOG", tmp_path / "absent")
    assert write_termination_log({"phase": "label"}) is None


def test_oversized_summary_drops_the_largest_metrics_first_and_stays_valid_json(tmp_path):
    metrics = {
        "kept": 7,
        "mean_agreement": 0.61,
        "audit": ["x" * 100] * 30,  # ~3 KB
        "per_question": list(range(800)),  # ~3 KB, slightly larger
        "score_histogram": [1] * 10,
    }
    summary = make_summary(parse_task(LABEL_TASK), metrics, 1.0)
    path = write_termination_log(summary, tmp_path / "log")
    raw = path.read_bytes()
    assert len(raw) <= TERMINATION_LOG_LIMIT
    written = json.loads(raw)
    assert written["trimmedMetrics"] == ["per_question"]
    assert written["metrics"] == {k: v for k, v in metrics.items() if k != "per_question"}
    assert written["output"] == summary["output"]


def test_summary_that_fits_is_unchanged():
    summary = {"apiVersion": "rzero.dev/summary-v1", "phase": "label", "metrics": {"kept": 1}}
    assert fit_summary(summary) == summary


def test_huge_error_text_is_cut_keeping_its_end():
    failure = make_failure_summary("label", "Traceback...\n" + "x" * 10_000 + "\nValueError: the cause")
    fitted = fit_summary(failure)
    assert len(encode_summary(fitted)) <= TERMINATION_LOG_LIMIT
    assert fitted["error"].startswith("...") and fitted["error"].endswith("ValueError: the cause")


def test_multibyte_text_is_counted_in_bytes():
    # 2,500 characters but 5,000 UTF-8 bytes: over the limit although len(str) is not.
    summary = {"apiVersion": "rzero.dev/summary-v1", "phase": "label", "metrics": {"q": "é" * 2500, "n": 1}}
    assert len(json.dumps(summary, ensure_ascii=False)) < TERMINATION_LOG_LIMIT
    fitted = fit_summary(summary)
    assert len(encode_summary(fitted)) <= TERMINATION_LOG_LIMIT
    assert fitted["metrics"] == {"n": 1}
