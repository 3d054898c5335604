"""The trained Verifier's examples (verifier_examples.py): which voted rows give examples of known truth, the
stronger source winning on the same answer, and the seeded held-out split by question."""

from rzero_worker.verifier_examples import label_examples, row_examples, sample, source_counts, split, with_audit


def row(qid="q1", label="4", score=1.0, classes=("4", "5", "None"), **extra) -> dict:
    return {"id": qid, "question": f"Q {qid}?", "label": label, "score": score, "class_answers": list(classes),
            "ungradable": False, "majority_none": False, **extra}


def pairs(examples):
    return [(e["answer"], e["correct"], e["source"]) for e in examples]


def test_a_high_consensus_label_is_correct_and_the_other_classes_answers_are_not():
    assert pairs(row_examples(row(), 0.9)) == [("4", True, "consensus"), ("5", False, "consensus")]  # "None": no answer
    assert row_examples(row(score=0.8), 0.9) == []  # not confident enough, and no oracle looked


def test_an_oracle_verdict_replaces_the_vote_and_a_wrong_labels_oracle_answer_is_correct():
    wrong = row(score=0.6, label_correct=False, oracle_answer="5")
    assert pairs(row_examples(wrong, 0.9)) == [("4", False, "oracle"), ("5", True, "oracle")]
    right = row(score=0.95, label_correct=True, oracle_answer="4")
    assert pairs(row_examples(right, 0.9)) == [("4", True, "oracle"), ("5", False, "oracle")]


def test_rows_without_a_gradable_vote_label_give_no_examples():
    assert row_examples(row(ungradable=True), 0.9) == row_examples(row(majority_none=True), 0.9) == []
    assert row_examples(row(label=None), 0.9) == row_examples(row(label="None"), 0.9) == []
    assert row_examples(row(vote_label="4", label="7"), 0.9) == []  # a document label: the vote is not about it


def test_a_persons_verdict_wins_over_the_label_phases_on_the_same_answer():
    examples = label_examples([row(), row("q2", "9")], 0.9)
    merged, used = with_audit(examples, [{"id": "q2", "question": "Q q2?", "label": "9"}], {"q2": False, "q3": True})
    assert used == 1 and pairs([e for e in merged if e["id"] == "q2"]) == [("9", False, "audit"), ("5", False, "consensus")]
    assert source_counts(merged) == {"consensus": 3, "oracle": 0, "audit": 1}


def test_the_held_out_split_is_by_question_seeded_and_never_empty_on_either_side():
    examples = label_examples([row(f"q{i}") for i in range(20)], 0.9)
    train, held = split(examples, 0.2, seed=7)
    assert {e["id"] for e in train}.isdisjoint({e["id"] for e in held})
    assert len({e["id"] for e in held}) == 4 and len(train) + len(held) == len(examples)
    assert split(examples, 0.2, seed=7) == (train, held) and split(examples, 0.2, seed=8) != (train, held)
    assert [len(side) for side in split(label_examples([row(), row("q2")], 0.9), 0.01, seed=1)] == [2, 2]
    assert split(label_examples([row()], 0.9), 0.5, seed=1)[1] == []  # one question: nothing to hold out
    assert sample(examples, 5, seed=1) == sample(examples, 5, seed=1) and len(sample(examples, 5, seed=1)) == 5
