"""Loading a rubric: each check entry and section is validated against its kind and the assignment, and every
mistake is one line naming the file, the line and the key, with the closest valid name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from grader.rubric.load import load_rubric
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
