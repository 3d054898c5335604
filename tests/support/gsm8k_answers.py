r"""Solver outputs for GSM8K questions, built from the gold answers (a plain module: bench/grading.py and
tests/worker/grading/test_ruler.py use it). Each set is (outputs per question, the (gold, category, answer,
is the gold value) behind each output that gives an answer).

`realistic_set`: what a Solver samples at temperature 1 for GSM8K questions, in these proportions:
- per question an accuracy drawn from Beta(3, 1.2) (mean 0.71); a wrong output takes one of the question's
  three popular wrong values (gold ± a slip, twice the gold, gold minus a few) 60% of the time, any integer
  up to 3 × gold 25%, a non-integer 15% (gold ± 1/den for den 2, 3 or 4);
- an integer is written `18` 90%, `\$18` 3%, `18 \text{ unit}` 2%, `18.00` 1.5%, `1,800` 1.5% (plain below
  1,000), `18\%` 1%, `18 apples` 1%; a non-integer `4.5` 60% (halves to one place, quarters and thirds to
  two), `\frac{9}{2}` 30%, `9/2` 10%;
- an output ends in `$\boxed{...}$` 88%, has an earlier box for a step before its final box 3%, is cut off
  by the length limit before any box 4%, gives its answer unboxed 3%, in `\fbox{}` 1%, in `\boxed {...}` 1%.

`notation_set`: a stress set of notations (for the checkers' comparison by category): equivalent forms of
the gold (`\frac{36}{2}`, `x = 18`, surds...), halves as fractions, wrong answers of every kind, more
`\fbox`, unboxed and truncated outputs than models write.

`hang_set`: three realistic questions, each with one answer that makes mathruler's sympy compute a power tower
(it hangs until a timeout) after a fractional answer (mathruler hands the pair to sympy only when neither is
an integer), to measure the hang handling on its own.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "gsm8k-test.jsonl"
HANG_INPUTS = ["10**10**10 + x", "9**9**9**9 - y", "7**7**7**7*x"]  # sympy evaluates the tower in C
UNITS = ["dollars", "apples", "hours", "minutes", "cm", "miles", "cookies", "students", "pages"]
REASONING = "Let me work through this step by step. "


def load_golds(path: Path, count: int) -> list[int]:
    golds = []
    with path.open() as lines:
        for line in lines:
            answer = json.loads(line)["answer"].split("####")[-1].strip().replace(",", "")
            if answer.lstrip("-").isdigit():
                golds.append(int(answer))
            if len(golds) == count:
                break
    return golds


def random_golds(count: int, seed: int = 0) -> list[int]:
    """Integers spread as GSM8K's golds are (mostly below 1,000, some up to 100,000)."""
    rng = random.Random(seed)
    return [int(10 ** rng.uniform(0, 5)) if rng.random() < 0.9 else rng.randint(0, 9) for _ in range(count)]


# --------------------------------------------------------------------------------------------------
# realistic


