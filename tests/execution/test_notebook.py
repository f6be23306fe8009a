"""The notebook reader against hostile files: it returns a notebook or raises NotebookUnreadable, nothing else."""

from __future__ import annotations

import json
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import nbformat
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from grader.execution.notebook import MAX_CELLS, NotebookUnreadable, read_notebook, values_at_most
from tests.factories import ROOT

LIMIT = 1 << 20
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
            nb = read_notebook(path, LIMIT)
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


def test_saved_outputs_are_not_read_and_tags_are_kept() -> None:
    """Only the grader's run produces outputs: what the file claims a cell printed is never read (issue 18.10)."""
    saved = {"output_type": "stream", "name": "stdout", "text": "Test accuracy: 0.99\n"}
    data = json.loads(json.dumps(VALID))
    data["cells"] = [
        {"cell_type": "code", "source": "print(1)", "metadata": {"tags": ["skip-execution"]}, "outputs": [saved]},
        {"cell_type": "code", "source": "  \n", "metadata": {}, "outputs": [saved], "execution_count": 3},
        {"cell_type": "markdown", "source": ["# a ", "title"], "metadata": {}},
    ]
    nb = reads_or_refuses(json.dumps(data).encode())
    assert nb is not None
    assert [c.get("outputs") for c in nb.cells] == [[], [], None]
    assert nb.cells[0].metadata["tags"] == ["skip-execution"]
    assert nb.cells[2].source == "# a title"


def test_an_nbformat_3_notebook_reads_as_4() -> None:
    cell = {"cell_type": "code", "input": ["print(", "'old')"], "language": "python", "outputs": [], "metadata": {}}
    heading = {"cell_type": "heading", "level": 2, "source": "Part 1", "metadata": {}}
    doc = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [heading, cell]}]}
    nb = reads_or_refuses(json.dumps(doc).encode())
    assert nb is not None
    assert [(c.cell_type, c.source) for c in nb.cells] == [("markdown", "## Part 1"), ("code", "print('old')")]


def test_a_notebook_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.ipynb"
    path.write_bytes(json.dumps(VALID).encode() + b" " * LIMIT)
    with pytest.raises(NotebookUnreadable, match=r"larger than 1 MB, the limit for one notebook"):
        read_notebook(path, LIMIT)


def test_too_many_cells_is_unreadable() -> None:
    cells = [{"cell_type": "code", "source": "1", "metadata": {}, "outputs": []}] * (MAX_CELLS + 1)
    data = {**VALID, "cells": cells}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "many.ipynb"
        path.write_text(json.dumps(data))
        with pytest.raises(NotebookUnreadable):
            read_notebook(path, 64 << 20)


@pytest.mark.parametrize(
    ("text", "values"),
    [(b"1", 1), (b"[]", 1), (b"[[], []]", 3), (b'{"a": [1, 2], "b": {}}', 5), (b'["a,b"]', 2)],
)
def test_values_at_most_bounds_the_values_of_a_json_text(text: bytes, values: int) -> None:
    # At least every value; at most about twice (a container is counted by its bracket and by a comma or as
    # a first value), and a comma inside a string counts.
    assert values <= values_at_most(text) <= 2 * values + 1 + text.count(b",") - text.count(b", ")


def test_what_the_grader_does_not_read_costs_no_memory(tmp_path: Path) -> None:
    """8 million empty lists in the metadata (24 MB) took 1.8 GB with json.loads; skipped, they cost nothing."""
    path = tmp_path / "lists.ipynb"
    lists = b"[" + b",".join([b"[]"] * 8_000_000) + b"]"
    path.write_bytes(json.dumps(VALID).encode()[:-1] + b', "padding": {"x": ' + lists + b"}}")
    tracemalloc.start()
    try:
        nb = read_notebook(path, 32 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert any(c.cell_type == "code" for c in nb.cells)
    assert peak < 3 * path.stat().st_size  # the file's bytes, read once, and the cells
