"""A run's own documents as passages for a grounded Challenger (spec.corpus): the one reader of corpus files,
which are untrusted input like the manifests documents.py reads.

    corpus = read_corpus(settings, storage)         # CorpusError (exit 2) when no passage is left
    passage = corpus.sample(seed, iteration, index)  # pure: the same three numbers, the same passage
    passage.provenance()                             # {"document_id", "source", "start", "end"}
    corpus.stats()                                   # files, documents, passages, duplicates, skipped by reason

Where: `settings.uri` names a file or a directory (every file under it, recursively, in sorted order; names
starting with '.' are ignored), a local path or `s3://bucket/key` read with the run's storage endpoint and
region (`storage`, the task's location) and the run's credentials (the standard AWS chain, as all storage).

Formats (`settings.format`): `auto` reads each file by its extension (.jsonl/.ndjson: one JSON object per
line; .parquet; .txt/.md/.markdown/.rst: the file is one document; anything else is skipped as unsupported_file);
`jsonl` and `parquet` read every file so; `text-dir` reads every file as one text document. A JSONL or
Parquet document's text is the field `textField`, its id the field `idField` where the row has one (a string
or an integer), else `<file>:<line>` (`<file>:row <n>` for Parquet); a text file's id is its name.

Never fatal, each counted by reason (`SKIP_REASONS`): a document over `maxDocumentBytes` (too_large, checked
before it is decoded), one holding a NUL (binary), bytes that are not UTF-8 (not_utf8), JSON that reads as a
lone surrogate such as "\\ud800" (lone_surrogate: UTF-8 cannot hold it), blank text (empty), a JSONL line
that is not a JSON object (malformed_json), a row without a string text field (no_text), a file that cannot
be read or parsed (unreadable_file), a file of no known format (unsupported_file). Blank lines are no
documents. A corpus that yields no passage is a CorpusError naming the location and what was skipped.

Passages: each document's text is cut into windows of at most `passageChars` characters, ending at a
paragraph break or whitespace in the window's last quarter where there is one; the next window starts at
most `overlapChars` before the previous end and `passageChars - overlapChars` after the previous start
(moved forward to a word's start), so n characters make at most n / (passageChars - overlapChars) + 1
passages. Offsets are characters of the document's text: `passage.text == text[start:end]`. Passages equal
after whitespace normalisation are kept once (the first, in file and document order), the others counted
as duplicates.

Sampling is a pure function of (seed, iteration, prompt index): sha256 of the three picks a passage, so a
phase resumed after a kill samples the same passages for the same prompts (on the same corpus: its
`digest` in the stats names the passage list).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .phases.context import ConfigurationError
from .storage import LocalStorage, Storage, StorageError, open_storage
from .task import CorpusSettings, StorageLocation
from .text import has_surrogate

log = logging.getLogger(__name__)

SKIP_REASONS = ("too_large", "binary", "not_utf8", "lone_surrogate", "empty", "malformed_json", "no_text",
                "unreadable_file", "unsupported_file")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".txt": "text", ".md": "text",
               ".markdown": "text", ".rst": "text"}


class CorpusError(ConfigurationError):
    """The corpus cannot be used as configured (no such location, no passage): exit 2, not retried."""


@dataclass(frozen=True)
class Passage:
    text: str
    document_id: str
    source: str  # the file it came from (a local path or s3://bucket/key)
    start: int  # character offsets in the document's text
    end: int

    def provenance(self) -> dict:
        return {"document_id": self.document_id, "source": self.source, "start": self.start, "end": self.end}


@dataclass
class Corpus:
    location: str
    passages: list[Passage] = field(default_factory=list)
    files: int = 0
    documents: int = 0  # documents read (not skipped)
    duplicates: int = 0  # passages dropped as equal to an earlier one
    skipped: Counter = field(default_factory=Counter)

    def sample(self, seed: int, iteration: int, index: int) -> Passage:
        return self.passages[sample_index(seed, iteration, index, len(self.passages))]

    def digest(self) -> str:
        lines = "".join(f"{p.source}\0{p.document_id}\0{p.start}\0{p.end}\n" for p in self.passages)
        return hashlib.sha256(lines.encode("utf-8", "replace")).hexdigest()

    def stats(self) -> dict:
        return {"files": self.files, "documents": self.documents, "passages": len(self.passages),
                "duplicate_passages": self.duplicates, "skipped": {r: self.skipped[r] for r in SKIP_REASONS},
                "digest": self.digest()}


def sample_index(seed: int, iteration: int, index: int, count: int) -> int:
    """The passage prompt `index` of `iteration` gets, of `count`: uniform, with replacement, reproducible."""
    digest = hashlib.sha256(f"corpus/{seed}/{iteration}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def read_corpus(settings: CorpusSettings, storage: StorageLocation | None = None) -> Corpus:
    """Every passage of the corpus `settings` names; raises CorpusError when none is left."""
    backend, keys = _files(settings.uri, storage)
    corpus = Corpus(location=settings.uri)
    reader = _Reader(settings, corpus)
    for key in keys:
        corpus.files += 1
        reader.read_file(backend, key)
    if not corpus.passages:
        skipped = ", ".join(f"{reason} {count}" for reason, count in sorted(corpus.skipped.items())) or "none"
        raise CorpusError(f"corpus.uri {settings.uri!r}: no passage to ground questions in ({corpus.files} files, "
                          f"{corpus.documents} documents read; skipped: {skipped})")
    log.info("corpus %s: %s", settings.uri, corpus.stats())
    return corpus


def _files(uri: str, storage: StorageLocation | None) -> tuple[Storage, list[str]]:
    """The storage to read from and the keys of the corpus's files in it, sorted."""
    if uri.startswith("s3://"):
        bucket, _, key = uri[len("s3://") :].partition("/")
        parent, _, name = key.strip("/").rpartition("/")

        def at(prefix: str) -> Storage:
            location = StorageLocation(uri=f"s3://{bucket}/{prefix}".rstrip("/"),
                                       endpoint_url=storage.endpoint_url if storage else None,
                                       region=storage.region if storage else None)
            return open_storage(location, setting=f"corpus.uri {uri!r}")

        backend = at(parent)  # names relative to the corpus location, as for a local path
        if name and backend.exists(name):
            keys = [name]
        else:
            backend = at(key.strip("/"))
            keys = backend.list("")
    else:
        path = Path(uri).expanduser()
        if path.is_file():
            backend, keys = LocalStorage(path.parent), [path.name]
        elif path.is_dir():
            backend = LocalStorage(path)
            keys = backend.list("")
        else:
            raise CorpusError(f"corpus.uri {uri!r}: no such file or directory")
    keys = [k for k in keys if not any(part.startswith(".") for part in k.split("/"))]
    if not keys:
        raise CorpusError(f"corpus.uri {uri!r}: no file there")
    return backend, sorted(keys)


