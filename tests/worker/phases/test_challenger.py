"""Phase `challenger`: the reward on hand-made batches (values worked out by hand), and GRPO end to end."""

import json

import pytest

from rzero_worker.phases import load_phase
from rzero_worker.phases.challenger import ChallengerReward
from rzero_worker.phases.runner import run_phase
from rzero_worker.prompts import SOLVER_SYSTEM_PROMPT, challenger_messages
from rzero_worker.storage import is_committed, join_key, open_storage
from rzero_worker.task import ChallengerSettings, ChallengerTask, GRPOSettings, ModelInput, Sampling

ODD = "What is the sum of the first ten positive odd integers?"
PRIMES = "How many prime numbers are smaller than thirty?"
TRIANGLE = "A triangle has sides 3, 4 and 5. What is its area?"


class ScriptedSolver:
    """A Generator whose answers to each question are fixed by the test (records what it was asked)."""

    def __init__(self, answers: dict[str, list[str]]):
        self.answers = answers
        self.requests = []

    def generate(self, prompts, *, n, sampling, seed):
        self.requests.append((prompts, n, sampling))
        return [self.answers[prompt[-1]["content"]][:n] for prompt in prompts]


SOLVER_ANSWERS = {
    ODD: ["\\boxed{100}", "\\boxed{100}", "\\boxed{99}", "\\boxed{98}"],  # majority 2 of 4: p = 0.5
    PRIMES: ["\\boxed{10}"] * 4,  # unanimous: p = 1
    TRIANGLE: ["\\boxed{6}", "\\boxed{6.0}", "\\boxed{12}", "no idea"],  # 6 ~ 6.0: p = 0.5
}


def as_chat(text):
    return [{"role": "assistant", "content": text}]


def reward_for(batch, pool, formula):
    settings = ChallengerSettings(solver_samples=4, reward=formula)
    solver = ScriptedSolver(SOLVER_ANSWERS)
    rewards = ChallengerReward(solver, pool, settings, seed=0)(prompts=[None] * len(batch), completions=batch)
    return rewards, solver, settings


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        # four different questions: four singleton clusters, r_rep = 1/4 each
        ("paper", [1 - 0.25, 0.0, 0.0, 1 - 0.25]),  # max(0, 1 - 2|p - 1/2| - r_rep); no tags: 0
        ("code", [0.5 - 0.25, 0.0 - 0.25, -1 - 0.25, 0.5 - 0.25]),  # min(p, 1-p) - r_rep; no tags: -1 - r_rep
    ],
)
def test_challenger_reward_on_a_hand_made_batch(pool, formula, expected):
    batch = [
        as_chat(f"<question>{ODD}</question>\n\\boxed{{100}}"),
        as_chat(f"<question>{PRIMES}</question>\n\\boxed{{10}}"),
        as_chat("I forgot the tags. \\boxed{3}"),
        as_chat(f"<question>{TRIANGLE}</question>\n\\boxed{{6}}"),
    ]

    rewards, solver, settings = reward_for(batch, pool, formula)

    assert rewards == pytest.approx(expected)
    # The Solver was asked once, for the three valid questions only, m times each, with its own sampling.
    [(prompts, n, sampling)] = solver.requests
    assert [prompt[-1]["content"] for prompt in prompts] == [ODD, PRIMES, TRIANGLE]
    assert all(prompt[0] == {"role": "system", "content": SOLVER_SYSTEM_PROMPT} for prompt in prompts)
    assert n == 4 and sampling == settings.solver_sampling


def test_repeated_questions_share_the_penalty_of_their_cluster(pool):
    """Three copies of one question and one other: clusters {3, 1}, penalties 3/4 and 1/4."""
    batch = [as_chat(f"<question>{ODD}</question> \\boxed{{100}}")] * 3 + [as_chat(f"<question>{TRIANGLE}</question> \\boxed{{6}}")]

    rewards, _, _ = reward_for(batch, pool, "paper")

    assert rewards == pytest.approx([1 - 0.75] * 3 + [1 - 0.25])


HALF_UNBOXED = "Four of ten answers are boxed."
THREE_WAY = "Three answers and no answer."


