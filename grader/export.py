"""Grades in the formats other tools read: JSON, CSV, a Canvas gradebook, Gradescope results, feedback notebooks."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import nbformat

from grader.archive import Ignored
from grader.atomic_write import atomic_write
from grader.csvfile import read_rows
from grader.errors import GraderError
from grader.execution.notebook import MAX_JSON_VALUES, values_at_most
from grader.files import read_regular_file
from grader.isolation import CANVAS_CSV, GRADES_CSV, GRADES_JSON, GRADESCOPE, StageFailure, StageGuard
from grader.late import late_message
from grader.lateness import Lateness
from grader.near_copies import NearCopy, similar_to
from grader.output_layout import OutputLayout
from grader.rubric.model import GRADEBOOK_COLUMNS, Rubric
from grader.score import CheckResult, SectionResult, StudentGrade, number, rubric_sections

T = TypeVar("T")

ROSTER_COLUMNS = ("notebook", "name", "id", "sis_user_id", "sis_login_id", "section")
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
_MARKDOWN_SPECIAL = re.compile(r"[&<>\\`*_\[\]#|~$]")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


class RosterError(GraderError):
    """The roster file is malformed; the message names the file, the row and the column."""


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """One student of the LMS roster, found by the stem of their notebook's file name."""

    notebook: str
    name: str
    id: str
    sis_user_id: str
    sis_login_id: str
    section: str


def mentions(source: str, keywords: Iterable[str]) -> bool:
    """Whether a code cell's source mentions one of `keywords`, the names that mark a rubric section's code.

    Shared with the report, which places a cell that raised beside the checks it explains.
    """
    return any(re.search(rf"\b{re.escape(word)}\b", source) for word in keywords)


def file_stems(students: Iterable[str]) -> dict[str, str]:
    """A file-name stem for each student id: ASCII, no separators, unique even on case-insensitive disks.

    Ids come from students' file names, so they may hold spaces, accents, dots or path separators.
    A stem that had to change, or that would clash, carries a short hash of the id to stay unique.
    """
    stems: dict[str, str] = {}
    taken: set[str] = set()
    for student in students:
        if student in stems:
            continue
        ascii_text = unicodedata.normalize("NFKD", student).encode("ascii", "ignore").decode("ascii")
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_text).strip("_")[:60] or "student"
        if stem != student or stem.upper() in _WINDOWS_RESERVED or stem.casefold() in taken:
            stem = f"{stem}-{hashlib.sha256(student.encode('utf-8')).hexdigest()[:8]}"
        while stem.casefold() in taken:  # a hash clash: practically never, but names must stay unique
            stem += "_"
        taken.add(stem.casefold())
        stems[student] = stem
    return stems


def _check_entry(check: CheckResult) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": check.id,
        "points": float(check.points),
        "max": float(check.max),
        "passed": bool(check.passed),
        "message": check.message,
    }
    if check.adjusted is not None:
        entry["adjusted"] = {"from": float(check.adjusted.from_points), "comment": check.adjusted.comment}
    return entry


def grade_entry(grade: StudentGrade, rubric: Rubric, similar: list[tuple[str, float]] | None = None) -> dict[str, Any]:
    """One student's entry of grades.json, with every section and check of the rubric.

    A check an instructor adjusted carries `adjusted` (the grader's points and the comment); `bonus` lists
    points added to the total by hand; `similar` lists the students whose own code is nearly this one's.
    """
    sections = {
        section.id: {
            "points": float(section.points),
            "max": number(section.max),
            "checks": [_check_entry(c) for c in section.checks],
        }
        for section in rubric_sections(grade, rubric)
    }
    origin = grade.origin
    return {
        "student": grade.student,
        "name": origin.name,
        "lms": origin.lms,
        "status": grade.status,
        "message": grade.message,
        **lateness_entry(grade.lateness),
        "late_penalty": float(grade.late_penalty),  # already taken off `total`
        "total": float(grade.total),
        "max_total": number(rubric.max_total),
        "integrity": list(grade.integrity_flags),
        "review": list(grade.review),
        "limits_hit": list(grade.facts.execution.limits_hit),
        "ignored": list(origin.superseded),
        "sections": sections,
        "bonus": [{"points": float(b.points), "comment": b.comment} for b in grade.bonus],
        "similar": [{"student": other, "score": score} for other, score in similar or []],
    }