class _Reader:
    def __init__(self, settings: CorpusSettings, corpus: Corpus):
        self.settings, self.corpus, self.seen = settings, corpus, set()

    def skip(self, reason: str, where: str) -> None:
        self.corpus.skipped[reason] += 1
        log.debug("corpus: skipped %s (%s)", where, reason)

    def read_file(self, backend: Storage, key: str) -> None:
        kind = _kind(key, self.settings.format)
        source = backend.uri_for(key)
        if kind is None:
            return self.skip("unsupported_file", source)
        try:
            if kind == "text" and isinstance(backend, LocalStorage):  # size before reading
                if (backend.root / key).stat().st_size > self.settings.max_document_bytes:
                    return self.skip("too_large", source)
            data = backend.get_bytes(key)
        except FileNotFoundError:
            return self.skip("unreadable_file", source)
        except (OSError, StorageError) as error:
            if not isinstance(backend, LocalStorage):
                raise  # S3: a failed request is retried by the phase, not taken for a bad document
            log.debug("corpus: cannot read %s: %s", source, error)
            return self.skip("unreadable_file", source)
        if kind == "text":
            self.text_document(key, source, data)
        elif kind == "jsonl":
            self.jsonl(key, source, data)
        else:
            self.parquet(key, source, data)

    def text_document(self, key: str, source: str, data: bytes) -> None:
        text = self.decode(data, source)
        if text is not None:
            self.document(key, source, text[1:] if text.startswith("\ufeff") else text)

    def decode(self, data: bytes, where: str) -> str | None:
        if len(data) > self.settings.max_document_bytes:
            return self.skip("too_large", where)
        if b"\x00" in data:
            return self.skip("binary", where)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return self.skip("not_utf8", where)

    def jsonl(self, key: str, source: str, data: bytes) -> None:
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            where = f"{source}:{number}"
            line = self.decode(raw, where)
            if line is None:
                continue
            try:
                row = json.loads(line[1:] if number == 1 and line.startswith("\ufeff") else line)
            except (ValueError, RecursionError):  # RecursionError: nested too deeply
                row = None
            if not isinstance(row, dict):
                self.skip("malformed_json", where)
            else:
                self.row(row, f"{key}:{number}", source, where)

    def parquet(self, key: str, source: str, data: bytes) -> None:
        try:
            import pyarrow.parquet as parquet
        except ImportError:
            raise CorpusError(f"corpus file {source}: reading Parquet needs pyarrow (pip install pyarrow)") from None
        try:
            table = parquet.ParquetFile(io.BytesIO(data))
            fields = (self.settings.text_field, self.settings.id_field)
            wanted = [name for name in fields if name in table.schema_arrow.names]
            rows = table.read(columns=wanted).to_pylist() if wanted else [{}] * table.metadata.num_rows
        except Exception as error:  # pyarrow raises several types for a damaged file
            log.debug("corpus: %s is not a readable Parquet file: %s", source, error)
            return self.skip("unreadable_file", source)
        for number, row in enumerate(rows, start=1):
            self.row(row, f"{key}:row {number}", source, f"{source}: row {number}")

    def row(self, row: dict, default_id: str, source: str, where: str) -> None:
        text = row.get(self.settings.text_field)
        if isinstance(text, bytes):
            text = self.decode(text, where)
            if text is None:
                return
        if not isinstance(text, str):
            return self.skip("no_text", where)
        if len(text.encode("utf-8", "surrogatepass")) > self.settings.max_document_bytes:
            return self.skip("too_large", where)
        ident = row.get(self.settings.id_field)
        usable = isinstance(ident, (str, int)) and not isinstance(ident, bool) and str(ident).strip()
        self.document(str(ident) if usable else default_id, source, text)

    def document(self, doc_id: str, source: str, text: str) -> None:
        problem = _text_problem(text) or _text_problem(doc_id)
        if problem:
            return self.skip(problem, f"{source} ({doc_id})")
        self.corpus.documents += 1
        for start, end in passage_spans(text, self.settings.passage_chars, self.settings.overlap_chars):
            key = hashlib.sha256(" ".join(text[start:end].split()).encode()).digest()
            if key in self.seen:
                self.corpus.duplicates += 1
                continue
            self.seen.add(key)
            self.corpus.passages.append(Passage(text[start:end], doc_id, source, start, end))


