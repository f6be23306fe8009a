"""The notebook reader against hostile files: it returns a notebook or raises NotebookUnreadable, nothing else."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import nbformat
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from grader.execute import NotebookUnreadable, read_notebook
from tests.factories import ROOT

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID = json.loads((ROOT / "submissions" / "ada_perfect.ipynb").read_text("utf-8"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


def reads_or_refuses(raw: bytes) -> nbformat.NotebookNode | None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "submission.ipynb"
        path.write_bytes(raw)
        try:
            nb = read_notebook(path)
        except NotebookUnreadable as exc:
            assert str(exc)  # a message the student can act on
            return None
    assert isinstance(nb, nbformat.NotebookNode) and nb.nbformat == 4
    return nb


def cell_paths() -> list[tuple[Any, ...]]:
    """The places in the valid notebook that nbformat's schema and the reader look at."""
    found: list[tuple[Any, ...]] = [("nbformat",), ("nbformat_minor",), ("metadata",), ("cells",)]
    found += [("metadata", k) for k in VALID["metadata"]]
    for i, cell in enumerate(VALID["cells"][:4]):
        found += [("cells", i), *(("cells", i, k) for k in cell)]
    return found


@FAST
@given(st.binary(max_size=400))
@example(b"")
@example(b"\xef\xbb\xbf")
@example(b"\xff\xfe{}")
def test_random_bytes(raw: bytes) -> None:
    reads_or_refuses(raw)


@FAST
@given(json_values)
@example({"cells": []})
@example({"worksheets": 3})
@example({"cells": [{"cell_type": "code"}], "nbformat": 4, "nbformat_minor": 5, "metadata": {}})
@example({"cells": 1, "nbformat": 4, "nbformat_minor": 10**40, "metadata": {}})
@example({"worksheets": [{"cells": [{"cell_type": "code", "input": 5}]}], "nbformat": 3, "metadata": {}})
def test_random_json(value: Any) -> None:
    reads_or_refuses(json.dumps(value).encode())


@FAST
@given(st.sampled_from(cell_paths()), json_values)
def test_a_valid_notebook_with_any_one_part_replaced(path: tuple[Any, ...], value: Any) -> None:
    data = json.loads(json.dumps(VALID))
    node = data
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    reads_or_refuses(json.dumps(data).encode())


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_nesting_is_unreadable_not_a_crash(depth: int) -> None:
    assert reads_or_refuses(b'{"cells": ' + b"[" * depth + b"]" * depth + b"}") is None


def test_the_valid_notebook_reads() -> None:
    nb = reads_or_refuses(json.dumps(VALID).encode())
    assert nb is not None and any(c.cell_type == "code" for c in nb.cells)
