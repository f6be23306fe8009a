"""Terminal escape sequences and control characters taken out of what a kernel printed."""

from __future__ import annotations

from grader.terminal_text import strip_ansi, strip_control

COLOURED = "\x1b[1;31mValueError\x1b[0m: bad \x1b[?25lshape\x1b[?25h"


def test_escape_sequences_go_and_line_breaks_stay() -> None:
    assert strip_ansi(COLOURED + "\r\n2/2 done") == "ValueError: bad shape\r\n2/2 done"


def test_a_message_loses_control_characters_too() -> None:
    assert strip_control(COLOURED + "\r\x07\tnext\n") == "ValueError: bad shape\tnext\n"
