"""The endpoint oracle against a real OpenAI-compatible HTTP server on loopback (tests/support/openai_server.py):
answers, timeouts, 429/5xx retries with backoff, the request budget, malformed replies counted and skipped,
fatal errors, and an API key that never reaches a log line or a metric."""

from __future__ import annotations

import json
import logging

import pytest

from rzero_worker.oracles.endpoint import EndpointOracle, chat_url, retry_after
from rzero_worker.task import OracleEndpointSettings

KEY = "sk-test-5ecret-key-0123456789"


def oracle_for(server, budget: int = 100, **settings) -> tuple[EndpointOracle, list[float]]:
    waits: list[float] = []
    fields = {"url": server.url, "model": "judge", "timeout_seconds": 5, "max_retries": 3, "backoff_seconds": 0.01,
              "concurrency": 2, **settings}
    oracle = EndpointOracle(OracleEndpointSettings(**fields), budget=budget, api_key=KEY, sleep=waits.append)
    return oracle, waits


def test_answers_are_the_last_box_of_each_reply_sent_with_the_solver_prompt_and_the_key(openai_server):
    openai_server.answers = {"What is 2+2?": r"First \boxed{3}, no: \boxed{4}", "Name a colour.": "red, unboxed"}
    oracle, _ = oracle_for(openai_server)

    assert oracle.answer(["What is 2+2?", "Name a colour."]) == ["4", None]

    request = next(r for r in openai_server.requests if r["question"] == "What is 2+2?")
    assert request["authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == "judge" and body["temperature"] == 0 and body["messages"][0]["role"] == "system"
    assert r"\boxed{}" in body["messages"][0]["content"]
    assert oracle.counts["requests"] == 2 and oracle.counts["no_answer"] == 1


def test_429_and_5xx_are_retried_with_exponential_backoff(openai_server):
    openai_server.answers = {"q": r"\boxed{7}"}
    openai_server.behaviours = {"q": ["503", "500", "429"]}
    oracle, waits = oracle_for(openai_server, backoff_seconds=0.5)

    assert oracle.answer(["q"]) == ["7"]

    assert openai_server.asked("q") == 4
    assert waits == [0.5, 1.0, 0.0]  # 0.5 * 2^k; the 429's Retry-After: 0 wins over 2.0
    assert oracle.counts["retries"] == 3 and oracle.counts["failed"] == 0


def test_a_question_failing_past_its_retries_is_skipped_and_counted(openai_server):
    openai_server.answers = {"q": r"\boxed{7}", "r": r"\boxed{8}"}
    openai_server.behaviours = {"q": ["500"] * 10}
    oracle, _ = oracle_for(openai_server, max_retries=2)

    assert oracle.answer(["q", "r"]) == [None, "8"]
    assert openai_server.asked("q") == 3 and oracle.counts["failed"] == 1


def test_a_request_slower_than_the_timeout_is_retried(openai_server):
    openai_server.answers = {"q": r"\boxed{1}"}
    openai_server.behaviours = {"q": ["slow"]}
    openai_server.slow_s = 1.5
    oracle, waits = oracle_for(openai_server, timeout_seconds=0.3)

    assert oracle.answer(["q"]) == ["1"]
    assert openai_server.asked("q") == 2 and len(waits) == 1


def test_malformed_replies_are_counted_and_skipped_not_retried(openai_server):
    openai_server.answers = {"a": r"\boxed{1}", "b": r"\boxed{2}", "c": r"\boxed{3}"}
    openai_server.behaviours = {"a": ["malformed"], "b": ["echo"]}
    oracle, _ = oracle_for(openai_server)

    assert oracle.answer(["a", "b", "c"]) == [None, None, "3"]
    assert oracle.counts["malformed"] == 2 and openai_server.asked("a") == 1 and openai_server.asked("b") == 1


def test_the_request_budget_counts_retries_and_leaves_the_rest_unchecked(openai_server):
    questions = [f"q{i}" for i in range(5)]
    openai_server.answers = {q: r"\boxed{1}" for q in questions}
    openai_server.behaviours = {"q0": ["500"]}
    oracle, _ = oracle_for(openai_server, budget=4, concurrency=1)

    answers = oracle.answer(questions)

    assert len(openai_server.requests) == 4
    assert answers == ["1", "1", "1", None, None]  # q0 took two requests (one retry) of the four
    assert oracle.counts["requests"] == 4 and oracle.counts["over_budget"] == 2


def test_an_authorization_error_stops_the_oracle_and_is_recorded_without_the_key(openai_server):
    openai_server.behaviours = {f"q{i}": ["401"] for i in range(4)}
    oracle, _ = oracle_for(openai_server, concurrency=1)

    assert oracle.answer([f"q{i}" for i in range(4)]) == [None] * 4

    assert len(openai_server.requests) == 1  # no point asking again with a key the server refuses
    metrics = oracle.metrics()
    assert metrics["error"].startswith("HTTP 401") and "bad key" in metrics["error"]
    assert KEY not in json.dumps(metrics) and "***" in metrics["error"]
    assert metrics["failed"] == 4


def test_the_key_never_reaches_the_logs_even_when_the_server_echoes_it(openai_server, caplog):
    openai_server.answers = {"x": r"\boxed{2}"}
    openai_server.behaviours = {"a": ["echo"], "b": ["429", "500"], "c": ["401"]}
    caplog.set_level(logging.DEBUG)
    for questions in (["a", "b", "x"], ["c"]):
        oracle, _ = oracle_for(openai_server)
        oracle.answer(questions)
    assert any(r["authorization"] == f"Bearer {KEY}" for r in openai_server.requests)
    assert "you sent Bearer ***" in caplog.text  # the echo was logged, masked
    assert KEY not in caplog.text


def test_without_a_key_no_authorization_header_is_sent(openai_server):
    openai_server.answers = {"q": r"\boxed{5}"}
    oracle = EndpointOracle(OracleEndpointSettings(url=openai_server.url, model="m"), budget=5, api_key=None)
    assert oracle.answer(["q"]) == ["5"]
    assert openai_server.requests[0]["authorization"] == ""


@pytest.mark.parametrize("url, expected", [
    ("http://h:8000/v1", "http://h:8000/v1/chat/completions"),
    ("http://h:8000/v1/", "http://h:8000/v1/chat/completions"),
    ("https://api.example.com/v1/chat/completions", "https://api.example.com/v1/chat/completions"),
])
def test_the_chat_url_is_the_base_url_plus_chat_completions(url, expected):
    assert chat_url(url) == expected


def test_retry_after_takes_seconds_or_a_date_and_is_capped():
    assert retry_after("3", 1.0) == 3.0
    assert retry_after(None, 1.5) == 1.5
    assert retry_after("soon", 2.0) == 2.0
    assert retry_after("100000", 1.0) == 300.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1.0) == 0.0  # in the past: no wait
