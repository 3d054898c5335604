"""A deterministic open-ended judge for the loopback OpenAI-style server (support/openai_server.py `respond`).

Scoring chats (prompts_openended.judge_messages): every criterion gets 1 + (the response's length in characters
mod 10), so responses of different lengths get different scores (rewards with spread). Pairwise chats
(pairwise_messages): the longer response wins (`\\boxed{A}` / `\\boxed{B}`), equal lengths tie. Every `every`-th
scoring request (0: never) is answered with an unreadable reply instead, to exercise the unparsable path.
"""

from __future__ import annotations

import itertools
import re

from rzero_worker.prompts_openended import JUDGE_SYSTEM_PROMPT

_CRITERIA = re.compile(r"from 1 \(very poor\) to 10 \(excellent\): (.*)\.\n")
_JUDGE_MARK = JUDGE_SYSTEM_PROMPT.split("{description}")[0]


def length_score(response: str) -> int:
    return 1 + len(response) % 10


def judge_reply(body: dict, counter=None, every: int = 0) -> str | None:
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    if system.startswith(_JUDGE_MARK):
        if every and counter is not None and next(counter) % every == every - 1:
            return "Scores: great work, ten out of ten"  # no box: unparsable
        criteria = _CRITERIA.search(system).group(1).split(", ")
        response = user.split("\n\nResponse:\n", 1)[1]
        return r"\boxed{" + "; ".join(f"{c}: {length_score(response)}" for c in criteria) + "}"
    if "Response A:" in user:
        first = user.split("\n\nResponse A:\n", 1)[1].split("\n\nResponse B:\n", 1)
        a, b = first[0], first[1]
        return r"\boxed{A}" if len(a) > len(b) else r"\boxed{B}" if len(b) > len(a) else r"\boxed{tie}"
    return None


def deterministic_judge(every: int = 0):
    """A `respond` callable for ChatServer (module notes)."""
    counter = itertools.count()
    return lambda body: judge_reply(body, counter, every)
