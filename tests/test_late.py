"""The late policy: read from the rubric (with line-numbered errors), measured against the due date, applied
purely, shown in every export. No kernel: grades and times are made by hand."""

from __future__ import annotations

import csv
import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from grader.discover import Origin
from grader.export.canvas import write_canvas_csv
from grader.export.grades_csv import write_grades_csv
from grader.export.grades_json import grade_entry
from grader.export.gradescope import gradescope_results
from grader.late import apply_late_policy, late_message, late_penalty
from grader.lateness import Lateness, measure_lateness, when
from grader.rubric.load import load_rubric
from grader.rubric.model import LatePolicy, RubricError
from grader.score import StudentGrade
from tests.factories import ROOT, make_grade, rubric

JANE = Origin(name="smithjane", lms="canvas", lms_id="48213", late=True, superseded=("smithjane_48213_1_mnist.ipynb",))


def rubric_with(tmp_path: Path, late_block: str) -> Path:
    path = tmp_path / "rubric.yaml"
    path.write_text((ROOT / "rubric.yaml").read_text(encoding="utf-8") + "\n" + late_block, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("block", "policy"),
    [
        ("late:\n  penalty_points: 10\n", LatePolicy(points=10)),
        ("late: {penalty_percent: 20}\n", LatePolicy(percent=20)),
        ("late: {}\n", LatePolicy()),
        (
            "late: {penalty_percent_per_day: 10, grace_minutes: 5, max_days: 5}\n",
            LatePolicy(percent_per_day=10, grace_minutes=5, max_days=5),
        ),
        ("", LatePolicy()),
    ],
)
def test_the_rubric_states_the_late_policy(tmp_path: Path, block: str, policy: LatePolicy) -> None:
    assert load_rubric(rubric_with(tmp_path, block)).late == policy


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ("late:\n  penalty_points: 10\n  penalty_percent: 5\n", "not penalty_points and penalty_percent"),
        ("late:\n  penalty_percent: 10\n  penalty_percent_per_day: 5\n", "not penalty_percent and penalty_percent_"),
        ("late:\n  penalty_percent: 10\n  max_days: 5\n", "max_days needs penalty_percent_per_day"),
        ("late:\n  penalty_percent_per_day: 10\n  grace_minutes: -1\n", "grace_minutes (line {n}): must be at least 0"),
        ("late:\n  penalty_percent: 120\n", "late.penalty_percent (line {n}): must be at most 100"),
        ("late:\n  penalty_points: -3\n", "late.penalty_points (line {n}): must be at least 0"),
        ("late:\n  penalty_points: 101\n", "late.penalty_points (line {n}): must be at most 100"),
        ("late:\n  penalty_points: ten\n", "late.penalty_points (line {n}): expected a number"),
        ("late:\n  penalty_days: 1\n", "late.penalty_days (line {n}): unknown key"),
        ("late: 10\n", "late (line {n}): expected a mapping"),
        ("due: 2026-12-01T23:59:00\n", "due (line {n}): 2026-12-01T23:59:00 has no time zone: add its UTC offset"),
        ("due: 2026-12-01\n", "due (line {n}): 2026-12-01T00:00:00 has no time zone"),
        ("due: next tuesday\n", "due (line {n}): expected a date-time with its time zone"),
    ],
)
def test_a_wrong_late_policy_or_due_date_names_the_key_and_line(tmp_path: Path, block: str, words: str) -> None:
    path = rubric_with(tmp_path, block)
    line = len(path.read_text(encoding="utf-8").splitlines())  # the block's last key is the file's last line
    with pytest.raises(RubricError, match=words.format(n=line).replace("(", r"\(").replace(")", r"\)")):
        load_rubric(path)


CST = timezone(timedelta(hours=-6))
DUE = datetime(2026, 12, 1, 23, 59, tzinfo=CST)


