"""Before the due date a student sees that hidden checks exist and their points, never their verdicts."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from grader.report.render import student_page
from grader.rubric.load import load_rubric
from grader.rubric.model import Rubric
from grader.visibility import hides_now, student_view
from tests.factories import make_grade, report_context
from tests.service.conftest import course_rubric

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def hidden_evaluation(tmp_path: Path, due: datetime | None = None) -> Rubric:
    rubric = load_rubric(course_rubric(tmp_path, hidden=True))
    return dataclasses.replace(rubric, due=due)


def test_a_hidden_section_hides_its_checks_until_the_due_date(tmp_path: Path) -> None:
    rubric = hidden_evaluation(tmp_path, due=NOW + timedelta(days=1))
    evaluate = next(s for s in rubric.sections if s.id == "evaluate")
    assert evaluate.checks and all(c.hidden for c in evaluate.checks)
    assert not any(c.hidden for s in rubric.sections if s.id != "evaluate" for c in s.checks)
    assert hides_now(rubric, NOW)
    assert not hides_now(rubric, NOW + timedelta(days=2))
    assert hides_now(dataclasses.replace(rubric, due=None), NOW)  # no due date: hidden for good
    assert not hides_now(load_rubric(course_rubric(tmp_path / "open")), NOW)  # nothing hidden: nothing to hide


def test_the_student_view_withholds_verdicts_and_points_of_hidden_checks(tmp_path: Path) -> None:
    rubric = hidden_evaluation(tmp_path)
    grade = make_grade(under=rubric, reevaluation={"accuracy": 0.5, "student_data_accuracy": 0.5})
    full = {c.id: c for s in grade.sections if s.id == "evaluate" for c in s.checks}
    assert not full["accuracy"].passed and full["accuracy"].message
    shown = student_view(grade, rubric)
    evaluate = next(s for s in shown.sections if s.id == "evaluate")
    assert all(c.hidden and c.points == 0 and not c.message for c in evaluate.checks)
    assert [c.max for c in evaluate.checks] == [full[c.id].max for c in evaluate.checks]
    assert evaluate.points == 0 and evaluate.max == next(s.max for s in grade.sections if s.id == "evaluate")
    hidden_earned = sum(c.points for c in full.values())
    assert shown.total == grade.total - hidden_earned
    # The other sections are as they were.
    assert [s for s in shown.sections if s.id != "evaluate"] == [s for s in grade.sections if s.id != "evaluate"]

    page = student_page(shown, rubric, report_context())
    assert full["accuracy"].message not in page
    assert "hidden until the due date" in page
    assert "Accuracy threshold 0.89" not in page and "0.8900" not in page


def test_a_rubric_without_hidden_checks_shows_the_grade_as_it_is(tmp_path: Path) -> None:
    rubric = load_rubric(course_rubric(tmp_path))
    grade = make_grade(under=rubric)
    assert student_view(grade, rubric) is grade
