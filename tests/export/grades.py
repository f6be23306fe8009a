"""Grades of a small class for the export tests: ada perfect, hal with a crashing cell, an accented name."""

from __future__ import annotations

from grader.facts import CellFacts
from grader.score import StudentGrade
from tests.factories import CELL_SOURCES, four_section_rubric, make_facts, make_grade

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


# A roster.csv for ada and hal (hal named with the notebook's extension).
ROSTER = """notebook,name,id,sis_user_id,sis_login_id,section
ada,"Lovelace, Ada",1001,S1001,ada@uni.edu,CSC 383
hal.ipynb,Hal Jordan,1002,S1002,hal@uni.edu,CSC 483
"""
