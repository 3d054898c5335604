"""spec.task (kind open-ended): validation in the words `rzero validate` and the operator both use, the tasks the
operator builds (the Verifier and the oracle as judges), the status records and the score table's win-rate column."""

from __future__ import annotations

import pytest

from rzero_operator.api import RZeroRun
from rzero_operator.api.history import apply_summaries
from rzero_operator.api.status import IterationRecord
from rzero_operator.kube.pod import oracle_env
from rzero_operator.report import iteration_rows
from rzero_operator.scoretable import score_table
from rzero_operator.tasks import build_tasks
from rzero_operator.validate import InvalidManifest, validate_manifest

OPEN = {"kind": "open-ended", "description": "short persuasive emails", "rubric": ["clarity", "tone"]}
ENDPOINT = {"url": "https://judge.example/v1", "model": "judge", "apiKeySecret": {"name": "judge", "key": "key"}}


def manifest(**spec) -> dict:
    body = {"model": "builtin:smollm2-135m-instruct", "storage": {"uri": "s3://runs/rzero"}, **spec}
    return {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "emails"}, "spec": body}


def errors_of(doc: dict) -> list[str]:
    with pytest.raises(InvalidManifest) as caught:
        validate_manifest(doc)
    return caught.value.errors


@pytest.mark.parametrize(("spec", "expected"), [
    ({"task": {"kind": "open-ended"}}, "spec.task.description: an open-ended task needs a description of its domain"),
    ({"task": {"kind": "verifiable", "rubric": ["clarity"]}}, "spec.task.rubric: applies only to kind open-ended"),
    ({"task": {"description": "emails"}}, "spec.task.description: applies only to kind open-ended"),
    ({"task": {**OPEN, "rubric": ["Clarity", "clarity"]}}, "spec.task.rubric: criteria must be unique, repeated: clarity"),
    ({"task": {**OPEN, "rubric": ["clarity: 10"]}}, "spec.task.rubric[0]: 'clarity: 10' is not the pattern"),
    ({"task": {**OPEN, "minSpread": 0.5, "maxSpread": 0.4}}, "spec.task.maxSpread: must be above minSpread"),
    ({"task": {"kind": "creative"}}, "spec.task.kind: must be one of 'verifiable' or 'open-ended', got 'creative'"),
    ({"task": OPEN, "labeling": {"verifier": "veto"}}, "spec.labeling.verifier: the veto checks majority-vote labels"),
    ({"task": OPEN, "corpus": {"uri": "s3://docs/a"}}, "spec.corpus: the grounded Challenger writes verifiable"),
    ({"task": {**OPEN, "heldOut": {"uri": "s3://tasks/held.jsonl"}}},
     "spec.task.heldOut: the win rate is judged by the oracle; set oracle.model or oracle.endpoint"),
])
def test_an_impossible_open_ended_spec_is_refused_naming_the_field(spec, expected):
    errors = errors_of(manifest(**spec))
    assert any(error.startswith(expected) for error in errors), errors


def test_rzero_validate_refuses_in_the_same_words(tmp_path, capsys):
    import yaml

    from rzero_operator.cli import main

    doc = manifest(task={**OPEN, "heldOut": {"uri": "s3://tasks/held.jsonl"}})
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["validate", str(path)]) == 2
    assert errors_of(doc)[0] in capsys.readouterr().err


def open_spec(**spec):
    body = {"task": {**OPEN, "heldOut": {"uri": "s3://tasks/held.jsonl"}}, "verifier": {"endpoint": ENDPOINT},
            "oracle": {"model": {"source": "Qwen/Qwen3-8B"}}, **spec}
    return RZeroRun.from_manifest(manifest(**body)).spec


