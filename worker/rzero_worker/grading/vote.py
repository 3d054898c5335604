"""Majority vote over equivalence classes, and grading against gold answers.

What the reference code does (Chengsong-Huang/R-Zero, `question_evaluate/evaluate.py:115-177` for the
labels and `vllm_service_init/start_vllm_server.py:162-224` for the Challenger's p-hat), and what we do:

- answers (the run's `Reading`: grading/reading.py) are taken in sample order. Each answer joins the FIRST
  existing class whose key (the class's first answer) it is equivalent to, comparing both orders; otherwise
  it opens a new class. We do the same greedy assignment, after grouping the answers the checker cannot
  tell apart (identical strings for mathruler, identical normalised strings for math-verify: a cheaper first
  step with the same outcome) and deciding every needed comparison for many questions in one pool call.
  The reference also merges any two answers that both contain "no " (lower-cased; a hack for "no
  solution"): in reference mode we do too.
- reference mode: an answer without a box reads "None" (the reference's extractor), which is an answer
  like any other: it forms a class, counts, and can win. With mathruler it is compared like any other
  string (mathruler finds "none" equal to it); with math-verify every "None"/"null" joins one class "None",
  never equivalent to a real answer. An empty box `\\boxed{}` is skipped, as the reference skips empty
  strings. A vote whose majority class is "None" has `label` None and `majority_none` True (the label phase
  drops such a question, as the reference's upload step does). boxed-only mode: only boxed, non-empty
  answers form classes.
- the label is the majority class's key; ties go to the class formed first (Python's `max` over an
  insertion-ordered dict), i.e. the earliest first occurrence. Same here: deterministic.
- score: the reference divides the majority size by ALL m samples for the Challenger's reward (the
  vLLM server) but by the non-empty answers ("None" included) in the labelling script. `Vote.score` is
  majority / m (the Challenger's p-hat); `Vote.share_of_valid` is the labelling script's.
- a comparison that runs out of time: the reference skips that pair (the two answers are not merged), and
  so do we. The samples of the answer blamed for it (the pool knows which one hung) count in
  `Vote.ungradable`; `Vote.label_undecidable` says the winning class's key is such an answer (or too long
  to grade): that is never a label, in any mode (the label phase drops the question).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .extract import is_empty_answer, normalize_answer
from .reading import NO_BOX

# The key of the reference's "None" class; normalize_answer never returns it, so it meets no real answer.
NONE_KEY = "\x00None"
VOTE_MODES = ("reference", "boxed-only")


@dataclass(frozen=True)
class Vote:
    label: str | None  # the majority class's first answer as written (stripped); None without answers
    score: float  # majority class size / all samples (m)
    valid: int  # answers that joined a class ("None" answers included in reference mode)
    ungradable: int  # samples whose class membership could not be decided in time
    classes: list[tuple[str, int]] = field(default_factory=list)  # (first answer, size), winner first
    samples: int = 0  # m
    majority_none: bool = False  # reference mode: the "None" class (no boxed answer) won
    label_undecidable: bool = False  # the winning class's key is an answer the checker could not decide

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


def _key(answer: str | None, mode: str, checker: str) -> str:
    """The group key of one answer; '' for an answer that joins no class."""
    if checker == "mathruler":
        if mode == "reference":
            return answer or ""  # the reference skips only empty strings; "None" is an answer
        return "" if is_empty_answer(answer) else answer.strip()
    if mode == "reference" and is_empty_answer(answer) and (answer is None or answer.strip().strip("$").strip()):
        return NONE_KEY  # no box at all, or a literal None/null: the reference's "None" answer
    return normalize_answer(answer)


def _groups(answers: list[str | None], mode: str, checker: str) -> list[_Group]:
    if mode not in VOTE_MODES:
        raise ValueError(f"vote mode must be one of {VOTE_MODES}, got {mode!r}")
    groups: dict[str, _Group] = {}
    for index, answer in enumerate(answers):
        key = _key(answer, mode, checker)
        if not key:
            continue
        if key not in groups:
            shown = "None" if key == NONE_KEY else answer.strip()
            groups[key] = _Group(key=key, first_answer=shown, first_index=index)
        groups[key].size += 1
    return list(groups.values())  # first-occurrence order


def _blame(a: _Group, b: _Group, pool) -> list[_Group]:
    """The group(s) whose answer made the comparison run out of time, as the pool saw it."""
    blamed = [group for group in (a, b) if pool.is_blamed(group.key)]
    return blamed or [a, b]


def _both_say_no(a: _Group, b: _Group) -> bool:
    """The reference's shortcut: two answers that both contain "no " are the same answer."""
    return "no " in a.first_answer.lower() and "no " in b.first_answer.lower()