@pytest.mark.parametrize(
    ("mode", "p_hats"),
    [
        # 4 x "5" + 6 unboxed: the reference's "None" class wins with 6/10; boxed-only: "5" with 4/10.
        # 3 x "5", 2 x "7", 5 unboxed: "None" holds half (p 0.5); boxed-only: "5" with 3/10.
        # A Challenger output without a box: the reference scores it (the Solver agrees 10/10); boxed-only does not.
        ("reference", [0.6, 0.5, 1.0]),
        ("boxed-only", [0.4, 0.3, None]),
    ],
)
def test_p_hat_uses_the_runs_vote(pool, mode, p_hats):
    solver = ScriptedSolver({
        HALF_UNBOXED: ["\\boxed{5}"] * 4 + ["I think 5"] * 6,
        THREE_WAY: ["\\boxed{5}"] * 3 + ["\\boxed{7}"] * 2 + ["no idea"] * 5,
        TRIANGLE: ["\\boxed{6}"] * 10,
    })
    reward = ChallengerReward(solver, pool, ChallengerSettings(solver_samples=10), seed=0, vote=mode)
    texts = [f"<question>{HALF_UNBOXED}</question> \\boxed{{5}}", f"<question>{THREE_WAY}</question> \\boxed{{5}}",
             f"<question>{TRIANGLE}</question> and no boxed answer of its own"]

    got = reward.solver_p_hats(texts, seed=0)

    assert got[:2] == pytest.approx(p_hats[:2]) and got[2] == p_hats[2]


def challenger_task(location, model_dir, *, steps=2) -> ChallengerTask:
    grpo = GRPOSettings(steps=steps, group_size=2, rollout_batch_size=2, update_batch_size=2, max_completion_tokens=8, save_every=1)
    return ChallengerTask(
        run="demo",
        iteration=1,
        storage=location,
        output="iter-001/challenger",
        challenger=ModelInput(source=str(model_dir)),
        solver=ModelInput(source=str(model_dir)),
        settings=ChallengerSettings(grpo=grpo, solver_samples=2, solver_sampling=Sampling(max_tokens=8)),
    )


def test_challenger_trains_and_commits_its_model(storage_location, tiny_model_dir, tmp_path):
    task = challenger_task(storage_location, tiny_model_dir)

    assert run_phase(task, load_phase("challenger"), cache_dir=tmp_path / "cache") == 0

    storage = open_storage(storage_location)
    assert is_committed(storage, task.output)
    metrics = json.loads(storage.get_bytes(join_key(task.output, "summary.json")))["metrics"]
    assert metrics["steps"] == 2 and metrics["resumed_from_step"] is None
    # The tiny random model never writes <question> tags: every completion earns the paper's 0.
    assert metrics["mean_reward"] == 0.0 and metrics["last_reward"] == 0.0
    assert metrics["step_seconds"] > 0
    assert storage.exists(join_key(task.output, "model/model.safetensors"))
    assert storage.exists(join_key(task.output, "model/tokenizer.json"))


ADD = "What is 2+3?"


@pytest.mark.parametrize(("mode", "expected"), [("reference", 0.5 - 1 / 3), ("boxed-only", -1 - 1 / 3)])
def test_a_challenger_output_without_a_box_is_scored_only_in_reference_mode(pool, mode, expected):
    """The issue's case: the Solver answers 5 x 5 and 5 x 6 (p-hat 0.5); three questions, three clusters."""
    solver = ScriptedSolver({ADD: ["\\boxed{5}"] * 5 + ["\\boxed{6}"] * 5, ODD: ["\\boxed{100}"] * 10,
                             PRIMES: ["\\boxed{10}"] * 10})
    reward = ChallengerReward(solver, pool, ChallengerSettings(solver_samples=10, reward="code"), seed=0, vote=mode)
    batch = [as_chat(f"<question>\n{ADD}\n</question>\n\nThe answer is 5."),
             as_chat(f"<question>{ODD}</question> \\boxed{{100}}"), as_chat(f"<question>{PRIMES}</question> \\boxed{{10}}")]

    rewards = reward(prompts=[None] * 3, completions=batch)

    assert rewards[0] == pytest.approx(expected)


# --- Grounded in spec.corpus (SPICE's setting), with anchors (R-Few) ------------------------------------------

PASS_HALF = "Which function joins path components?"  # the document says os.path.join


