"""Phase `label`: m Solver answers per question, majority pseudo-label, keep the agreement band.

Reads every committed shard of the generate output (`task.questions`), takes this shard's slice
(questions[i::count], so shards stay balanced), samples `settings.samples` answers per question, reads each
with the run's reading and votes over equivalence classes under the run's checker (grading/reading.py,
grading/vote.py: `settings.vote`, `settings.checker`) and keeps the questions whose
agreement score lies in the band. The score is the reference labelling script's: the majority's share of
the answers that joined a class (in reference mode unboxed answers count as the class "None"); in
boxed-only mode it is the majority's share of all m samples.

Dropped questions are counted by reason:
- `no_challenger_answer`: the Challenger gave no boxed answer (the generate phase already leaves such
  outputs out in reference mode, as the reference's question generation does; an empty box is an answer
  there);
- `reference_filter` (reference mode): the question contains "证明" (proof) or "box", or the label
  contains "text" — the reference skips these as hard to grade automatically;
- `no_answer`: no answer joined any class (every sample empty, or, in boxed-only mode, unboxed);
- `majority_none` (reference mode): the class "None" (no boxed answer) won the vote;
- `ungradable`: the winning answer is one the checker could not decide in time (or too long to grade): it
  never becomes a label. In boxed-only mode also any vote with samples that could not be placed in a class
  in time; in reference mode a timed-out comparison only skips that pair, as in the reference;
- `out_of_band`: a label exists but its score is outside `settings.band_edges()`;
- `no_document_answer` (`labeling.label: document`): the Challenger's answer is blank, or it could not be compared
  with the vote's in time;
- with `labeling.verifier: veto` (verifier.py), after the band: `verifier_rejected`, `verifier_unparsable`,
  `verifier_unavailable` — kept rows the Verifier did not approve. The oracles check the rows before the veto, so
  the summary tells the label accuracy before and after it; the headline label accuracy is the after-veto one.

With `labeling.label: document` (spec.corpus) the label is the grounded Challenger's answer, the one it read in
its passage (`challenger_answer`); the vote is still computed and its score still decides the band: the band keeps
the questions the Solver is unsure of, the label is the document's (the vote's answer stays in the row as
`vote_label`). For every grounded question (either source) whose vote gave an answer, `document_agrees` records
whether the vote's answer is equivalent to the Challenger's: the same free-form normal form (benchmarks/custom.py,
as a text benchmark grades) or, failing that, the run's checker (the vote's equivalence); and the stats of a grounded shard count them: `document_compared`, `document_agree`, `document_agreement` (their share) and
`document_undecided` (comparisons not decided in time).

Writes `train.jsonl` (kept), `stats.json`, `audit.jsonl` (the first `audit_size` kept questions with all
their answers, for people to read) and `oracle.jsonl` (every kept question an oracle answered, with the
oracles' answers and the verdict: the evidence behind the label accuracy), and with the veto `vetoed.jsonl` (each
vetoed row, its reason and the Verifier's output), and with spec.verifier.mode trained `verification.jsonl` (the
trained Verifier's examples: verifier_examples.py). Label-quality proxies (answer
entropy, band-edge share: oracles/proxies.py) are recorded whether or not an oracle is configured.

A pod with several GPUs runs the shard as one rank per vLLM engine (distributed.py): rank r answers its
contiguous part of the questions (seeds by the questions' place in the shard, as with one rank), and rank 0
gathers the answers, votes and writes; the Verifier runs on rank 0, on its GPU.
"""

from __future__ import annotations

import json
import logging

from ..oracles.proxies import proxy_metrics
from ..task import LabelTask
from .context import PhaseContext, write_jsonl

log = logging.getLogger(__name__)

HISTOGRAM_BINS = 10
# Questions sent to the generator per call: bounds memory and gives progress lines in the log.
QUESTIONS_PER_CALL = 64
# A grounded question's passage and provenance (generate.py, spec.corpus): kept in the audit sample; the
# provenance alone in train.jsonl, the Solver's dataset (the Solver never sees the passage).
GROUNDING_KEYS = ("passage", "provenance")
DROP_REASONS = ("no_challenger_answer", "reference_filter", "no_answer", "majority_none", "ungradable", "out_of_band")
# With labeling.label: document, questions whose document answer cannot be a label.
DOCUMENT_REASONS = ("no_document_answer",)
# With labeling.verifier: veto (verifier.py), kept rows the Verifier did not approve.
VETO_REASONS = ("verifier_rejected", "verifier_unparsable", "verifier_unavailable")