Verdicts = dict[tuple[str, str], bool | None]


def _classes(groups: list[_Group], equal: Verdicts, pool, mode: str):
    """The greedy assignment as far as the known verdicts go: (classes, keys of undecided answers, the first
    comparison still needed or None when the assignment is complete)."""
    classes: list[list[_Group]] = []  # each class: its groups, the first one is the key
    undecided: set[str] = set()
    for group in groups:
        for members in classes:
            if mode == "reference" and _both_say_no(members[0], group):
                members.append(group)
                break
            if NONE_KEY in (members[0].key, group.key):
                continue  # the class "None" meets nothing
            pair = (members[0].key, group.key)
            if pair not in equal:
                return classes, undecided, pair
            if equal[pair] is None:  # skipped, as the reference skips a pair that timed out
                undecided.update(blamed.key for blamed in _blame(members[0], group, pool))
            elif equal[pair]:
                members.append(group)
                break
        else:
            classes.append([group])
    return classes, undecided, None


def _assemble(answers: list[str | None], groups: list[_Group], equal: Verdicts, pool, mode: str) -> Vote:
    classes, undecided, _ = _classes(groups, equal, pool, mode)
    sized = [(members[0], sum(group.size for group in members)) for members in classes]
    # Largest first; ties by first occurrence: classes are already in first-occurrence order and sort is stable.
    sized.sort(key=lambda entry: -entry[1])
    m = len(answers)
    winner = sized[0][0] if sized else None
    majority_none = winner is not None and (winner.key == NONE_KEY or (mode == "reference" and winner.key == NO_BOX
                                                                       and pool.checker == "mathruler"))
    return Vote(
        label=sized[0][0].first_answer if sized and not majority_none else None,
        score=sized[0][1] / m if sized and m else 0.0,
        valid=sum(group.size for group in groups),
        ungradable=sum(group.size for group in groups if group.key in undecided),
        classes=[(key_group.first_answer, size) for key_group, size in sized],
        samples=m,
        majority_none=majority_none,
        label_undecidable=winner is not None and not majority_none and pool.is_blamed(winner.first_answer),
    )


def vote_many(answer_lists: list[list[str | None]], pool, mode: str = "reference") -> list[Vote]:
    """Majority votes of many questions. Each question's comparisons are exactly those its greedy assignment
    consults, in its order (as the reference's loop, so no answer is blamed for a comparison the reference
    never makes); the next comparison of every question goes to the pool in one call per round.
    `mode`: "reference" or "boxed-only" (module notes; the phases pass the run's labeling.vote)."""
    checker = getattr(pool, "checker", "math-verify")
    grouped = [_groups(answers, mode, checker) for answers in answer_lists]
    known: list[Verdicts] = [{} for _ in grouped]
    while True:
        wanted = [(index, _classes(groups, known[index], pool, mode)[2]) for index, groups in enumerate(grouped)]
        wanted = [(index, pair) for index, pair in wanted if pair is not None]
        if not wanted:
            break
        for (index, pair), verdict in zip(wanted, pool.equivalent([pair for _, pair in wanted])):
            known[index][pair] = verdict
    return [_assemble(answers, groups, equal, pool, mode) for answers, groups, equal in zip(answer_lists, grouped, known)]


def majority_vote(answers: list[str | None], pool, mode: str = "reference") -> Vote:
    """The majority vote of one question's sampled answers (see the module notes)."""
    return vote_many([answers], pool, mode)[0]


def grade(predictions: list[str | None], golds: list[str], pool) -> list[bool | None]:
    """Is each prediction equivalent to its gold answer (the pool's checker, gold first)? None: undecidable."""
    if len(predictions) != len(golds):
        raise ValueError(f"grade: {len(predictions)} predictions but {len(golds)} golds")
    return pool.equivalent(list(zip(golds, predictions)), directed=True)
