"""Text a kernel printed, without the terminal's escape sequences (colours, cursor moves) and control characters."""

from __future__ import annotations

import re

# A CSI sequence as ECMA-48 defines it: ESC [, parameter bytes, intermediate bytes, one final byte.
_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
# Control characters other than tab and newline.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def strip_ansi(text: str) -> str:
    """The text without terminal escape sequences; line breaks and carriage returns kept."""
    return _ESCAPE.sub("", text)


def strip_control(text: str) -> str:
    """The text without terminal escape sequences or control characters (a carriage return included): one line
    of a message, a title."""
    return _CONTROL.sub("", strip_ansi(text))
