"""The RZeroRun API types: one source of truth shared with the worker, camelCase on the wire."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from rzero_operator.api import RZeroRun, RZeroRunSpec, RZeroRunStatus
from rzero_operator.api.history import apply_summaries
from rzero_operator.api.status import IterationRecord, PhaseRecord
from rzero_operator.sizing_auto import resolve
from rzero_worker.benchmark_presets import PRESETS
from rzero_worker.task import ChallengerSettings, LabelingSettings

MANIFEST = {
    "apiVersion": "rzero.dev/v1alpha1",
    "kind": "RZeroRun",
    "metadata": {"name": "demo", "namespace": "ml", "uid": "u-1", "generation": 2, "resourceVersion": "9"},
    "spec": {
        "model": "Qwen/Qwen3-4B-Base",
        "storage": {"uri": "s3://runs/rzero", "secretRef": {"name": "s3-creds"}},
        "labeling": {"band": "code"},
        "resources": {"gpus": 8, "phases": {"generate": {"gpus": 1, "cpu": "8"}}},
    },
    "status": {"phase": "Running", "iteration": 1, "stage": "Labeling", "progress": "1/3"},
}


def test_from_manifest_reads_spec_status_and_keeps_unknown_metadata():
    run = RZeroRun.from_manifest(MANIFEST)
    assert (run.metadata.name, run.metadata.namespace, run.metadata.generation) == ("demo", "ml", 2)
    assert run.wire()["metadata"]["resourceVersion"] == "9"
    assert run.status.stage == "Labeling" and run.spec.labeling.band_edges() == (0.3, 0.8)


def test_phase_blocks_are_the_worker_settings_types():
    spec = RZeroRun.from_manifest(MANIFEST).spec
    assert isinstance(spec.challenger, ChallengerSettings) and isinstance(spec.labeling, LabelingSettings)


def test_secret_ref_is_a_reference_with_aws_default_keys():
    ref = RZeroRun.from_manifest(MANIFEST).spec.storage.secret_ref
    assert (ref.name, ref.access_key_id_key, ref.secret_access_key_key) == (
        "s3-creds", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ValidationError):
        RZeroRunSpec.model_validate({"model": "m", "storage": {"uri": "s3://b/p", "secretRef": {"name": "s", "value": "x"}}})


def test_per_phase_resources_override_only_what_they_set():
    resources = RZeroRun.from_manifest(MANIFEST).spec.resources
    generate, solver = resources.for_phase("generate"), resources.for_phase("solver")
    assert (generate.gpus, generate.cpu, generate.memory) == (1, "8", None)  # unset: auto (sizing_auto)
    assert resolve(RZeroRun.from_manifest(MANIFEST).spec).resources.for_phase("generate").memory == "32Gi"
    assert (solver.gpus, solver.cpu, solver.nodes) == (8, "4", 1)


def test_wire_form_is_camel_case_and_round_trips():
    run = RZeroRun.from_manifest(MANIFEST)
    wire = run.wire()
    assert "secretRef" in wire["spec"]["storage"] and "stopRunningOnSuspend" in wire["spec"]
    assert RZeroRun.from_manifest(json.loads(json.dumps(wire))) == run


def test_retry_backoff_doubles_and_caps():
    retry = RZeroRunSpec.model_validate({"model": "m", "storage": {"uri": "x"}}).retry
    assert [retry.backoff_after(a) for a in (1, 2, 3, 10)] == [30, 60, 120, 900]


def test_status_timestamps_are_rfc3339_utc_on_the_wire():
    status = RZeroRunStatus(iteration_history=[IterationRecord(
        iteration=1, started_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
        phases={"label": PhaseRecord(state="Succeeded", attempts=1)})])
    assert status.wire()["iterationHistory"][0]["startedAt"] == "2025-01-01T00:00:00Z"


def test_status_of_a_hundred_iterations_stays_small_for_etcd():
    scores = {name: 0.123456 for name in PRESETS}  # the paper's ten benchmarks
    record = IterationRecord(iteration=0, scores=scores, math_average=0.123456, overall_average=0.123456,
                             drop_reasons={"out_of_band": 10},
                             phases={p: PhaseRecord(state="Succeeded", attempts=1) for p in
                                     ("challenger", "generate", "label", "solver", "evaluate")})
    history = [record.model_copy(update={"iteration": i}) for i in range(101)]
    size = len(json.dumps(RZeroRunStatus(iteration_history=history).wire()))
    assert size < 200_000, size


def test_label_summaries_of_several_shards_are_summed_and_weighted():
    record = IterationRecord(iteration=1)
    apply_summaries(record, "label", "iter-001/label", [
        {"metrics": {"questions": 10, "kept": 4, "mean_agreement": 0.5, "dropped": {"out_of_band": 6},
                     "label_matches_challenger": 0.5}},
        {"metrics": {"questions": 30, "kept": 12, "mean_agreement": 0.7, "dropped": {"out_of_band": 10, "no_answer": 8},
                     "label_matches_challenger": 1.0}},
    ])
    assert (record.questions_labelled, record.questions_kept) == (40, 16)
    assert record.mean_agreement == pytest.approx(0.65) and record.label_matches_challenger == pytest.approx(0.875)
    assert record.drop_reasons == {"out_of_band": 16, "no_answer": 8}
    assert record.oracle_checked is None and record.label_accuracy is None  # no oracle ran


def test_vote_and_document_agreement_adds_up_over_shards():
    record = IterationRecord(iteration=1)
    apply_summaries(record, "label", "iter-001/label", [
        {"metrics": {"kept": 2, "document_compared": 4, "document_agree": 1}},
        {"metrics": {"kept": 3, "document_compared": 6, "document_agree": 6}},
    ])
    assert (record.document_compared, record.document_agreement) == (10, pytest.approx(0.7))
    ungrounded = IterationRecord(iteration=1)
    apply_summaries(ungrounded, "label", "iter-001/label", [{"metrics": {"kept": 2, "document_compared": 0}}])
    assert ungrounded.document_agreement is None and ungrounded.document_compared is None


def test_label_accuracy_adds_up_the_oracle_checks_of_every_shard():
    record = IterationRecord(iteration=1)
    apply_summaries(record, "label", "iter-001/label", [
        {"metrics": {"kept": 4, "oracle_checked": 4, "oracle_correct": 3, "label_accuracy": 0.75}},
        {"metrics": {"kept": 8, "oracle_checked": 6, "oracle_correct": 3, "label_accuracy": 0.5}},
    ])
    assert (record.oracle_checked, record.label_accuracy) == (10, pytest.approx(0.6))
    low, high = record.label_accuracy_ci95
    assert low < 0.6 < high


def test_the_veto_adds_up_over_shards_with_accuracy_before_and_after_and_the_verifiers_agreement():
    shard = {"source": "model", "judged": 10, "approved": 6, "rejected": 3, "unparsable": 1, "unavailable": 0,
             "oracle": "arithmetic", "checked_before": 10, "correct_before": 5, "checked_after": 6, "correct_after": 4,
             "correct_vetoed": 1, "wrong_vetoed": 3, "oracle_compared": 10, "oracle_agreed": 7}
    record = IterationRecord(iteration=1)
    apply_summaries(record, "label", "iter-001/label", [
        {"metrics": {"kept": 6, "verifier": shard}}, {"metrics": {"kept": 6, "verifier": {**shard, "unavailable": 2}}},
        {"metrics": {"kept": 3}},  # a shard from before the veto was switched on: ignored
    ])
    veto = record.verifier
    assert (veto.judged, veto.approved, veto.vetoed, veto.unavailable, veto.source) == (20, 12, 10, 2, "model")
    assert (veto.accuracy_before, veto.accuracy_after) == (0.5, pytest.approx(8 / 12))
    assert veto.ci95_after[0] < 8 / 12 < veto.ci95_after[1]
    assert (veto.correct_vetoed, veto.wrong_vetoed, veto.verifier_accuracy) == (2, 6, 0.7)
    assert IterationRecord(iteration=1).verifier is None  # no veto: no record


def test_evaluate_shards_are_merged_from_their_counts_with_the_papers_averages():
    def shard(gsm8k: tuple[int, int], bbeh: tuple[int, int]) -> dict:
        return {"metrics": {"scores": {
            "gsm8k": {"accuracy": gsm8k[0] / gsm8k[1], "n": gsm8k[1], "correct": gsm8k[0], "preset": "gsm8k"},
            "bbeh": {"accuracy": bbeh[0] / bbeh[1], "n": bbeh[1], "correct": bbeh[0], "preset": "bbeh"},
        }, "mean_accuracy": 0.99, "math_average": 0.99}}  # shard-local figures: never copied as they are

    record = IterationRecord(iteration=2)
    apply_summaries(record, "evaluate", "iter-002/evaluate", [shard((3, 4), (1, 4)), shard((1, 4), (0, 2))])

    assert record.scores == {"gsm8k": 0.5, "bbeh": pytest.approx(1 / 6, abs=1e-6)}
    assert record.math_average == 0.5
    assert record.overall_average == pytest.approx((0.5 + 1 / 6) / 2, abs=1e-6)
    assert record.mean_score == pytest.approx((0.5 + 1 / 6) / 2, abs=1e-6)


def test_summaries_missing_metrics_leave_status_fields_unset():
    record = IterationRecord(iteration=1)
    apply_summaries(record, "generate", "iter-001/generate", [{"phase": "generate"}])
    assert record.questions_generated is None and record.questions_valid is None


def test_api_plan_tasks_and_validation_import_no_ml_library():
    import subprocess
    import sys

    code = ("import sys, rzero_operator.api.crd, rzero_operator.api.reference, rzero_operator.plan, "
            "rzero_operator.tasks, rzero_operator.validate; "
            "print(sorted(m for m in ('torch', 'transformers', 'trl') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
