"""Small benchmark files in each paper benchmark's published layout (a plain module, not a pytest plugin).

`PUBLISHED_ROWS[preset]` are a few rows with the fields the Hub dataset has (not only the ones rzero reads),
chosen for awkward golds: fractions, tuples, intervals, LaTeX in `$...$`, floats for integers, answers
with units, option letters beyond D. `HAND_GRADED` pairs model outputs written by hand with what the
evaluation must read from them and whether that is right, item by item. Nothing here is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

TEN_OPTIONS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]

PUBLISHED_ROWS: dict[str, list[dict]] = {
    "math500": [
        {"problem": "Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.",
         "solution": "We have $r = 3$ ... $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$",
         "answer": "\\left( 3, \\frac{\\pi}{2} \\right)", "subject": "Precalculus", "level": 2,
         "unique_id": "test/precalculus/807.json"},
        {"problem": "Solve $3x = 14$.", "solution": "$x = \\boxed{\\frac{14}{3}}$", "answer": "\\frac{14}{3}",
         "subject": "Algebra", "level": 1, "unique_id": "test/algebra/1.json"},
        {"problem": "For which $x$ is $x^2 \\ge 4$?", "solution": "...", "answer": "(-\\infty,-2] \\cup [2,\\infty)",
         "subject": "Algebra", "level": 3, "unique_id": "test/algebra/2.json"},
    ],
    "gsm8k": [
        {"question": "A bike costs 1,000 dollars plus 200 dollars of tax. What is the total?",
         "answer": "1,000 + 200 = <<1000+200=1200>>1,200\n#### 1,200"},
        {"question": "Tom has 3 bags of 6 apples. How many apples?", "answer": "3*6=<<3*6=18>>18\n#### 18"},
    ],
    "amc23": [
        {"id": 0, "question": "What is 3 cubed?", "answer": 27.0, "url": "https://example.org/amc23/0"},
        {"id": 1, "question": "What is one half as a decimal?", "answer": 0.5, "url": "https://example.org/amc23/1"},
    ],
    "minerva": [
        {"problem": "A car drives at 60 km/h for half an hour. How far does it go, in km?",
         "solution": "Distance is $60 \\times 0.5 = 30$ km.", "answer": "30 \\text{ km}", "type": "Physics"},
        {"problem": "Compute $\\sin(\\pi/3)$.", "solution": "...", "answer": "\\frac{\\sqrt{3}}{2}", "type": "Math"},
    ],
    "olympiadbench": [
        {"id": 2231, "question": "Find all real $x$ with $x \\le 1$.", "solution": ["..."],
         "final_answer": ["$(-\\infty, 1]$"], "context": None, "is_multiple_answer": False,
         "unit": None, "answer_type": "Interval", "subfield": "Algebra"},
        {"id": 2232, "question": "Compute $1/2$.", "solution": ["..."], "final_answer": ["$\\frac{1}{2}$"],
         "context": None, "is_multiple_answer": False, "unit": None, "answer_type": "Numerical", "subfield": "Algebra"},
    ],
    "aime24": [
        {"id": 60, "problem": "Find the remainder when 1033 is divided by 1000.", "solution": "...",
         "answer": "033", "url": "https://example.org/aime24/60", "year": "2024"},
    ],
    "aime25": [
        {"id": "I-1", "problem": "Find the sum of 30 and 40.", "answer": 70, "url": "https://example.org/aime25/1",
         "year": 2025},
    ],
    "mmlu-pro": [
        {"question_id": 70, "question": "What is 9 times 1?", "options": TEN_OPTIONS, "answer": "I",
         "answer_index": 8, "cot_content": "", "category": "math", "src": "ori_mmlu-high_school_mathematics"},
        {"question_id": 71, "question": "Which number is 3?", "options": TEN_OPTIONS, "answer": "C",
         "answer_index": 2, "cot_content": "", "category": "math", "src": "ori_mmlu-high_school_mathematics"},
        {"question_id": 72, "question": "Which number is 10?", "options": TEN_OPTIONS, "answer": "J",
         "answer_index": 9, "cot_content": "", "category": "math", "src": "ori_mmlu-high_school_mathematics"},
    ],
    "supergpqa": [
        {"uuid": "a1", "question": "Which city is the capital of France?",
         "options": ["Rome", "Berlin", "Madrid", "Lisbon", "Vienna", "Oslo", "Paris", "Prague"],
         "answer": "Paris", "answer_letter": "G", "discipline": "History", "field": "World History",
         "subfield": "Europe", "difficulty": "easy", "is_calculation": False},
    ],
    "bbeh": [
        {"question": "Which option is the first one? (a) first (b) second", "answer": "(a)", "task": "disambiguation qa"},
        {"question": "Is 'not True' true?", "answer": "False", "task": "boolean expressions"},
        {"question": "How many legs does a tripod have?", "answer": "3", "task": "object counting"},
    ],
}

# (preset, row, hand-written output, prediction read from it, is it right?)
HAND_GRADED: list[tuple[str, int, str, str | None, bool]] = [
    ("math500", 0, "So the point is $\\boxed{\\left(3,\\frac{\\pi}{2}\\right)}$.", "\\left(3,\\frac{\\pi}{2}\\right)", True),
    ("math500", 1, "Dividing, $x \\approx \\boxed{4.67}$.", "4.67", False),
    ("math500", 1, "First \\boxed{14}, no: $x = \\boxed{\\dfrac{14}{3}}$", "\\dfrac{14}{3}", True),
    ("math500", 2, "\\boxed{(-\\infty,-2]\\cup[2,\\infty)}", "(-\\infty,-2]\\cup[2,\\infty)", True),
    ("gsm8k", 0, "The total is \\boxed{1200} dollars.", "1200", True),
    ("gsm8k", 1, "3 bags of 6 is \\boxed{18 \\text{ apples}}", "18 \\text{ apples}", True),
    ("gsm8k", 0, "Without tax: \\boxed{1,000}", "1,000", False),
    ("amc23", 0, "\\boxed{27}", "27", True),
    ("amc23", 1, "\\boxed{\\frac12}", "\\frac12", True),
    ("amc23", 0, "\\boxed{28}", "28", False),
    ("minerva", 0, "It travels \\boxed{30}.", "30", True),
    ("minerva", 1, "\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}", True),
    ("minerva", 1, "\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", False),
    ("olympiadbench", 0, "Hence $x \\in \\boxed{(-\\infty, 1]}$", "(-\\infty, 1]", True),
    ("olympiadbench", 0, "\\boxed{[1, \\infty)}", "[1, \\infty)", False),
    ("olympiadbench", 1, "\\boxed{0.5}", "0.5", True),
    ("aime24", 0, "The remainder is \\boxed{33}.", "33", True),
    ("aime24", 0, "\\boxed{1033}", "1033", False),
    ("aime25", 0, "30 + 40 = \\boxed{70}", "70", True),
    ("aime25", 0, "The sum is \\boxed{70", None, False),  # truncated: the box never closes
    ("mmlu-pro", 0, "9 x 1 = 9, option (I). \\boxed{I}", "I", True),
    ("mmlu-pro", 1, "The answer is \\boxed{\\text{(C)}}", "C", True),
    ("mmlu-pro", 2, "Counting up... Final Answer: J\nDone.", "J", True),
    ("mmlu-pro", 0, "\\boxed{C. 3}", "C", False),
    ("supergpqa", 0, "\\boxed{G. Paris}", "G", True),
    ("supergpqa", 0, "Rome, so \\boxed{A}", "A", False),
    ("bbeh", 0, "The first option. \\boxed{(A)}", "(A)", True),
    ("bbeh", 1, "not True is \\boxed{false}", "false", True),
    ("bbeh", 2, "The answer is: 3.0\n", "3.0", True),
    ("bbeh", 2, "\\boxed{4}", "4", False),
]


def write_published(directory: Path, preset: str, rows: list[dict] | None = None, fmt: str = "jsonl") -> Path:
    """`rows` (default: PUBLISHED_ROWS[preset]) as `<directory>/<preset>.<fmt>` (jsonl or parquet)."""
    rows = PUBLISHED_ROWS[preset] if rows is None else rows
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{preset}.{fmt}"
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_all_published(directory: Path) -> dict[str, Path]:
    """Every preset's fixture; GSM8K and MMLU-Pro as Parquet (their Hub format), the rest as JSONL."""
    return {
        preset: write_published(directory, preset, fmt="parquet" if preset in ("gsm8k", "mmlu-pro") else "jsonl")
        for preset in PUBLISHED_ROWS
    }
