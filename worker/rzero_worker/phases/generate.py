"""Phase `generate`: this shard's share of N candidate questions from the trained Challenger.

Shard i of K generates N // K questions, plus one when i < N % K, so the shards add up to N exactly.
Sampling seeds derive from (task seed, shard index, batch number): re-running a shard reproduces it.
A pod with several GPUs runs the shard as one rank per vLLM engine (distributed.py): rank r of R generates
its near-equal part of the shard's questions with seeds of its own (offset r * RANK_SEED_STRIDE), and rank 0
gathers every part, in rank order, before parsing, de-duplicating and writing the shard's files.

Each completion is read with the run's reading (`labeling.vote`, grading/reading.py) into its question and
answer. reference (as `question_generate/question_generate.py:112-122`): a completion needs a `<question>`
block (its last one, stripped, blank or not) and a `\\boxed{` (the last one's content is the answer); every
candidate is kept, duplicates too. boxed-only: a completion needs a non-blank question (the answer may be
missing: None; the label phase drops such a question), and a question equal to an earlier one after
whitespace normalisation is a duplicate and dropped (counted). A completion not read is invalid
(`invalid.jsonl`, with the raw output, for people to read).

With spec.corpus (corpus.py), candidate i of the shard answers the grounded Challenger prompt (prompts.py) of
passage `corpus.sample(task seed, iteration, i)`, one prompt per candidate, and its row (valid or invalid)
keeps `passage` (the text) and `provenance` (document id, source file, character offsets). The Solver is
never shown the passage. The corpus is read before any model is loaded: one with no passage fails the phase
(exit 2); its counts (documents, passages, skipped by reason) are in the metrics under `corpus`.

With spec.anchors (anchors.py), candidate i's prompt also shows `anchors.sample(task seed, iteration, i, k)` as
examples (k = anchors.examples; one prompt per candidate then, with or without a corpus); the metrics count
them (`anchors_shown`) beside the file's counts (`anchors`: rows usable, skipped by reason, in_evaluation).
"""

from __future__ import annotations

import logging

from ..anchors import read_anchors
from ..corpus import read_corpus
from ..task import GenerateTask
from .context import PhaseContext, write_jsonl

log = logging.getLogger(__name__)

# Distinct seed streams per shard: shard i uses seeds seed + i * SHARD_SEED_STRIDE + batch number.
SHARD_SEED_STRIDE = 1_000_003
RANK_SEED_STRIDE = 10_007  # more than the batches one rank generates


def shard_share(total: int, index: int, count: int) -> int:
    """Questions shard `index` of `count` generates; the shares sum to `total`."""
    return total // count + (1 if index < total % count else 0)


def run(ctx: PhaseContext) -> dict:
    from .. import distributed

    task: GenerateTask = ctx.task
    # spec.corpus: read (and refused when it yields no passage: exit 2) before any model is loaded.
    corpus = read_corpus(task.corpus, task.storage) if task.corpus else None
    anchors = read_anchors(task.anchors, task.storage) if task.anchors else None
    k = task.anchors.settings.examples if task.anchors else 0
    ranks = distributed.current()
    requested = shard_share(task.settings.num_questions, task.shard.index, task.shard.count)
    part = distributed.split_evenly(requested, ranks.world_size, ranks.rank)
    # Candidate i of the shard reads passage sample(seed, iteration, i): a re-run reads the same ones.
    passages = [corpus.sample(task.seed, task.iteration, i) for i in range(requested)] if corpus else None
    examples = [[(a.question, a.answer) for a in anchors.sample(task.seed, task.iteration, i, k)]
                for i in range(requested)] if k else None
    mine = challenger_outputs(ctx, part.stop - part.start, seed_offset=ranks.rank * RANK_SEED_STRIDE,
                              passages=passages[part.start : part.stop] if passages else None,
                              examples=examples[part.start : part.stop] if examples else None)
    outputs = [text for texts in distributed.all_gather(mine) for text in texts]
    if not ctx.main_process:
        return {}
    questions, invalid, duplicates = parse_outputs(outputs, id_prefix(task), task.grading.vote, passages)
    write_jsonl(ctx.staging / "questions.jsonl", questions)
    write_jsonl(ctx.staging / "invalid.jsonl", invalid)
    log.info("%d questions: %d valid, %d invalid, %d duplicates", requested, len(questions), len(invalid), duplicates)
    metrics = {"requested": requested, "valid": len(questions), "invalid": len(invalid), "duplicates": duplicates}
    if anchors:
        metrics.update(anchors=anchors.stats(), anchors_shown=sum(map(len, examples or [])))
    return {**metrics, "corpus": corpus.stats()} if corpus else metrics


