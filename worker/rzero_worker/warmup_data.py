r"""Procedurally generated examples of the roles' output formats (Challenger, Solver, Verifier), for the warm-up.

A small base model (the demo's SmolLM2-135M) never writes `<question>...</question>` / `\boxed{}`: the
Challenger's questions are all invalid and the Solver never boxes an answer, so R-Zero has no signal at
all. The warm-up teaches the two output formats — not the answers to R-Zero's own questions — on graded
arithmetic and short word problems:

- Challenger example: the Challenger prompt -> "<question>\n{question}\n</question>\n\n\\boxed{answer}";
- Solver example: the Solver prompt with a question -> "{one line per step} The answer is \\boxed{answer}."
- Verifier example (runs with a Verifier, `verifier_share`): the Verifier prompt with a question and a proposed
  answer, right or a near miss (off by one, two digits swapped, another operation in the last step) in equal
  numbers -> "{steps} The answer is 113, which matches the proposed answer 113. \\boxed{correct}" (or "does not
  match ... \\boxed{incorrect}"): the verdict format `grading.parse_verdict` reads.

Arithmetic questions read "What is 23 + 45 * 2?" (the phrasings the exact arithmetic oracle reads, so the
labels of such questions can be checked later); word problems use a few templates (the oracle cannot read
them). Everything derives from one seed: the same settings give the same examples.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .prompts import challenger_messages, solver_messages, verifier_messages

# (operand range, operands) per difficulty: harder problems have more and bigger operands
DIFFICULTIES = (((1, 20), 2), ((2, 60), 2), ((2, 99), 3), ((2, 99), 4))
LEADS = ("What is {}?", "Compute {}.", "Calculate {}.", "Evaluate {}.", "What is the value of {}?")
NAMES = (("Tom", "he"), ("Anna", "she"), ("Ravi", "he"), ("Mei", "she"), ("Omar", "he"), ("Lena", "she"))
ITEMS = ("apples", "marbles", "books", "stickers", "coins", "pencils")


@dataclass(frozen=True)
class Problem:
    question: str
    answer: int
    steps: tuple[str, ...]  # "45 * 2 = 90", in the order a person would compute them


def _combine(rng: random.Random, left: tuple, right: tuple, low_precedence: bool) -> tuple:
    """Join two sub-expressions (text, value, steps, is_sum) with an operator, with the parentheses the
    precedence needs; subtraction never goes below zero, products stay small."""
    operator = rng.choice("+-" if low_precedence else "*")
    if operator == "-" and right[1] > left[1]:
        left, right = right, left
    (left_text, left_value, left_steps, left_sum), (right_text, right_value, right_steps, right_sum) = left, right
    if operator == "*":
        left_text = f"({left_text})" if left_sum else left_text
        right_text = f"({right_text})" if right_sum else right_text
    elif operator == "-" and right_sum:
        right_text = f"({right_text})"
    value = {"+": left_value + right_value, "-": left_value - right_value, "*": left_value * right_value}[operator]
    step = f"{left_value} {operator} {right_value} = {value}"
    return f"{left_text} {operator} {right_text}", value, left_steps + right_steps + [step], operator != "*"


def arithmetic_problem(rng: random.Random, difficulty: int) -> Problem:
    (low, high), operands = DIFFICULTIES[difficulty]
    terms = [(str(n), n, [], False) for n in (rng.randint(low, high) for _ in range(operands))]
    while len(terms) > 1:
        index = rng.randrange(len(terms) - 1)
        multiply = rng.random() < 0.35 and terms[index][1] * terms[index + 1][1] <= 2000
        joined = _combine(rng, terms[index], terms[index + 1], low_precedence=not multiply)
        terms[index : index + 2] = [joined]
    text, value, steps, _ = terms[0]
    return Problem(question=rng.choice(LEADS).format(text), answer=value, steps=tuple(steps))


def word_problem(rng: random.Random) -> Problem:
    (name, pronoun), item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(3, 60), rng.randint(2, 30)
    kind = rng.randrange(4)
    if kind == 0:
        return Problem(f"{name} has {a} {item}. {pronoun.capitalize()} gets {b} more. How many {item} does "
                       f"{pronoun} have now?", a + b, (f"{a} + {b} = {a + b}",))
    if kind == 1:
        a = a + b
        return Problem(f"{name} had {a} {item} and gave {b} to a friend. How many {item} are left?", a - b,
                       (f"{a} - {b} = {a - b}",))
    if kind == 2:
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        return Problem(f"A box holds {a} {item}. How many {item} are in {b} boxes?", a * b, (f"{a} * {b} = {a * b}",))
    per, children = rng.randint(2, 9), rng.randint(2, 9)
    total = per * children
    return Problem(f"{total} {item} are shared equally among {children} children. How many {item} does each "
                   f"child get?", per, (f"{total} / {children} = {per}",))


def challenger_completion(problem: Problem) -> str:
    return f"<question>\n{problem.question}\n</question>\n\n\\boxed{{{problem.answer}}}"


def solver_completion(problem: Problem) -> str:
    work = " ".join(f"{step}." for step in problem.steps)
    return f"{work} The answer is \\boxed{{{problem.answer}}}."


def draw_problem(rng: random.Random, word_share: float) -> Problem:
    if rng.random() < word_share:
        return word_problem(rng)
    return arithmetic_problem(rng, rng.randrange(len(DIFFICULTIES)))


def near_miss(rng: random.Random, problem: Problem) -> int:
    """A wrong answer a careless solver could give: off by one, two adjacent digits swapped, or the last step
    done with another operation; never the true answer."""
    answer = problem.answer
    kind = rng.randrange(3)
    if kind == 1 and answer >= 10:
        digits = str(answer)
        pairs = [i for i in range(len(digits) - 1) if digits[i] != digits[i + 1] and (i or digits[i + 1] != "0")]
        if pairs:
            i = rng.choice(pairs)
            return int(digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :])
    if kind == 2 and problem.steps:
        left, _, right = problem.steps[-1].split(" = ")[0].split(" ")
        a, b = int(left), int(right)
        others = [v for v in (a + b, a - b, a * b) if v != answer and v >= 0]
        if others:
            return rng.choice(others)
    return answer + rng.choice((-1, 1)) if answer > 0 else answer + 1


def verifier_completion(problem: Problem, proposed: int) -> str:
    work = " ".join(f"{step}." for step in problem.steps)
    right = proposed == problem.answer
    check = "matches" if right else "does not match"
    verdict = "correct" if right else "incorrect"
    return f"{work} The answer is {problem.answer}, which {check} the proposed answer {proposed}. \\boxed{{{verdict}}}"


def verifier_example(rng: random.Random, problem: Problem, correct: bool) -> dict:
    """A Verifier chat (prompts.verifier_messages) with the right answer or a near miss proposed."""
    proposed = problem.answer if correct else near_miss(rng, problem)
    return {"prompt": verifier_messages(problem.question, str(proposed)),
            "completion": [{"role": "assistant", "content": verifier_completion(problem, proposed)}],
            "role": "verifier"}


def warmup_examples(
    steps: int, batch_size: int, seed: int, *, challenger_share: float = 0.5, word_share: float = 0.25,
    verifier_share: float = 0.0,
) -> list[dict]:
    """`steps x batch_size` prompt/completion chats (TRL's conversational prompt-completion format), seeded,
    in training order. Each batch of `batch_size` holds one role only (a share `verifier_share` of the batches
    are Verifier examples, and a share `challenger_share` of the others Challenger examples): the Challenger's
    prompt is ~200 tokens and the Solver's ~50, so mixed batches would pad every Solver example to the
    Challenger's length. Verifier examples alternate right and wrong proposed answers (balanced to within one).
    With `verifier_share` 0 the examples are those of a run without a Verifier, draw for draw."""
    rng = random.Random(seed)
    examples, verdicts = [], 0
    for _ in range(steps):
        verifier = bool(verifier_share) and rng.random() < verifier_share
        challenger = not verifier and rng.random() < challenger_share
        for _ in range(batch_size):
            problem = draw_problem(rng, word_share)
            if verifier:
                examples.append(verifier_example(rng, problem, correct=verdicts % 2 == 0))
                verdicts += 1
                continue
            if challenger:
                prompt, completion, role = challenger_messages(), challenger_completion(problem), "challenger"
            else:
                prompt, completion, role = solver_messages(problem.question), solver_completion(problem), "solver"
            examples.append({"prompt": prompt, "completion": [{"role": "assistant", "content": completion}],
                             "role": role})
    return examples
