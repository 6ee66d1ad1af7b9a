"""A title as it is kept: one line of text that shows as it reads.

Bidirectional controls (which can make `gpj.exe` read as `exe.jpg`, or reorder a title in
listings, mails and reports) are removed; other control characters (line breaks, tabs, NUL)
become spaces, so a title never spans lines in a header, a table or a log. Applied where every
title enters: the pipeline, for uploads, ingested files and objects put into the bucket by
others alike.
"""

from __future__ import annotations

import re
import unicodedata

#: the embedding, override and isolate controls, the implicit marks and the Arabic letter mark
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_title(text: str) -> str:
    text = BIDI_CONTROLS.sub("", text)
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return text.strip()