def lateness_entry(lateness: Lateness) -> dict[str, Any]:
    """grades.json's account of lateness: late or not, when submitted (ISO, with its zone) and how late."""
    late_by = lateness.late_by
    return {
        "late": lateness.late,
        "submitted_at": lateness.submitted_at.isoformat() if lateness.submitted_at else None,
        "late_by_minutes": round(late_by.total_seconds() / 60, 1) if late_by is not None else None,
        "late_days": lateness.days,
    }


def _failed_entry(grade: StudentGrade, failure: StageFailure, rubric: Rubric) -> dict[str, Any]:
    empty = {"points": 0.0, "max": 0, "checks": []}
    return {
        "student": grade.student,
        "name": "",
        "lms": "",
        "status": "error",
        "message": failure.message,
        **lateness_entry(Lateness()),
        "late_penalty": 0.0,
        "total": 0.0,
        "max_total": 0,
        "integrity": [],
        "review": [],
        "limits_hit": [],
        "ignored": [],
        "sections": {section.id: dict(empty) for section in rubric.sections},
        "bonus": [],
        "similar": [],
    }


def guarded_rows(
    grades: list[StudentGrade],
    stage: str,
    build: Callable[[StudentGrade], T],
    failed: Callable[[StudentGrade, StageFailure], T],
    guard: StageGuard | None,
) -> list[T]:
    """One row per student, each built under the guard: a row that fails to build is replaced, not fatal."""
    guard = guard or StageGuard()
    return [guard.run(stage, g.student, partial(failed, g), build, g) for g in grades]


def write_grades_json(
    grades: list[StudentGrade],
    path: Path,
    rubric: Rubric,
    guard: StageGuard | None = None,
    pairs: Iterable[NearCopy] = (),
    ignored: Iterable[Ignored] = (),
) -> None:
    """Writes grades.json: {"students": [one `grade_entry` per student], "ignored": [files not graded]}, with
    each student's near-copies."""
    similar = similar_to(pairs)

    def entry(grade: StudentGrade) -> dict[str, Any]:
        return grade_entry(grade, rubric, similar.get(grade.student))

    entries = guarded_rows(grades, GRADES_JSON, entry, partial(_failed_entry, rubric=rubric), guard)
    not_graded = [{"path": i.path, "reason": i.reason} for i in ignored]
    atomic_write(path, json.dumps({"students": entries, "ignored": not_graded}, indent=1, ensure_ascii=False) + "\n")


