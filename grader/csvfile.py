"""Reads the CSV files an instructor hands the grader (roster, adjustments): rows by column name, with line numbers.

Spreadsheets save these files, so a byte-order mark is accepted, blank rows are skipped and columns may come
in any order (extra columns are ignored). Anything else wrong is an error naming the file and the line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from grader.errors import GraderError


def read_rows(
    path: Path, columns: tuple[str, ...], error: type[GraderError], kind: str
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yields (line, {column: stripped value}) for each non-blank row of the `kind` file (e.g. "roster").

    Raises `error` with a message naming the file and the line.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets often save a byte-order mark
    except OSError as exc:
        raise error(f"cannot read {kind} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text; save the {kind} as CSV UTF-8") from None
    reader = csv.reader(text.splitlines())
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise error(f"{path}: empty file; expected a header row: {','.join(columns)}") from None
    except csv.Error as exc:
        raise error(f"{path}: line 1: {exc}") from None
    missing = [c for c in columns if c not in header]
    if missing:
        raise error(f"{path}: line 1: missing column(s) {', '.join(missing)} (expected: {','.join(columns)})")
    duplicated = sorted({h for h in header if h and header.count(h) > 1})
    if duplicated:
        raise error(f"{path}: line 1: column(s) {', '.join(duplicated)} appear more than once")
    where = {c: header.index(c) for c in columns}
    line = 1
    try:
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise error(f"{path}: line {line}: {len(row)} fields, but the header has {len(header)}")
            yield line, {c: row[i].strip() for c, i in where.items()}
    except csv.Error as exc:
        raise error(f"{path}: line {line + 1}: {exc}") from None