def test_the_open_ended_phases_carry_the_task_and_the_verifier_and_evaluation_the_oracle():
    spec = open_spec()
    for phase in ("challenger", "generate", "label", "solver"):
        [task] = build_tasks(spec, "s3://runs/rzero/ns/emails/u", "emails", 1, phase)
        assert task.open_ended.task.criteria == ("clarity", "tone")
        assert task.open_ended.judge.endpoint.url == ENDPOINT["url"]
    [base] = build_tasks(spec, "s3://runs/rzero/ns/emails/u", "emails", 0, "evaluate")
    [later] = build_tasks(spec, "s3://runs/rzero/ns/emails/u", "emails", 2, "evaluate")
    assert base.win_rate is None  # iteration 0 is the baseline
    assert later.win_rate.judge.model.source == "Qwen/Qwen3-8B" and later.win_rate.baseline.source == spec.model
    # the wire form of every task is a valid task document
    from rzero_worker.task import parse_task

    assert parse_task(later.model_dump(mode="json", by_alias=True)).win_rate == later.win_rate


def test_the_default_verifier_is_a_copy_of_the_solvers_base_model_and_the_verifiable_loop_is_unchanged():
    spec = RZeroRun.from_manifest(manifest(task=OPEN)).spec
    [task] = build_tasks(spec, "s3://r/ns/emails/u", "emails", 1, "solver")
    assert task.open_ended.judge.model.source == spec.model
    plain = RZeroRun.from_manifest(manifest()).spec
    [task] = build_tasks(plain, "s3://r/ns/emails/u", "emails", 1, "solver")
    assert task.open_ended is None


def test_the_verifier_key_reaches_the_phases_that_score_and_the_oracle_key_the_evaluation():
    spec = open_spec(oracle={"endpoint": {**ENDPOINT, "apiKeyEnv": "ORACLE_KEY",
                                          "apiKeySecret": {"name": "oracle", "key": "key"}}})
    names = {phase: [v["valueFrom"]["secretKeyRef"]["name"]
                     for v in oracle_env(build_tasks(spec, "s3://r/ns/emails/u", "emails", 1, phase))]
             for phase in ("challenger", "generate", "label", "solver", "evaluate")}
    assert names == {"challenger": ["judge"], "generate": [], "label": ["judge"], "solver": ["judge"],
                     "evaluate": ["oracle"]}
    # Iteration 0's evaluation measures the base model: no win rate, so no judge and no key.
    assert oracle_env(build_tasks(spec, "s3://r/ns/emails/u", "emails", 0, "evaluate")) == []


def test_history_sums_the_judge_report_and_the_win_rate_over_shards():
    record = IterationRecord(iteration=1)
    judge = {"source": "endpoint", "judged": 4, "scored": 3, "unparsable": 1, "unavailable": 0, "tasks_scored": 1,
             "tasks_collapsed": 1, "score_sum": 1.5, "length_moments": [3, 6, 1.5, 14, 0.75, 3]}
    apply_summaries(record, "label", "iter-001/label", [{"metrics": {"judge": judge}}, {"metrics": {"judge": judge}}])
    assert record.judge.judged == 8 and record.judge.scored == 6 and record.judge.mean_score == 0.5
    assert record.judge.score_collapse == 1.0 and record.judge.length_bias is None  # equal scores: no variance
    win = {"tasks": 5, "wins": 3, "losses": 1, "ties": 1, "unjudged": 0, "decided": 8, "first_chosen": 6}
    apply_summaries(record, "evaluate", "iter-001/evaluate", [{"metrics": {"win_rate": win, "scores": {}}}] * 2)
    assert record.win_rate.tasks == 10 and record.win_rate.win_rate == pytest.approx(7 / 10)
    assert record.win_rate.first_position_share == 0.75
    low, high = record.win_rate.win_rate_ci95
    assert low < 0.7 < high


def test_the_score_table_shows_the_win_rate_beside_the_benchmarks():
    status = {"iterationHistory": [
        {"iteration": 0, "scores": {"arithmetic": 0.5}},
        {"iteration": 1, "scores": {"arithmetic": 0.6}, "winRate": {"winRate": 0.55, "winRateCi95": [0.401, 0.69]}},
    ]}
    header, body = score_table(iteration_rows(status))
    assert header == ["iteration", "arithmetic", "Win rate vs it. 0"]
    assert body == [["0", "50.00", "–"], ["1", "60.00 (+10.00)", "55.00 [40.1, 69.0]"]]


