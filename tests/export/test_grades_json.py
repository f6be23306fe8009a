"""grades.json: the documented schema, near-copies, the rubric's sections."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from grader.export.canvas import write_canvas_csv
from grader.export.grades_csv import write_grades_csv
from grader.export.grades_json import write_grades_json
from grader.near_copies import NearCopy
from tests.export.grades import SECTIONS, four_section_grades, grades
from tests.factories import four_section_rubric, rubric


def test_grades_json_has_exactly_the_documented_schema(tmp_path: Path) -> None:
    path = tmp_path / "grades.json"
    write_grades_json(grades(), path, rubric())
    data = json.loads(path.read_text("utf-8"))
    assert list(data) == ["students", "ignored"] and len(data["students"]) == 3
    assert data["ignored"] == []
    for entry in data["students"]:
        assert set(entry) == {
            "student",
            "name",
            "lms",
            "status",
            "message",
            "late",
            "submitted_at",
            "late_by_minutes",
            "late_days",
            "late_penalty",
            "total",
            "max_total",
            "integrity",
            "review",
            "limits_hit",
            "ignored",
            "sections",
            "bonus",
            "similar",
        }
        assert entry["bonus"] == [] and entry["similar"] == []
        assert isinstance(entry["student"], str) and entry["status"] in ("graded", "error")
        assert isinstance(entry["message"], str) and isinstance(entry["total"], float)
        assert entry["max_total"] == 100
        assert all(isinstance(x, str) for x in entry["integrity"] + entry["review"] + entry["limits_hit"])
        assert list(entry["sections"]) == SECTIONS
        for section in entry["sections"].values():
            assert set(section) == {"points", "max", "checks"} and isinstance(section["points"], float)
            assert sum(c["max"] for c in section["checks"]) == section["max"]
            for check in section["checks"]:
                assert set(check) == {"id", "points", "max", "passed", "message"}
                assert isinstance(check["id"], str) and isinstance(check["message"], str)
                assert isinstance(check["points"], float) and isinstance(check["max"], float)
                assert isinstance(check["passed"], bool)
        assert (entry["name"], entry["lms"], entry["late"], entry["late_penalty"], entry["ignored"]) == (
            "",
            "",
            False,
            0,
            [],
        )
        assert entry["total"] == pytest.approx(sum(s["points"] for s in entry["sections"].values()))
    hal_entry = data["students"][1]
    assert hal_entry["limits_hit"] == ["cell_timeout_s"] and hal_entry["total"] == 92.0
    assert [s["max"] for s in hal_entry["sections"].values()] == [10, 10, 50, 20, 10]
    assert data["students"][2]["student"] == "Zoë Ünal"


def test_grades_json_lists_each_students_near_copies_highest_first(tmp_path: Path) -> None:
    pairs = [NearCopy("Zoë Ünal", "ada", 0.8, (), ()), NearCopy("ada", "hal", 0.95, (), ())]
    write_grades_json(grades(), tmp_path / "grades.json", rubric(), pairs=pairs)
    students = {s["student"]: s for s in json.loads((tmp_path / "grades.json").read_text("utf-8"))["students"]}
    assert students["ada"]["similar"] == [{"student": "hal", "score": 0.95}, {"student": "Zoë Ünal", "score": 0.8}]
    assert students["hal"]["similar"] == [{"student": "ada", "score": 0.95}]
    assert students["Zoë Ünal"]["similar"] == [{"student": "ada", "score": 0.8}]


def test_grades_json_and_csv_have_the_sections_of_the_rubric(tmp_path: Path) -> None:
    rubric = four_section_rubric()
    write_grades_json(four_section_grades(), tmp_path / "grades.json", rubric)
    ada, eve = json.loads((tmp_path / "grades.json").read_text("utf-8"))["students"]
    assert list(ada["sections"]) == ["prepare", "build", "train", "evaluate"]
    assert [s["max"] for s in ada["sections"].values()] == [10, 50, 20, 10] and ada["max_total"] == 90
    assert (ada["total"], eve["total"], eve["sections"]["build"]["points"]) == (90.0, 85.0, 45.0)
    write_grades_csv(four_section_grades(), tmp_path / "grades.csv", rubric)
    rows = list(csv.reader((tmp_path / "grades.csv").read_text("utf-8").splitlines()))
    assert rows[0][2:7] == ["prepare", "build", "train", "evaluate", "bonus"]
    assert rows[1] == ["ada", "", "10", "50", "20", "10", "0", "", "0", "90", "graded", ""]
    assert rows[2] == ["eve", "", "10", "45", "20", "10", "0", "", "0", "85", "graded", ""]
    write_canvas_csv(four_section_grades(), tmp_path / "canvas.csv", rubric, None)
    assert (tmp_path / "canvas.csv").read_text("utf-8").splitlines()[1].endswith(",90")
