"""The Challenger's reward on a fixed rollout batch split over torchrun ranks (run as a script, gloo on the CPU).

    torchrun --nproc-per-node 2 tests/support/ranked_reward.py OUT_DIR {colocated|node}

Rank r passes its slice of `BATCH` (as TRL would) and writes `OUT_DIR/rank-<r>.json`: the rewards it got back
and how many Solver requests it made. `colocated`: every rank has a Solver; `node`: only the node's first rank.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ODD = "What is the sum of the first ten positive odd integers?"
PRIMES = "How many prime numbers are smaller than thirty?"
TRIANGLE = "A triangle has sides 3, 4 and 5. What is its area?"
ANSWERS = {
    ODD: ["\\boxed{100}", "\\boxed{100}", "\\boxed{99}", "\\boxed{98}"],
    PRIMES: ["\\boxed{10}"] * 4,
    TRIANGLE: ["\\boxed{6}", "\\boxed{6.0}", "\\boxed{12}", "no idea"],
}
# Repeats of ODD sit on both ranks: clustering one rank's slice alone would give other penalties.
BATCH = [
    f"<question>{ODD}</question> \\boxed{{100}}",
    f"<question>{ODD}</question> \\boxed{{100}}",
    f"<question>{TRIANGLE}</question> \\boxed{{6}}",
    f"<question>{ODD}</question> \\boxed{{100}}",
    f"<question>{PRIMES}</question> \\boxed{{10}}",
    "no tags at all \\boxed{3}",
]


class ScriptedSolver:
    """A Generator whose answers to each question are fixed (records what it was asked)."""

    def __init__(self, answers: dict[str, list[str]]):
        self.answers = answers
        self.requests = []

    def generate(self, prompts, *, n, sampling, seed):
        self.requests.append(len(prompts))
        return [self.answers[prompt[-1]["content"]][:n] for prompt in prompts]


def settings():
    from rzero_worker.task import ChallengerSettings

    return ChallengerSettings(solver_samples=4, reward="code")


def main(out_dir: Path, mode: str) -> None:
    from rzero_worker import distributed
    from rzero_worker.grading import GradingPool
    from rzero_worker.phases.challenger import ChallengerReward

    ranks = distributed.setup("cpu")
    node = mode == "node"
    solver = ScriptedSolver(ANSWERS) if (not node or ranks.is_local_main) else None
    mine = BATCH[distributed.split_evenly(len(BATCH), ranks.world_size, ranks.rank)]
    with GradingPool(workers=1, timeout_s=5.0) as pool:
        reward = ChallengerReward(solver, pool, settings(), seed=0, node_scoring=node)
        rewards = reward(prompts=[None] * len(mine), completions=[[{"role": "assistant", "content": t}] for t in mine])
    requests = solver.requests if solver else []
    (out_dir / f"rank-{ranks.rank}.json").write_text(json.dumps({"rewards": rewards, "requests": requests,
                                                                 "batch_sizes": reward.batch_sizes}))


if __name__ == "__main__":
    sys.path[:0] = [str(Path(__file__).resolve().parents[1])]
    main(Path(sys.argv[1]), sys.argv[2])
