"""Exports a gradebook or LMS reads: grades.json, grades.csv, Canvas CSV, Gradescope results, feedback notebooks."""

from __future__ import annotations

import csv
import dataclasses
import json
import tracemalloc
from pathlib import Path

import nbformat
import pytest

from grader.errors import GraderError
from grader.export import (
    RosterEntry,
    file_stems,
    read_roster,
    write_canvas_csv,
    write_feedback_notebook,
    write_grades_csv,
    write_grades_json,
    write_gradescope,
)
from grader.facts import CellFacts
from grader.near_copies import NearCopy
from grader.output_layout import OutputLayout
from grader.score import StudentGrade
from tests.factories import CELL_SOURCES, ROOT, four_section_rubric, make_facts, make_grade, rubric

SECTIONS = ["prepare", "visualize", "build", "train", "evaluate"]
SCRIPT = "<script>alert(1)</script>"


def hal() -> StudentGrade:
    cells = list(make_facts().execution.cells)
    cells[2] = CellFacts(3, "error", CELL_SOURCES[2], "AttributeError", f"no attribute {SCRIPT} $x$ [a](b)")
    return make_grade("hal", execution={"cells": cells, "limits_hit": ["cell_timeout_s"]}, kernel={"figures": []})


def grades() -> list[StudentGrade]:
    return [make_grade("ada"), hal(), make_grade("Zoë Ünal")]


def four_section_grades() -> list[StudentGrade]:
    """A class graded under a rubric without a visualize section: ada perfect, eve without model.summary()."""
    return [
        make_grade("ada", under=four_section_rubric()),
        make_grade("eve", under=four_section_rubric(), kernel={"summary_calls": 0}),
    ]


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


def test_grades_csv_has_a_row_per_student(tmp_path: Path) -> None:
    path = tmp_path / "grades.csv"
    write_grades_csv([*grades(), make_grade("=HYPERLINK(1)")], path, rubric())
    rows = list(csv.reader(path.read_text("utf-8").splitlines()))
    assert rows[0] == ["student", "name", *SECTIONS, "bonus", "late", "late_penalty", "total", "status", "message"]
    assert rows[1] == ["ada", "", "10", "10", "50", "20", "10", "0", "", "0", "100", "graded", ""]
    assert rows[2] == ["hal", "", "10", "2", "50", "20", "10", "0", "", "0", "92", "graded", ""]
    assert rows[3][0] == "Zoë Ünal"
    assert rows[4][0] == "'=HYPERLINK(1)"  # a spreadsheet must not run a student's file name


ROSTER = """notebook,name,id,sis_user_id,sis_login_id,section
ada,"Lovelace, Ada",1001,S1001,ada@uni.edu,CSC 383
hal.ipynb,Hal Jordan,1002,S1002,hal@uni.edu,CSC 483
"""


def test_roster_maps_notebooks_to_students(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text("\ufeff" + ROSTER, encoding="utf-8")  # as a spreadsheet saves it
    roster = read_roster(path)
    assert roster == {
        "ada": RosterEntry("ada", "Lovelace, Ada", "1001", "S1001", "ada@uni.edu", "CSC 383"),
        "hal": RosterEntry("hal", "Hal Jordan", "1002", "S1002", "hal@uni.edu", "CSC 483"),
    }


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("notebook,name,id,sis_user_id,section\nada,Ada,1,S1,A\n", ["line 1", "sis_login_id"]),
        (ROSTER + "kim,Kim,3,S3,kim@uni.edu\n", ["line 4", "5 fields", "6"]),
        (ROSTER + ",Nobody,4,S4,n@uni.edu,A\n", ["line 4", "'notebook'"]),
        (ROSTER + "ada,Ada Again,5,S5,a2@uni.edu,A\n", ["line 4", "'ada'", "line 2"]),
        ("", ["empty"]),
    ],
)
def test_a_malformed_roster_names_the_row_and_column(tmp_path: Path, text: str, words: list[str]) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(GraderError) as error:
        read_roster(path)
    assert str(path) in str(error.value)
    for word in words:
        assert word in str(error.value)


def test_a_missing_roster_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(GraderError, match="cannot read roster"):
        read_roster(tmp_path / "nope.csv")


