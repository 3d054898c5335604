"""Training phases as 2 ranks on the CPU (gloo, DDP): the command a multi-GPU pod runs, end to end on the tiny
model. One rank commits; the Challenger's rewards cover both ranks' completions; a rank that dies fails the
pod, and the retry resumes from the committed checkpoint and ends at the same step."""

from pathlib import Path

from rzero_worker.storage import is_committed, join_key, open_storage
from rzero_worker.task import (
    ChallengerSettings,
    ChallengerTask,
    GRPOSettings,
    ModelInput,
    Sampling,
    SolverSettings,
    SolverTask,
)
from support.artefacts import commit_jsonl_shards, summary_metrics
from support.ranks import DIE_AFTER_ENV, DIE_RANK_ENV, torchrun, worker_with_ranks

DYING_WORKER = Path(__file__).resolve().parents[2] / "support" / "ranks.py"
TRAIN_ROWS = [
    {"id": "q1", "question": "What is 2+2?", "label": "4", "score": 0.5},
    {"id": "q2", "question": "What is 3*3?", "label": "9", "score": 0.6},
    {"id": "q3", "question": "Half of 1?", "label": "\\frac{1}{2}", "score": 0.7},
    {"id": "q4", "question": "What is 10-7?", "label": "3", "score": 0.6},  # a whole rollout batch of 4
]


def grpo(steps: int) -> GRPOSettings:
    # rollout 4 prompts x 2 = 8 completions per step (4 per rank); 2 prompts per update -> 2 updates per step
    return GRPOSettings(steps=steps, group_size=2, rollout_batch_size=4, update_batch_size=2, micro_batch_size=2,
                        max_completion_tokens=8, save_every=1)


def explain(result) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-6000:]}"


def output_files(storage, output: str) -> set[str]:
    return {key[len(output) + 1 :] for key in storage.list(output)}


def test_two_challenger_ranks_score_the_whole_batch_with_a_separate_solver_and_commit_once(
    local_location, tiny_model_dir, tmp_path
):
    task = ChallengerTask(
        run="demo", iteration=1, storage=local_location, output="iter-001/challenger",
        challenger=ModelInput(source=str(tiny_model_dir)), solver=ModelInput(source=str(tiny_model_dir)),
        settings=ChallengerSettings(grpo=grpo(steps=2), solver_samples=2, solver_sampling=Sampling(max_tokens=8),
                                    solver_gpus=1),  # on the CPU: one Solver engine process beside the 2 ranks
    )

    result = worker_with_ranks(task, 2, tmp_path)

    assert result.returncode == 0, explain(result)
    storage = open_storage(local_location)
    assert is_committed(storage, task.output)
    metrics = summary_metrics(storage, task.output)
    # each rank held 4 of the 8 completions; the rewards (and the clusters) were computed on all 8 at once
    assert metrics["reward_batch_sizes"] == [8, 8]
    assert (metrics["steps"], metrics["updates"]) == (2, 4)
    assert {"model/model.safetensors", "model/tokenizer.json", "summary.json", "_MANIFEST.json"} <= output_files(
        storage, task.output)
    assert result.stdout.count('"apiVersion":"rzero.dev/summary-v1"') == 1  # rank 0 alone speaks for the phase


def solver_task(location, model_dir) -> SolverTask:
    return SolverTask(run="demo", iteration=1, storage=location, output="iter-001/solver",
                      solver=ModelInput(source=str(model_dir)), dataset="iter-001/label",
                      settings=SolverSettings(grpo=grpo(steps=3)))