@pytest.mark.parametrize(
    ("block", "due"),
    [
        ("due: 2026-12-01T23:59:00-06:00\n", DUE),
        ("due: '2026-12-01T23:59:00-06:00'\n", DUE),  # quoted: a string, parsed the same
        ("due: 2026-12-02T05:59:00Z\n", DUE),
        ("", None),
    ],
)
def test_the_rubric_states_the_due_date_with_its_zone(tmp_path: Path, block: str, due: datetime | None) -> None:
    loaded = load_rubric(rubric_with(tmp_path, block)).due
    assert loaded == due and (loaded is None or loaded.utcoffset() is not None)


PER_DAY = LatePolicy(percent_per_day=10, grace_minutes=5, max_days=5)


@pytest.mark.parametrize(
    ("after_due", "late", "days", "penalty"),
    [
        (timedelta(minutes=-30), False, 0, 0),  # on time
        (timedelta(0), False, 0, 0),  # at the due minute
        (timedelta(minutes=3), False, 0, 0),  # within the 5 minutes' grace
        (timedelta(minutes=6), True, 1, 8),  # a started day
        (timedelta(days=1.5), True, 2, 16),  # 2 started days: 20% of 80
        (timedelta(days=5), True, 5, 40),  # the last day accepted
        (timedelta(days=9), True, 9, 80),  # more than max_days: earns 0
    ],
)
def test_lateness_from_the_due_date(after_due: timedelta, late: bool, days: int, penalty: float) -> None:
    lateness = measure_lateness(DUE + after_due, False, DUE, PER_DAY.grace_minutes)
    assert (lateness.late, lateness.days, lateness.late_by) == (late, days, after_due)
    grade = apply_late_policy(scored(20), PER_DAY, lateness)
    assert (grade.late_penalty, grade.total) == (penalty, 80 - penalty)


def test_the_time_zone_of_the_submission_counts() -> None:
    """11:00 PM in Chicago is 5:00 AM the next day in UTC: on time for a due at 11:59 PM Chicago time."""
    submitted = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    assert not measure_lateness(submitted, False, DUE).late
    assert measure_lateness(submitted.replace(tzinfo=CST), False, DUE).days == 1


def test_report_times_name_their_zone() -> None:
    assert when(datetime(2026, 12, 1, 23, 5, tzinfo=ZoneInfo("America/Chicago"))) == "Dec 1, 2026 11:05 PM (CST)"
    assert when(datetime(2026, 12, 1, 0, 5, tzinfo=UTC)) == "Dec 1, 2026 12:05 AM (UTC)"
    assert when(DUE) == "Dec 1, 2026 11:59 PM (UTC-06:00)"
    assert when(datetime(2026, 12, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))).endswith("(UTC+05:30)")


def test_an_lms_late_flag_counts_when_no_time_is_known() -> None:
    assert measure_lateness(None, True, DUE) == Lateness(True, None, None, 1)
    assert measure_lateness(None, False, DUE) == Lateness()
    # A time and a due date decide; the flag is not needed then.
    assert not measure_lateness(DUE, True, DUE).late
    assert apply_late_policy(scored(), PER_DAY, measure_lateness(None, True, None)).late_penalty == 10


@pytest.mark.parametrize(
    ("after_due", "words"),
    [
        (
            timedelta(minutes=3),
            "Submitted Dec 2, 2026 12:02 AM (UTC-06:00), 3 min after the due date, within the grace.",
        ),
        (
            timedelta(days=1, hours=12),
            "Submitted Dec 3, 2026 11:59 AM (UTC-06:00), 1 day 12 h late (2 started days): "
            "2 × 10% = 20% of the 80 earned, 16 points off.",
        ),
        (
            timedelta(days=9),
            "Submitted Dec 10, 2026 11:59 PM (UTC-06:00), 9 days late (9 started days): "
            "more than the 5 days late the rubric accepts, so it earns 0 of its 80.",
        ),
    ],
)
def test_the_report_says_when_how_late_and_what_it_cost(after_due: timedelta, words: str) -> None:
    lateness = measure_lateness(DUE + after_due, False, DUE, PER_DAY.grace_minutes)
    assert late_message(apply_late_policy(scored(20), PER_DAY, lateness), PER_DAY) == words


