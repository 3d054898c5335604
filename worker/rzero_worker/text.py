"""Text as UTF-8 can hold it (stdlib only: the summary and the JSONL writer share it).

A Python `str` can hold a lone surrogate (json.loads('"\\ud800"') makes one from a document's escape) that no
UTF-8 file can: encoding it raises UnicodeEncodeError. `valid_text` replaces each with U+FFFD, the
replacement character, and joins a surrogate pair held as two code points into the character it encodes.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogate(text: str) -> bool:
    """Does `text` hold a surrogate code point (a document's `\\ud800` escape, say)? The readers of untrusted
    input (corpus.py, anchors.py) skip such a row and count it."""
    return _SURROGATE.search(text) is not None


def valid_text(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD and each surrogate pair joined; any other text unchanged."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text
