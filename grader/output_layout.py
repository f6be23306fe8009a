"""Where the grader writes each output in `--out`: every file name of the reports folder, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class OutputLayout:
    """The reports folder. Per-student files are named by the student's file-safe stem (`export.file_stems`)."""

    root: Path

    @property
    def index(self) -> Path:
        return self.root / "index.html"

    @property
    def grades_json(self) -> Path:
        return self.root / "grades.json"

    @property
    def grades_csv(self) -> Path:
        return self.root / "grades.csv"

    @property
    def canvas_csv(self) -> Path:
        return self.root / "canvas.csv"

    @property
    def d2l_csv(self) -> Path:
        return self.root / "d2l.csv"

    @property
    def students_dir(self) -> Path:
        return self.root / "students"

    @property
    def near_copies_dir(self) -> Path:
        return self.root / "near-copies"

    @property
    def feedback_dir(self) -> Path:
        return self.root / "feedback"

    @property
    def gradescope_dir(self) -> Path:
        return self.root / "gradescope"

    def student_report(self, stem: str) -> Path:
        return self.students_dir / f"{stem}.html"

    def feedback_notebook(self, stem: str) -> Path:
        return self.feedback_dir / f"{stem}.ipynb"

    def gradescope_results(self, stem: str) -> Path:
        return self.gradescope_dir / stem / "results.json"

    def pair_page(self, first: str, second: str) -> Path:
        """The side-by-side page of two students' stems: unique per pair, since a stem never holds a `+`
        (`a--b` with `c` and `a` with `b--c` are two pages)."""
        return self.near_copies_dir / f"{first}+{second}.html"

    def student_files(self, stem: str) -> tuple[Path, ...]:
        """Every file written for one student alone."""
        return self.student_report(stem), self.gradescope_results(stem), self.feedback_notebook(stem)

    def link(self, path: Path, page: Path) -> str:
        """`path` as a relative link from the page `page` (both in this folder), e.g. `../students/ada.html`."""
        return Path(os.path.relpath(path, page.parent)).as_posix()
