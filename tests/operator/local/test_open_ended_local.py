"""An open-ended run through the local executor (`rzero run`): real worker subprocesses on the tiny random model,
the Verifier and the oracle a deterministic judge behind a loopback OpenAI-style server. Every phase of both
iterations commits and the history carries the judge report and the win rate; the score table shows it."""

from __future__ import annotations

import json

from rzero_operator.local.executor import LocalExecutor, load_run, run_local
from rzero_operator.local.layout import LocalLayout
from rzero_operator.local.progress import RunProgress
from support.judge_server import deterministic_judge
from support.local_runs import tiny_manifest, write_manifest


def executor_for(path) -> LocalExecutor:
    run = load_run(path)
    return LocalExecutor(run, LocalLayout.resolve(run.metadata.name, run.spec.storage.uri),
                         RunProgress("tiny", 6, enabled=False))


def test_an_open_ended_run_goes_to_succeeded_with_its_judge_report_and_win_rate(tmp_path, tiny_model_dir,
                                                                              openai_server, capsys):
    openai_server.respond = deterministic_judge(every=5)  # every fifth score request unreadable: counted
    held_out = tmp_path / "held-out.txt"
    held_out.write_text("Write a haiku about rain.\nDescribe a cat.\n")
    endpoint = {"url": openai_server.url, "model": "judge", "maxRetries": 0, "timeoutSeconds": 10}
    manifest = tiny_manifest(
        str(tiny_model_dir), tmp_path / "runs",
        task={"kind": "open-ended", "description": "short everyday writing", "heldOut": {"uri": str(held_out),
                                                                                      "maxTokens": 8}},
        verifier={"endpoint": endpoint}, oracle={"endpoint": endpoint, "arithmetic": False},
    )
    path = write_manifest(tmp_path, manifest)

    assert run_local(path, progress=False) == 0

    status = executor_for(path).state.status
    assert status["phase"] == "Succeeded", status["message"]
    history = {entry["iteration"]: entry for entry in status["iterationHistory"]}
    assert set(history[1]["phases"]) == {"challenger", "generate", "label", "solver", "evaluate"}
    assert all(p["state"] == "Succeeded" for p in history[1]["phases"].values())
    # the tiny model writes no <task> block: nothing to label, the Solver is carried forward, the judge saw nothing
    assert history[1]["questionsValid"] == 0 and history[1]["dropReasons"] == {
        "no_spread": 0, "score_collapse": 0, "saturated": 0}
    assert history[1]["judge"]["judged"] == 0
    win = history[1]["winRate"]
    assert win["tasks"] == 2 and win["wins"] + win["losses"] + win["ties"] + win["unjudged"] == 2
    assert "winRate" not in history[0] or history[0]["winRate"] is None
    assert "Win rate vs it. 0" in capsys.readouterr().out
    pairwise = [r for r in openai_server.requests if "Response A:" in r["question"]]
    assert len(pairwise) == 4 and json.dumps(history[1]["winRate"])
