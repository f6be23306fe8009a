"""The first import that failed in a notebook, said up front: the errors of the cells after it follow from it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from grader.facts import CellFacts

_IMPORT_ERRORS = ("ModuleNotFoundError", "ImportError")
# "No module named 'seaborn.objects'", "cannot import name 'x' from 'sklearn.metrics' (...)"
_MODULE = re.compile(r"No module named '([\w.]+)'|cannot import name '\w+' from '([\w.]+)'")
_MAX_STATEMENT = 200


@dataclass(frozen=True, slots=True)
class FailedImport:
    cell: int  # position among the code cells, from 1
    statement: str  # the line of the cell that imports the module; "" where none was found
    error: str  # "ModuleNotFoundError: No module named 'seaborn'"
    missing_module: bool  # the module is not installed at all (not a name missing from one)
    later_errors: tuple[str, ...]  # the kinds of error the cells after it raised, e.g. ("NameError",)


def failed_import(cells: Sequence[CellFacts]) -> FailedImport | None:
    """The first cell that raised ModuleNotFoundError or ImportError, with the errors raised after it."""
    first = next((c for c in cells if c.status == "error" and c.error_name in _IMPORT_ERRORS), None)
    if first is None:
        return None
    later = sorted({c.error_name for c in cells if c.index > first.index and c.status == "error" and c.error_name})
    value = first.error_value.splitlines()[0][:300] if first.error_value else ""
    return FailedImport(
        cell=first.index,
        statement=_statement(first),
        error=f"{first.error_name}: {value}",
        missing_module=first.error_name == "ModuleNotFoundError",
        later_errors=tuple(later),
    )


def _statement(cell: CellFacts) -> str:
    """The import line of the module the error names (the first import line when the module is not named)."""
    match = _MODULE.search(cell.error_value)
    module = (match.group(1) or match.group(2)).split(".")[0] if match else None
    for line in cell.source.splitlines():
        text = line.strip()
        if text.startswith(("import ", "from ")) and (module is None or re.search(rf"\b{module}\b", text)):
            return text[:_MAX_STATEMENT]
    return ""
