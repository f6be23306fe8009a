"""Training-curve charts draw whatever a decoded history holds: huge, non-finite and very long series."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from grader.facts import HistoryFacts
from grader.report import charts
from grader.report.charts import PNG_MAGIC
from grader.report.render import write_reports
from tests.factories import REFERENCE_HISTORY, make_grade, report_context, rubric

HOSTILE_HISTORIES = {
    "huge": {"loss": [1.7e308, 0.5, -1.7e308], "accuracy": [0.1, 1.7e308, 0.9]},
    "non-finite": {"loss": [math.nan, math.inf, 0.3, -math.inf], "val_loss": [math.nan] * 4},
    "a million epochs": {"loss": [0.5 + (i % 7) / 10 for i in range(1_000_000)], "accuracy": [0.9] * 1_000_000},
    "tiny and negative": {"loss": [5e-324, -0.0, -3.0], "val_accuracy": [1e-300]},
}


@pytest.mark.parametrize("history", HOSTILE_HISTORIES.values(), ids=list(HOSTILE_HISTORIES))
def test_curves_are_drawn_for_any_history(history: dict[str, list[float]]) -> None:
    png = charts.training_curves(history, REFERENCE_HISTORY)
    assert png is not None and png.startswith(PNG_MAGIC)


def test_a_history_with_nothing_drawable_says_no_data_rather_than_failing() -> None:
    png = charts.training_curves({"loss": [math.nan, math.inf], "accuracy": [1e300]}, None)
    assert png is not None and png.startswith(PNG_MAGIC)


def test_long_curves_keep_their_first_and_last_epoch() -> None:
    epochs, values = charts._drawable([float(i) for i in range(10_000)])
    assert len(epochs) <= 500 and epochs[0] == 1 and epochs[-1] == 10_000
    assert values[-1] == 9_999.0


def test_every_student_gets_a_report_when_one_history_is_hostile(tmp_path: Path) -> None:
    hostile = HistoryFacts(epochs=3, keys=["accuracy", "loss"], values=HOSTILE_HISTORIES["huge"], from_fit=True)
    grades = [make_grade("eve", kernel={"history": hostile}), make_grade("ada")]
    write_reports(grades, tmp_path, report_context(), rubric())
    for student in ("eve", "ada"):
        page = (tmp_path / "students" / f"{student}.html").read_text("utf-8")
        assert 'alt="Loss and accuracy per epoch' in page and "Report unavailable" not in page
