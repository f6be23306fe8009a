"""The first failed import, found in the cells' facts: which line, which error, and what failed after it."""

from __future__ import annotations

from grader.facts import CellFacts
from grader.report.failed_import import FailedImport, failed_import


def cell(index: int, source: str, error_name: str = "", error_value: str = "") -> CellFacts:
    return CellFacts(index, "error" if error_name else "ok", source, error_name, error_value)


def test_the_first_missing_module_is_named_with_its_import_line_and_the_errors_after_it() -> None:
    cells = [
        cell(
            1,
            "import numpy as np\nimport seaborn as sns\nimport keras",
            "ModuleNotFoundError",
            "No module named 'seaborn'",
        ),
        cell(2, "x_train = x_train / 255.0", "NameError", "name 'x_train' is not defined"),
        cell(3, "sns.heatmap(m)", "NameError", "name 'sns' is not defined"),
        cell(4, "model.fit(x, y)", "AttributeError", "'NoneType' object has no attribute 'fit'"),
    ]
    assert failed_import(cells) == FailedImport(
        cell=1,
        statement="import seaborn as sns",
        error="ModuleNotFoundError: No module named 'seaborn'",
        missing_module=True,
        later_errors=("AttributeError", "NameError"),
    )


def test_a_name_missing_from_an_installed_module_points_at_its_from_line() -> None:
    value = "cannot import name 'plot_confusion_matrix' from 'sklearn.metrics' (/env/sklearn/metrics/__init__.py)"
    cells = [
        cell(1, "import numpy as np"),
        cell(2, "from sklearn.metrics import plot_confusion_matrix", "ImportError", value),
    ]
    found = failed_import(cells)
    assert found is not None
    assert (found.cell, found.statement, found.missing_module, found.later_errors) == (
        2,
        "from sklearn.metrics import plot_confusion_matrix",
        False,
        (),
    )


def test_a_notebook_whose_imports_all_worked_has_none() -> None:
    cells = [cell(1, "import numpy as np"), cell(2, "1 / 0", "ZeroDivisionError", "division by zero")]
    assert failed_import(cells) is None
