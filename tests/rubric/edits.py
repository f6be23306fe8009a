"""The project's rubric edited into one mistake, and the one-line error that must name its file, line and key."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from grader.rubric.load import load_rubric
from grader.rubric.model import RubricError
from tests.factories import ROOT

RUBRIC = (ROOT / "rubric.yaml").read_text(encoding="utf-8")


def write(tmp_path: Path, text: str, name: str = "rubric.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, marker: str) -> int:
    return text[: text.index(marker)].count("\n") + 1


def edit(*replacements: str) -> Callable[[str], str]:
    """Replaces the first `old` by `new` for each (old, new) pair."""

    def change(text: str) -> str:
        for old, new in zip(replacements[::2], replacements[1::2], strict=True):
            assert old in text, old
            text = text.replace(old, new, 1)
        return text

    return change


def assert_names_line_and_key(
    tmp_path: Path, change: Callable[[str], str], marker: str, key: str, words: list[str]
) -> None:
    """The rubric changed by `change` is refused in one line: its path, `key`, the line of `marker`, `words`."""
    text = change(RUBRIC)
    path = write(tmp_path, text)
    with pytest.raises(RubricError) as error:
        load_rubric(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key} (line {line_of(text, marker)}): "), message
    for word in words:
        assert word in message, message
    # no tag pydantic adds to a location for a union's member ("input_shape.int")
    assert not re.search(r"\.(int|float|str|bool)\b|\.list\[", message), message
