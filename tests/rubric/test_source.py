"""The rubric's YAML read with the line of every key: a YAML mistake, a repeated key and pydantic's errors
each become one line naming the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.rubric.load import load_rubric
from grader.rubric.model import RubricError
from tests.rubric.edits import RUBRIC, assert_names_line_and_key, edit, line_of, write


def test_a_value_of_none_of_a_unions_types_names_every_type_and_no_member(tmp_path: Path) -> None:
    assert_names_line_and_key(
        tmp_path,
        edit("equals: {input_shape: [28, 28, 1]}", "equals: {input_shape: {height: 28}}"),
        "input_shape: {kind",
        "sections.build.checks.input_shape.equals.input_shape",
        ["expected a whole number or a number or text or true or false", "found {'height': 28}"],
    )


def test_invalid_yaml_names_its_line_and_the_problem(tmp_path: Path) -> None:
    text = RUBRIC.replace("  loader: mnist", "  loader: mnist\n   oops: 1", 1)
    with pytest.raises(RubricError) as error:
        load_rubric(write(tmp_path, text))
    message = str(error.value)
    assert f"(line {line_of(text, '   oops') + 1}" in message or f"(line {line_of(text, '   oops')}" in message
    assert "not valid YAML:" in message and "while parsing" not in message.split("YAML:")[1], message


def test_a_repeated_key_names_its_second_line(tmp_path: Path) -> None:
    text = RUBRIC.replace("  epochs: 20\n", "  epochs: 20\n  epochs: 10\n", 1)
    path = write(tmp_path, text)
    with pytest.raises(RubricError) as error:
        load_rubric(path)
    assert str(error.value) == f"{path}: epochs (line {line_of(text, '  epochs: 10')}): duplicate key 'epochs'"


def test_a_file_that_is_not_a_mapping_says_what_it_should_be(tmp_path: Path) -> None:
    path = write(tmp_path, "- sections\n- reference\n")
    with pytest.raises(RubricError, match=r": rubric: expected a mapping of keys \(reference, sections, \.\.\.\)$"):
        load_rubric(path)


def test_an_unreadable_rubric_is_named(tmp_path: Path) -> None:
    with pytest.raises(RubricError, match=f"cannot read rubric {tmp_path / 'none.yaml'}: No such file"):
        load_rubric(tmp_path / "none.yaml")