def _cell(text: str) -> str:
    """A spreadsheet cell that a spreadsheet will not run: text starting like a formula gets a quote."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_text(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue()


def _grades_csv_row(grade: StudentGrade, rubric: Rubric) -> list[Any]:
    points = [number(s.points) for s in rubric_sections(grade, rubric)]
    message = _cell(grade.message) if grade.status == "error" else ""
    bonus = number(sum(b.points for b in grade.bonus))
    late = "yes" if grade.lateness.late else ""
    identity = [_cell(grade.student), _cell(grade.origin.name)]
    penalty = number(grade.late_penalty)
    return [*identity, *points, bonus, late, penalty, number(grade.total), grade.status, message]


def _failed_csv_row(grade: StudentGrade, failure: StageFailure, rubric: Rubric) -> list[Any]:
    return [_cell(grade.student), "", *(0 for _ in rubric.sections), 0, "", 0, 0, "error", failure.message]


def write_grades_csv(grades: list[StudentGrade], path: Path, rubric: Rubric, guard: StageGuard | None = None) -> None:
    """Writes one row per student: id, LMS name, points per rubric section, bonus points given by hand, late
    and its penalty, total, status, and the message of a status "error"."""
    sections = [section.id for section in rubric.sections]
    before, after = GRADEBOOK_COLUMNS
    header: list[Any] = [*before, *sections, *after]
    build, failed = partial(_grades_csv_row, rubric=rubric), partial(_failed_csv_row, rubric=rubric)
    rows = guarded_rows(grades, GRADES_CSV, build, failed, guard)
    atomic_write(path, csv_text([header, *rows]))


def read_roster(path: Path) -> dict[str, RosterEntry]:
    """Reads roster.csv (columns: notebook, name, id, sis_user_id, sis_login_id, section), keyed by notebook."""
    roster: dict[str, RosterEntry] = {}
    first_line: dict[str, int] = {}
    for line, values in read_rows(path, ROSTER_COLUMNS, RosterError, "roster"):
        for column in ("notebook", "name"):
            if not values[column]:
                raise RosterError(f"{path}: line {line}: column {column!r} is empty")
        notebook = values["notebook"].removesuffix(".ipynb")
        if notebook in roster:
            raise RosterError(
                f"{path}: line {line}: notebook {notebook!r} is already listed on line {first_line[notebook]}"
            )
        first_line[notebook] = line
        roster[notebook] = RosterEntry(**{**values, "notebook": notebook})
    return roster


def write_canvas_csv(
    grades: list[StudentGrade],
    path: Path,
    rubric: Rubric,
    roster: dict[str, RosterEntry] | None,
    guard: StageGuard | None = None,
) -> None:
    """Writes a Canvas gradebook import: the roster's identity columns, a Points Possible row, then totals.

    A submission from a Canvas download carries its Canvas user id, which fills the `ID` column that
    Canvas matches on, so no roster is needed (a roster entry still wins). Anyone else missing from the
    roster keeps their notebook name as the Student column, other ids blank. A student whose row could not
    be made gets only their notebook name and an empty score.
    """
    possible = number(rubric.max_total)
    rows: list[list[Any]] = guarded_rows(
        grades, CANVAS_CSV, partial(_canvas_row, roster=roster), _failed_canvas_row, guard
    )
    header: list[list[Any]] = [
        [*CANVAS_COLUMNS, f"{rubric.title} (points)"],
        ["Points Possible", "", "", "", "", possible],
    ]
    atomic_write(path, csv_text([*header, *rows]))


def _canvas_identity(grade: StudentGrade, roster: dict[str, RosterEntry] | None) -> list[str]:
    entry = (roster or {}).get(grade.student)
    if entry is None and grade.origin.lms == "canvas":
        return [_cell(grade.display_name), _cell(grade.origin.lms_id), "", "", ""]
    if entry is None:
        return [_cell(grade.student), "", "", "", ""]
    return [_cell(v) for v in (entry.name, entry.id, entry.sis_user_id, entry.sis_login_id, entry.section)]


def _canvas_row(grade: StudentGrade, roster: dict[str, RosterEntry] | None) -> list[Any]:
    return [*_canvas_identity(grade, roster), number(grade.total)]


def _failed_canvas_row(grade: StudentGrade, _: StageFailure) -> list[Any]:
    # Only what cannot fail: the notebook's name, and an empty score that Canvas leaves ungraded.
    return [_cell(grade.student), "", "", "", "", ""]


def summary_text(grade: StudentGrade, rubric: Rubric) -> str:
    """A plain-text summary of a grade: total, the rubric's sections, integrity flags, how the notebook ran."""
    who = grade.student if grade.display_name == grade.student else f"{grade.display_name} ({grade.student})"
    lines = [f"{who}: {number(grade.total)} / {number(rubric.max_total)}"]
    lines += [f"  {s.title}: {number(s.points)} / {number(s.max)}" for s in rubric_sections(grade, rubric)]
    lines += [f"Adjustment by the instructor: {b.points:+g} ({b.comment})" for b in grade.bonus]
    if note := late_message(grade, rubric.late):
        lines.append(f"  {note}")
    lines += [f"Integrity: {flag}" for flag in grade.integrity_flags]
    execution = grade.facts.execution
    lines.append(f"Notebook run: {execution.status}" + (f" ({execution.message})" if execution.message else ""))
    if execution.limits_hit:
        lines.append("Limits hit: " + ", ".join(execution.limits_hit))
    return "\n".join(lines)


def check_message(check: CheckResult) -> str:
    """A check's message, followed by the instructor's change where there was one."""
    if check.adjusted is None:
        return check.message
    return (
        f"{check.message} Adjusted by the instructor from {number(check.adjusted.from_points)} to "
        f"{number(check.points)} points: {check.adjusted.comment}"
    )


def gradescope_results(grade: StudentGrade, rubric: Rubric) -> dict[str, Any]:
    """A Gradescope autograder results.json: the total, a summary, one test per rubric check and per bonus."""
    tests = [
        {
            "name": f"{section.title}: {check.title}",
            "score": float(check.points),
            "max_score": float(check.max),
            "status": "passed" if check.passed else "failed",
            "output": check_message(check),
            "visibility": "visible",
        }
        for section in rubric_sections(grade, rubric)
        for check in section.checks
    ]
    tests += [
        {
            "name": "Adjustment by the instructor",
            "score": float(bonus.points),
            "max_score": 0.0,
            "status": "passed" if bonus.points >= 0 else "failed",
            "output": bonus.comment,
            "visibility": "visible",
        }
        for bonus in grade.bonus
    ]
    if grade.late_penalty:
        # A test of its own, so that the tests still add up to the score Gradescope shows.
        tests.append(
            {
                "name": "Late submission",
                "score": -float(grade.late_penalty),
                "max_score": 0.0,
                "status": "failed",
                "output": late_message(grade, rubric.late),
                "visibility": "visible",
            }
        )
    return {
        "score": float(grade.total),
        "execution_time": round(grade.facts.execution.duration_s),
        "output": summary_text(grade, rubric),
        "tests": tests,
    }


