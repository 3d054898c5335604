"""Majority vote over math-equivalence classes, and grading against gold answers.

What the reference code does (Chengsong-Huang/R-Zero, `question_evaluate/evaluate.py` and
`vllm_service_init/start_vllm_server.py`), and what we implement:

- answers are taken in sample order; empty answers never join a class. Each answer joins the FIRST
  existing class whose key (the class's first answer) it is equivalent to, comparing both orders;
  otherwise it opens a new class. We do the same greedy assignment, after grouping identical normalised
  strings (a cheaper first step with the same outcome) and deciding every needed comparison for many
  questions in one batch on the pool. The reference also merges any two answers that both contain
  "no " (a hack for "no solution"); we do not: such answers are compared like any other.
- the label is the majority class's key; ties go to the class formed first (Python's `max` over an
  insertion-ordered dict), i.e. the earliest first occurrence. Same here: deterministic.
- score: the reference divides the majority size by ALL m samples for the Challenger's reward (the
  vLLM server) but by the non-empty answers in the labelling script. `Vote.score` is majority / m (the
  paper's p-hat, the DESIGN's "majority share"); `Vote.share_of_valid` gives the labelling script's.
- a comparison that times out counts as "not equivalent" (the reference skips the pair); we also count
  the samples of the answer blamed for it in `Vote.ungradable` (the pool knows which one hung).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .extract import normalize_answer


@dataclass(frozen=True)
class Vote:
    label: str | None  # the majority class's first answer as written (stripped); None without answers
    score: float  # majority class size / all samples (m)
    valid: int  # non-empty answers
    ungradable: int  # samples whose class membership could not be decided in time
    classes: list[tuple[str, int]] = field(default_factory=list)  # (first answer, size), winner first
    samples: int = 0  # m

    @property
    def share_of_valid(self) -> float:
        """Majority size / non-empty answers (the reference labelling script's score)."""
        return self.classes[0][1] / self.valid if self.valid else 0.0


@dataclass
class _Group:
    """All samples with one normalised string."""

    key: str
    first_answer: str
    first_index: int
    size: int = 0


def _groups(answers: list[str | None]) -> list[_Group]:
    groups: dict[str, _Group] = {}
    for index, answer in enumerate(answers):
        key = normalize_answer(answer)
        if not key:
            continue
        if key not in groups:
            groups[key] = _Group(key=key, first_answer=answer.strip(), first_index=index)
        groups[key].size += 1
    return list(groups.values())  # first-occurrence order


def _pairs_needed(groups: list[_Group]) -> list[tuple[str, str]]:
    """Every earlier-later pair: all comparisons the greedy assignment may consult."""
    return [(groups[i].key, groups[j].key) for j in range(len(groups)) for i in range(j)]


def _blame(a: _Group, b: _Group, pool) -> list[_Group]:
    """The group(s) whose answer made the comparison run out of time, as the pool saw it."""
    blamed = [group for group in (a, b) if pool.is_blamed(group.key)]
    return blamed or [a, b]


def _assemble(answers: list[str | None], groups: list[_Group], equal: dict[tuple[str, str], bool | None], pool) -> Vote:
    classes: list[list[_Group]] = []  # each class: its groups, the first one is the key
    undecided: set[str] = set()
    for group in groups:
        for members in classes:
            verdict = equal[(members[0].key, group.key)]
            if verdict is None:
                undecided.update(blamed.key for blamed in _blame(members[0], group, pool))
            elif verdict:
                members.append(group)
                break
        else:
            classes.append([group])
    sized = [(members[0], sum(group.size for group in members)) for members in classes]
    # Largest first; ties by first occurrence: classes are already in first-occurrence order and sort is stable.
    sized.sort(key=lambda entry: -entry[1])
    m = len(answers)
    return Vote(
        label=sized[0][0].first_answer if sized else None,
        score=sized[0][1] / m if sized and m else 0.0,
        valid=sum(group.size for group in groups),
        ungradable=sum(group.size for group in groups if group.key in undecided),
        classes=[(key_group.first_answer, size) for key_group, size in sized],
        samples=m,
    )


def vote_many(answer_lists: list[list[str | None]], pool) -> list[Vote]:
    """Majority votes of many questions, with all their comparisons decided in one pool call."""
    grouped = [_groups(answers) for answers in answer_lists]
    needed = [_pairs_needed(groups) for groups in grouped]
    flat = [pair for pairs in needed for pair in pairs]
    verdicts = pool.equivalent(flat) if flat else []
    votes, offset = [], 0
    for answers, groups, pairs in zip(answer_lists, grouped, needed):
        equal = dict(zip(pairs, verdicts[offset : offset + len(pairs)]))
        offset += len(pairs)
        votes.append(_assemble(answers, groups, equal, pool))
    return votes


def majority_vote(answers: list[str | None], pool) -> Vote:
    """The majority vote of one question's sampled answers (see the module notes)."""
    return vote_many([answers], pool)[0]


def grade(predictions: list[str | None], golds: list[str], pool) -> list[bool | None]:
    """Is each prediction equivalent to its gold answer (math-verify, gold first)? None: undecidable."""
    if len(predictions) != len(golds):
        raise ValueError(f"grade: {len(predictions)} predictions but {len(golds)} golds")
    return pool.equivalent(list(zip(golds, predictions)), directed=True)
