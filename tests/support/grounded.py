"""Test helpers for runs grounded in spec.corpus (a plain module, not a pytest plugin)."""

from __future__ import annotations

from pathlib import Path

from rzero_worker.task import CorpusSettings


def write_corpus(root: Path, count: int = 5) -> CorpusSettings:
    """`count` small text documents under `root`, and corpus settings that read them."""
    root.mkdir(parents=True)
    for i in range(count):
        (root / f"doc{i}.txt").write_text(f"Document {i} says the answer is {i * 7}. " * 3)
    return CorpusSettings(uri=str(root), passage_chars=200, overlap_chars=40)


def shown_passage(prompt: list[dict]) -> str:
    """The passage a grounded Challenger prompt shows."""
    return prompt[1]["content"].split("<passage>\n", 1)[1].split("\n</passage>", 1)[0]


class PassageEcho:
    """A Challenger that asks about the passage it is shown (answer: its document's number), and records every
    prompt."""

    def __init__(self):
        self.prompts = []

    def generate(self, prompts, n, sampling, seed):
        self.prompts.extend(prompts)
        return [[f"<question>Which number does '{shown_passage(p)[:10]}' give?</question> "
                 f"\\boxed{{{shown_passage(p)[9]}}}"] * n for p in prompts]


def write_anchors(path: Path, count: int = 4, **settings):
    """`count` anchors (question "Anchor question i?", answer "i") and one malformed line in `path`; their
    AnchorInput (no evaluation benchmark)."""
    import json

    from rzero_worker.task import AnchorInput, AnchorSettings

    path.write_text("".join(json.dumps({"question": f"Anchor question {i}?", "answer": str(i)}) + "\n"
                            for i in range(count)) + "not json\n")
    return AnchorInput(settings=AnchorSettings(uri=str(path), **settings))