def test_grounded_completions_need_a_document_answer_and_the_solver_never_sees_the_passage(pool):
    """Grounded format: the completion without a box is not scored even in reference mode; the Solver is asked
    the question alone (its chat is the Solver prompt and the question, nothing of the passage)."""
    solver = ScriptedSolver({PASS_HALF: ["\\boxed{os.path.join}"] * 2 + ["\\boxed{os.join}"] * 2,
                             ODD: ["\\boxed{100}"] * 4})
    reward = ChallengerReward(solver, pool, ChallengerSettings(solver_samples=4), seed=0, grounded=True)
    texts = [f"<question>{PASS_HALF}</question> \\boxed{{os.path.join}}", f"<question>{ODD}</question> no box"]

    assert reward.solver_p_hats(texts, seed=0) == [0.5, None]
    [(prompts, _, _)] = solver.requests
    assert prompts == [[{"role": "system", "content": SOLVER_SYSTEM_PROMPT}, {"role": "user", "content": PASS_HALF}]]


def test_the_variance_objective_scores_the_pass_rate_against_the_document_answer(pool):
    """The majority (os.join, 3 of 4) is wrong: p-hat would be 3/4, the pass rate against the document's
    os.path.join is 1/4; variance 3/16, reward exp(-(3/16 - 1/4)^2 / 0.02) minus r_rep 1/2 (two questions)."""
    import math

    solver = ScriptedSolver({PASS_HALF: ["\\boxed{os.join}"] * 3 + ["\\boxed{os.path.join}"],
                             ODD: ["\\boxed{100}"] * 4})
    settings = ChallengerSettings(solver_samples=4, objective="variance")
    reward = ChallengerReward(solver, pool, settings, seed=0, grounded=True)
    texts = [f"<question>{PASS_HALF}</question> \\boxed{{os.path.join}}", f"<question>{ODD}</question> \\boxed{{99}}"]

    assert reward.solver_p_hats(texts, seed=0) == [0.25, 0.0]
    rewards = reward(prompts=[None, None], completions=[as_chat(t) for t in texts])
    assert rewards == pytest.approx([math.exp(-((3 / 16 - 1 / 4) ** 2) / 0.02) - 0.5, 0.0])


def grounded_task(location, model_dir, tmp_path, **settings) -> ChallengerTask:
    from support.grounded import write_anchors, write_corpus

    task = challenger_task(location, model_dir)
    return task.model_copy(update={
        "corpus": write_corpus(tmp_path / "docs"), "settings": task.settings.model_copy(update=settings),
        "anchors": write_anchors(tmp_path / "anchors.jsonl", examples=2), "seed": 5})


def test_grounded_training_prompts_carry_seeded_passages_and_anchors(local_location, tiny_model_dir, tmp_path):
    from support.grounded import shown_passage

    from rzero_worker.phases.challenger import training_prompts

    task = grounded_task(local_location, tiny_model_dir, tmp_path)

    prompts, counts = training_prompts(task)

    assert len(prompts) == task.settings.grpo.steps * task.settings.grpo.rollout_batch_size == 4
    assert prompts == training_prompts(task)[0]  # seeded: a resumed phase trains on the same prompts
    for prompt in prompts:
        user = prompt[1]["content"]
        assert prompt[0]["content"].startswith("You are an expert examiner")  # the grounded Challenger prompt
        assert shown_passage(prompt).startswith("Document ") and user.count("<example>") == 2
        assert user.index("<example>") < user.index("<passage>")
    assert counts["anchors_shown"] == 8 and counts["anchors"]["skipped"]["malformed_json"] == 1
    assert counts["corpus"]["passages"] == 5
    plain, none = training_prompts(challenger_task(local_location, tiny_model_dir))
    assert plain == [challenger_messages()] and none == {}  # R-Zero's setting: the one prompt


def test_a_grounded_challenger_trains_with_the_variance_reward(local_location, tiny_model_dir, tmp_path):
    task = grounded_task(local_location, tiny_model_dir, tmp_path, objective="variance")

    assert run_phase(task, load_phase("challenger"), cache_dir=tmp_path / "cache") == 0

    metrics = json.loads(open_storage(local_location).get_bytes(join_key(task.output, "summary.json")))["metrics"]
    assert metrics["steps"] == 2 and metrics["anchors_shown"] == 8 and metrics["corpus"]["passages"] == 5
    assert metrics["mean_reward"] == 0.0  # the tiny random model writes no grounded question


def test_the_variance_objective_without_a_corpus_is_refused_in_the_task():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="corpus: settings.objective variance"):
        ChallengerTask(run="demo", iteration=1, storage={"uri": "runs"}, output="iter-001/challenger",
                       challenger=ModelInput(source="m"), solver=ModelInput(source="m"),
                       settings=ChallengerSettings(objective="variance"))