def test_a_dead_solver_rank_fails_the_pod_and_the_retry_resumes_at_the_same_step(local_location, tiny_model_dir, tmp_path):
    commit_jsonl_shards(local_location, "iter-001/label", "train.jsonl", [TRAIN_ROWS])
    task = solver_task(local_location, tiny_model_dir)
    storage = open_storage(local_location)
    task_file = tmp_path / "task.json"
    task_file.write_text(task.model_dump_json(by_alias=True))

    # rank 1 is killed right after the checkpoint of update 4 (rollout step 2 of 3) is committed
    died = torchrun(DYING_WORKER, "solver", "--task", str(task_file), ranks=2,
                    env={DIE_RANK_ENV: "1", DIE_AFTER_ENV: "4"})

    assert died.returncode != 0, explain(died)
    assert not is_committed(storage, task.output)
    assert is_committed(storage, "iter-001/solver.ckpt/step-000004")
    checkpoint = output_files(storage, "iter-001/solver.ckpt/step-000004")
    assert {"rng_state_0.pth", "rng_state_1.pth", "trainer_state.json"} <= checkpoint  # both ranks' files

    retried = worker_with_ranks(task, 2, tmp_path)

    assert retried.returncode == 0, explain(retried)
    metrics = summary_metrics(storage, task.output)
    assert metrics["resumed_from_step"] == 2
    assert (metrics["steps"], metrics["updates"]) == (3, 6)
    assert len(metrics["rewards"]) == 3  # the restored history covers the steps before the kill
    assert storage.list(task.output + ".ckpt") == []
    assert storage.exists(join_key(task.output, "model/model.safetensors"))


RANKED_REWARD = Path(__file__).resolve().parents[2] / "support" / "ranked_reward.py"


def test_the_challenger_reward_over_two_ranks_equals_one_process_holding_the_whole_batch(tmp_path):
    import json

    from rzero_worker.grading import GradingPool
    from rzero_worker.phases.challenger import ChallengerReward
    from support.ranked_reward import ANSWERS, BATCH, ScriptedSolver, settings

    with GradingPool(workers=1, timeout_s=5.0) as pool:
        def one_process(batch):
            chats = [[{"role": "assistant", "content": text}] for text in batch]
            return ChallengerReward(ScriptedSolver(ANSWERS), pool, settings(), seed=0)(prompts=[None] * len(batch),
                                                                                       completions=chats)
        whole = one_process(BATCH)
        halves = one_process(BATCH[:3]) + one_process(BATCH[3:])
    assert halves != whole  # the repetition penalty depends on the whole batch: slices alone would be wrong

    for mode, requests in (("colocated", [[3], [2]]), ("node", [[3, 2], []])):
        out = tmp_path / mode
        out.mkdir()
        result = torchrun(RANKED_REWARD, str(out), mode, ranks=2)
        assert result.returncode == 0, explain(result)
        ranks = [json.loads((out / f"rank-{rank}.json").read_text()) for rank in (0, 1)]
        assert ranks[0]["rewards"] + ranks[1]["rewards"] == whole
        assert [rank["batch_sizes"] for rank in ranks] == [[6], [6]]
        # colocated: each rank asked its own Solver about its valid questions; node: the first rank asked for both
        assert [rank["requests"] for rank in ranks] == requests


def test_generation_and_labelling_split_their_shard_over_two_engine_ranks(local_location, tiny_model_dir, tmp_path):
    from rzero_worker.task import GenerateTask, GenerationSettings, LabelingSettings, LabelTask

    cpu = {"device": "cpu", "backend": "transformers"}
    generate = GenerateTask(run="demo", iteration=1, storage=local_location, output="iter-001/generate/shard-00000-of-00001",
                            challenger=ModelInput(source=str(tiny_model_dir)), device=cpu,
                            settings=GenerationSettings(num_questions=5, batch_size=2, sampling=Sampling(max_tokens=8)))

    result = worker_with_ranks(generate, 2, tmp_path)

    assert result.returncode == 0, explain(result)
    storage = open_storage(local_location)
    metrics = summary_metrics(storage, generate.output)
    assert metrics["requested"] == 5 and metrics["valid"] + metrics["invalid"] + metrics["duplicates"] == 5
    questions = [{"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(5)]
    commit_jsonl_shards(local_location, "iter-001/generate-by-hand", "questions.jsonl", [questions])
    label = LabelTask(run="demo", iteration=1, storage=local_location, output="iter-001/label/shard-00000-of-00001",
                      solver=ModelInput(source=str(tiny_model_dir)), questions="iter-001/generate-by-hand", device=cpu,
                      settings=LabelingSettings(samples=2, sampling=Sampling(max_tokens=8), grading_workers=1))

    result = worker_with_ranks(label, 2, tmp_path)

    assert result.returncode == 0, explain(result)
    metrics = summary_metrics(storage, label.output)
    assert metrics["questions"] == 5 and metrics["kept"] + sum(metrics["dropped"].values()) == 5