def run(ctx: PhaseContext) -> dict:
    task: LabelTask = ctx.task
    settings = task.settings
    shard_questions = read_questions(ctx)[task.shard.index :: task.shard.count]
    dropped = dict.fromkeys(DROP_REASONS + (DOCUMENT_REASONS if settings.label == "document" else ()), 0)
    questions = reference_question_filter(shard_questions, dropped, settings.vote, settings.label)
    log.info("labelling %d questions (shard %s)", len(questions), task.shard.key)
    engine = SolverEngine(ctx)
    answers = ranked_answers(ctx, questions, engine)
    if not ctx.main_process:
        return {}

    from ..grading import GradingPool, vote_many

    with GradingPool(workers=settings.grading_workers or None, **settings.grading().pool_limits()) as pool:
        votes = vote_many(answers, pool, settings.vote) if questions else []
        rows = [labelled_row(q, a, v, settings.vote, settings.label) for q, a, v in zip(questions, answers, votes)]
        grounded = settings.label == "document" or any("passage" in q for q in shard_questions)
        agreement = document_agreement(rows, pool) if grounded else {}
        kept = apply_band(rows, settings.band_edges(), dropped)
        verifier = judge(ctx, kept, engine)
        checks = oracle_checks(kept, task, ctx, pool)  # before the veto: the veto's effect is measured
        kept, vetoed, veto = veto_stage(kept, dropped, checks, verifier)
        matches = challenger_agreement(kept, pool)

    proxies = proxy_metrics(kept, settings.band_edges(), settings.samples)
    stats = {**label_stats(rows, kept, dropped, matches), **agreement, **proxies, **checks, **veto}
    if task.verification_consensus is not None:  # spec.verifier.mode trained: the Verifier's examples
        from ..verifier_examples import label_examples

        examples = label_examples(rows, task.verification_consensus)
        write_jsonl(ctx.staging / "verification.jsonl", examples)
        stats["verification_examples"] = len(examples)
    write_outputs(ctx, kept, stats, settings.audit_size, vetoed if verifier is not None else None)
    return {"questions": len(shard_questions), **stats}


class SolverEngine:
    """The label Solver's generator, made on first use and shared with a Verifier that is the same model."""

    def __init__(self, ctx: PhaseContext):
        self.ctx = ctx
        self._generator = None

    def __call__(self):
        if self._generator is None:
            from ..generation import make_generator
            from ..models import resolve_model

            task: LabelTask = self.ctx.task
            local = resolve_model(task.solver, self.ctx.storage, self.ctx.cache_dir, field="solver",
                                  s3_location=task.storage)
            self._generator = make_generator(local, task.device, cache_dir=self.ctx.cache_dir)
        return self._generator

    def release(self) -> None:
        self._generator = None


def judge(ctx: PhaseContext, kept: list[dict], engine: SolverEngine):
    """With `labeling.verifier: veto`, the Verifier's verdict on each kept row (verifier.py); else None."""
    task: LabelTask = ctx.task
    if task.verifier is None:
        return None
    from ..verifier import judge_kept, make_verifier, shares_solver_engine

    if task.verifier.model is not None and not shares_solver_engine(task.verifier, task.solver):
        engine.release()  # the Verifier has an engine of its own: the Solver's is not needed any more
    verifier = make_verifier(task, ctx, engine)
    judge_kept(kept, verifier)
    return verifier


def veto_stage(kept: list[dict], dropped: dict, checks: dict, verifier) -> tuple[list[dict], list[dict], dict]:
    """(rows the Solver trains on, vetoed rows, metrics): the veto's, and the headline label accuracy after it."""
    if verifier is None:
        return kept, [], {}
    from ..verifier import apply_veto, headline_after_veto, veto_metrics

    for reason in VETO_REASONS:
        dropped.setdefault(reason, 0)
    approved, vetoed = apply_veto(kept, dropped)
    metrics = veto_metrics(kept, approved, vetoed, verifier, checks.get("oracle"))
    log.info("verifier vetoed %d of %d kept labels", len(vetoed), len(kept))
    return approved, vetoed, {**headline_after_veto(checks, approved), "verifier": metrics}


def read_questions(ctx: PhaseContext) -> list[dict]:
    """All questions of every committed generate shard, in shard order (fails when none is committed)."""
    return ctx.read_input_jsonl(ctx.task.questions, "questions.jsonl")


