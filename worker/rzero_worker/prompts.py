"""The two chat prompts of R-Zero: the Challenger's and the Solver's.

Both are taken from the reference code (Chengsong-Huang/R-Zero on GitHub): the Challenger prompt is the
`questioner_format` branch of its `verl/utils/dataset.py` (also used by `question_generate.py`), the
Solver prompt is the system message its `question_evaluate.py` and solver training use. Keep them word
for word: the Challenger is rewarded for following this exact format, and the parser in
`rzero_worker.grading` expects `<question>...</question>` followed by `\\boxed{...}`.
"""

from __future__ import annotations

CHALLENGER_SYSTEM_PROMPT = (
    "You are an expert competition-math problem setter.\n"
    "FIRST, in your private scratch-pad, think step-by-step to design a brand-new, non-trivial problem. "
    "The problem could come from any field of mathematics, including but not limited to algebra, geometry, "
    "number theory, combinatorics, prealgebra, probability, statistics, and calculus. "
    "Aim for a difficulty such that fewer than 30 % of advanced high-school students could solve it. "
    "Avoid re-using textbook clichés or famous contest problems.\n"
    "THEN, without revealing any of your private thoughts, output **exactly** the following two blocks:\n\n"
    "<question>\n"
    "{The full problem statement on one or more lines}\n"
    "</question>\n\n"
    r"\boxed{final_answer}"
    "\n\n"
    "Do NOT output anything else—no explanations, no extra markup."
)

CHALLENGER_USER_PROMPT = (
    "Generate one new, challenging reasoning question now. "
    "Remember to format the output exactly as instructed."
)

SOLVER_SYSTEM_PROMPT = r"Please reason step by step, and put your final answer within \boxed{}."


def challenger_messages() -> list[dict]:
    """The chat the Challenger answers with one new question (the same for every sample)."""
    return [
        {"role": "system", "content": CHALLENGER_SYSTEM_PROMPT},
        {"role": "user", "content": CHALLENGER_USER_PROMPT},
    ]


def solver_messages(question: str) -> list[dict]:
    """The chat the Solver answers: reason step by step, final answer in \\boxed{}."""
    return [
        {"role": "system", "content": SOLVER_SYSTEM_PROMPT},
        {"role": "user", "content": question},
    ]
