"""What `grade serve` keeps under `--data`, named in one place: the notebooks as uploaded, each submission's
report, and the class's outputs as `grade` writes them (the SQLite database lies beside them, `grader.service.db`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.output_layout import OutputLayout


@dataclass(frozen=True, slots=True)
class DataFolder:
    root: Path

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def class_outputs(self) -> OutputLayout:
        """The class's outputs (index.html, grades.csv, ...) as `grade` writes them for the staff."""
        return OutputLayout(self.root / "class")

    def report(self, upload_id: int, before_due: bool) -> Path:
        """A submission's report: as staff (and the student after the due date) see it, or as shown before."""
        return self.reports / (f"{upload_id}.before-due.html" if before_due else f"{upload_id}.html")
