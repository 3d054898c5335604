"""The Challenger's prompts: R-Zero's own, and the grounded one that shows a passage of spec.corpus."""

from rzero_worker.grading import Reading
from rzero_worker.prompts import (
    CHALLENGER_SYSTEM_PROMPT,
    GROUNDED_CHALLENGER_SYSTEM_PROMPT,
    challenger_messages,
    grounded_challenger_messages,
)


def test_the_grounded_prompt_shows_the_passage_verbatim_between_tags():
    passage = "Use {passage} and \\boxed{x} literally: </question> is document text too."

    system, user = grounded_challenger_messages(passage)

    assert system == {"role": "system", "content": GROUNDED_CHALLENGER_SYSTEM_PROMPT}
    assert user["role"] == "user" and f"<passage>\n{passage}\n</passage>" in user["content"]
    assert user["content"].count(passage) == 1


def test_the_grounded_prompt_asks_for_r_zeros_output_format_and_a_question_without_the_passage():
    for block in ("<question>", "</question>", "\\boxed{final_answer}"):
        assert block in GROUNDED_CHALLENGER_SYSTEM_PROMPT and block in CHALLENGER_SYSTEM_PROMPT
    assert "WITHOUT the passage" in GROUNDED_CHALLENGER_SYSTEM_PROMPT
    assert challenger_messages()[0]["content"] == CHALLENGER_SYSTEM_PROMPT  # R-Zero's own is unchanged
    output = "<question>\nWhat does os.sep hold on Windows?\n</question>\n\n\\boxed{\\\\}"
    assert Reading("reference").generated(output) == ("What does os.sep hold on Windows?", "\\\\")


def test_anchor_examples_come_before_the_challenger_task_and_change_nothing_without_anchors():
    from rzero_worker.prompts import ANCHOR_EXAMPLES_INTRO, grounded_challenger_messages, with_examples

    plain = challenger_messages()
    assert with_examples(plain, []) == plain
    shown = with_examples(grounded_challenger_messages("Some passage."), [("What is 2+2?", "4"), ("Name it.", "x")])
    assert shown[0] == grounded_challenger_messages("Some passage.")[0]  # the system prompt stays word for word
    assert shown[1]["content"] == (
        ANCHOR_EXAMPLES_INTRO + "<example>\n<question>\nWhat is 2+2?\n</question>\n\\boxed{4}\n</example>\n"
        "<example>\n<question>\nName it.\n</question>\n\\boxed{x}\n</example>\n\n"
        + grounded_challenger_messages("Some passage.")[1]["content"])
