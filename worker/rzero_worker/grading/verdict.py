r"""Reading the Verifier's output (prompts.verifier_messages): its verdict is the last complete `\boxed{}`.

`parse_verdict(text)` is True for `\boxed{correct}`, False for `\boxed{incorrect}`, None for anything else:
no box, an unclosed box, or a box holding something other than those two words (a number, "yes", both words).
Case, surrounding spaces, a final full stop and one `\text{}`/`\textbf{}`/`\mathrm{}` wrapper are ignored. None
is *unparsable*: callers count it and never read it as approval.
"""

from __future__ import annotations

import re

from .extract import extract_boxed

_WRAPPER = re.compile(r"^\\(?:text|textbf|mathrm|textit)\s*\{(.*)\}$", re.DOTALL)
VERDICTS = {"correct": True, "incorrect": False}


def parse_verdict(text: str | None) -> bool | None:
    """The Verifier's verdict: True (correct), False (incorrect) or None (unparsable)."""
    content = extract_boxed(text)
    if content is None:
        return None
    wrapped = _WRAPPER.match(content.strip())
    word = (wrapped.group(1) if wrapped else content).strip().rstrip(".").strip().lower()
    return VERDICTS.get(word)