def _kind(key: str, fmt: str) -> str | None:
    if fmt != "auto":
        return "text" if fmt == "text-dir" else fmt
    return _EXTENSIONS.get(Path(key).suffix.lower())


def _text_problem(text: str) -> str | None:
    if has_surrogate(text):
        return "lone_surrogate"
    if "\x00" in text:
        return "binary"
    return None if text.strip() else "empty"


def passage_spans(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) of each passage of `text`: at most `size` characters, no leading or trailing whitespace,
    the next starting about `overlap` characters before the previous end (see the module's docstring)."""
    spans: list[tuple[int, int]] = []
    length = len(text)
    start = _skip_space(text, 0)
    while start < length:
        end = min(start + size, length)
        if end < length:
            end = _break_before(text, start + (3 * size) // 4, end)
        last = end
        while last > start and text[last - 1].isspace():
            last -= 1
        if last > start:
            spans.append((start, last))
        if end >= length:
            break
        start = _skip_space(text, _word_start(text, max(end - overlap, start + size - overlap), end))
    return spans


def _break_before(text: str, low: int, end: int) -> int:
    """Where to end a window that may end at `end`: a paragraph break, else whitespace, at or after `low`."""
    paragraph = text.rfind("\n\n", low, end + 1)
    if paragraph >= low:
        return paragraph
    for position in range(end, low - 1, -1):
        if text[position].isspace():
            return position
    return end


def _word_start(text: str, position: int, end: int) -> int:
    """`position`, or the start of the next word before `end` when `position` is inside a word."""
    if position == 0 or text[position - 1].isspace():
        return position
    for after in range(position, end):
        if text[after].isspace():
            return after
    return position  # one long word: cut inside it


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position