def test_rzero_status_prints_the_judge_report_and_the_win_rate():
    from rzero_operator.api.openended import open_ended_lines

    status = {"iterationHistory": [{"iteration": 1, "judge": {
        "judged": 16, "scored": 15, "unparsable": 1, "meanScore": 0.5, "lengthBias": 0.42, "tasksScored": 4,
        "tasksCollapsed": 1, "scoreCollapse": 0.25}, "winRate": {
        "tasks": 3, "wins": 2, "losses": 1, "winRate": 2 / 3, "winRateCi95": [0.2, 0.94], "decided": 6,
        "firstChosen": 4, "firstPositionShare": 4 / 6, "orderDecided": 1}}]}
    assert open_ended_lines(status) == [
        "",
        "judge, iteration 1: the Verifier scored 15 of 16 responses (unparsable 1, unavailable 0), mean score 0.50; "
        "length bias r = +0.42; score collapse 1 of 4 tasks",
        "win rate, iteration 1: win rate 66.7% [20.0, 94.0] against iteration 0 (2 won, 1 lost, 0 tied, 0 unjudged); "
        "the first response chosen in 67% of 6 verdicts, 1 tasks decided by the order",
    ]


def test_an_open_ended_verifier_with_gpus_of_its_own_takes_them_in_the_label_phase_only():
    spec = RZeroRun.from_manifest(manifest(task=OPEN, verifier={"gpus": 2}, resources={"gpus": 4})).spec
    gpus = {phase: build_tasks(spec, "s3://r/ns/emails/u", "emails", 1, phase)[0].open_ended.judge.gpus
            for phase in ("challenger", "generate", "label", "solver")}
    assert gpus == {"challenger": 0, "generate": 0, "label": 2, "solver": 0}  # training ranks score on their own GPU


def test_an_open_ended_warm_up_carries_the_task_and_teaches_the_verifiers_score_box_by_default():
    def warmup(**spec):
        body = {"task": OPEN, "warmup": {"enabled": True, **spec.pop("warmup", {})}, **spec}
        [task] = build_tasks(RZeroRun.from_manifest(manifest(**body)).spec, "s3://r/ns/emails/u", "emails", 0,
                             "warmup")
        return task

    from rzero_worker.task import parse_task

    task = warmup()
    assert task.open_ended_task.criteria == ("clarity", "tone")
    assert task.open_ended_task.description == OPEN["description"]
    assert task.settings.verifier_examples == 0.3  # the default Verifier is the warmed-up model: it learns the box
    assert parse_task(task.model_dump(mode="json", by_alias=True)).open_ended_task == task.open_ended_task
    assert warmup(warmup={"verifierExamples": 0}).settings.verifier_share() == 0  # asked for: kept
    assert warmup(verifier={"endpoint": ENDPOINT}).settings.verifier_examples is None  # not the warmed-up model
    assert warmup(verifier={"model": "judge-dir"}).settings.verifier_examples is None
    plain = RZeroRun.from_manifest(manifest(warmup={"enabled": True})).spec
    [task] = build_tasks(plain, "s3://r/ns/emails/u", "emails", 0, "warmup")
    assert task.open_ended_task is None and task.settings.verifier_examples is None  # the verifiable warm-up


def test_a_warm_up_task_refuses_a_verifiable_task_naming_the_field():
    from rzero_worker.task import TaskSettings, WarmupTask

    common = {"run": "r", "iteration": 0, "storage": {"uri": "/tmp/r"}, "output": "iter-000/warmup", "seed": 1,
              "model": {"source": "m"}}
    with pytest.raises(ValueError, match="openEndedTask.kind: must be open-ended"):
        WarmupTask(**common, open_ended_task=TaskSettings())
