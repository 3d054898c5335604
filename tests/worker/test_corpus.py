"""spec.corpus (rzero_worker/corpus.py): documents from a local path or S3 split into passages with their
provenance, deduplicated, sampled reproducibly; every kind of bad document skipped and counted, never fatal;
a corpus with no passage a configuration error (exit 2) that names the location."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from rzero_worker.cli import main as worker_main
from rzero_worker.corpus import SKIP_REASONS, CorpusError, passage_spans, read_corpus, sample_index
from rzero_worker.phases import load_phase
from rzero_worker.phases.context import ConfigurationError
from rzero_worker.phases.runner import run_phase
from rzero_worker.storage import is_committed, open_storage
from rzero_worker.task import CorpusSettings, GenerateTask, GenerationSettings, ModelInput

PYTHON_LIBRARY = Path(__file__).resolve().parents[3] / "shared" / "data" / "python-3.11-library.jsonl"
MAX_BYTES = 2000
GOOD = "The quick brown fox jumps over the lazy dog. " * 3


def settings(uri: str, **fields) -> CorpusSettings:
    return CorpusSettings(uri=uri, **{"max_document_bytes": MAX_BYTES, "passage_chars": 200, "overlap_chars": 40,
                                      **fields})


def jsonl(*lines: str | bytes) -> bytes:
    return b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines) + b"\n"


def parquet_bytes(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


# Every bad-document class once, beside good documents: file name -> bytes.
MESSY_CORPUS: dict[str, bytes] = {
    "guide.md": f"# Guide\n\n{GOOD}".encode(),
    "notes/readme.txt": "\ufeffNotes with a byte order mark. ".encode() + GOOD.encode(),
    "latin1.txt": "caf\xe9 au lait, ".encode("latin-1") + GOOD.encode(),  # not_utf8
    "blank.txt": b"  \n\t\n",  # empty
    "huge.txt": b"word " * 1000,  # too_large (5,000 bytes)
    "image.txt": b"GIF89a\x00\x01\x02" + GOOD.encode(),  # binary
    "photo.png": b"\x89PNG\r\n",  # unsupported_file
    ".hidden.txt": GOOD.encode(),  # ignored: not a document
    "docs.jsonl": jsonl(
        json.dumps({"id": "d1", "text": "Sets are unordered collections. " + GOOD}),
        '{"id": "d2", "text": "a lone surrogate \\ud800 in an escape"}',  # lone_surrogate
        json.dumps({"id": "d3", "text": "   "}),  # empty
        "{not json",  # malformed_json
        "[1, 2, 3]",  # malformed_json: not an object
        json.dumps({"id": "d4", "body": "no text field"}),  # no_text
        json.dumps({"id": "d5", "text": 42}),  # no_text
        b'{"id": "d6", "text": "caf\xe9"}',  # not_utf8
        json.dumps({"id": "d7", "text": "x" * (MAX_BYTES + 1)}),  # too_large
        json.dumps({"id": "d8", "text": "a NUL \u0000 byte"}),  # binary
        "",  # a blank line is no document
        json.dumps({"text": "No id here; a pair \ud83d\ude00 is fine. " + GOOD}, ensure_ascii=True),
        json.dumps({"id": 17, "text": "An integer id. " + GOOD}),
    ),
    "table.parquet": parquet_bytes([{"id": "p1", "text": "Parquet rows hold text too. " + GOOD},
                                    {"id": "p2", "text": None}]),  # no_text
    "broken.parquet": b"PAR1 not really",  # unreadable_file
}
EXPECTED_SKIPS = {"not_utf8": 2, "empty": 2, "too_large": 2, "binary": 2, "unsupported_file": 1,
                  "lone_surrogate": 1, "malformed_json": 2, "no_text": 3, "unreadable_file": 1}
EXPECTED_DOCUMENTS = {"guide.md", "notes/readme.txt", "d1", "docs.jsonl:12", "17", "p1"}


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.fixture
def corpus_location(storage_location):
    """The messy corpus under `corpus/` of a local directory or an S3 bucket; its uri."""
    storage = open_storage(storage_location)
    for name, data in MESSY_CORPUS.items():
        storage.put_bytes(f"corpus/{name}", data)
    return storage.uri_for("corpus")


def test_every_bad_document_class_is_skipped_and_counted_locally_and_on_s3(storage_location, corpus_location):
    corpus = read_corpus(settings(corpus_location), storage_location)

    stats = corpus.stats()
    assert stats["skipped"] == {reason: EXPECTED_SKIPS.get(reason, 0) for reason in SKIP_REASONS}
    assert {p.document_id for p in corpus.passages} == EXPECTED_DOCUMENTS
    assert stats["documents"] == len(EXPECTED_DOCUMENTS) and stats["files"] == len(MESSY_CORPUS) - 1
    assert all(p.source.startswith(corpus_location + "/") for p in corpus.passages)
    assert corpus_location.startswith("s3://") == storage_location.uri.startswith("s3://")


def test_passages_keep_their_provenance(tmp_path):
    root = write_tree(tmp_path / "corpus", MESSY_CORPUS)
    corpus = read_corpus(settings(str(root)))
    texts = {"guide.md": MESSY_CORPUS["guide.md"].decode(),
             "notes/readme.txt": MESSY_CORPUS["notes/readme.txt"].decode()[1:],  # the BOM is not text
             "d1": json.loads(MESSY_CORPUS["docs.jsonl"].splitlines()[0])["text"]}

    for passage in corpus.passages:
        if passage.document_id in texts:
            assert texts[passage.document_id][passage.start : passage.end] == passage.text
    [pair] = [p for p in corpus.passages if p.document_id == "docs.jsonl:12" and p.start == 0]
    assert pair.provenance() == {"document_id": "docs.jsonl:12", "source": str(root / "docs.jsonl"),
                                 "start": 0, "end": pair.end}
    assert "😀" in pair.text


def test_passages_are_at_most_the_size_cut_at_whitespace_and_overlap_at_most_as_asked():
    text = " ".join(f"word{i:03d}" for i in range(300))  # 2,399 characters of 8-character words

    spans = passage_spans(text, 200, 40)

    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for (start, end), (next_start, _) in zip(spans, spans[1:]):
        assert end - start <= 200 and text[start] != " " and text[end - 1] != " "
        assert text[end] == " " and text[next_start - 1] == " "  # whole words only
        assert 0 < end - next_start <= 40 and next_start - start >= 160
    covered = set().union(*(range(start, end) for start, end in spans))
    assert {i for i, char in enumerate(text) if char != " "} <= covered


def test_a_text_without_whitespace_is_cut_at_the_size_and_a_short_one_is_one_passage():
    assert passage_spans("x" * 450, 200, 50) == [(0, 200), (150, 350), (300, 450)]
    assert passage_spans("  short text \n", 200, 50) == [(2, 12)]
    assert passage_spans(" \n ", 200, 50) == []


def test_passages_equal_after_whitespace_normalisation_are_kept_once(tmp_path):
    root = write_tree(tmp_path / "c", {"a.txt": b"One  passage\nof text.", "b.txt": b"One passage of\ttext.",
                                       "c.txt": b"Another one."})

    corpus = read_corpus(settings(str(root)))

    assert [(p.document_id, p.text) for p in corpus.passages] == [("a.txt", "One  passage\nof text."),
                                                                  ("c.txt", "Another one.")]
    assert corpus.stats()["duplicate_passages"] == 1 and corpus.documents == 3


def test_sampling_is_a_pure_function_of_seed_iteration_and_prompt_index(tmp_path):
    root = write_tree(tmp_path / "c", {f"doc{i:02d}.txt": f"Document number {i}.".encode() for i in range(40)})
    first, again = read_corpus(settings(str(root))), read_corpus(settings(str(root)))

    picks = [first.sample(7, 2, index) for index in range(200)]

    assert picks == [again.sample(7, 2, index) for index in range(200)]  # a resumed phase samples the same
    assert len({p.document_id for p in picks}) >= 30  # spread over the corpus
    assert [sample_index(7, 3, i, 40) for i in range(50)] != [sample_index(7, 2, i, 40) for i in range(50)]
    assert [sample_index(8, 2, i, 40) for i in range(50)] != [sample_index(7, 2, i, 40) for i in range(50)]
    assert first.digest() == again.digest()


def test_the_format_can_be_forced_for_files_of_any_name(tmp_path):
    root = write_tree(tmp_path / "c", {"export.data": jsonl(json.dumps({"body": "Forced JSON lines. " + GOOD})),
                                       "page.jsonl": b'{"not": "read as JSON"} and more words'})

    as_jsonl = read_corpus(settings(str(root / "export.data"), format="jsonl", text_field="body"))
    as_text = read_corpus(settings(str(root / "page.jsonl"), format="text-dir"))

    assert [p.document_id for p in as_jsonl.passages] == ["export.data:1"]
    assert as_text.passages[0].text.startswith('{"not"') and as_text.passages[0].document_id == "page.jsonl"


def test_a_single_s3_object_is_read_with_the_run_storage_endpoint(s3_location):
    storage = open_storage(s3_location)
    storage.put_bytes("docs/one.jsonl", jsonl(json.dumps({"id": "s1", "text": GOOD})))

    corpus = read_corpus(settings(storage.uri_for("docs/one.jsonl")), s3_location)

    assert [(p.document_id, p.source) for p in corpus.passages] == [("s1", storage.uri_for("docs/one.jsonl"))]


def test_a_corpus_with_no_passage_is_a_configuration_error_naming_the_location(storage_location):
    storage = open_storage(storage_location)
    storage.put_bytes("bad/a.txt", b"\x00\x01")
    storage.put_bytes("bad/b.jsonl", b"{broken\n")
    uri = storage.uri_for("bad")

    with pytest.raises(CorpusError) as caught:
        read_corpus(settings(uri), storage_location)

    assert isinstance(caught.value, ConfigurationError)
    assert str(caught.value).startswith(f"corpus.uri {uri!r}: no passage")
    assert "binary 1" in str(caught.value) and "malformed_json 1" in str(caught.value)


@pytest.mark.parametrize("where", ["missing/corpus.jsonl", "empty-dir"])
def test_a_location_with_nothing_there_is_a_configuration_error_naming_it(tmp_path, where):
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(CorpusError, match=f"corpus.uri '{tmp_path / where}': no "):
        read_corpus(settings(str(tmp_path / where)))


def test_the_generate_phase_fails_with_exit_2_on_a_corpus_without_passages(local_location, tmp_path, monkeypatch,
                                                                           capsys):
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    task = GenerateTask(run="demo", iteration=1, storage=local_location, output="iter-001/generate/shard-00000-of-00001",
                        challenger=ModelInput(source="unused"), settings=GenerationSettings(num_questions=1),
                        corpus=settings(str(tmp_path / "bad.txt")))

    with pytest.raises(CorpusError):
        run_phase(task, load_phase("generate"), cache_dir=tmp_path / "cache")
    monkeypatch.setenv("RZERO_TERMINATION_LOG", str(tmp_path / "termination-log"))
    assert worker_main(["generate", "--task-json", json.dumps(task.wire())]) == 2
    assert f"corpus.uri '{tmp_path / 'bad.txt'}': no passage" in capsys.readouterr().err
    assert not is_committed(open_storage(local_location), task.output)


@pytest.mark.skipif(not PYTHON_LIBRARY.is_file(), reason="../shared/data/python-3.11-library.jsonl is not here")
def test_the_python_library_reference_reads_whole():
    rows = {row["id"]: row["text"] for row in map(json.loads, PYTHON_LIBRARY.read_text().splitlines())}

    corpus = read_corpus(CorpusSettings(uri=str(PYTHON_LIBRARY)))

    stats = corpus.stats()
    assert stats["documents"] == len(rows) == 1797 and set(stats["skipped"].values()) == {0}
    assert stats["passages"] >= 1797 and {p.document_id for p in corpus.passages} == set(rows)
    for passage in corpus.passages[::97]:
        assert rows[passage.document_id][passage.start : passage.end] == passage.text
        assert len(passage.text) <= 1500


@pytest.mark.skipif(not PYTHON_LIBRARY.is_file(), reason="../shared/data/python-3.11-library.jsonl is not here")
def test_the_python_library_reference_with_bad_lines_mixed_in_skips_each_by_reason_and_reads_the_same(tmp_path):
    """Real, messy documentation (reST markup, long sections) with one bad line of each kind after every 20th
    of its first 200 sections: each skipped under its reason, the good sections read as without them."""
    lines = PYTHON_LIBRARY.read_bytes().split(b"\n")[:200]
    bad = {
        "not_utf8": b'{"id": "bad", "text": "caf\xe9"}',
        "lone_surrogate": b'{"id": "bad", "text": "\\udc80 lone"}',
        "binary": b'{"id": "bad", "text": "a\\u0000b"}',
        "empty": b'{"id": "bad", "text": "\\n\\t "}',
        "malformed_json": b'{"id": "bad", "text": "cut off',
        "no_text": b'{"id": "bad", "title": "no text field"}',
        "too_large": b'{"id": "bad", "text": "' + b"y" * 100_001 + b'"}',
    }
    messy = [part for number, line in enumerate(lines) for part in ([line, *bad.values()] if number % 20 == 0 else [line])]
    (tmp_path / "clean.jsonl").write_bytes(b"\n".join(lines))
    (tmp_path / "messy.jsonl").write_bytes(b"\n".join(messy))
    fields = {"max_document_bytes": 100_000}  # the largest section has 87,216 bytes

    clean = read_corpus(CorpusSettings(uri=str(tmp_path / "clean.jsonl"), **fields))
    dirty = read_corpus(CorpusSettings(uri=str(tmp_path / "messy.jsonl"), **fields))

    assert clean.documents == dirty.documents == 200 and set(clean.stats()["skipped"].values()) == {0}
    assert {reason: count for reason, count in dirty.stats()["skipped"].items() if count} == dict.fromkeys(bad, 10)
    assert [(p.document_id, p.start, p.end, p.text) for p in dirty.passages] == [
        (p.document_id, p.start, p.end, p.text) for p in clean.passages]
    first = json.loads(lines[0])
    assert dirty.passages[0].document_id == first["id"] == "2to3#1"
    assert dirty.passages[0].provenance() == {"document_id": "2to3#1", "source": str(tmp_path / "messy.jsonl"),
                                              "start": 0, "end": dirty.passages[0].end}
    assert ":mod:`lib2to3`" in first["text"]  # the markup stays in: what the Challenger is shown