def ranked_answers(ctx: PhaseContext, questions: list[dict], engine=None) -> list[list[str | None]]:
    """Every question's answers: this rank answers its part, and the parts are gathered in rank order."""
    from .. import distributed

    ranks = distributed.current()
    part = distributed.split_evenly(len(questions), ranks.world_size, ranks.rank)
    mine = solver_answers(ctx, questions[part], offset=part.start, engine=engine) if part.stop > part.start else []
    return [answer for answers in distributed.all_gather(mine) for answer in answers]


def solver_answers(ctx: PhaseContext, questions: list[dict], *, offset: int = 0, engine=None) -> list[list[str | None]]:
    """The answer of each of the m Solver samples per question, as the run reads them (grading/reading.py);
    `offset`: the place of `questions[0]` in the shard (seeds follow it)."""
    from ..grading import Reading
    from ..prompts import solver_messages

    task: LabelTask = ctx.task
    generator = (engine or SolverEngine(ctx))()
    reading = Reading(task.settings.vote)
    answers: list[list[str | None]] = []
    for start in range(0, len(questions), QUESTIONS_PER_CALL):
        chunk = questions[start : start + QUESTIONS_PER_CALL]
        outputs = generator.generate(
            [solver_messages(q["question"]) for q in chunk],
            n=task.settings.samples,
            sampling=task.settings.sampling,
            seed=task.seed + offset + start,
        )
        answers.extend([reading.answer(text) for text in samples] for samples in outputs)
        log.info("answered %d/%d questions", len(answers), len(questions))
    return answers


def reference_question_filter(questions: list[dict], dropped: dict, mode: str = "reference",
                              source: str = "vote") -> list[dict]:
    """The checks before a question is answered (counted in `dropped`, the rest returned): a Challenger answer
    (an empty one counts in reference mode; with `source` document it must not be blank) and, in reference mode,
    the reference's '证明'/'box' filter."""
    from ..grading.extract import is_empty_answer

    kept = []
    for question in questions:
        if question.get("answer") is None:
            dropped["no_challenger_answer"] += 1
        elif source == "document" and is_empty_answer(question["answer"]):
            dropped["no_document_answer"] += 1
        elif mode == "reference" and ("证明" in question["question"] or "box" in question["question"].lower()):
            dropped["reference_filter"] += 1
        else:
            kept.append(question)
    return kept


def labelled_row(question: dict, answers: list[str | None], vote, mode: str, source: str = "vote") -> dict:
    """A voted question; with `source` document its label is the Challenger's answer and `vote_label` the vote's."""
    document = {"vote_label": vote.label, "label_source": "document"} if source == "document" else {}
    return {
        # an undecidable winner is never a label; boxed-only also distrusts any vote with undecided samples
        "ungradable": vote.label_undecidable or (mode != "reference" and vote.ungradable > 0),
        "majority_none": vote.majority_none,
        "id": question["id"],
        "question": question["question"],
        "label": question.get("answer") if source == "document" else vote.label,
        **document,
        "score": vote.share_of_valid if mode == "reference" else vote.score,
        "reference_mode": mode == "reference",
        "answers": answers,
        "challenger_answer": question.get("answer"),
        "class_sizes": [size for _, size in vote.classes],
        "class_answers": [answer for answer, _ in vote.classes],  # the winner's first; verifier_examples.py
        **{key: question[key] for key in GROUNDING_KEYS if key in question},  # spec.corpus: where it came from
    }


def drop_reason(row: dict, band: tuple[float, float]) -> str | None:
    """Why a voted question is not kept (the module notes), or None to keep it."""
    low, high = band
    if row["majority_none"]:
        return "majority_none"
    if row.get("vote_label", row["label"]) is None:
        return "no_answer"
    if row["ungradable"]:
        return "ungradable"
    if "vote_label" in row and row.get("document_agrees") is None:
        return "no_document_answer"
    if row["reference_mode"] and "text" in row["label"].lower():
        return "reference_filter"
    if not low <= row["score"] <= high:
        return "out_of_band"
    return None


def apply_band(rows: list[dict], band: tuple[float, float], dropped: dict) -> list[dict]:
    """The kept rows for the band [lo, hi] (both edges included); drop reasons are counted into `dropped`."""
    kept = []
    for row in rows:
        reason = drop_reason(row, band)
        if reason is None:
            kept.append(row)
        else:
            dropped[reason] += 1
    return kept