def integer_notation(value: int, rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    for threshold, category, text in (
        (0.90, "integer", f"{value}"),
        (0.93, "dollar sign", f"\\${value}"),
        (0.95, "text unit", f"{value} \\text{{ {rng.choice(UNITS)}}}"),
        (0.965, "decimal .00", f"{value}.00"),
        (0.98, "thousands comma", f"{value:,}"),
        (0.99, "percent", f"{value}\\%"),
    ):
        if roll < threshold:
            return (category if category != "thousands comma" or value >= 1000 else "integer"), text
    return "unit word", f"{value} {rng.choice(UNITS)}"


def fraction_notation(numerator: int, denominator: int, rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.6:  # halves to 1 place, quarters and thirds to 2
        return "decimal", f"{numerator / denominator:.{1 if denominator == 2 else 2}f}"
    if roll < 0.9:
        return "fraction", f"\\frac{{{numerator}}}{{{denominator}}}"
    return "slash fraction", f"{numerator}/{denominator}"


def wrong_answer(gold: int, popular: list[int], rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.6:
        return integer_notation(rng.choice(popular), rng)
    if roll < 0.85:
        value = rng.randint(0, max(10, 3 * gold))
        return integer_notation(value if value != gold else gold + 1, rng)
    denominator = rng.choice([2, 3, 4])
    return fraction_notation(gold * denominator + rng.choice([1, -1]) if gold else 1, denominator, rng)


def realistic_output(answer: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.88:
        return REASONING + f"So the answer is $\\boxed{{{answer}}}$."
    if roll < 0.91:
        return REASONING + f"First $\\boxed{{{rng.randint(1, 9)}}}$ for one part; in all, $\\boxed{{{answer}}}$."
    if roll < 0.95:
        return REASONING + "Then we multiply the number of"  # cut off by the length limit
    if roll < 0.98:
        return REASONING + f"The answer is {answer}."
    if roll < 0.99:
        return REASONING + f"The answer is $\\fbox{{{answer}}}$."
    return REASONING + f"The answer is $\\boxed {{{answer}}}$."


def realistic_set(golds: list[int], samples: int, seed: int) -> tuple[list[list[str]], list[list[tuple]]]:
    rng = random.Random(seed)
    outputs, pairs = [], []
    for gold in golds:
        accuracy = rng.betavariate(3, 1.2)
        slips = {max(0, rng.choice([gold - 2, gold - 1, gold + 1, gold + 2, gold + 10])), 2 * gold,
                 max(0, gold - rng.randint(3, 20))}
        popular = sorted(slips - {gold}) or [gold + 1]
        chosen = []
        for _ in range(samples):
            correct = rng.random() < accuracy
            category, answer = integer_notation(gold, rng) if correct else wrong_answer(gold, popular, rng)
            chosen.append((str(gold), category, answer, correct))
        outputs.append([realistic_output(answer, rng) for _, _, answer, _ in chosen])
        pairs.append(chosen)
    return outputs, pairs


def hang_set(golds: list[int], samples: int, seed: int) -> tuple[list[list[str]], list[list[tuple]]]:
    rng = random.Random(seed)
    outputs, pairs = realistic_set(golds[: len(HANG_INPUTS)], samples, seed)
    for question, gold, hang in zip(outputs, golds, HANG_INPUTS):
        question[0] = REASONING + f"So the answer is $\\boxed{{\\frac{{{2 * gold + 1}}}{{2}}}}$."
        question[rng.randrange(1, samples)] = REASONING + f"So the answer is $\\boxed{{{hang}}}$."
    return outputs, pairs


# --------------------------------------------------------------------------------------------------
# notation stress set

# Each notation: (category, template). Categories name how the answer is written, for the checker comparison.
INTEGER = [("integer", "{v}"), ("decimal .0", "{v}.0"), ("dollar sign", "\\${v}"), ("text unit", "{v} \\text{{ dollars}}"),
           ("unreduced fraction", "\\frac{{{d}}}{{2}}"), ("thousands comma", "{v:,}"), ("assignment", "x = {v}")]
HALF = [("decimal", "{h}"), ("fraction", "\\frac{{{v}}}{{2}}"), ("slash fraction", "{v}/2"),
        ("dfrac", "\\dfrac{{{v}}}{{2}}"), ("trailing zeros", "{z}")]
SYMBOLIC = [("surd", "{v}\\sqrt{{2}}"), ("surd as one root", "\\sqrt{{{s}}}"), ("surd product", "\\sqrt{{2}} \\cdot {v}"),
            ("braceless surd", "{v} \\sqrt 2")]


def forms(family: list, value: int) -> list[tuple[str, str]]:
    return [(category, template.format(v=value, d=2 * value, h=f"{value / 2:g}", z=f"{value / 2:.2f}", s=2 * value * value))
            for category, template in family]


def wrong_answers(value: int, rng: random.Random) -> list[tuple[str, str]]:
    return [("wrong integer", str(value + rng.choice([-3, -2, -1, 1, 2, 5, 10]))), ("wrong integer", str(value * 2)),
            ("wrong fraction", f"\\frac{{{value}}}{{3}}"), ("wrong surd", f"\\sqrt{{{value + 1}}}"),
            ("wrong decimal", f"{value + 0.5}"), ("wrong expression", f"x+{value}")]


def stress_output(answer: str | None, rng: random.Random) -> str:
    if answer is None:
        return REASONING + "I could not finish the computation."
    roll = rng.random()
    if roll < 0.70:
        return REASONING + f"So the answer is $\\boxed{{{answer}}}$."
    if roll < 0.80:
        return REASONING + f"First \\boxed{{{rng.randint(1, 9)}}} for the first part; in all, $\\boxed{{{answer}}}$."
    if roll < 0.85:
        return REASONING + f"The answer is $\\fbox{{{answer}}}$."
    if roll < 0.90:
        return REASONING + f"The answer is $\\boxed {{{answer}}}$."
    if roll < 0.95:
        return REASONING + f"The answer is {answer}."
    return REASONING + f"So the answer is \\boxed{{{answer}"  # truncated


def notation_set(golds: list[int], samples: int, seed: int) -> tuple[list[list[str]], list[list[tuple]]]:
    rng = random.Random(seed)
    outputs, pairs = [], []
    for gold in golds:
        kind = rng.random()
        family = forms(HALF, gold) if kind < 0.25 else forms(SYMBOLIC, gold) if kind < 0.4 else forms(INTEGER, gold)
        correct = rng.randint(max(1, samples // 4), samples)
        wrong_pool = wrong_answers(gold, rng)
        chosen = [(*rng.choice(family), True) for _ in range(correct)]
        chosen += [(*rng.choice(wrong_pool), False) if rng.random() < 0.8 else None for _ in range(samples - correct)]
        rng.shuffle(chosen)
        outputs.append([stress_output(item[1] if item else None, rng) for item in chosen])
        pairs.append([(family[0][1], *item) for item in chosen if item])
    return outputs, pairs