def id_prefix(task: GenerateTask) -> str:
    return f"i{task.iteration:03d}-s{task.shard.index:05d}"


def challenger_outputs(ctx: PhaseContext, requested: int, *, seed_offset: int = 0, passages=None,
                       examples=None) -> list[str]:
    """`requested` Challenger completions, generated `settings.batch_size` at a time; with `passages` (one per
    completion), completion i answers the grounded prompt of passage i; with `examples` (one list of (question,
    answer) anchors per completion), completion i's prompt shows examples i."""
    if requested <= 0:
        return []
    from ..generation import make_generator
    from ..models import resolve_model
    from ..prompts import challenger_messages, grounded_challenger_messages, with_examples

    task: GenerateTask = ctx.task
    local = resolve_model(task.challenger, ctx.storage, ctx.cache_dir, field="challenger", s3_location=task.storage)
    generator = make_generator(local, task.device, cache_dir=ctx.cache_dir)
    outputs: list[str] = []
    batch_number = 0
    while len(outputs) < requested:
        size = min(task.settings.batch_size, requested - len(outputs))
        seed = task.seed + task.shard.index * SHARD_SEED_STRIDE + seed_offset + batch_number
        if passages or examples:  # one prompt per candidate (its passage, its anchors), one sample each
            window = range(len(outputs), len(outputs) + size)
            chunk = [with_examples(grounded_challenger_messages(passages[i].text) if passages else challenger_messages(),
                                   examples[i] if examples else []) for i in window]
            outputs.extend(s for [s] in generator.generate(chunk, n=1, sampling=task.settings.sampling, seed=seed))
        else:  # one prompt, `size` samples: every candidate answers the same Challenger prompt
            [samples] = generator.generate([challenger_messages()], n=size, sampling=task.settings.sampling, seed=seed)
            outputs.extend(samples)
        batch_number += 1
        log.info("generated %d/%d candidates", len(outputs), requested)
    return outputs


def parse_outputs(outputs: list[str], prefix: str, vote: str = "reference",
                  passages=None) -> tuple[list[dict], list[dict], int]:
    """(valid questions, invalid outputs, duplicate count) under the reading `vote`. Ids number the candidates
    in order; with `passages` (one per output), each row keeps its passage and provenance."""
    from ..grading import Reading

    reading = Reading(vote)
    questions, invalid, seen = [], [], set()
    duplicates = 0
    for index, text in enumerate(outputs):
        item_id = f"{prefix}-{index:06d}"
        grounding = {"passage": passages[index].text, "provenance": passages[index].provenance()} if passages else {}
        parsed = reading.generated(text)
        if parsed is None:
            reason = "no_question" if "</question>" not in (text or "") or not reading.reference else "no_box"
            invalid.append({"id": item_id, "output": text, "reason": reason, **grounding})
            continue
        question, answer = parsed
        key = " ".join(question.split())
        if reading.drops_duplicates and key in seen:
            duplicates += 1
            continue
        seen.add(key)
        questions.append({"id": item_id, "question": question, "answer": answer, **grounding})
    return questions, invalid, duplicates
