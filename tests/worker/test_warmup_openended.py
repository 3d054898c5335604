"""The open-ended warm-up's examples (warmup_openended.py): each role's format, read back by the loop's own parsers
(prompts_openended.read_task, grading/scores.parse_scores); the judge's scores vary; the same seed, the same data."""

from collections import Counter

import pytest

from rzero_worker.grading.scores import parse_scores
from rzero_worker.prompts_openended import (
    judge_messages, open_challenger_messages, open_solver_messages, read_task,
)
from rzero_worker.warmup_openended import description_words, openended_examples

DESCRIPTION = "short, practical everyday writing: emails, notes, messages"
RUBRIC = ("clarity", "helpfulness", "tone")


def examples(seed=3, **shares):
    return openended_examples(30, 4, seed, description=DESCRIPTION, criteria=RUBRIC,
                              **{"verifier_share": 0.3, **shares})


def by_role(rows, role):
    return [row for row in rows if row["role"] == role]


def completion(row) -> str:
    return row["completion"][0]["content"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_challenger_example_is_the_open_challenger_prompt_and_one_readable_task_built_from_the_description(seed):
    rows = by_role(examples(seed), "challenger")
    assert rows
    words = description_words(DESCRIPTION)
    for row in rows:
        assert row["prompt"] == open_challenger_messages(DESCRIPTION)
        task = read_task(completion(row))
        assert task is not None and completion(row) == f"<task>\n{task}\n</task>"
        assert any(word in task for word in words)


def test_every_judge_example_ends_in_a_box_the_scores_parser_reads_with_every_rubric_criterion():
    rows = by_role(examples(), "verifier")
    assert rows
    for row in rows:
        scores = parse_scores(completion(row), RUBRIC)
        assert scores is not None and set(scores) == set(RUBRIC)
        user = row["prompt"][1]["content"]
        task, response = user.removeprefix("Task:\n").split("\n\nResponse:\n")
        assert row["prompt"] == judge_messages(DESCRIPTION, RUBRIC, task, response)


def test_the_judge_examples_scores_vary_across_examples_and_criteria_and_follow_the_observed_properties():
    rows = by_role(examples(verifier_share=1.0), "verifier")
    scores = [parse_scores(completion(row), RUBRIC) for row in rows]
    means = Counter(round(sum(s.values()) / len(s)) for s in scores)
    assert len(means) >= 5  # not one constant score
    assert any(len(set(s.values())) > 1 for s in scores)  # criteria are not always scored alike
    for row in rows:  # the observation lists the task's words that the response holds
        user, text = row["prompt"][1]["content"], completion(row)
        listed = text.removeprefix("Task words in the response: ").split(" (")[0]
        task, response = user.removeprefix("Task:\n").split("\n\nResponse:\n")
        assert listed == "none" or all(w in task.lower() and w in response.lower() for w in listed.split(", "))
    on, off = [], []
    for row, s in zip(rows, scores):
        mentioned = int(completion(row).split(" (")[1].split(" of ")[0])
        (on if mentioned == 3 else off if mentioned == 0 else []).append(sum(s.values()) / len(s))
    assert on and off and sum(on) / len(on) > sum(off) / len(off) + 2  # addressing the task scores higher


def test_solver_examples_are_plain_responses_to_the_tasks():
    for row in by_role(examples(), "solver"):
        assert row["prompt"][0] == open_solver_messages("x")[0] and row["prompt"][1]["content"]
        text = completion(row)
        assert text.strip() and "<task>" not in text and "\\boxed" not in text


def test_each_batch_is_one_role_the_shares_hold_and_the_seed_fixes_the_data():
    rows = examples(verifier_share=0.3, challenger_share=0.5)
    batches = [rows[i : i + 4] for i in range(0, len(rows), 4)]
    assert all(len({row["role"] for row in batch}) == 1 for batch in batches)
    assert set(Counter(row["role"] for row in rows)) == {"challenger", "solver", "verifier"}
    assert not by_role(examples(verifier_share=0.0), "verifier")
    assert examples(seed=4) == examples(seed=4) and examples(seed=4) != examples(seed=5)


def test_a_description_without_content_words_still_gives_tasks():
    assert description_words("the and of") == ("text",)
    assert description_words("Emails, emails and NOTES") == ("emails", "notes")
