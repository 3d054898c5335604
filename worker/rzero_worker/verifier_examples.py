r"""The trained Verifier's examples (spec.verifier.mode trained): (question, answer, truth) whose truth is known with
confidence, and their seeded held-out split. Pure (no torch): the label phase writes them, the verifier phase
reads them.

Sources, strongest last (a stronger one replaces a weaker one's verdict on the same (question, answer)):
- `consensus`: a voted question whose majority share is at least `consensus` (verifier.training.consensus, whether
  or not the band kept it): its label is correct, the first answer of every other class of its vote (answers the
  run's checker found not equivalent to the label) is incorrect. This is CoVerRL's choice (arXiv 2603.17775): a
  verifier trained on high-consensus majority labels, then used to remove the self-consistent but wrong labels of
  the band, where agreement is lower and errors are commoner.
- `oracle`: a kept question an oracle checked (oracles/run.py: `label_correct`, `oracle_answer`): its label is
  correct or not as the oracle says; a wrong label's oracle answer is correct; with a right label the other
  classes' answers are incorrect.
- `audit`: a person's verdict at the approval gate on an audited label (rzero.dev/verdicts, `rzero approve
  --verdict`): the task's `audit` list joined with the label phase's audit.jsonl by question id.

An example row: {"id", "question", "answer", "correct", "source"}. An answer that is "None" or blank is never an
example (it is no answer to judge).
"""

from __future__ import annotations

import hashlib
import random

SOURCES = ("consensus", "oracle", "audit")


def _answer(value) -> str | None:
    text = None if value is None else str(value).strip()
    return None if not text or text == "None" else text


def _example(row: dict, answer, correct: bool, source: str) -> dict | None:
    text = _answer(answer)
    if text is None:
        return None
    return {"id": row["id"], "question": row["question"], "answer": text, "correct": bool(correct), "source": source}


def _others(row: dict) -> list:
    """The first answers of the vote's other classes (not equivalent to the label under the run's checker)."""
    return list(row.get("class_answers") or [])[1:]


def row_examples(row: dict, consensus: float) -> list[dict]:
    """The examples one voted label-phase row gives (none when its truth is not known with confidence)."""
    label = row.get("label")
    if row.get("ungradable") or row.get("majority_none") or _answer(label) is None or "vote_label" in row:
        return []  # no gradable label, or a document label (its vote's classes are not about the label)
    verdict = row.get("label_correct")
    if verdict is not None:
        found = [_example(row, label, verdict, "oracle")]
        if verdict:
            found += [_example(row, answer, False, "oracle") for answer in _others(row)]
        else:
            found.append(_example(row, row.get("oracle_answer"), True, "oracle"))
    elif float(row.get("score") or 0.0) >= consensus:
        found = [_example(row, label, True, "consensus")]
        found += [_example(row, answer, False, "consensus") for answer in _others(row)]
    else:
        return []
    return _unique([example for example in found if example is not None])


def label_examples(rows: list[dict], consensus: float) -> list[dict]:
    """Every voted row's examples, in row order (the label phase's verification.jsonl)."""
    return [example for row in rows for example in row_examples(row, consensus)]


def _unique(examples: list[dict]) -> list[dict]:
    """One example per (id, answer): the last one wins (sources are listed weakest first)."""
    merged: dict[tuple[str, str], dict] = {}
    for example in examples:
        merged[(example["id"], example["answer"])] = example
    return list(merged.values())


def with_audit(examples: list[dict], audit_rows: list[dict], verdicts: dict[str, bool]) -> tuple[list[dict], int]:
    """(examples with a person's verdicts applied, how many verdicts matched an audited row). A verdict names a
    question id of the audit sample; its (question, label) becomes an `audit` example, replacing any other."""
    by_id = {row["id"]: row for row in audit_rows if "id" in row}
    audited = [_example(by_id[qid], by_id[qid].get("label"), correct, "audit")
               for qid, correct in verdicts.items() if qid in by_id]
    audited = [example for example in audited if example is not None]
    return _unique(examples + audited), len(audited)


def _side(question_id: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}/{question_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split(examples: list[dict], held_out: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, held-out): a seeded split by question id (a question's examples all fall on one side), so the
    held-out accuracy is on questions the Verifier never trained on. With two questions or more both sides get one."""
    ids = sorted({example["id"] for example in examples}, key=lambda qid: _side(qid, seed))
    if not ids:
        return [], []
    count = min(len(ids) - 1, max(1, round(held_out * len(ids)))) if len(ids) > 1 else 0
    held = set(ids[:count])
    return ([e for e in examples if e["id"] not in held], [e for e in examples if e["id"] in held])


def sample(examples: list[dict], limit: int, seed: int) -> list[dict]:
    """At most `limit` examples: a seeded sample, in their original order."""
    if len(examples) <= limit:
        return list(examples)
    chosen = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[index] for index in chosen]


def source_counts(examples: list[dict]) -> dict[str, int]:
    return {source: sum(1 for e in examples if e["source"] == source) for source in SOURCES}
