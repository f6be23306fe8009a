"""The sandbox's host side without a kernel: walking and removing student-written folders, the watchdog's
own failures, and the seccomp filter's make-up."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader import sandbox, seccomp
from grader.sandbox import Limits, Watchdog, directory_bytes, remove_tree, run_folder

ENTRY = 4096  # what the disk limit charges per file or folder besides its bytes
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
        expected += os.fstat(fd).st_size + ENTRY + len(payload) + ENTRY
    os.close(fd)
    return expected


def walk_bytes(path: Path) -> int:
    """What the limit should count, the straightforward way (fine for trees within Python's recursion limit)."""
    total = 0
    for top, dirs, files in os.walk(path):
        total += sum(os.lstat(os.path.join(top, name)).st_size + ENTRY for name in (*dirs, *files))
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
    for level in range(3 * sandbox._OPEN_FOLDERS):
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

    sandbox._sweep_stale_run_folders.__wrapped__(tmp_path)

    assert not dead.exists()
    assert ours.is_dir() and alive.is_dir() and link.is_symlink()


@pytest.mark.parametrize(
    ("measurement", "failure"),
    [("tree_memory", RuntimeError("cannot measure")), ("directory_bytes", RecursionError("too deep"))],
)
def test_a_watchdog_that_fails_kills_its_sandbox_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, measurement: str, failure: Exception
) -> None:
    def broken(*args: object) -> int:
        raise failure

    monkeypatch.setattr(sandbox, measurement, broken)
    proc = subprocess.Popen(["sleep", "60"])
    watchdog = Watchdog(Limits(), (tmp_path,), proc.kill, interval=0.01)
    try:
        watchdog.start(proc.pid)
        assert proc.wait(timeout=10) == -9
    finally:
        watchdog.stop()
        proc.kill()
        proc.wait()
    assert watchdog.reason == f"killed because the grader's watchdog failed ({type(failure).__name__}: {failure})"


def test_seccomp_filter_blocks_what_the_readme_lists() -> None:
    program = seccomp.filter_program()
    assert program and len(program) % 8 == 0  # struct sock_filter instructions
    blocked = set(seccomp.blocked_syscalls())
    assert {
        "ptrace",
        "mount",
        "umount2",
        "pivot_root",
        "add_key",
        "request_key",
        "keyctl",
        "bpf",
        "perf_event_open",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "open_by_handle_at",
        "userfaultfd",
        "setns",
        "unshare",
        "acct",
        "quotactl",
        "iopl",
        "ioperm",
        "lookup_dcookie",
        "uselib",
        "name_to_handle_at",
        "process_vm_readv",
        "process_vm_writev",
    } <= blocked
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in readme for name in blocked), "README's security model lists every blocked call"


@pytest.mark.parametrize(
    ("missing", "probe_error", "expected"),
    [
        ("setpriv", "", "`setpriv`, `unshare` and `mount` (util-linux) are needed"),
        (None, "bwrap: setting up uid map: Permission denied", "setting up uid map: Permission denied"),
    ],
)
def test_a_root_grader_that_cannot_start_the_sandbox_as_nobody_says_so_and_keeps_it_as_root(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    missing: str | None,
    probe_error: str,
    expected: str,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None if name == missing else f"/usr/bin/{name}")
    refused = subprocess.CompletedProcess([], 1, stdout="", stderr=probe_error)
    monkeypatch.setattr(sandbox.subprocess, "run", lambda *args, **kwargs: refused)
    monkeypatch.setattr(sandbox, "_bwrap_option", lambda path, option: True)
    sandbox.sandbox_owner.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="grader.sandbox"):
            assert sandbox.sandbox_owner() is None
    finally:
        sandbox.sandbox_owner.cache_clear()
    assert "the sandbox runs as host root" in caplog.text and expected in caplog.text
