"""Walking and removing the folders a hostile kernel wrote: any depth, links, FIFOs, locked folders."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.sandbox import safe_tree
from grader.sandbox.limits import ENTRY_BYTES
from grader.sandbox.safe_tree import directory_bytes, remove_tree, run_folder

SEGMENT = "d" * 60


def build_chain(top: Path, depth: int, payload: bytes = b"") -> int:
    """Folders `depth` levels deep under `top`, built one level at a time (the path soon exceeds PATH_MAX),
    with a file holding `payload` at every level; returns what the disk limit should count for them."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    expected = 0
    for _ in range(depth):
        os.mkdir(SEGMENT, dir_fd=fd)
        child = os.open(SEGMENT, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
        with open(os.open("file", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as fh:
            fh.write(payload)
        expected += os.fstat(fd).st_size + ENTRY_BYTES + len(payload) + ENTRY_BYTES
    os.close(fd)
    return expected


def walk_bytes(path: Path) -> int:
    """What the limit should count, the straightforward way (fine for trees within Python's recursion limit)."""
    total = 0
    for top, dirs, files in os.walk(path):
        total += sum(os.lstat(os.path.join(top, name)).st_size + ENTRY_BYTES for name in (*dirs, *files))
    return total


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A folder beside the student's, with a file, that links from the student's folder point at."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "precious.bin").write_bytes(b"x" * 100_000)
    yield folder
    assert (folder / "precious.bin").read_bytes() == b"x" * 100_000, "a link was followed out of the tree"


def hostile_tree(student: Path, outside: Path) -> None:
    """Links out and in loops, a FIFO, a socket-free mix of modes, and folders the owner cannot enter."""
    student.mkdir()
    (student / "to_outside").symlink_to(outside, target_is_directory=True)
    (student / "to_root").symlink_to("/")
    (student / "loop").symlink_to("loop")
    (student / "a").mkdir()
    (student / "a" / "back_up").symlink_to("..")
    os.mkfifo(student / "a" / "fifo")
    (student / "a" / "data.bin").write_bytes(b"y" * 5000)
    (student / "locked").mkdir()
    (student / "locked" / "inner").mkdir()
    (student / "locked" / "inner" / "kept.txt").write_text("hidden")
    os.chmod(student / "locked" / "inner", 0)
    os.chmod(student / "locked", 0)


def test_a_tree_deeper_than_the_recursion_limit_and_path_max_is_measured_and_removed(tmp_path: Path) -> None:
    student = tmp_path / "run"
    student.mkdir()
    depth = 1200
    expected = build_chain(student, depth, payload=b"z" * 1000)
    assert depth > sys.getrecursionlimit() and depth * (len(SEGMENT) + 1) > os.pathconf("/", "PC_PATH_MAX")

    assert directory_bytes(student) == expected

    assert remove_tree(student) == []
    assert not student.exists()


def test_walk_reopens_folders_it_had_to_close_and_counts_every_branch(tmp_path: Path) -> None:
    """Deeper than the walk's window of open folders, with a side branch at every level to come back to."""
    student = tmp_path / "run"
    student.mkdir()
    fd = os.open(student, os.O_RDONLY | os.O_DIRECTORY)
    for level in range(3 * safe_tree._OPEN_FOLDERS):
        os.mkdir("side", dir_fd=fd)
        with open(os.open(f"side/f{level}", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as fh:
            fh.write(b"s" * level)
        os.mkdir("next", dir_fd=fd)
        child = os.open("next", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    assert directory_bytes(student) == walk_bytes(student)


def test_links_loops_fifos_and_locked_folders(tmp_path: Path, outside: Path) -> None:
    student = tmp_path / "run"
    hostile_tree(student, outside)
    # Links count as the links they are, never as what they point at; the FIFO is never opened.
    assert 5000 < directory_bytes(student) < 100_000
    assert remove_tree(student) == []
    assert not student.exists()


def test_removing_a_link_or_a_missing_path_touches_nothing_else(tmp_path: Path, outside: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(outside, target_is_directory=True)
    assert remove_tree(link) == []
    assert not link.is_symlink()
    assert remove_tree(tmp_path / "never-made") == []
    assert directory_bytes(tmp_path / "never-made") == 0


def test_run_folder_removes_whatever_the_sandbox_left_even_when_the_run_fails(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(RuntimeError), run_folder() as root:
        hostile_tree(root / "run", outside)
        build_chain(root / "run", 300)
        raise RuntimeError("the run failed")
    assert not root.exists()


def test_run_folders_of_killed_graders_are_swept_and_live_ones_kept(tmp_path: Path, outside: Path) -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead = tmp_path / f"mnist-grader-run-{finished.pid}-abc"
    hostile_tree(dead, outside)  # what a grader killed mid-run leaves: the sandbox's files, as they were
    ours = tmp_path / f"mnist-grader-run-{os.getpid()}-def"
    ours.mkdir()
    alive = tmp_path / "mnist-grader-run-1-ghi"  # pid 1 always exists
    alive.mkdir()
    link = tmp_path / f"mnist-grader-run-{finished.pid}-link"
    link.symlink_to(outside, target_is_directory=True)

    safe_tree._sweep_stale_run_folders.__wrapped__(tmp_path)

    assert not dead.exists()
    assert ours.is_dir() and alive.is_dir() and link.is_symlink()
