"""The reports folder's layout: links between its pages are relative, and every per-student file is known."""

from __future__ import annotations

from pathlib import Path

from grader.output_layout import OutputLayout


def test_links_are_relative_to_the_page_they_are_on() -> None:
    layout = OutputLayout(Path("/out"))
    page = layout.pair_page("ada", "ben")
    assert layout.link(layout.student_report("ada"), layout.index) == "students/ada.html"
    assert layout.link(layout.student_report("ada"), page) == "../students/ada.html"
    assert layout.link(layout.index, page) == "../index.html"


def test_pair_pages_are_unique_per_pair_and_student_files_cover_every_per_student_output() -> None:
    layout = OutputLayout(Path("/out"))
    assert layout.pair_page("a--b", "c") != layout.pair_page("a", "b--c")
    assert set(layout.student_files("ada")) == {
        layout.student_report("ada"),
        layout.gradescope_results("ada"),
        layout.feedback_notebook("ada"),
    }
