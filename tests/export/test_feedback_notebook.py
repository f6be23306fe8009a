"""Feedback notebooks: the submission with the grader's feedback after each section's code."""

from __future__ import annotations

import dataclasses
import tracemalloc
from pathlib import Path

import nbformat
import pytest

from grader.export.feedback_notebook import write_feedback_notebook
from tests.export.grades import SCRIPT, hal
from tests.factories import ROOT, four_section_rubric, make_grade, rubric


def source_notebook(tmp_path: Path, minor: int = 5) -> Path:
    nb = nbformat.read(str(ROOT / "reference" / "solution.ipynb"), as_version=4)
    if minor < 5:
        nb.nbformat_minor = minor
        for cell in nb.cells:
            cell.pop("id", None)
    path = tmp_path / f"hal-{minor}.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.mark.parametrize("minor", [5, 4])
def test_feedback_notebook_is_the_submission_with_a_cell_after_each_section(tmp_path: Path, minor: int) -> None:
    source = source_notebook(tmp_path, minor)
    dest = tmp_path / "feedback" / "hal.ipynb"
    write_feedback_notebook(hal(), source, dest, rubric())
    original = nbformat.read(str(source), as_version=4)
    nb = nbformat.read(str(dest), as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.nbformat_minor == minor
    added = [i for i, c in enumerate(nb.cells) if "grader-feedback" in c.metadata.get("tags", [])]
    assert len(added) == 6 and added[0] == 0  # a summary first, then one per section
    assert [c for c in nb.cells if "grader-feedback" not in c.metadata.get("tags", [])] == original.cells
    for index, (section, word) in zip(
        added[1:],
        [
            ("Prepare", "load_data"),
            ("Visualize", "imshow"),
            ("Build", "Sequential"),
            ("Train", "fit"),
            ("Evaluate", "evaluate"),
        ],
        strict=True,
    ):
        assert nb.cells[index].cell_type == "markdown" and section in nb.cells[index].source
        assert nb.cells[index - 1].cell_type == "code" and word in nb.cells[index - 1].source
    visualize = nb.cells[added[2]].source
    assert "✗" in visualize and "2 / 10" in visualize
    assert SCRIPT not in visualize and "&#60;script&#62;" in visualize
    assert "$x$" not in visualize and "[a](b)" not in visualize  # no math, no links from student text


def test_feedback_goes_at_the_end_when_no_cell_holds_a_section(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')")])
    source = tmp_path / "odd.ipynb"
    nbformat.write(nb, str(source))
    write_feedback_notebook(make_grade("odd"), source, tmp_path / "out.ipynb", rubric())
    cells = nbformat.read(str(tmp_path / "out.ipynb"), as_version=4).cells
    assert [c.cell_type for c in cells] == ["markdown", "code"] + ["markdown"] * 5


def test_an_unreadable_notebook_gets_no_feedback_copy(tmp_path: Path) -> None:
    source = tmp_path / "broken.ipynb"
    source.write_text("{not json", encoding="utf-8")
    write_feedback_notebook(make_grade("broken"), source, tmp_path / "out.ipynb", rubric())
    write_feedback_notebook(make_grade("gone"), tmp_path / "missing.ipynb", tmp_path / "out.ipynb", rubric())
    assert not (tmp_path / "out.ipynb").exists()


def test_a_notebook_too_costly_to_parse_whole_gets_no_feedback_copy(tmp_path: Path) -> None:
    """Issue 18.4: nbformat builds every value; a file of millions of empty lists is not handed to it."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')")])
    text = nbformat.writes(nb).encode().rstrip()[:-1]
    source = tmp_path / "lists.ipynb"
    source.write_bytes(text + b', "padding": [' + b",".join([b"[]"] * 2_000_000) + b"]}")
    grade, spec = make_grade("lists"), rubric()
    tracemalloc.start()
    try:
        write_feedback_notebook(grade, source, tmp_path / "out.ipynb", spec)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not (tmp_path / "out.ipynb").exists()
    assert peak < 3 * source.stat().st_size


def feedback_after(nb_path: Path) -> dict[str, tuple[int, str]]:
    """Each feedback cell's heading: its position, and the source of the nearest code cell above it."""
    cells = nbformat.read(str(nb_path), as_version=4).cells
    code_above = ""
    after = {}
    for i, cell in enumerate(cells):
        if "grader-feedback" in cell.metadata.get("tags", []):
            after[cell.source.splitlines()[0]] = (i, code_above)
        elif cell.cell_type == "code":
            code_above = cell.source
    return after


def test_feedback_follows_the_code_named_by_each_sections_keywords(tmp_path: Path) -> None:
    real = four_section_rubric()
    moved = {"build": ("compile",), "train": ()}  # build's feedback after the compile cell; train's at the end
    rubric = dataclasses.replace(
        real, sections=tuple(dataclasses.replace(s, keywords=moved.get(s.id, s.keywords)) for s in real.sections)
    )
    source = source_notebook(tmp_path)
    write_feedback_notebook(make_grade("ada", under=rubric), source, tmp_path / "out.ipynb", rubric)
    after = feedback_after(tmp_path / "out.ipynb")
    assert len(after) == 5  # the summary and four sections, none for visualize
    heading = {s.id: f"### Grader feedback: {s.title} ({s.points:g} / {s.points:g})" for s in rubric.sections}
    assert "load_data" in after[heading["prepare"]][1]
    assert "compile(" in after[heading["build"]][1] and "Sequential" not in after[heading["build"]][1]
    last_code = [c.source for c in nbformat.read(str(source), as_version=4).cells if c.cell_type == "code"][-1]
    assert "evaluate(" in last_code and "fit(" not in last_code
    assert after[heading["train"]][1] == after[heading["evaluate"]][1] == last_code
    assert after[heading["train"]][0] < after[heading["evaluate"]][0]  # in the rubric's order
