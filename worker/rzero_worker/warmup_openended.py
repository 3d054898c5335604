r"""Procedurally generated examples of the open-ended roles' output formats, for the warm-up (spec.task open-ended).

The verifiable warm-up (warmup_data.py) teaches `<question>` and `\boxed{answer}`; an open-ended run needs other
formats, and a 135M base model writes none of them (bench/openended.py). These examples teach the FORMATS only —
not what a good task, response or judgement is:

- Challenger example: the open-ended Challenger prompt for the spec's description -> "<task>\n{task}\n</task>".
  The tasks are synthetic: a few instruction templates ("Write a short text ({kind}) about {subject}.") filled
  with words of the description (its content words, e.g. "emails", "notes") and everyday subjects. They are not
  good tasks of the domain; they show the block the format rule (prompts_openended.read_task) reads.
- Solver example: the Solver prompt with such a task -> a plain response of one to four template sentences (no box,
  no tags), on the task's subject or, for some, on another subject.
- Verifier example: the judge prompt (prompts_openended.judge_messages) with a task and such a response -> one
  line of observations and the score box grading/scores.py reads, every rubric criterion once:
  "Task words in the response: leaking, tap (2 of 3); 3 sentences. \boxed{clarity: 7; helpfulness: 6}".
  The scores are a simple function of observable properties — the share of the task's key words the response
  mentions and its number of sentences — plus a seeded offset of -1..1 per criterion, so they vary across
  examples and criteria (a judge trained on one constant score would give the Challenger no signal). They teach
  the box, not judgement: the real judgement is the Verifier's own.

Everything derives from one seed: the same settings, description and rubric give the same examples.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .prompts_openended import judge_messages, open_challenger_messages, open_solver_messages

VERSION = 2  # bump when the examples change: the warm-up's cache key holds it (phases/warmup.py)
SUBJECTS = ("a leaking tap", "a team lunch", "a late delivery", "a new library card", "a lost umbrella",
            "a birthday party", "a broken printer", "a weekend trip", "a garden clean-up", "a missed meeting",
            "a noisy neighbour", "a bike repair")
TEMPLATES = ("Write a short text ({kind}) about {subject}.", "Write {n} sentences ({kind}) about {subject}.",
             "Give {n} practical points on {subject} ({kind}).", "Draft a polite text ({kind}) about {subject}.",
             "Explain {subject} to a newcomer, briefly ({kind}).")
SENTENCES = ("This is about {subject}.", "I wanted to let you know about {subject}.",
             "The main point is that {subject} needs attention soon.", "Please tell me if {subject} suits you.",
             "Thank you for your help with {subject}.", "I can share more details about {subject} later.",
             "Here is the text you asked for ({kind}).", "I kept it short and friendly ({kind}).")
_STOPWORDS = frozenset("a an and are as at be by for from in into is it of on or that the their them they this to "
                       "with your you tasks task write writing".split())
_WORD = re.compile(r"[A-Za-z][A-Za-z-]{2,}")


@dataclass(frozen=True)
class OpenTask:
    text: str
    subject: str
    kind: str  # a word of the description
    keywords: tuple[str, ...]  # the task's observable key words: its kind and its subject's content words


def description_words(description: str) -> tuple[str, ...]:
    """The description's content words (lowercased, in order, once each; no stop words); ("text",) when none."""
    words = [w.lower() for w in _WORD.findall(description) if w.lower() not in _STOPWORDS]
    return tuple(dict.fromkeys(words)) or ("text",)


def _content(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text) if w.lower() not in _STOPWORDS]


def draw_task(rng: random.Random, words: tuple[str, ...]) -> OpenTask:
    kind, subject = rng.choice(words), rng.choice(SUBJECTS)
    text = rng.choice(TEMPLATES).format(kind=kind, subject=subject, n=rng.randint(2, 4))
    return OpenTask(text=text, subject=subject, kind=kind, keywords=tuple(dict.fromkeys([kind, *_content(subject)])))


def draw_response(rng: random.Random, task: OpenTask) -> str:
    """One to four template sentences, on the task's subject and kind (three in four) or on others."""
    on_topic = rng.random() < 0.75
    subject = task.subject if on_topic else rng.choice([s for s in SUBJECTS if s != task.subject])
    kind = task.kind if on_topic else "reply"
    count = rng.randint(1, 4)
    return " ".join(sentence.format(subject=subject, kind=kind) for sentence in rng.sample(SENTENCES, count))


def observed(task: OpenTask, response: str) -> tuple[int, int]:
    """(sentences in the response, task key words it mentions)."""
    sentences = len([s for s in re.split(r"[.!?]+", response) if s.strip()])
    mentioned = set(_content(response))
    return sentences, sum(1 for word in task.keywords if word in mentioned)


def scores_for(rng: random.Random, task: OpenTask, response: str, criteria) -> dict[str, int]:
    """1..10 per criterion: 2 + 5 x (share of key words mentioned) + (sentences - 1), plus a seeded -1..1."""
    sentences, mentioned = observed(task, response)
    base = 2 + 5 * mentioned / len(task.keywords) + (sentences - 1)
    return {criterion: max(1, min(10, round(base) + rng.randint(-1, 1))) for criterion in criteria}


def score_box(scores: dict[str, int]) -> str:
    return r"\boxed{" + "; ".join(f"{criterion}: {score}" for criterion, score in scores.items()) + "}"


def judge_completion(task: OpenTask, response: str, scores: dict[str, int]) -> str:
    """The observations, then the box: the task's key words found in the response (words the judge can copy
    from both texts, so the observation varies with the input) and the number of sentences."""
    sentences, _ = observed(task, response)
    mentioned = set(_content(response))
    found = [word for word in task.keywords if word in mentioned]
    return (f"Task words in the response: {', '.join(found) or 'none'} ({len(found)} of {len(task.keywords)}); "
            f"{sentences} sentence{'s' * (sentences != 1)}. {score_box(scores)}")


def _example(prompt: list[dict], completion: str, role: str) -> dict:
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": completion}], "role": role}


def openended_examples(
    steps: int, batch_size: int, seed: int, *, description: str, criteria, challenger_share: float = 0.5,
    verifier_share: float = 0.0,
) -> list[dict]:
    """`steps x batch_size` prompt/completion chats, seeded, in training order, one role per batch (as
    warmup_data.warmup_examples: a share `verifier_share` of the batches are judge examples, a share
    `challenger_share` of the others Challenger examples, the rest Solver examples)."""
    rng = random.Random(f"openended/{seed}")
    words, criteria = description_words(description), tuple(criteria)
    examples = []
    for _ in range(steps):
        verifier = bool(verifier_share) and rng.random() < verifier_share
        challenger = not verifier and rng.random() < challenger_share
        for _ in range(batch_size):
            task = draw_task(rng, words)
            if challenger:
                examples.append(_example(open_challenger_messages(description), f"<task>\n{task.text}\n</task>",
                                         "challenger"))
                continue
            response = draw_response(rng, task)
            if verifier:
                scores = scores_for(rng, task, response, criteria)
                examples.append(_example(judge_messages(description, criteria, task.text, response),
                                         judge_completion(task, response, scores), "verifier"))
            else:
                examples.append(_example(open_solver_messages(task.text), response, "solver"))
    return examples