def test_canvas_csv_has_the_gradebook_header_points_possible_and_roster_ids(tmp_path: Path) -> None:
    roster_path = tmp_path / "roster.csv"
    roster_path.write_text(ROSTER, encoding="utf-8")
    path = tmp_path / "canvas.csv"
    write_canvas_csv(grades(), path, rubric(), read_roster(roster_path))
    rows = list(csv.reader(path.read_text("utf-8").splitlines()))
    assert rows[0] == [
        "Student",
        "ID",
        "SIS User ID",
        "SIS Login ID",
        "Section",
        "Image Classification using MNIST (points)",
    ]
    assert rows[1] == ["Points Possible", "", "", "", "", "100"]
    assert rows[2] == ["Lovelace, Ada", "1001", "S1001", "ada@uni.edu", "CSC 383", "100"]
    assert rows[3] == ["Hal Jordan", "1002", "S1002", "hal@uni.edu", "CSC 483", "92"]
    assert rows[4] == ["Zoë Ünal", "", "", "", "", "100"]  # not on the roster
    write_canvas_csv(grades()[:1], path, dataclasses.replace(rubric(), title="HW 1"), None)
    assert path.read_text("utf-8").splitlines()[0].endswith(",HW 1 (points)")


def test_gradescope_results_have_a_test_per_check_adding_up_to_the_score(tmp_path: Path) -> None:
    write_gradescope(grades(), OutputLayout(tmp_path), rubric())
    stems = file_stems(g.student for g in grades())
    assert sorted(p.name for p in OutputLayout(tmp_path).gradescope_dir.iterdir()) == sorted(stems.values())
    for grade in grades():
        results = json.loads(OutputLayout(tmp_path).gradescope_results(stems[grade.student]).read_text("utf-8"))
        assert set(results) == {"score", "execution_time", "output", "tests"}
        assert results["score"] == grade.total
        assert grade.student in results["output"] and "Visualize the data" in results["output"]
        assert len(results["tests"]) == sum(len(s.checks) for s in grade.sections) == 31
        for test in results["tests"]:
            assert set(test) == {"name", "score", "max_score", "status", "output", "visibility"}
            assert test["visibility"] == "visible" and test["status"] in ("passed", "failed")
        assert sum(t["score"] for t in results["tests"]) == pytest.approx(results["score"])
        assert sum(t["max_score"] for t in results["tests"]) == 100
    hal_tests = json.loads(OutputLayout(tmp_path).gradescope_results("hal").read_text("utf-8"))["tests"]
    grid = next(t for t in hal_tests if t["name"] == "Visualize the data: A figure of 9 images in a 3x3 grid is shown")
    assert grid["score"] == 0 and grid["status"] == "failed" and "AttributeError" in grid["output"]


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


def test_gradescope_has_a_test_per_check_of_the_rubric(tmp_path: Path) -> None:
    rubric = four_section_rubric()
    write_gradescope(four_section_grades(), OutputLayout(tmp_path), rubric)
    results = json.loads(OutputLayout(tmp_path).gradescope_results("eve").read_text("utf-8"))
    expected = [(f"{s.title}: {c.title}", c.points) for s in rubric.sections for c in s.checks]
    assert [(t["name"], t["max_score"]) for t in results["tests"]] == expected and len(expected) == 27
    assert not any(t["name"].startswith("Visualize") for t in results["tests"])
    summary = next(t for t in results["tests"] if t["name"].endswith("model.summary() was called"))
    assert (summary["score"], summary["status"], results["score"]) == (0, "failed", 85)
    assert "Visualize" not in results["output"] and "eve: 85 / 90" in results["output"]


def test_a_grade_lacking_a_section_of_the_rubric_lists_it_unscored(tmp_path: Path) -> None:
    write_grades_csv([make_grade("ada", under=four_section_rubric())], tmp_path / "grades.csv", rubric())
    rows = list(csv.reader((tmp_path / "grades.csv").read_text("utf-8").splitlines()))
    assert rows[0][2:7] == SECTIONS and rows[1][2:7] == ["10", "0", "50", "20", "10"]


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
