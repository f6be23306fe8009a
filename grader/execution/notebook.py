"""Reads a submitted notebook without trusting it: bounded in size before reading and in memory while parsing.

The file is refused above the rubric's `limits.notebook_mb` before a byte is read. Its JSON is decoded by
msgspec straight into the few fields the grader runs (each cell's type, source and tags; the notebook's
language), so whatever else a notebook holds (metadata, saved outputs, attachments) is skipped by the
parser without being built: 8 million empty lists in the metadata cost their bytes, not 75 times them.
Saved outputs are never read: only what the grader's own run produces counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec
import nbformat

from grader.files import FileTooLarge, NotRegularFile, read_regular_file

# More cells than any homework has; the cell list is checked once built, so its memory is bounded by the
# file's size (a million tiny cells in a 32 MB file: about 270 MB, measured), the notebook built after by this.
MAX_CELLS = 5000
_Text = str | list[str]


# A file with more JSON values than this is not parsed whole (`values_at_most`); an honest notebook has thousands.
MAX_JSON_VALUES = 1_000_000


class NotebookUnreadable(Exception):
    """The file cannot be run as a Python notebook at all; the message says why."""


class _CellMetadata(msgspec.Struct):
    tags: list[str] = []


class _Cell(msgspec.Struct):
    """A cell of nbformat 4 (`source`) or 3 (`input` for code, `level` for a heading)."""

    cell_type: Literal["code", "markdown", "raw", "heading"]
    source: _Text = ""
    input: _Text = ""
    level: int = 1
    metadata: _CellMetadata = msgspec.field(default_factory=_CellMetadata)


class _Worksheet(msgspec.Struct):
    cells: Annotated[list[_Cell], msgspec.Meta(max_length=MAX_CELLS)] = []


class _Language(msgspec.Struct):
    language: str | None = None  # kernelspec's
    name: str | None = None  # language_info's


class _Metadata(msgspec.Struct):
    kernelspec: _Language | None = None
    language_info: _Language | None = None


class _Notebook(msgspec.Struct):
    nbformat: int
    cells: Annotated[list[_Cell], msgspec.Meta(max_length=MAX_CELLS)] | None = None
    worksheets: Annotated[list[_Worksheet], msgspec.Meta(max_length=MAX_CELLS)] | None = None
    metadata: _Metadata = msgspec.field(default_factory=_Metadata)


def values_at_most(raw: bytes) -> int:
    """A bound on the number of values in the JSON text `raw`, without parsing it: each value is the first in its
    container or follows a comma. A parser that builds every value takes at most about 100 bytes for each beside
    the text's own bytes, so this bounds what parsing the whole file can cost."""
    return raw.count(b",") + raw.count(b"[") + raw.count(b"{") + 1


def too_large(max_bytes: int) -> str:
    """Why a notebook over the size limit is not graded, in words a student acts on."""
    return (
        f"the notebook is larger than {max_bytes / 2**20:g} MB, the limit for one notebook "
        "(clear its outputs before submitting)"
    )


def read_notebook(path: Path, max_bytes: int) -> nbformat.NotebookNode:
    """The notebook as nbformat v4 without its saved outputs, or NotebookUnreadable with a message a student
    can act on."""
    try:
        raw = read_regular_file(path, max_bytes)
    except NotRegularFile as exc:
        raise NotebookUnreadable(str(exc.strerror)) from None
    except FileTooLarge:
        raise NotebookUnreadable(too_large(max_bytes)) from None
    except OSError as exc:
        raise NotebookUnreadable(f"the file cannot be read: {exc.strerror}") from None
    if not raw.strip():
        raise NotebookUnreadable("the file is empty (0 bytes): was the notebook saved before submitting?")
    shape = _decoded(raw)
    _check_language(shape.metadata)
    nb = _built(shape)
    if not any(cell.cell_type == "code" and cell.source.strip() for cell in nb.cells):
        raise NotebookUnreadable("the notebook has no code to run: was the right file submitted?")
    return nb


def _decoded(raw: bytes) -> _Notebook:
    no_cells = NotebookUnreadable("the file is JSON but not a Jupyter notebook (it has no cells)")
    try:
        keys = msgspec.json.decode(raw.removeprefix(b"\xef\xbb\xbf"), type=dict[str, msgspec.Raw])
    except msgspec.ValidationError:  # a DecodeError too: the JSON is not an object
        raise no_cells from None
    except (msgspec.DecodeError, RecursionError) as exc:
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else exc
        raise NotebookUnreadable(f"the file is not a Jupyter notebook (not valid JSON: {reason})") from None
    if "cells" not in keys and "worksheets" not in keys:
        raise no_cells
    try:
        shape = msgspec.json.decode(raw.removeprefix(b"\xef\xbb\xbf"), type=_Notebook)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise NotebookUnreadable(f"the notebook is malformed: {str(exc)[:300]}") from None
    if shape.cells is None and shape.worksheets is None:
        raise no_cells
    if shape.nbformat not in (3, 4) or (shape.cells is None) != (shape.nbformat == 3):
        raise NotebookUnreadable(f"the notebook is malformed: nbformat {shape.nbformat} is not 3 or 4")
    return shape


def _check_language(metadata: _Metadata) -> None:
    language = (metadata.kernelspec and metadata.kernelspec.language) or (
        (metadata.language_info and metadata.language_info.name) or "python"
    )
    if language.lower() not in ("python", "python3", "ipython"):
        raise NotebookUnreadable(f"the notebook's kernel is {language!r}; this assignment must be written in Python")


def _built(shape: _Notebook) -> nbformat.NotebookNode:
    cells = shape.cells if shape.cells is not None else [c for w in shape.worksheets or [] for c in w.cells]
    if len(cells) > MAX_CELLS:
        raise NotebookUnreadable(f"the notebook has {len(cells)} cells, more than the {MAX_CELLS} the grader runs")
    nb = nbformat.v4.new_notebook()
    nb.cells = [_cell(cell, v3=shape.cells is None) for cell in cells]
    return nb


def _cell(cell: _Cell, *, v3: bool) -> nbformat.NotebookNode:
    source = _joined(cell.input if v3 and cell.cell_type == "code" else cell.source)
    metadata = {"tags": cell.metadata.tags} if cell.metadata.tags else {}
    if cell.cell_type == "code":
        return nbformat.v4.new_code_cell(source, metadata=metadata)
    if cell.cell_type == "raw":
        return nbformat.v4.new_raw_cell(source, metadata=metadata)
    if cell.cell_type == "heading":  # nbformat 3's headings are markdown in 4
        source = "#" * max(1, min(cell.level, 6)) + " " + source
    return nbformat.v4.new_markdown_cell(source, metadata=metadata)


def _joined(text: _Text) -> str:
    return text if isinstance(text, str) else "".join(text)
