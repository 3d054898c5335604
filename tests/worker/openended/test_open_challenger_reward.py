"""The open-ended Challenger's reward on a hand-made batch: the Solver (scripted) writes m responses per task, the
Verifier (scripted replies) scores each, and the reward is the scores' spread minus the repetition penalty; a
completion without a <task> block, or whose responses the judge could not read, earns nothing."""

import pytest

from rzero_worker.openended.judge import ScoreJudge
from rzero_worker.openended.training import OpenChallengerReward
from rzero_worker.prompts_openended import OPEN_SOLVER_SYSTEM_PROMPT
from rzero_worker.task import ChallengerSettings, TaskSettings

DOMAIN = TaskSettings(kind="open-ended", description="short emails")
SPLIT = "Write an email declining a meeting politely"  # responses scored 1 and 10: spread 1
SAME = "Write an email thanking a colleague for help"  # responses scored 5 and 5: collapse, spread 0
BROKEN = "Write an email asking for a day off next week"  # the judge's replies are unreadable
RESPONSES = {SPLIT: ["bad", "good"], SAME: ["fine", "fine too"], BROKEN: ["one", "two"]}
SCORES = {"bad": r"\boxed{overall: 1}", "good": r"\boxed{overall: 10}", "fine": r"\boxed{overall: 5}",
          "fine too": r"\boxed{overall: 5}", "one": "no score", "two": r"\boxed{overall: eleven}"}


class ScriptedSolver:
    def generate(self, prompts, *, n, sampling, seed):
        assert all(p[0]["content"] == OPEN_SOLVER_SYSTEM_PROMPT for p in prompts)
        return [RESPONSES[p[-1]["content"]][:n] for p in prompts]


class ScriptedReplies:
    name = "model"

    def replies(self, chats):
        return [SCORES[chat[-1]["content"].split("\n\nResponse:\n")[1]] for chat in chats]

    def metrics(self):
        return {}


def test_the_reward_is_the_score_spread_minus_the_repetition_penalty():
    judge = ScoreJudge(ScriptedReplies(), DOMAIN)
    reward = OpenChallengerReward(ScriptedSolver(), judge, ChallengerSettings(solver_samples=2), seed=0)
    batch = [[{"role": "assistant", "content": f"<task>{t}</task>"}] for t in (SPLIT, SAME, BROKEN)]
    batch.append([{"role": "assistant", "content": "no task here"}])

    rewards = reward(prompts=[None] * 4, completions=batch)

    assert rewards == pytest.approx([1.0 - 0.25, 0.0, 0.0, 0.0])  # four singletons: r_rep = 1/4
    assert judge.metrics()["judged"] == 6 and judge.metrics()["unparsable"] == 2
    assert reward.batch_sizes == [4]
