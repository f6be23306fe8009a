"""Keeps a failure of the grader in one student's stage to that student: logged once, recorded, stood in for.

Every per-student step of the pipeline (execute, decode, score, report, each export) runs through
`StageGuard.run` with a fallback that builds that step's result for a failed student: failure facts, an
unscored grade, a plain report page, an error row. The batch goes on; the student's grade is then marked
(`mark`) with status "error" and a message naming the stage, and that is what the report, grades.json and
the CSV files show. A user error (`GraderError`, such as an unreachable Dask scheduler) is about the whole
run and still ends it; so does Ctrl-C.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ParamSpec, TextIO, TypeVar

from grader.errors import GraderError
from grader.score import StudentGrade

T = TypeVar("T")
P = ParamSpec("P")

# Stage names read as "the grader failed while <stage>".
EXECUTE = "running the notebook"
DECODE = "reading the notebook's facts"
SCORE = "scoring"
REPORT = "rendering the report"
GRADES_JSON = "writing grades.json"
GRADES_CSV = "writing grades.csv"
CANVAS_CSV = "writing canvas.csv"
D2L_CSV = "writing d2l.csv"
GRADESCOPE = "writing the Gradescope results"
FEEDBACK = "writing the feedback notebook"
NEAR_COPIES = "looking for near-copies"  # a step of the whole class, not of one student
_TRACEBACK_FRAMES = 4


@dataclass(frozen=True, slots=True)
class StageFailure:
    stage: str
    # The exception's type only: its text can hold host paths and is for the instructor's log, not the report.
    error: str

    @property
    def message(self) -> str:
        return (
            f"The grader failed while {self.stage} ({self.error}). This is a fault in the grader, not in the "
            "notebook; it was reported to the instructor."
        )


class StageGuard:
    """Runs per-student stages so that an exception costs only that student; thread-safe."""

    def __init__(self, log: TextIO | None = None) -> None:
        self.failures: dict[str, list[StageFailure]] = {}
        self._log = log
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def run(
        self,
        stage: str,
        student: str,
        fallback: Callable[[StageFailure], T],
        work: Callable[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`work(*args, **kwargs)`, or, if it raises, `fallback(failure)` once the failure is recorded and logged."""
        try:
            return work(*args, **kwargs)
        except GraderError:
            raise
        except Exception as exc:
            failure = StageFailure(stage, type(exc).__name__)
            with self._lock:
                known = self.failures.setdefault(student, [])
                if failure not in known:  # a stage retried in a later pass is reported once
                    known.append(failure)
                    self._report(student, failure, exc)
            return fallback(failure)

    def mark(self, grade: StudentGrade) -> StudentGrade:
        """`grade` with status "error" and each recorded failure's message, if any stage failed for it.

        Marking a marked grade again adds only the failures recorded since.
        """
        failures = self.failures.get(grade.student)
        if not failures:
            return grade
        new = [f.message for f in failures if f.message not in grade.message]
        return replace(grade, status="error", message=" ".join([grade.message, *new]).strip())

    def _report(self, student: str, failure: StageFailure, exc: Exception) -> None:
        log = self._log or sys.stderr
        # A grader bug usually hits many students the same way: the full (compact) traceback once, then a line.
        where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        key = (failure.stage, type(exc).__name__, f"{where[0].filename}:{where[0].lineno}" if where else "")
        first_line = (str(exc).splitlines() or [""])[0][:200]
        print(f"grade: internal error while {failure.stage} for {student!r}: {failure.error}: {first_line}", file=log)
        if key not in self._seen:
            self._seen.add(key)
            frames = traceback.format_exception(exc, limit=-_TRACEBACK_FRAMES)
            print("".join(frames).rstrip() + "\n(please report this with the traceback above)", file=log)