def scored(total_off: float = 0.0, origin: Origin = JANE) -> StudentGrade:
    """A perfect grade minus `total_off` points (taken from the total only), from `origin`."""
    grade = make_grade("48213")
    return dataclasses.replace(grade, total=grade.total - total_off, origin=origin)


@pytest.mark.parametrize(
    ("policy", "earned", "penalty"),
    [
        (LatePolicy(points=10), 100, 10),
        (LatePolicy(percent=20), 85, 17),
        (LatePolicy(points=10), 4, 4),  # never below zero
        (LatePolicy(percent=100), 63.5, 63.5),
        (LatePolicy(percent=12.5), 0, 0),
        (LatePolicy(), 90, 0),  # late, but the rubric charges nothing
    ],
)
def test_late_penalty(policy: LatePolicy, earned: float, penalty: float) -> None:
    flagged = measure_lateness(None, True, None)
    assert late_penalty(earned, policy, flagged) == pytest.approx(penalty)
    grade = apply_late_policy(scored(100 - earned), policy, flagged)
    assert grade.late_penalty == pytest.approx(penalty)
    assert grade.total == pytest.approx(earned - penalty) and grade.total >= 0
    assert grade.sections == scored().sections  # the checks keep what they earned


def test_on_time_work_is_unchanged() -> None:
    grade = scored(origin=dataclasses.replace(JANE, late=False))
    assert apply_late_policy(grade, LatePolicy(points=10), Lateness()) == grade


def test_every_export_shows_the_penalty(tmp_path: Path) -> None:
    late = apply_late_policy(scored(), LatePolicy(points=10), measure_lateness(None, True, None))
    on_time = dataclasses.replace(make_grade("ada"))
    grades = [late, on_time]

    jane, ada = grade_entry(late, rubric()), grade_entry(on_time, rubric())
    assert (jane["student"], jane["name"], jane["lms"], jane["late"]) == ("48213", "smithjane", "canvas", True)
    assert (jane["late_penalty"], jane["total"]) == (10.0, 90.0)
    assert jane["ignored"] == ["smithjane_48213_1_mnist.ipynb"]
    assert (ada["late"], ada["late_penalty"]) == (False, 0.0)

    write_grades_csv(grades, tmp_path / "grades.csv", rubric())
    rows = list(csv.reader((tmp_path / "grades.csv").read_text("utf-8").splitlines()))
    assert rows[0][-5:] == ["late", "late_penalty", "total", "status", "message"]
    assert rows[1] == ["48213", "smithjane", "10", "10", "50", "20", "10", "0", "yes", "10", "90", "graded", ""]
    assert rows[2] == ["ada", "", "10", "10", "50", "20", "10", "0", "", "0", "100", "graded", ""]

    # Canvas matches rows on the ID column: a Canvas download fills it from the user id, with no roster.
    write_canvas_csv(grades, tmp_path / "canvas.csv", rubric(), None)
    rows = list(csv.reader((tmp_path / "canvas.csv").read_text("utf-8").splitlines()))
    assert rows[2] == ["smithjane", "48213", "", "", "", "90"]
    assert rows[3] == ["ada", "", "", "", "", "100"]

    results = gradescope_results(late, rubric())
    assert results["score"] == 90
    assert sum(t["score"] for t in results["tests"]) == pytest.approx(90)
    assert results["tests"][-1]["name"] == "Late submission" and results["tests"][-1]["score"] == -10
    said = (
        "Submitted late (marked late by the LMS; the time is not known, counted as 1 day): 10 points taken off the 100"
    )
    assert said in results["output"] and said in results["tests"][-1]["output"]
