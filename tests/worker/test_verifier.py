r"""The Verifier (verifier.py): the endpoint Verifier against a real OpenAI-style server on loopback
(tests/support/openai_server.py) — verdicts, 429s, timeouts, malformed replies and a spent budget are all counted
and no pair is lost or approved without a \boxed{correct}; the veto's counts and its label-accuracy figures."""

from __future__ import annotations

import json

from rzero_worker.prompts import VERIFIER_SYSTEM_PROMPT, verifier_user_prompt
from rzero_worker.task import DeviceHints, LabelTask, ModelInput, OracleEndpointSettings, Shard, StorageLocation, VerifierInput
from rzero_worker.verifier import EndpointVerifier, apply_veto, headline_after_veto, judge_kept, make_verifier, \
    shares_solver_engine, veto_metrics

KEY = "sk-verifier-5ecret-0123456789"
PAIRS = [("What is 2+2?", "4"), ("What is 3*3?", "6"), ("What is 1+5?", "6"), ("What is 8-1?", "7")]


def endpoint_verifier(server, budget: int = 100, **settings) -> EndpointVerifier:
    fields = {"url": server.url, "model": "judge", "timeout_seconds": 5, "max_retries": 2, "backoff_seconds": 0.01,
              "concurrency": 2, **settings}
    return EndpointVerifier(VerifierInput(endpoint=OracleEndpointSettings(**fields)), budget=budget, api_key=KEY,
                            sleep=lambda _: None)


def prompt(pair) -> str:
    return verifier_user_prompt(*pair)


def rows_of(pairs, correct=None):
    return [{"question": q, "label": a, **({"label_correct": correct[i]} if correct else {})}
            for i, (q, a) in enumerate(pairs)]


def test_the_endpoint_verifier_sends_the_verifier_prompt_with_the_key_and_reads_each_verdict(openai_server):
    openai_server.answers = {prompt(PAIRS[0]): r"2+2=4 \boxed{correct}", prompt(PAIRS[1]): r"\boxed{incorrect}",
                             prompt(PAIRS[2]): r"The answer is \boxed{6}"}  # PAIRS[3]: "I cannot tell." (no box)
    verifier = endpoint_verifier(openai_server)
    rows = rows_of(PAIRS)

    judge_kept(rows, verifier)

    assert [row["verifier_verdict"] for row in rows] == ["approved", "rejected", "unparsable", "unparsable"]
    request = next(r for r in openai_server.requests if r["question"] == prompt(PAIRS[0]))
    assert request["authorization"] == f"Bearer {KEY}"
    assert request["body"]["temperature"] == 0 and request["body"]["messages"][0]["content"] == VERIFIER_SYSTEM_PROMPT
    assert verifier.metrics() == {"requests": 4, "retries": 0, "malformed": 0, "failed": 0, "over_budget": 0}


def test_429s_timeouts_malformed_replies_and_the_budget_are_counted_and_never_approve(openai_server):
    openai_server.answers = {prompt(pair): r"\boxed{correct}" for pair in PAIRS}
    openai_server.behaviours = {prompt(PAIRS[0]): ["429", "429"],  # retried, then approved
                                prompt(PAIRS[1]): ["slow", "slow", "slow"],  # past its retries: no verdict
                                prompt(PAIRS[2]): ["malformed"]}  # counted, not retried
    openai_server.slow_s = 1.0
    verifier = endpoint_verifier(openai_server, budget=7, timeout_seconds=0.2, concurrency=1)
    rows = rows_of(PAIRS)

    judge_kept(rows, verifier)
    approved, vetoed = apply_veto(rows, dropped := {})

    assert [row["verifier_verdict"] for row in rows] == ["approved", "unavailable", "unavailable", "unavailable"]
    assert [row["question"] for row in approved] == [PAIRS[0][0]]
    assert dropped == {"verifier_unavailable": 3} and len(approved) + len(vetoed) == len(PAIRS)  # nothing lost
    metrics = verifier.metrics()
    # 3 for PAIRS[0], 3 timed out for PAIRS[1], 1 malformed for PAIRS[2]: the budget of 7 is spent before PAIRS[3]
    assert metrics == {"requests": 7, "retries": 4, "malformed": 1, "failed": 1, "over_budget": 1}
    assert KEY not in json.dumps(metrics)


