"""Make submission text inert before any renderer sees it.

Reasons and evidence quote the submission (log lines, file names, commit messages): hostile
text. ``clean`` removes terminal escape sequences, control and bidi-override characters;
each renderer then applies its own escaping (rich Text, HTML autoescape, Markdown code spans).
"""

from __future__ import annotations

import re

# OSC (hyperlinks, titles: ESC ] ... BEL or ESC \), CSI (colours, cursor: ESC [ ... final),
# then any other two-character escape.
_ESCAPES = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]?")
# C0 controls except tab and newline, DEL, C1 controls, and bidi overrides that reorder text.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: str, *, one_line: bool = False) -> str:
    """``text`` without escape sequences or control characters; ``one_line`` folds newlines."""
    text = _CONTROLS.sub("", _ESCAPES.sub("", text))
    return " ".join(text.split()) if one_line else text.expandtabs(4)
