"""Hostile notebook files, graded through the real CLI in one small batch beside the honest reference: outputs
saved in the file earn nothing (issue 18.10), a file over the size limit is refused unread and a file that is
costly to parse costs its bytes only (18.4), and what a large notebook leaves in the facts cache reads back, so
`--rescore` grades everyone (18.3). The grader's own peak memory over the batch is measured."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from grader.execution.settings import RunLimits
from grader.sandbox.host import bwrap_path
from tests.conftest import run_grade, run_grade_measured
from tests.security import make_notebooks
from tests.security.conftest import REFERENCE, SecurityEnv, cached_facts, grades_by_student

pytestmark = [
    pytest.mark.security,
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap (bwrap) is not installed"),
]

# Issue 18.4: the grader's peak stays under 1 GB with these files in the batch. Measured (2 jobs): about
# 250 MB; before, the 24 MB file of empty lists alone took 1.8 GB to parse.
GRADER_PEAK_MB = 1024
LIMIT = RunLimits().notebook_bytes  # the default the security rubric keeps


@dataclass(frozen=True)
class Files:
    env: SecurityEnv
    folder: Path
    grades: dict[str, dict[str, Any]]
    peak_bytes: int


@pytest.fixture(scope="module")
def files(security_env: SecurityEnv, tmp_path_factory: pytest.TempPathFactory) -> Files:
    folder = tmp_path_factory.mktemp("files") / "submissions"
    folder.mkdir()
    shutil.copyfile(REFERENCE, folder / "honest.ipynb")
    (folder / "saved_outputs.ipynb").write_text(make_notebooks.saved_outputs(), encoding="utf-8")
    (folder / "empty_lists.ipynb").write_bytes(make_notebooks.empty_lists())
    (folder / "long_comments.ipynb").write_text(make_notebooks.long_comments(), encoding="utf-8")
    (folder / "too_large.ipynb").write_bytes(make_notebooks.padded(LIMIT + 1))
    # The suite's limits, with time enough for the reference to train on a machine busy with other work.
    rubric = yaml.safe_load(security_env.rubric.read_text(encoding="utf-8"))
    rubric["limits"] |= {"cell_timeout_s": 300, "notebook_timeout_s": 600}
    env = SecurityEnv(security_env.dataset, folder.parent / "rubric.yaml", security_env.cache)
    env.rubric.write_text(yaml.safe_dump(rubric), encoding="utf-8")
    out = folder.parent / "reports"
    result, peak = run_grade_measured(folder, "--out", out, "--jobs", "2", *env.args(), cache=env.cache, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return Files(env, folder, grades_by_student(out), peak)


def points(files: Files, student: str) -> dict[str, float]:
    return {
        f"{section}.{check['id']}": check["points"]
        for section, data in files.grades[student]["sections"].items()
        for check in data["checks"]
    }


def test_the_honest_reference_keeps_full_marks(files: Files) -> None:
    assert files.grades["honest"]["total"] == 100


def test_outputs_saved_in_the_file_earn_nothing(files: Files) -> None:
    earned = points(files, "saved_outputs")
    # Beside the printing, it is the honest solution less its figures (make_notebooks has no visualize cell).
    missed = {check for check, p in earned.items() if p == 0 and not check.startswith("visualize.")}
    assert missed == {"evaluate.printed"}


def test_a_notebook_over_the_size_limit_is_an_error_for_its_student_only(files: Files) -> None:
    too_large = files.grades["too_large"]
    assert too_large["status"] == "error"
    assert "larger than 32 MB, the limit for one notebook" in too_large["message"]


def test_a_notebook_costly_to_parse_is_graded_and_the_grader_stays_small(files: Files) -> None:
    assert files.grades["empty_lists"]["status"] == "graded"
    print(f"grader peak over the batch: {files.peak_bytes / 2**20:.0f} MB")
    assert files.peak_bytes < GRADER_PEAK_MB << 20


def test_every_cached_entry_reads_back_and_rescore_grades_everyone(files: Files, tmp_path: Path) -> None:
    """The 28 MB notebook's facts were 84 MB, over what the cache reads; `--rescore` then exited 2 for the class."""
    runs = cached_facts(files.env.cache)  # raises if any entry does not decode
    long = next(f for f in runs if len(f.execution.cells) > 1 and f.execution.cells[1].source.startswith("# éé"))
    assert len(long.execution.cells) == 700
    rescored = run_grade(files.folder, "--out", tmp_path, "--rescore", *files.env.args(), cache=files.env.cache)
    assert rescored.returncode == 0, rescored.stderr[-3000:]
    again = grades_by_student(tmp_path)
    assert {s: g["total"] for s, g in again.items()} == {s: g["total"] for s, g in files.grades.items()}
