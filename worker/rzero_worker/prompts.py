"""The chat prompts of the roles: R-Zero's Challenger and Solver, and rzero's Verifier.

The first two are taken from the reference code (Chengsong-Huang/R-Zero on GitHub): the Challenger prompt is the
`questioner_format` branch of its `verl/utils/dataset.py` (also used by `question_generate.py`), the
Solver prompt is the system message its `question_evaluate.py` and solver training use. Keep them word
for word: the Challenger is rewarded for following this exact format, and the parser in
`rzero_worker.grading` expects `<question>...</question>` followed by `\\boxed{...}`.

The Verifier's prompt is rzero's own (DESIGN.md §5; R-Zero has no third role): it shows a problem and a proposed
final answer and asks for a check, then a verdict as the last `\\boxed{correct}` or `\\boxed{incorrect}`
(`grading.parse_verdict` reads it). A box, not a new tag: every role of rzero ends on a `\\boxed{}`, so a maths
model already writes one, and one extraction rule (the last complete box) reads all three roles. Keep the words
fixed: a trained Verifier would be rewarded for this exact format, and its accuracy is compared across runs.
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

# spec.corpus: the Challenger reads a passage of the run's documents and asks about it (rzero's own wording,
# after SPICE, arXiv 2510.24684; the output format is R-Zero's, so the same parser and format rule apply).
# The Solver is never shown the passage, so the question must stand on its own.
GROUNDED_CHALLENGER_SYSTEM_PROMPT = (
    "You are an expert examiner. You are given a passage from a document.\n"
    "FIRST, in your private scratch-pad, think step-by-step to design one new, non-trivial question whose answer "
    "is stated in or follows from the passage, with a short exact answer: a number, a name, a value or a few "
    "words. The question will be asked WITHOUT the passage, so it must be self-contained: name the subject it is "
    "about and never refer to \"the passage\" or \"the text\".\n"
    "THEN, without revealing any of your private thoughts, output **exactly** the following two blocks:\n\n"
    "<question>\n"
    "{The full question on one or more lines}\n"
    "</question>\n\n"
    r"\boxed{final_answer}"
    "\n\n"
    "Do NOT output anything else—no explanations, no extra markup."
)

GROUNDED_CHALLENGER_USER_PROMPT = (
    "<passage>\n{passage}\n</passage>\n\n"
    "Generate one question answerable from this passage, with its answer. "
    "Remember to format the output exactly as instructed."
)

# spec.anchors (R-Few, arXiv 2512.02472): k human-written question/answer pairs shown to the Challenger before its
# task, in the output format it is asked for (rzero's own wording). The pairs are data from a file: untrusted text,
# only ever shown between the <example> tags.
ANCHOR_EXAMPLES_INTRO = (
    "Here are examples of good questions written by people, each with its answer. "
    "Do not copy them: write a new question of your own.\n\n"
)


def anchor_examples(pairs: list[tuple[str, str]]) -> str:
    """The examples block for (question, answer) pairs; empty without pairs."""
    if not pairs:
        return ""
    shown = "".join(f"<example>\n<question>\n{q}\n</question>\n\\boxed{{{a}}}\n</example>\n" for q, a in pairs)
    return ANCHOR_EXAMPLES_INTRO + shown + "\n"


def with_examples(messages: list[dict], pairs: list[tuple[str, str]]) -> list[dict]:
    """`messages` (a Challenger chat) with the examples block before its user turn; unchanged without pairs."""
    if not pairs:
        return messages
    return [*messages[:-1], {**messages[-1], "content": anchor_examples(pairs) + messages[-1]["content"]}]


SOLVER_SYSTEM_PROMPT = r"Please reason step by step, and put your final answer within \boxed{}."


def challenger_messages() -> list[dict]:
    """The chat the Challenger answers with one new question (the same for every sample)."""
    return [
        {"role": "system", "content": CHALLENGER_SYSTEM_PROMPT},
        {"role": "user", "content": CHALLENGER_USER_PROMPT},
    ]


def grounded_challenger_messages(passage: str) -> list[dict]:
    """The chat the Challenger answers with one question grounded in `passage` (document text: untrusted, it
    is only ever shown between the <passage> tags)."""
    return [
        {"role": "system", "content": GROUNDED_CHALLENGER_SYSTEM_PROMPT},
        {"role": "user", "content": GROUNDED_CHALLENGER_USER_PROMPT.replace("{passage}", passage)},
    ]


def solver_messages(question: str) -> list[dict]:
    """The chat the Solver answers: reason step by step, final answer in \\boxed{}."""
    return [
        {"role": "system", "content": SOLVER_SYSTEM_PROMPT},
        {"role": "user", "content": question},
    ]


VERIFIER_SYSTEM_PROMPT = (
    "You are a careful verifier of math answers. You are given a problem and a proposed final answer. "
    "Check step by step whether the proposed answer is correct. Then end with your verdict, exactly one of "
    r"\boxed{correct} or \boxed{incorrect}, and nothing after it."
)


def verifier_user_prompt(question: str, answer: str) -> str:
    """The Verifier's user turn: the problem, then the proposed answer (both untrusted model text, as data)."""
    return f"Problem:\n{question}\n\nProposed final answer: {answer}"


def verifier_messages(question: str, answer: str) -> list[dict]:
    """The chat the Verifier answers for one (question, answer) pair: a check, then \\boxed{correct|incorrect}."""
    return [
        {"role": "system", "content": VERIFIER_SYSTEM_PROMPT},
        {"role": "user", "content": verifier_user_prompt(question, answer)},
    ]