def oracle_checks(kept: list[dict], task: LabelTask, ctx: PhaseContext, pool) -> dict:
    """Label accuracy of the kept questions against the configured oracles (oracles/run.py); each checked
    row records the oracles' answers and whether the headline oracle agrees with its label."""
    from ..oracles.run import check_kept

    return check_kept(kept, task, ctx, pool)


def challenger_agreement(kept: list[dict], pool) -> list[bool]:
    """For each kept question: is its pseudo-label equivalent to the Challenger's own answer?"""
    pairs = [(row["label"], row["challenger_answer"]) for row in kept if row["challenger_answer"]]
    verdicts = iter(pool.equivalent(pairs) if pairs else [])
    return [bool(next(verdicts)) if row["challenger_answer"] else False for row in kept]


def document_agreement(rows: list[dict], pool) -> dict:
    """Is the vote's answer equivalent to the document's (the grounded Challenger's)? Recorded as `document_agrees`
    (True, False, or None when undecided in time) on each grounded or document-labelled row whose vote gave a
    gradable answer and whose Challenger answer is not blank; counted in the returned stats."""
    from ..benchmarks.custom import normalize_text
    from ..grading.extract import is_empty_answer

    compared = [row for row in rows if ("passage" in row or "vote_label" in row) and not is_empty_answer(
        row["challenger_answer"]) and row.get("vote_label", row["label"]) is not None and not row["ungradable"]]
    pairs = [(row.get("vote_label", row["label"]), row["challenger_answer"]) for row in compared]
    # Equal free-form normal forms agree without the checker (mathruler reads ``str.join`` and str.join as two
    # answers); the rest are the run's checker's to decide.
    same = [normalize_text(str(vote)) == normalize_text(str(document)) for vote, document in pairs]
    checked = iter(pool.equivalent([pair for pair, equal in zip(pairs, same) if not equal]) if not all(same) else [])
    verdicts = [True if equal else next(checked) for equal in same]
    for row, verdict in zip(compared, verdicts):
        row["document_agrees"] = verdict
    decided = [verdict for verdict in verdicts if verdict is not None]
    return {"document_compared": len(decided), "document_agree": sum(decided),
            "document_agreement": sum(decided) / len(decided) if decided else None,
            "document_undecided": len(verdicts) - len(decided)}


def label_stats(rows: list[dict], kept: list[dict], dropped: dict, matches: list[bool]) -> dict:
    """Metrics of ARCHITECTURE.md; every voted question's score feeds the histogram and mean (a "None"
    majority too, as in the reference's score plot)."""
    scores = [row["score"] for row in rows if row["label"] is not None or row["majority_none"]]
    histogram = [0] * HISTOGRAM_BINS
    for score in scores:
        histogram[min(int(score * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)] += 1
    return {
        "kept": len(kept),
        "dropped": dropped,
        "mean_agreement": sum(scores) / len(scores) if scores else None,
        "score_histogram": histogram,
        "label_matches_challenger": sum(matches) / len(matches) if matches else None,
    }


def write_outputs(ctx: PhaseContext, kept: list[dict], stats: dict, audit_size: int,
                  vetoed: list[dict] | None = None) -> None:
    train = [{key: row[key] for key in ("id", "question", "label", "score", "provenance") if key in row} for row in kept]
    audit_keys = ("id", "question", "label", "score", "answers", "challenger_answer", "oracle_answer", "label_correct",
                  "oracle_answers", "vote_label", "document_agrees", *GROUNDING_KEYS)
    audit = [{key: row[key] for key in audit_keys if key in row} for row in kept[:audit_size]]
    oracle_keys = ("id", "question", "label", "score", "oracle_answers", "oracle_answer", "label_correct")
    checked = [{key: row[key] for key in oracle_keys if key in row} for row in kept
               if any(answer is not None for answer in row.get("oracle_answers", {}).values())]
    write_jsonl(ctx.staging / "train.jsonl", train)
    write_jsonl(ctx.staging / "audit.jsonl", audit)
    write_jsonl(ctx.staging / "oracle.jsonl", checked)
    (ctx.staging / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    if vetoed is not None:
        vetoed_keys = ("id", "question", "label", "score", "verifier_verdict", "verifier_output", "oracle_answer",
                       "label_correct", *GROUNDING_KEYS)
        rows = [{"reason": f"verifier_{row['verifier_verdict']}", **{k: row[k] for k in vetoed_keys if k in row}}
                for row in vetoed]
        write_jsonl(ctx.staging / "vetoed.jsonl", rows)
