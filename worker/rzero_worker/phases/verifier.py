r"""Phase `verifier` (spec.verifier.mode trained): GRPO on the Verifier against verification examples of known truth.

Reads `verification.jsonl` of every committed label shard under `task.examples` (verifier_examples.py: confident
majority labels and the answers that disagree with them, oracle-checked labels) and, when a person recorded
per-item verdicts at the approval gate (`task.audit`), the shards' `audit.jsonl` to join them by question id. A
seeded split by question holds out `settings.heldOut` of them. Each training example becomes the Verifier's prompt
(prompts.verifier_messages(question, answer)) with its truth; the reward of a sampled verdict is 1 when
grading.parse_verdict reads the verdict the truth asks for, else 0 (an unparsable one earns 0: it is never
approval).

The summary shows whether it learned: held-out accuracy of greedy verdicts before and after training (and on the
oracle-checked held-out examples alone, where an oracle ran), the reward and its spread over rollout steps, and
`weight_change` (relative L2 distance of the committed weights from the input's; 0 means nothing moved). With no
training example (nothing confident this iteration) the Verifier is carried forward unchanged (`steps: 0`,
`skipped`), as the Solver is. A killed attempt resumes from its last uploaded checkpoint (grpo.py); the held-out
accuracy before training is measured again, on the same input model. The held-out verdicts are generated through
transformers on every backend (an in-process vLLM engine keeps its GPU memory, and training follows); with several
ranks each rank judges them (the same greedy verdicts) and rank 0 reports them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .. import verifier_examples as examples_lib
from ..task import VerifierTask
from .context import PhaseContext

log = logging.getLogger(__name__)

NO_EXAMPLES = "no verification examples: the label phase found no label of known truth (see its stats.json)"


def run(ctx: PhaseContext) -> dict:
    task: VerifierTask = ctx.task
    settings, grpo = task.settings, task.settings.grpo
    examples, audited = read_examples(ctx)
    train, held = examples_lib.split(examples, settings.held_out, task.seed)
    train = examples_lib.sample(train, settings.max_examples, task.seed)
    held = examples_lib.sample(held, settings.max_held_out, task.seed)

    from .. import distributed
    from ..grpo import train_grpo
    from ..grpo_data import drop_long_prompts, prompt_dataset
    from ..models import compute_dtype_name, load_model, resolve_device, resolve_model, save_checkpoint
    from ..prompts import verifier_messages

    device = resolve_device(task.device)
    local = resolve_model(task.verifier, ctx.storage, ctx.cache_dir, field="verifier", s3_location=task.storage)
    counts = {"examples": len(examples), "train_examples": len(train), "held_out": len(held),
              "audit_verdicts": audited, "sources": examples_lib.source_counts(examples)}
    before = held_out_accuracy(ctx, local, held, "before")
    hints = distributed.training_hints(task.device, grpo, device) if train else task.device
    model, tokenizer = load_model(local, hints, trainable=bool(train))
    prompts = [{"prompt": verifier_messages(e["question"], e["answer"]), "correct": e["correct"]} for e in train]
    prompts, too_long = drop_long_prompts(prompts, tokenizer, grpo.max_prompt_tokens)
    if not prompts:
        reason = NO_EXAMPLES if not train else f"all {len(train)} training examples exceed grpo.maxPromptTokens"
        log.warning("%s; carrying the Verifier forward unchanged", reason)
        if ctx.main_process:
            save_checkpoint(model, tokenizer, ctx.staging / "model")
        return {**counts, **before, "steps": 0, "prompts_too_long": too_long, "skipped": reason, "weight_change": 0.0}
    log.info("training the Verifier on %d examples (%d held out)", len(prompts), len(held))
    dataset = prompt_dataset(prompts, grpo, seed=task.seed)
    metrics = train_grpo(ctx, model, tokenizer, VerifierReward(), dataset, grpo,
                         compute_dtype=compute_dtype_name(task.device, device), device=device,
                         use_vllm=distributed.vllm_rollouts(task.device, device))
    del model
    if not ctx.main_process:
        return metrics
    from ..models import LocalModel

    after = held_out_accuracy(ctx, LocalModel(path=ctx.staging / "model"), held, "after")
    return {**counts, **metrics, **before, **after, "prompts_too_long": too_long,
            "weight_change": weight_change(local.path, ctx.staging / "model")}


def read_examples(ctx: PhaseContext) -> tuple[list[dict], int]:
    """(every label shard's examples with the person's verdicts applied, verdicts that matched an audited row)."""
    task: VerifierTask = ctx.task
    examples = ctx.read_input_jsonl(task.examples, "verification.jsonl")
    if not task.audit:
        return examples, 0
    audit_rows = ctx.read_input_jsonl(task.examples, "audit.jsonl")
    return examples_lib.with_audit(examples, audit_rows, {item.id: item.correct for item in task.audit})


def verdict_correct(output: str | None, truth: bool) -> bool:
    """Does the Verifier's output give the verdict `truth` asks for? An unparsable or missing one never does."""
    from ..grading import parse_verdict

    verdict = None if output is None else parse_verdict(output)
    return verdict is not None and verdict == bool(truth)


