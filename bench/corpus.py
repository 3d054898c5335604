r"""Reading a real corpus (spec.corpus): the Python 3.11 Library Reference as passages, and the same corpus with
bad documents mixed in.

    .venv/bin/python bench/corpus.py [--data ../shared/data/python-3.11-library.jsonl] [--prompts 8000]
                                     [--passage-chars 1500] [--overlap-chars 200]

clean: the corpus as it is (1,797 sections, 6.2 M characters): documents, passages, duplicates, passage lengths
(min / median / max characters), read time (best of 3). messy: the same lines with one bad line of each kind
after every 10th (not UTF-8, a lone-surrogate escape, a NUL, blank text, malformed JSON, no text field, over
maxDocumentBytes, here 100,000 bytes: the largest section has 87,216): every bad line must be skipped under its reason and the good documents read as before.
sampling: passages that --prompts prompts of one generate shard read (seed 0, iteration 1), how many distinct
passages and documents they cover. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "operator"), str(REPO / "worker")]

from rzero_worker.corpus import read_corpus  # noqa: E402
from rzero_worker.task import CorpusSettings  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "python-3.11-library.jsonl"
BAD_LINES = {
    "not_utf8": b'{"id": "bad", "text": "caf\xe9"}',
    "lone_surrogate": b'{"id": "bad", "text": "\\ud800"}',
    "binary": b'{"id": "bad", "text": "a\\u0000b"}',
    "empty": b'{"id": "bad", "text": " "}',
    "malformed_json": b'{"id": "bad", "text": ',
    "no_text": b'{"id": "bad", "body": "x"}',
    "too_large": b'{"id": "bad", "text": "' + b"x" * 200_000 + b'"}',
}


def passage_keys(corpus) -> list[tuple]:
    return [(p.document_id, p.start, p.end, p.text) for p in corpus.passages]


def timed_read(settings: CorpusSettings):
    best, corpus = float("inf"), None
    for _ in range(3):
        start = time.perf_counter()
        corpus = read_corpus(settings)
        best = min(best, time.perf_counter() - start)
    return corpus, round(best, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--prompts", type=int, default=8000)
    parser.add_argument("--passage-chars", type=int, default=1500)
    parser.add_argument("--overlap-chars", type=int, default=200)
    args = parser.parse_args()
    fields = {"passage_chars": args.passage_chars, "overlap_chars": args.overlap_chars,
              "max_document_bytes": 100_000}
    clean, clean_s = timed_read(CorpusSettings(uri=str(args.data), **fields))
    lengths = [len(p.text) for p in clean.passages]
    lines = args.data.read_bytes().split(b"\n")
    messy_lines = []
    for number, line in enumerate(lines):
        messy_lines.append(line)
        if number % 10 == 0:
            messy_lines.extend(BAD_LINES.values())
    with tempfile.TemporaryDirectory() as scratch:
        messy_file = Path(scratch) / "messy.jsonl"
        messy_file.write_bytes(b"\n".join(messy_lines))
        messy, messy_s = timed_read(CorpusSettings(uri=str(messy_file), **fields))
    injected = sum(1 for number in range(len(lines)) if number % 10 == 0)
    picks = [clean.sample(0, 1, index) for index in range(args.prompts)]
    result = {
        "clean": {**{k: v for k, v in clean.stats().items() if k != "digest"}, "seconds": clean_s,
                  "passage_chars": {"min": min(lengths), "median": statistics.median(lengths), "max": max(lengths)}},
        "messy": {"bad_lines_per_reason": injected, "skipped": messy.stats()["skipped"],
                  "documents": messy.documents, "same_passages_as_clean": passage_keys(messy) == passage_keys(clean),
                  "seconds": messy_s},
        "sampling": {"prompts": args.prompts, "distinct_passages": len({(p.document_id, p.start) for p in picks}),
                     "distinct_documents": len({p.document_id for p in picks})},
    }
    ok = all(result["messy"]["skipped"][reason] == injected for reason in BAD_LINES)
    print(json.dumps({**result, "messy_all_skipped_by_reason": ok}))
    return 0 if ok and result["messy"]["same_passages_as_clean"] else 1


if __name__ == "__main__":
    sys.exit(main())
