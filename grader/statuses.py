"""The words a run, a cell and a grade end in: one Literal type each, shared by the facts, scoring, the cache and
the reports, so that a misspelt status is a type error and an unknown one in stored facts is refused on decoding."""

from __future__ import annotations

from typing import Literal

# How one code cell ended in the grader's run.
CellStatus = Literal["ok", "error", "timeout", "not_run", "kernel_died"]
# How a notebook's run ended: "unreadable" and "grader_error" mean no kernel ran it (see NOT_FROM_A_KERNEL).
RunStatus = Literal["completed", "kernel_died", "notebook_timeout", "failed_to_start", "unreadable", "grader_error"]
# A student's grade: "error" when the notebook could not be graded as a whole or a check could not be run.
GradeStatus = Literal["graded", "error"]

# Cells that did not finish: the report shows each of them with what stopped it.
FAILED_CELLS: tuple[CellStatus, ...] = ("error", "timeout", "kernel_died")
# Runs whose facts no kernel produced: never cached (the next run may read the file, or the grader may work).
NOT_FROM_A_KERNEL: tuple[RunStatus, ...] = ("unreadable", "grader_error")
# Runs that never reached the notebook's code: the grade is an error whatever the checks say.
NEVER_RAN: tuple[RunStatus, ...] = ("unreadable", "failed_to_start", "grader_error")
