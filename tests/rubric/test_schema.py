"""The rubric file's structure: each key's type, bounds and sums, refused in one line naming the line and key;
and every check kind a rubric can name is documented."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.rubric.edits import assert_names_line_and_key, edit


@pytest.mark.parametrize(
    ("change", "marker", "key", "words"),
    [
        (  # check points not adding up to the section's
            edit("x_shape: {kind: data.images_shape, points: 1", "x_shape: {kind: data.images_shape, points: 2"),
            "  prepare:",
            "sections.prepare",
            ["check points add up to 11, but the section is worth 10"],
        ),
        (  # a section's points not what its checks add up to
            edit("    points: 50", "    points: 55"),
            "  build:",
            "sections.build",
            ["check points add up to 50, but the section is worth 55"],
        ),
        (  # a key a section does not have
            edit("  prepare:\n    title", "  prepare:\n    colour: red\n    title"),
            "    colour: red",
            "sections.prepare.colour",
            ["unknown key"],
        ),
        (  # points that are not a number
            edit("images_shape, points: 1", "images_shape, points: two"),
            "x_shape:",
            "sections.prepare.checks.x_shape.points",
            ["expected a number, found 'two'"],
        ),
        (  # a share above 1
            edit("similarity_threshold: 0.7", "similarity_threshold: 1.5"),
            "similarity_threshold:",
            "similarity_threshold",
            ["must be at most 1", "found 1.5"],
        ),
        (  # a share that is not a number
            edit("similarity_threshold: 0.7", "similarity_threshold: high"),
            "similarity_threshold:",
            "similarity_threshold",
            ["expected a number, found 'high'"],
        ),
        (  # keywords that are not a list
            edit("keywords: [load_data]", "keywords: load_data"),
            "    keywords: load_data",
            "sections.prepare.keywords",
            ["expected a list"],
        ),
        (  # a requirement pip cannot read
            edit("- seaborn\n", "- seaborn==\n"),
            "  requirements:",
            "environment.requirements",
            ["'seaborn=='"],
        ),
        (  # a package the probe needs left out
            edit("    - keras>=3.15,<3.16\n", ""),
            "  requirements:",
            "environment.requirements",
            ["needs keras"],
        ),
    ],
)
def test_a_mistake_names_the_file_line_and_key(
    tmp_path: Path, change: Callable[[str], str], marker: str, key: str, words: list[str]
) -> None:
    assert_names_line_and_key(tmp_path, change, marker, key, words)