def held_out_accuracy(ctx: PhaseContext, local, held: list[dict], when: str) -> dict:
    """Greedy verdicts of the model at `local` on the held-out examples: accuracy (unparsable = wrong), its 95%
    interval, the unparsable count, and the same accuracy on the oracle-checked examples alone."""
    from ..benchmarks.scoring import wilson_interval
    from ..generation import make_generator
    from ..generation.base import greedy_replies
    from ..prompts import verifier_messages

    task: VerifierTask = ctx.task
    if not held:
        return {f"accuracy_{when}": None}
    # transformers, not vLLM: an in-process vLLM engine does not give its GPU memory back, and training (with its own
    # colocated rollout engine) follows; the held-out set is small (maxHeldOut)
    hints = task.device.model_copy(update={"backend": "transformers"})
    generator = make_generator(local, hints, cache_dir=ctx.cache_dir, batch_size=task.batch_size)
    outputs = greedy_replies(generator, [verifier_messages(e["question"], e["answer"]) for e in held],
                             max_tokens=task.max_tokens, batch_size=task.batch_size, log=log,
                             what=f"held-out verdicts {when} training")
    del generator
    _free_accelerator_memory()
    right = [verdict_correct(output, e["correct"]) for output, e in zip(outputs, held)]
    oracle = [ok for ok, e in zip(right, held) if e["source"] == "oracle"]
    from ..grading import parse_verdict

    unparsable = sum(1 for output in outputs if output is None or parse_verdict(output) is None)
    return {
        f"accuracy_{when}": sum(right) / len(right), f"accuracy_{when}_ci95": list(wilson_interval(sum(right), len(right))),
        f"correct_{when}": sum(right), f"unparsable_{when}": unparsable,
        "oracle_held_out": len(oracle), f"oracle_accuracy_{when}": sum(oracle) / len(oracle) if oracle else None,
    }


def _free_accelerator_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def weight_change(before_dir: Path, after_dir: Path) -> float | None:
    """Relative L2 distance ||after - before|| / ||before|| over the floating-point tensors both safetensors
    checkpoints hold (None when the input is not a safetensors directory, e.g. a GGUF file or a hub id)."""
    from contextlib import ExitStack

    from safetensors import safe_open

    before_files, after_files = sorted(Path(before_dir).glob("*.safetensors")), sorted(Path(after_dir).glob("*.safetensors"))
    if not before_files or not after_files:
        return None
    moved = base = 0.0
    with ExitStack() as stack:
        after = {}
        for path in after_files:
            handle = stack.enter_context(safe_open(str(path), framework="pt"))
            after.update(dict.fromkeys(handle.keys(), handle))
        for path in before_files:
            handle = stack.enter_context(safe_open(str(path), framework="pt"))
            for name in handle.keys():
                old = handle.get_tensor(name)
                if name not in after or not old.is_floating_point():
                    continue
                new = after[name].get_tensor(name)
                if new.shape == old.shape:
                    moved += float((new.double() - old.double()).pow(2).sum())
                    base += float(old.double().pow(2).sum())
    return (moved ** 0.5) / (base ** 0.5) if base else None


class VerifierReward:
    """TRL reward function: 1 when a sampled verdict agrees with its example's truth, else 0 (unparsable = 0).
    Logs `agreement` (the share of agreeing verdicts) and `unparsable` over the whole rollout batch of every rank."""

    __name__ = "verifier_reward"

    def __call__(self, prompts, completions, correct, log_metric=None, **kwargs) -> list[float]:
        from .. import distributed
        from ..grading import parse_verdict
        from ..grpo import completion_texts

        texts = completion_texts(completions)
        rewards = [1.0 if verdict_correct(text, truth) else 0.0 for text, truth in zip(texts, correct)]
        unreadable = sum(1 for text in texts if parse_verdict(text) is None)
        counts = distributed.all_gather((len(texts), sum(rewards), unreadable))
        total, agreed, unparsable = (sum(column) for column in zip(*counts))
        if callable(log_metric) and total:
            log_metric("agreement", agreed / total)
            log_metric("unparsable", unparsable / total)
        return rewards
