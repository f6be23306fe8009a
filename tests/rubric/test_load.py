"""Loading a rubric: each check entry and section is validated against its kind and the assignment, and every
mistake is one line naming the file, the line and the key, with the closest valid name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from grader.rubric.load import load_rubric
from grader.rubric.model import RubricError
from grader.score import score_facts
from tests.factories import CONTEXT, make_facts
from tests.rubric.edits import RUBRIC, assert_names_line_and_key, edit, write


@pytest.mark.parametrize(
    ("change", "marker", "key", "words"),
    [
        (  # unknown check kind
            edit("kind: data.images_shape", "kind: data.image_shape"),
            "x_shape:",
            "sections.prepare.checks.x_shape.kind",
            ["unknown check kind 'data.image_shape'", "did you mean 'data.images_shape'?"],
        ),
        (  # unknown parameter of a kind
            edit("kind: figures.grid, rows: 3", "kind: figures.grid, row: 3"),
            "grid:",
            "sections.visualize.checks.grid.row",
            ["figures.grid has no parameter 'row'", "did you mean 'rows'?"],
        ),
        (  # wrong type
            edit("kind: figures.grid, rows: 3", "kind: figures.grid, rows: three"),
            "grid:",
            "sections.visualize.checks.grid.rows",
            ["expected a whole number, found 'three'"],
        ),
        (  # a variable name that is not an identifier
            edit("train_images: x_train", "train_images: x train"),
            "train_images: x",
            "variables.train_images",
            ["'x train' is not a Python variable name"],
        ),
        (  # an unknown role
            edit("train_images: x_train", "train_imgs: x_train"),
            "train_imgs",
            "variables.train_imgs",
            ["'train_imgs' is not allowed", "did you mean 'train_images'?"],
        ),
        (  # unknown top-level key
            edit("accuracy_margin: 0.03", "acuracy_margin: 0.03"),
            "acuracy_margin",
            "acuracy_margin",
            ["unknown key", "did you mean 'accuracy_margin'?"],
        ),
        (  # a check reading a layer the model does not declare
            edit("kind: model.layer, index: 2, last: true", "kind: model.layer, index: 5, last: true"),
            "output: {kind",
            "sections.build.checks.output",
            ["model.layer: index 5 is past the 3 layer(s) declared under `model: layers:`"],
        ),
        (  # a parameter count that cannot be derived
            edit("    - Flatten\n", "    - LSTM: {units: 4}\n", "  params: 101770\n", ""),
            "params: {kind",
            "sections.build.checks.params",
            ["LSTM", "state the model's `params:`"],
        ),
        (  # a fit setting Keras does not have
            edit("  batch_size: 128\n  epochs: 20", "  batch_size: 128\n  epoch: 20"),
            "  epoch: 20",
            "fit.epoch",
            ["fit has no argument 'epoch'", "did you mean 'epochs'?"],
        ),
        (  # a section named like a column of grades.csv
            edit("  evaluate:\n    title: Evaluate", "  total:\n    title: Evaluate"),
            "  total:",
            "sections.total",
            ["'total' is a column of grades.csv already"],
        ),
        (  # an integrity kind that does not exist
            edit("integrity: [model]", "integrity: [modle]"),
            "integrity: [modle]",
            "sections.build.integrity",
            ["unknown integrity check 'modle'", "did you mean 'model'?"],
        ),
    ],
)
def test_a_mistake_names_the_file_line_and_key(
    tmp_path: Path, change: Callable[[str], str], marker: str, key: str, words: list[str]
) -> None:
    assert_names_line_and_key(tmp_path, change, marker, key, words)


def test_the_parameter_count_is_derived_when_the_rubric_leaves_it_out(tmp_path: Path) -> None:
    rubric = load_rubric(write(tmp_path, RUBRIC.replace("  params: 101770\n", "")))
    assert rubric.assignment.model.params is None
    grade = score_facts("ada", make_facts(), rubric, CONTEXT)
    assert grade.total == 100


def test_a_rubric_without_a_section_scores_the_others(tmp_path: Path) -> None:
    start, end = RUBRIC.index("  visualize:\n"), RUBRIC.index("  build:\n")
    rubric = load_rubric(write(tmp_path, RUBRIC[:start] + RUBRIC[end:]))
    assert [s.id for s in rubric.sections] == ["prepare", "build", "train", "evaluate"]
    assert "indices" not in rubric.probe_request().variables
    grade = score_facts("ada", make_facts(kernel={"figures": []}), rubric, CONTEXT)
    assert grade.total == grade.max_total == 90


def test_due_visibility_and_the_service_limit_are_read(tmp_path: Path) -> None:
    text = RUBRIC.replace("  evaluate:\n", "  evaluate:\n    visibility: hidden\n", 1)
    text = text.replace(
        "title: Image Classification using MNIST\n",
        "title: Image Classification using MNIST\ndue: 2026-12-18T23:59:00-06:00\n"
        "service:\n  submissions_per_hour: 3\n",
    )
    rubric = load_rubric(write(tmp_path, text))
    assert rubric.due is not None and rubric.due.utcoffset() is not None
    assert rubric.due.isoformat() == "2026-12-18T23:59:00-06:00"
    assert rubric.service.submissions_per_hour == 3
    assert {s.id for s in rubric.sections for c in s.checks if c.hidden} == {"evaluate"}
    default = load_rubric(write(tmp_path, RUBRIC, "plain.yaml"))
    assert default.due is None and not any(c.hidden for s in default.sections for c in s.checks)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("due: 2026-12-18T23:59:00\n", "has no time zone"),
        ("service:\n  submissions_per_hour: 0\n", "at least 1"),
        ("service:\n  per_hour: 3\n", "per_hour"),
    ],
)
def test_a_wrong_due_or_service_key_is_one_line(tmp_path: Path, line: str, says: str) -> None:
    with pytest.raises(RubricError, match=says):
        load_rubric(write(tmp_path, RUBRIC + line))


def test_a_check_can_be_hidden_alone(tmp_path: Path) -> None:
    marker = "      accuracy: {kind: evaluation.accuracy, points: 3,"
    assert marker in RUBRIC
    rubric = load_rubric(write(tmp_path, RUBRIC.replace(marker, marker + " visibility: hidden,")))
    assert [c.id for s in rubric.sections for c in s.checks if c.hidden] == ["accuracy"]
    with pytest.raises(RubricError, match="visibility"):
        load_rubric(write(tmp_path, RUBRIC.replace(marker, marker + " visibility: secret,")))
