"""The open-ended judges against a real OpenAI-style server on loopback (support/openai_server.py): the Verifier
scores each (task, response) per criterion; malformed replies, timeouts and 429s are counted, retried where they can
be, and no response is lost or scored high. The pairwise judge (the win rate's oracle) reads A / B / tie."""

import pytest

from rzero_worker.openended.judge import EndpointReplies, ModelReplies, PairJudge, ScoreJudge
from rzero_worker.prompts_openended import JUDGE_SYSTEM_PROMPT, judge_messages
from rzero_worker.task import OracleEndpointSettings, TaskSettings, VerifierInput
from support.judge_server import deterministic_judge

DOMAIN = TaskSettings(kind="open-ended", description="short emails", rubric=["clarity", "tone"])
TASK = "Ask a landlord to fix the heating."


def user_turn(response: str) -> str:
    return judge_messages(DOMAIN.description, DOMAIN.criteria, TASK, response)[-1]["content"]


def endpoint_judge(server, budget: int = 100, **settings) -> tuple[ScoreJudge, list[float]]:
    waits: list[float] = []
    fields = {"url": server.url, "model": "judge", "timeout_seconds": 0.5, "max_retries": 2, "backoff_seconds": 0.01,
              "concurrency": 2, **settings}
    replies = EndpointReplies(VerifierInput(endpoint=OracleEndpointSettings(**fields)), budget=budget,
                              api_key="sk-test", sleep=waits.append)
    return ScoreJudge(replies, DOMAIN), waits


def test_the_verifier_scores_each_response_with_the_rubric_in_its_prompt(openai_server):
    openai_server.respond = deterministic_judge()
    judge, _ = endpoint_judge(openai_server)

    judgements = judge.score([(TASK, "abc"), (TASK, "abcdefgh")])

    assert [j.scores for j in judgements] == [{"clarity": 4, "tone": 4}, {"clarity": 9, "tone": 9}]
    assert [j.score for j in judgements] == pytest.approx([3 / 9, 8 / 9])
    system = openai_server.requests[0]["body"]["messages"][0]["content"]
    assert system.startswith(JUDGE_SYSTEM_PROMPT.split("{description}")[0]) and "short emails" in system
    assert r"\boxed{clarity: <1-10>; tone: <1-10>}" in system
    assert judge.metrics() == {"source": "endpoint", "judged": 2, "scored": 2, "unparsable": 0, "unavailable": 0,
                               "requests": 2, "retries": 0, "malformed": 0, "failed": 0, "over_budget": 0}


def test_malformed_replies_timeouts_and_429s_are_counted_and_nothing_is_lost(openai_server):
    openai_server.respond = deterministic_judge()
    openai_server.slow_s = 2.0
    openai_server.behaviours = {
        user_turn("a"): ["429", "429"],  # retried, then scored
        user_turn("bb"): ["malformed"],  # not a chat completion: counted, no retry, unavailable
        user_turn("ccc"): ["slow", "slow", "slow"],  # times out past its retries: unavailable
        user_turn("dddd"): [],  # fine
    }
    openai_server.answers = {user_turn("eeeee"): r"I'd say \boxed{clarity: 12; tone: 3}"}  # out of range: unparsable
    judge, waits = endpoint_judge(openai_server)

    judgements = judge.score([(TASK, r) for r in ("a", "bb", "ccc", "dddd", "eeeee")])

    assert len(judgements) == 5
    assert [j.status for j in judgements] == ["scored", "unavailable", "unavailable", "scored", "unparsable"]
    assert [j.score is None for j in judgements] == [False, True, True, False, True]
    metrics = judge.metrics()
    assert metrics["judged"] == 5 and metrics["scored"] == 2 and metrics["unparsable"] == 1
    assert metrics["unavailable"] == 2 and metrics["malformed"] == 1 and metrics["failed"] == 1
    assert metrics["retries"] >= 4  # two 429s and two timeouts retried


def test_a_spent_budget_leaves_the_rest_unavailable_never_scored(openai_server):
    openai_server.respond = deterministic_judge()
    judge, _ = endpoint_judge(openai_server, budget=2, concurrency=1)

    judgements = judge.score([(TASK, r) for r in ("a", "bb", "ccc")])

    assert [j.status for j in judgements] == ["scored", "scored", "unavailable"]
    assert judge.metrics()["over_budget"] == 1


class LosingGenerator:
    """A model backend that returns fewer outputs than it was asked for."""

    def generate(self, prompts, *, n, sampling, seed):
        assert sampling.temperature == 0
        return [[r"\boxed{clarity: 5; tone: 6}"] for _ in prompts[:-1]]


def test_a_model_verifier_that_loses_outputs_leaves_those_responses_unscored():
    settings = VerifierInput(endpoint=OracleEndpointSettings(url="http://unused", model="m"))
    judge = ScoreJudge(ModelReplies(settings, LosingGenerator), DOMAIN)

    judgements = judge.score([(TASK, "x"), (TASK, "y")])

    assert [j.status for j in judgements] == ["scored", "unavailable"]


def test_the_pairwise_judge_reads_a_b_and_tie(openai_server):
    openai_server.respond = deterministic_judge()
    fields = {"url": openai_server.url, "model": "oracle", "timeout_seconds": 5}
    judge = PairJudge(EndpointReplies(VerifierInput(endpoint=OracleEndpointSettings(**fields)), budget=10), DOMAIN)

    verdicts = judge.prefer([(TASK, "long answer", "short"), (TASK, "x", "yy"), (TASK, "same", "same")])

    assert [v for v, _ in verdicts] == ["A", "B", "tie"]


def test_in_a_training_phase_a_model_verifier_on_cpu_is_loaded_inside_the_rank_and_closed_after(monkeypatch, tmp_path):
    import rzero_worker.generation as generation
    import rzero_worker.models as models
    from rzero_worker.openended.judge import training_loader
    from rzero_worker.task import DeviceHints, ModelInput, SolverGRPOSettings

    class Engine(LosingGenerator):
        closed = False

        def close(self):
            Engine.closed = True

    made = []
    monkeypatch.setattr(models, "resolve_model", lambda source, *a, **k: source)
    monkeypatch.setattr(generation, "make_generator", lambda local, hints, **k: made.append((local, hints)) or Engine())

    class Ctx:
        task = type("T", (), {"device": DeviceHints(device="cpu", backend="transformers"), "storage": None})()
        storage, cache_dir = None, tmp_path

    settings = VerifierInput(model=ModelInput(source="judge-model"))
    replies = ModelReplies(settings, training_loader(settings, Ctx(), SolverGRPOSettings()))
    assert made == []  # nothing is loaded before the first judgement
    ScoreJudge(replies, DOMAIN).score([(TASK, "x"), (TASK, "y")])
    assert [local.source for local, _ in made] == ["judge-model"] and made[0][1].backend == "transformers"
    replies.close()
    assert Engine.closed
