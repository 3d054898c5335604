"""Fill an iteration's status record from the summaries of a succeeded phase (one per shard).

Summary metrics are documented in docs/ARCHITECTURE.md ("Summary"). Summaries come from files or pod
termination messages, so every field is treated as optional: a missing number leaves the status field
unset rather than failing the run.
"""

from __future__ import annotations

from typing import Any, Iterable

from rzero_worker.benchmark_presets import MATH_AVERAGE, OVERALL_AVERAGE
from rzero_worker.benchmarks.scoring import mean_accuracy, merge_scores, paper_averages, wilson_interval

from .openended import apply_open_ended
from .oversight import OracleRecord, VerifierTrainingRecord, VetoRecord
from .status import IterationRecord


def _metrics(summaries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s.get("metrics") or {} for s in summaries if isinstance(s, dict)]


def _total(metrics: list[dict[str, Any]], key: str) -> int | None:
    values = [m[key] for m in metrics if isinstance(m.get(key), (int, float))]
    return int(sum(values)) if values else None


def _weighted_mean(metrics: list[dict[str, Any]], key: str, weight_key: str) -> float | None:
    """Mean of per-shard `key` weighted by per-shard `weight_key` (shards differ in size)."""
    pairs = [
        (float(m[key]), float(m.get(weight_key) or 0))
        for m in metrics
        if isinstance(m.get(key), (int, float))
    ]
    if not pairs:
        return None
    weight = sum(w for _, w in pairs)
    if weight <= 0:
        return sum(v for v, _ in pairs) / len(pairs)
    return sum(v * w for v, w in pairs) / weight


def summary_seconds(summaries: Iterable[dict[str, Any]]) -> float | None:
    """Wall time of a phase: its slowest shard."""
    values = [float(s["seconds"]) for s in summaries if isinstance(s, dict) and isinstance(s.get("seconds"), (int, float))]
    return max(values) if values else None


def apply_summaries(record: IterationRecord, phase: str, output: str, summaries: list[dict[str, Any]]) -> None:
    """Copy the numbers of `phase`'s summaries into `record` (in place). `output` is the phase's key."""
    metrics = _metrics(summaries)
    if phase == "challenger":
        record.challenger_checkpoint = output
        record.challenger_reward = _weighted_mean(metrics, "mean_reward", "steps")
    elif phase == "solver":
        record.solver_checkpoint = output
        record.solver_reward = _weighted_mean(metrics, "mean_reward", "steps")
    elif phase == "verifier":
        record.verifier_checkpoint = output
        record.verifier_training = verifier_training_record(metrics)
    elif phase == "generate":
        record.questions_generated = _total(metrics, "requested")
        record.questions_valid = _total(metrics, "valid")
    elif phase == "label":
        _apply_label(record, metrics)
    elif phase == "evaluate":
        _apply_evaluate(record, metrics)
    apply_open_ended(record, phase, metrics)  # spec.task open-ended: the judge report and the win rate


def _apply_label(record: IterationRecord, metrics: list[dict[str, Any]]) -> None:
    record.questions_labelled = _total(metrics, "questions")
    record.questions_kept = _total(metrics, "kept")
    record.mean_agreement = _weighted_mean(metrics, "mean_agreement", "questions")
    record.label_matches_challenger = _weighted_mean(metrics, "label_matches_challenger", "kept")
    compared, agree = _total(metrics, "document_compared"), _total(metrics, "document_agree")
    if compared:
        record.document_compared = compared
        record.document_agreement = (agree or 0) / compared
    reasons: dict[str, int] = {}
    for m in metrics:
        for reason, count in (m.get("dropped") or {}).items():
            if isinstance(count, (int, float)):
                reasons[str(reason)] = reasons.get(str(reason), 0) + int(count)
    record.drop_reasons = reasons
    record.answer_entropy = _weighted_mean(metrics, "answer_entropy", "kept")
    record.band_edge_share = _weighted_mean(metrics, "band_edge_share", "kept")
    _apply_label_accuracy(record, metrics)
    record.oracles = oracle_records(metrics)
    record.verifier = veto_record(metrics)


def _apply_label_accuracy(record: IterationRecord, metrics: list[dict[str, Any]]) -> None:
    """Label accuracy over every shard's oracle-checked questions (counts add up; accuracies do not)."""
    checked = _total(metrics, "oracle_checked")
    correct = _total(metrics, "oracle_correct")
    record.oracle_checked = checked
    names = {m["oracle"] for m in metrics if isinstance(m.get("oracle"), str)}
    record.label_oracle = names.pop() if len(names) == 1 else None
    if checked and correct is not None:
        record.label_accuracy = correct / checked
        record.label_accuracy_ci95 = list(wilson_interval(correct, checked))


