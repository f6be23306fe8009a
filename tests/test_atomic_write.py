"""A file written through atomic_write is the old one or the new one, never half of either."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from grader.atomic_write import atomic_write, replaced_whole


def test_text_and_bytes_are_written_whole_with_the_mode_asked(tmp_path: Path) -> None:
    atomic_write(tmp_path / "new" / "a.csv", "é,1\r\n")
    atomic_write(tmp_path / "b.npz", b"\x00\x01", mode=0o444)
    assert (tmp_path / "new" / "a.csv").read_bytes() == "é,1\r\n".encode()  # line endings as given
    assert stat.S_IMODE((tmp_path / "b.npz").stat().st_mode) == 0o444
    assert stat.S_IMODE((tmp_path / "new" / "a.csv").stat().st_mode) == 0o644


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "grades.csv"
    atomic_write(path, "old")
    with pytest.raises(RuntimeError), replaced_whole(path) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]


def test_two_writers_of_one_path_do_not_share_a_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "index.html"
    with replaced_whole(path) as first, replaced_whole(path) as second:
        first.write(b"first")
        second.write(b"second")
    assert path.read_bytes() == b"first"  # the outer block ends last: its file is the one left