def write_gradescope(
    grades: list[StudentGrade], layout: OutputLayout, rubric: Rubric, guard: StageGuard | None = None
) -> None:
    """Writes gradescope/<student>/results.json for each student (the student id made file-safe).

    A student whose results cannot be made gets a score of 0 with the grader's message as output, so that
    Gradescope shows why rather than nothing.
    """
    stems = file_stems(g.student for g in grades)

    def failed(grade: StudentGrade, failure: StageFailure) -> dict[str, Any]:
        return {"score": 0.0, "output": failure.message, "tests": []}

    results_of = partial(gradescope_results, rubric=rubric)
    for grade, results in zip(grades, guarded_rows(grades, GRADESCOPE, results_of, failed, guard), strict=True):
        text = json.dumps(results, indent=1, ensure_ascii=False) + "\n"
        atomic_write(layout.gradescope_results(stems[grade.student]), text)


def markdown_text(text: str) -> str:
    """Text shown literally in a Markdown cell: no HTML, no formatting, no math, one line.

    Characters are written as numeric entities rather than backslash escapes, because `\\(` and `\\[`
    open math in Jupyter's Markdown.
    """
    return _MARKDOWN_SPECIAL.sub(lambda m: f"&#{ord(m.group())};", " ".join(text.split()))


def _feedback_markdown(section: SectionResult) -> str:
    lines = [
        f"### Grader feedback: {markdown_text(section.title)} ({number(section.points)} / {number(section.max)})",
        "",
    ]
    lines += [f"**Integrity:** {markdown_text(e)}" for e in section.integrity]
    for check in sorted(section.checks, key=lambda c: c.passed):
        mark = "✓" if check.passed else "✗"
        lines.append(
            f"- {mark} **{markdown_text(check.title)}** ({number(check.points)} / {number(check.max)}): "
            + markdown_text(check_message(check))
        )
    return "\n".join(lines)


def _feedback_cell(source: str, minor: int) -> Any:
    cell = nbformat.v4.new_markdown_cell(source, metadata={"tags": ["grader-feedback"]})
    if minor < 5:  # cell ids arrived in nbformat 4.5; an older notebook must not gain one
        cell.pop("id", None)
    return cell


def write_feedback_notebook(grade: StudentGrade, source_nb: Path, dest: Path, rubric: Rubric) -> None:
    """Writes the student's notebook with the grader's feedback after each section's code.

    A summary cell goes first; each rubric section's cell follows the last code cell that mentions one of
    that section's `keywords`, or goes at the end of the notebook (no keywords, or no cell mentions them).
    A notebook that cannot be read gets no feedback copy: its report already explains why. Neither does one too
    costly to parse whole (more than MAX_JSON_VALUES values: millions of empty lists in its metadata).
    """
    try:
        raw = read_regular_file(source_nb, rubric.limits.notebook_bytes)
        # nbformat builds the whole file, saved outputs included: only where that costs a bounded amount.
        if values_at_most(raw) > MAX_JSON_VALUES:
            return
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception:  # unreadable or invalid JSON: nbformat raises many types; nothing to annotate
        return
    minor = int(nb.get("nbformat_minor", 0))
    cells = list(nb.cells)
    after: dict[int, list[str]] = {}
    for spec, section in zip(rubric.sections, rubric_sections(grade, rubric), strict=True):
        places = [
            i
            for i, c in enumerate(cells)
            if c.get("cell_type") == "code" and mentions(str(c.get("source", "")), spec.keywords)
        ]
        after.setdefault(places[-1] if places else len(cells) - 1, []).append(_feedback_markdown(section))
    summary = "## Grader feedback\n\n" + "  \n".join(
        markdown_text(line.strip()) for line in summary_text(grade, rubric).splitlines()
    )
    result = [_feedback_cell(summary, minor)]
    if not cells:
        result += [_feedback_cell(t, minor) for texts in after.values() for t in texts]
    for i, cell in enumerate(cells):
        result.append(cell)
        result += [_feedback_cell(t, minor) for t in after.get(i, [])]
    nb.cells = result
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest))
