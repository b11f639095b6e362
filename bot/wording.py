"""Small text helpers every layer uses: counted nouns, and text made safe to print.

`printable` is for text that came from outside (a question, a button value, a request
path) on its way to a log line or a terminal: a newline there would start a forged log
line, an escape sequence would drive the terminal.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators and bidi
# overrides that make text display other than it reads.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 question`, `2 questions`; `plural_form` for nouns that do not just add an s."""
    word = singular if count == 1 else (plural_form or f"{singular}s")
    return f"{count} {word}"


def printable(text: object, limit: int | None = None) -> str:
    """`text` with control characters shown as escapes (`\\n`, `\\x1b`), at most `limit`
    characters (cut with `…` and how much was left out)."""
    value = str(text)
    if limit is not None and len(value) > limit:
        value = f"{value[:limit]}… ({len(value) - limit} more characters)"
    return _UNPRINTABLE.sub(_escape, value)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

