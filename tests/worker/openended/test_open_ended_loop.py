"""The open-ended loop end to end on the tiny random model: every phase of iterations 0 and 1 built from one spec by
the operator's build_tasks and run under the commit rule, the Verifier and the oracle a deterministic judge behind a
loopback OpenAI-style server (support/judge_server.py: scores by response length, prefers the longer response).

The tiny model writes no `<task>` block, so the generate phase's Challenger is scripted through the generation seam
(the only scripted model); the Challenger and Solver GRPO rollouts, the label Solver's responses and the evaluation
are the tiny model's own."""

import json

import pytest

import rzero_worker.generation as generation
import rzero_worker.rewards_openended as rewards_openended
from rzero_operator.api import RZeroRun
from rzero_operator.api.history import apply_summaries
from rzero_operator.api.status import IterationRecord
from rzero_operator.tasks import build_tasks
from rzero_worker.phases import phase_for
from rzero_worker.phases.runner import run_phase
from rzero_worker.storage import is_committed, join_key, open_storage
from support.artefacts import read_jsonl
from support.judge_server import deterministic_judge
from support.local_runs import tiny_manifest

TASKS = ["Write a two-line poem about rain.", "Describe a cat in one sentence.", "Name three uses of a brick.",
         "Explain what a spoon is for."]


class ScriptedChallenger:
    def generate(self, prompts, *, n, sampling, seed):
        return [[f"<task>{TASKS[i % len(TASKS)]}</task>" for i in range(n)] for _ in prompts]


def open_manifest(tmp_path, model_dir, url: str) -> dict:
    held_out = tmp_path / "held-out.jsonl"
    held_out.write_text("".join(json.dumps({"task": t}) + "\n" for t in TASKS[:3]))
    endpoint = {"url": url, "model": "judge", "maxRetries": 1, "backoffSeconds": 0, "timeoutSeconds": 5}
    grpo = {"steps": 1, "groupSize": 2, "rolloutBatchSize": 2, "updateBatchSize": 2, "microBatchSize": 0,
            "maxPromptTokens": 256, "maxCompletionTokens": 16}
    return tiny_manifest(
        str(model_dir), tmp_path / "runs",
        task={"kind": "open-ended", "description": "short everyday writing tasks", "rubric": ["clarity", "accuracy"],
              "minSpread": 0.01, "maxSpread": 1.0, "heldOut": {"uri": str(held_out), "maxTokens": 12}},
        verifier={"endpoint": endpoint}, oracle={"endpoint": endpoint, "arithmetic": False},
        challenger={"grpo": grpo, "solverSamples": 3, "solverSampling": {"maxTokens": 12}},
        solver={"grpo": {**grpo, "dataOrder": "cycled"}},
        labeling={"samples": 4, "sampling": {"maxTokens": 16}, "gradingWorkers": 1, "auditSize": 2},
    )


@pytest.fixture
def recorded(monkeypatch):
    """Every reward the two open-ended reward functions return, by role."""
    seen = {"challenger": [], "solver": []}
    challenger, solver = rewards_openended.open_challenger_rewards, rewards_openended.open_solver_rewards

    def record_challenger(*args, **kwargs):
        seen["challenger"].append(result := challenger(*args, **kwargs))
        return result

    def record_solver(*args, **kwargs):
        seen["solver"].append(result := solver(*args, **kwargs))
        return result

    monkeypatch.setattr(rewards_openended, "open_challenger_rewards", record_challenger)
    monkeypatch.setattr(rewards_openended, "open_solver_rewards", record_solver)
    return seen


def test_the_open_ended_loop_commits_every_phase_and_its_rewards_spread(
        tmp_path, tiny_model_dir, openai_server, monkeypatch, recorded):
    openai_server.respond = deterministic_judge()
    spec = RZeroRun.from_manifest(open_manifest(tmp_path, tiny_model_dir, openai_server.url)).spec
    root = tmp_path / "root"
    storage = open_storage(build_tasks(spec, str(root), "tiny", 0, "evaluate")[0].storage)
    record = IterationRecord(iteration=1)
    summaries = {}
    for iteration, phase in [(0, "evaluate"), (1, "challenger"), (1, "generate"), (1, "label"), (1, "solver"),
                             (1, "evaluate")]:
        [task] = build_tasks(spec, str(root), "tiny", iteration, phase)
        with monkeypatch.context() as scripted:
            if phase == "generate":
                scripted.setattr(generation, "make_generator", lambda *a, **k: ScriptedChallenger())
            assert run_phase(task, phase_for(task), cache_dir=tmp_path / "cache") == 0
        assert is_committed(storage, task.output), phase
        summaries[(iteration, phase)] = summary = json.loads(storage.get_bytes(join_key(task.output, "summary.json")))
        if iteration == 1:
            apply_summaries(record, phase, task.output, [summary])

    # the Challenger's batch was judged (no <task> from the tiny model: every reward is the paper's 0)
    assert recorded["challenger"] and all(r == 0.0 for batch in recorded["challenger"] for r in batch)
    assert summaries[(1, "challenger")]["metrics"]["judge"]["source"] == "endpoint"
    # generate: the scripted tasks, duplicates dropped
    assert summaries[(1, "generate")]["metrics"]["valid"] == 4
    # label: every response scored, the spread band kept tasks, the judge-failure report is in the history
    label = summaries[(1, "label")]["metrics"]
    assert label["judge"]["judged"] == 16 and label["judge"]["scored"] == 16 and label["kept"] >= 1
    assert record.judge is not None and record.judge.scored == 16 and record.judge.tasks_scored == 4
    assert record.judge.score_collapse is not None and record.judge.length_bias is not None
    kept = read_jsonl(storage, "iter-001/label/shard-00000-of-00001/train.jsonl")
    assert all(0.01 <= row["score"] <= 1.0 for row in kept) and {row["question"] for row in kept} <= set(TASKS)
    # solver: rewards are the judge's scores, and they spread (the tiny model's responses differ in length)
    solver_rewards = [r for batch in recorded["solver"] for r in batch]
    assert len(set(solver_rewards)) > 1 and all(0.0 <= r <= 1.0 for r in solver_rewards)
    assert summaries[(1, "solver")]["metrics"]["steps"] == 1
    # evaluate: the benchmarks and, from iteration 1, the win rate against iteration 0 in both orders
    assert "win_rate" not in summaries[(0, "evaluate")]["metrics"]
    win = summaries[(1, "evaluate")]["metrics"]["win_rate"]
    assert win["tasks"] == 3 and win["wins"] + win["losses"] + win["ties"] + win["unjudged"] == 3
    assert record.win_rate is not None and record.win_rate.win_rate is not None and record.scores
    rows = read_jsonl(storage, "iter-001/evaluate/shard-00000-of-00001/winrate.jsonl")
    assert all(row["current_first"] in ("A", "B", "tie") and row["baseline_first"] in ("A", "B", "tie") for row in rows)
    pairwise = [r for r in openai_server.requests if "Response A:" in r["question"]]
    assert len(pairwise) == 6  # three tasks, two orders each