_ORACLE_COUNTERS = ("asked", "checked", "correct", "requests", "malformed", "failed", "over_budget")


def oracle_records(metrics: list[dict[str, Any]]) -> dict[str, OracleRecord]:
    """Each oracle's counts summed over the shards (`oracles` metrics), with its accuracy and interval."""
    totals: dict[str, dict[str, Any]] = {}
    for m in metrics:
        for name, entry in (m.get("oracles") or {}).items():
            if not isinstance(entry, dict):
                continue
            total = totals.setdefault(str(name), {})
            for key in _ORACLE_COUNTERS:
                if isinstance(entry.get(key), (int, float)):
                    total[key] = total.get(key, 0) + int(entry[key])
            if isinstance(entry.get("error"), str):
                total["error"] = entry["error"][:1024]
    records = {}
    for name, total in totals.items():
        record = OracleRecord(**total)
        if record.checked:
            record.accuracy = record.correct / record.checked
            record.ci95 = list(wilson_interval(record.correct, record.checked))
        records[name] = record
    return records


_VETO_COUNTERS = ("judged", "approved", "rejected", "unparsable", "unavailable", "checked_before", "correct_before",
                  "checked_after", "correct_after", "correct_vetoed", "wrong_vetoed", "oracle_compared", "oracle_agreed")
_VETO_ENDPOINT = ("requests", "malformed", "failed", "over_budget")


def veto_record(metrics: list[dict[str, Any]]) -> VetoRecord | None:
    """The Verifier's veto (`verifier` metrics) summed over the shards, with its rates and intervals."""
    entries = [m["verifier"] for m in metrics if isinstance(m.get("verifier"), dict)]
    if not entries:
        return None
    total: dict[str, Any] = {}
    for entry in entries:
        for key in _VETO_COUNTERS + _VETO_ENDPOINT:
            if isinstance(entry.get(key), (int, float)):
                total[key] = total.get(key, 0) + int(entry[key])
        if isinstance(entry.get("source"), str):
            total["source"] = entry["source"][:64]
        if isinstance(entry.get("error"), str):
            total["error"] = entry["error"][:1024]
    agreed = total.pop("oracle_agreed", 0)
    record = VetoRecord(**total)
    record.vetoed = record.rejected + record.unparsable + record.unavailable
    record.accuracy_before, record.ci95_before = _rate(record.correct_before, record.checked_before)
    record.accuracy_after, record.ci95_after = _rate(record.correct_after, record.checked_after)
    record.verifier_accuracy, record.verifier_accuracy_ci95 = _rate(agreed, record.oracle_compared)
    return record


_TRAINED_FIELDS = ("examples", "train_examples", "held_out", "audit_verdicts", "accuracy_before", "accuracy_after",
                   "accuracy_after_ci95", "unparsable_after", "oracle_held_out", "oracle_accuracy_before",
                   "oracle_accuracy_after", "steps", "mean_reward", "reward_std", "weight_change")


def verifier_training_record(metrics: list[dict[str, Any]]) -> VerifierTrainingRecord | None:
    """The trained Verifier's phase (one task: rank 0's summary) as its status record; unusable fields are left out."""
    entry = next((m for m in metrics if "examples" in m), None)
    if entry is None:
        return None
    values: dict[str, Any] = {}
    for key in _TRAINED_FIELDS:
        value = entry.get(key)
        if key.endswith("ci95"):
            ok = isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
        if ok:
            values[key] = int(value) if key in ("examples", "train_examples", "held_out", "audit_verdicts",
                                               "unparsable_after", "oracle_held_out", "steps") else value
    sources = entry.get("sources")
    if isinstance(sources, dict):
        values["sources"] = {str(k): int(v) for k, v in sources.items() if isinstance(v, int) and v >= 0}
    if isinstance(entry.get("skipped"), str):
        values["skipped"] = entry["skipped"][:1024]
    return VerifierTrainingRecord(**values)


def _rate(correct: int, checked: int) -> tuple[float | None, list[float] | None]:
    return (correct / checked, list(wilson_interval(correct, checked))) if checked else (None, None)


def _apply_evaluate(record: IterationRecord, metrics: list[dict[str, Any]]) -> None:
    """Scores over all shards: each shard scored its slice of every benchmark, with counts to merge."""
    scores = merge_scores(m.get("scores") for m in metrics)
    record.scores = {name: entry["accuracy"] for name, entry in scores.items() if entry["accuracy"] is not None}
    record.mean_score = mean_accuracy(scores)
    averages = paper_averages(scores)
    record.math_average = averages[MATH_AVERAGE]
    record.overall_average = averages[OVERALL_AVERAGE]