def test_a_refused_key_stops_the_verifier_and_vetoes_the_rest(openai_server):
    openai_server.behaviours = {prompt(pair): ["401"] for pair in PAIRS}
    verifier = endpoint_verifier(openai_server, concurrency=1)
    rows = rows_of(PAIRS)

    judge_kept(rows, verifier)

    assert {row["verifier_verdict"] for row in rows} == {"unavailable"}
    assert len(openai_server.requests) == 1
    assert verifier.metrics()["error"].startswith("HTTP 401") and KEY not in verifier.metrics()["error"]


def test_the_endpoint_budget_is_split_across_label_shards(monkeypatch, openai_server):
    monkeypatch.setenv("VERIFIER_KEY", "sk-env")
    endpoint = OracleEndpointSettings(url=openai_server.url, model="judge", max_requests=10, api_key_env="VERIFIER_KEY")
    task = LabelTask(run="demo", iteration=1, storage=StorageLocation(uri="/tmp/x"), output="iter-001/label/x",
                     solver=ModelInput(source="/m"), questions="iter-001/generate", shard=Shard(index=2, count=3),
                     settings={"verifier": "veto"}, verifier=VerifierInput(endpoint=endpoint))

    verifier = make_verifier(task, ctx=None, solver_generator=None)

    assert isinstance(verifier, EndpointVerifier)
    assert verifier.client.budget == 3 and verifier.client._key == "sk-env"  # 10 over 3 shards: 4, 3, 3


def test_the_figures_count_labels_before_and_after_the_veto_and_the_correct_ones_it_threw_away():
    class Judge:
        name = "model"

        def metrics(self):
            return {}

    rows = rows_of(PAIRS + [("What is 9-9?", "1")], correct=[True, False, True, False, None])  # no oracle for the last
    for row, verdict in zip(rows, ["approved", "rejected", "rejected", "unparsable", "unavailable"]):
        row["verifier_verdict"] = verdict
    checks = {"oracle": "arithmetic", "oracle_checked": 4, "oracle_correct": 2, "label_accuracy": 0.5}

    approved, vetoed = apply_veto(rows, {})
    metrics = veto_metrics(rows, approved, vetoed, Judge(), "arithmetic")

    # agreement: approved-right and rejected-wrong agree; rejected-right does not, nor the unparsable verdict on a
    # wrong label (an unreadable verdict is never right, even where a veto happened to help)
    assert metrics == {"source": "model", "judged": 5, "approved": 1, "rejected": 2, "unparsable": 1,
                       "unavailable": 1, "oracle": "arithmetic", "checked_before": 4, "correct_before": 2,
                       "checked_after": 1, "correct_after": 1, "correct_vetoed": 1, "wrong_vetoed": 2,
                       "oracle_compared": 4, "oracle_agreed": 2}
    after = headline_after_veto(checks, approved)
    assert (after["oracle_checked"], after["oracle_correct"], after["label_accuracy"]) == (1, 1, 1.0)
    assert after["label_accuracy_ci95"][1] == 1.0 and after["oracle"] == "arithmetic"
    assert headline_after_veto({}, approved) == {}  # no oracle configured: no accuracy to report


def test_a_verifier_with_gpus_of_its_own_never_shares_the_label_solvers_engine():
    solver = ModelInput(source="/m")
    assert shares_solver_engine(VerifierInput(model=solver), solver)  # colocated, the same model: one engine
    assert not shares_solver_engine(VerifierInput(model=solver, gpus=2), solver)
    assert not shares_solver_engine(VerifierInput(model=ModelInput(source="/other")), solver)


def test_a_verifier_with_gpus_of_its_own_runs_an_engine_process_on_the_pods_last_gpus(monkeypatch):
    from rzero_worker import verifier as module
    from rzero_worker.generation import remote

    started = []
    monkeypatch.setattr(remote, "ProcessGenerator", lambda local, hints, **kw: started.append((hints, kw)) or "engine")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # rank 0, pinned to its label engine's GPU
    monkeypatch.setenv("RZERO_POD_GPUS", "0,1,2")  # the pod: 1 label GPU and the Verifier's 2
    hints = DeviceHints(device="cuda")

    assert module.verifier_generator("/local", VerifierInput(model=ModelInput(source="/v"), gpus=2), hints, None) == "engine"
    ((own, kwargs),) = started
    assert kwargs["devices"] == ["1", "2"] and own.tensor_parallel_size == 2  # one engine over both
