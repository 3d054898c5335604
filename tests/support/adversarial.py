r"""Adversarial model answers, by class, and normal answers to hide them in (a plain module; the fault suite
and bench/grading.py both use it).

Each class is a generator `(rng) -> answer` with random parameters, so most adversarial answers are
distinct (a repeated one is cheap: the grading pool remembers answers that ran out of time):

- latex_bomb: power towers, huge factorials, deep `\frac` / `\sqrt` nests (sympy hangs or explodes);
- giant_number: numbers beyond Python's 4,300-digit int() limit, as integers, fractions, `\frac`, decimals;
- unbalanced: unclosed or stray braces and `\left(` without `\right)`;
- non_utf8: what a tokenizer makes of invalid bytes (U+FFFD), lone surrogates (surrogateescape), NULs;
- huge: 50 KB answers (sums, text, LaTeX, a matrix).
"""

from __future__ import annotations

import random

ADVERSARIAL_CLASSES = ("latex_bomb", "giant_number", "unbalanced", "non_utf8", "huge")


def latex_bomb(rng: random.Random) -> str:
    base = rng.randint(2, 9)
    depth = rng.randint(150, 400)
    return rng.choice([
        f"{base}^{{{base}^{{{base}^{{{base}^{{{base}}}}}}}}}",
        rf"\dfrac{{{base}^{{{base}^{{{base}^{{{base}^{base}}}}}}}}}{{{base}^{{{base}^{{{base}^{base}}}}}}}",
        f"({rng.randint(10, 99)}^{{{rng.randint(10, 99)}}})!",
        r"\frac{1}{" * depth + str(base) + "}" * depth,
        r"\sqrt{" * depth + str(base) + "}" * depth,
    ])


def giant_number(rng: random.Random) -> str:
    digits = "".join(rng.choice("123456789") for _ in range(rng.randint(4400, 5000)))
    return rng.choice([f"1/{digits}", rf"\frac{{1}}{{{digits}}}", f"0.{digits}", f"-{digits}", digits])


def unbalanced(rng: random.Random) -> str:
    value = rng.randint(1, 999)
    return rng.choice([
        rf"\frac{{{value}}}{{2", "}}}{{" + str(value), rf"\left( x+{value}", r"\sqrt{" + str(value),
        "{" * rng.randint(1, 50) + str(value), str(value) + "}" * rng.randint(1, 50), rf"\boxed{{{value}",
    ])


def non_utf8(rng: random.Random) -> str:
    value = rng.randint(1, 999)
    raw = bytes([rng.choice([0xFF, 0xFE, 0xC3, 0x80, 0xED])]) + str(value).encode()
    return rng.choice([
        raw.decode("utf-8", errors="replace"),  # what a tokenizer's decode gives for invalid bytes
        raw.decode("utf-8", errors="surrogateescape"),  # lone surrogates
        f"{value}\x00{value}", "\ufffd" * rng.randint(1, 20),
    ])


def huge(rng: random.Random) -> str:
    size = 50_000
    return rng.choice([
        "1+" * (size // 2) + "1",
        "".join(rng.choice("abcdefghij ") for _ in range(size)),
        r"\sqrt{2}+" * (size // 9),
        r"\begin{pmatrix}" + "&".join(str(rng.randint(0, 9)) for _ in range(size // 2)) + r"\end{pmatrix}",
    ])


GENERATORS = {name: globals()[name] for name in ADVERSARIAL_CLASSES}


def normal_answers(rng: random.Random, samples: int) -> list[str | None]:
    """One question's m answers as a model writes them: a majority value in several notations, some
    wrong values, some missing."""
    gold = rng.randint(1, 500)
    forms = [str(gold), f"{gold}.0", rf"\frac{{{2 * gold}}}{{2}}", f"x = {gold}", f"{gold} \\text{{ dollars}}"]
    answers: list[str | None] = []
    for _ in range(samples):
        roll = rng.random()
        answers.append(rng.choice(forms) if roll < 0.6 else None if roll < 0.7 else str(gold + rng.randint(1, 9)))
    return answers


def mixed_answer_lists(questions: int, samples: int, share: float, seed: int = 0,
                       classes: tuple[str, ...] = ADVERSARIAL_CLASSES
                       ) -> tuple[list[list[str | None]], list[tuple[int, int]]]:
    """`questions` lists of `samples` answers with about `share` of all answers replaced by adversarial
    ones (classes in turn); returns (answer lists, (question, sample) of each adversarial answer)."""
    rng = random.Random(seed)
    lists = [normal_answers(rng, samples) for _ in range(questions)]
    count = max(1, round(share * questions * samples))
    slots = rng.sample([(q, s) for q in range(questions) for s in range(samples)], count)
    for index, (question, sample) in enumerate(slots):
        lists[question][sample] = GENERATORS[classes[index % len(classes)]](rng)
    return lists, slots
