"""The bubblewrap command line, run for real without a kernel: whose files the sandbox writes on the host, what
it sees of the grader, and how many files its scratch folders hold."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import grader
from grader.sandbox import bwrap
from grader.sandbox.bwrap import wrap_command
from grader.sandbox.host import NOBODY, bwrap_path, sandbox_owner
from grader.sandbox.limits import Limits, inode_cap
from grader.sandbox.placement import Placement, kernel_environment, prepare_placement
from grader.sandbox.safe_tree import run_folder

pytestmark = [
    pytest.mark.security,
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap (bwrap) is not installed"),
]

PACKAGE = Path(grader.__file__).resolve().parent
SCRATCH = {"/home/student": 8 << 20, "/tmp": 64 << 20, "/dev/shm": 64 << 20}
# Empty files in each scratch folder until one is refused (or a bound no capped folder reaches).
FLOOD = """\
import errno, json, os
found = {}
for folder in ("/home/student", "/tmp", "/dev/shm"):
    made, error = 0, None
    try:
        while made < 200_000:
            os.close(os.open(f"{folder}/empty{made}", os.O_CREAT | os.O_WRONLY, 0o600))
            made += 1
    except OSError as exc:
        error = errno.errorcode[exc.errno]
    info = os.statvfs(folder)
    found[folder] = {"made": made, "error": error, "inodes": info.f_files, "bytes": info.f_blocks * info.f_frsize}
print(json.dumps(found))
"""


@pytest.fixture
def placement(tmp_path: Path) -> Iterator[Placement]:
    dataset = tmp_path / "mnist.npz"
    dataset.write_bytes(b"not read")
    with run_folder() as root:
        yield prepare_placement(root, dataset, isolated=True, python=Path(sys.executable))
    assert not root.exists()


def run_sandboxed(code: str, placement: Placement, limits: Limits) -> subprocess.CompletedProcess[str]:
    cmd = wrap_command([placement.python_path, "-c", code], placement, limits, kernel_environment(1, placement))
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_each_scratch_folder_holds_one_file_per_4_kb_of_its_size(placement: Placement) -> None:
    """bubblewrap caps a tmpfs's bytes only; the grader mounts the scratch folders itself, capping their files."""
    found = json.loads(run_sandboxed(FLOOD, placement, Limits(scratch_mb=8)).stdout)
    for folder, size in SCRATCH.items():
        assert found[folder]["inodes"] == inode_cap(size), folder
        assert found[folder]["bytes"] == size, folder
        # The folder's own inode (and, for /tmp, mount points bubblewrap may make there) take their share.
        assert found[folder]["error"] == "ENOSPC", folder
        assert inode_cap(size) - 10 < found[folder]["made"] < inode_cap(size), folder


def test_without_mounts_of_its_own_the_sandbox_still_runs_with_size_limited_scratch(
    placement: Placement, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the host lets the grader mount nothing (it says so once), bubblewrap's own tmpfs are used."""
    monkeypatch.setattr(bwrap, "mount_namespace", lambda: None)
    found = json.loads(run_sandboxed(FLOOD, replace(placement, owner=None), Limits(scratch_mb=8)).stdout)
    for folder, size in SCRATCH.items():
        assert found[folder]["bytes"] == size, folder
        assert found[folder]["made"] > 0, folder


WRITER = """\
import os
os.mkdir("/grader/run/folder")
with open("/grader/run/folder/file.txt", "w") as fh:
    fh.write("written in the sandbox")
print(os.getuid(), open("/proc/self/status").read().split("Seccomp:")[1].split()[0])
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="only a grader running as root runs its sandboxes as nobody")
def test_files_the_sandbox_writes_belong_to_nobody_and_its_folders_to_no_one_else(placement: Placement) -> None:
    if sandbox_owner() is None:
        pytest.skip("this host forbids unprivileged user namespaces: the sandbox falls back to root, with a warning")
    result = run_sandboxed(WRITER, placement, Limits())
    assert result.stdout.split() == [str(NOBODY), "2"]  # nobody inside, under a seccomp filter
    for path in (placement.run_dir / "folder", placement.run_dir / "folder" / "file.txt"):
        info = os.lstat(path)
        assert (info.st_uid, info.st_gid) == (NOBODY, NOBODY), path
    # The run and socket folders are nobody's, in a folder that only root can open.
    for folder in (placement.run_dir, placement.socket_dir):
        info = os.stat(folder)
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (NOBODY, 0o700)
    private = os.stat(placement.run_dir.parent)
    assert (private.st_uid, stat.S_IMODE(private.st_mode)) == (0, 0o700)
    # The mount points bubblewrap used are empty on the host: the mounts lived in the sandbox's namespace.
    assert all(not any(p.iterdir()) for p in placement.mounts_dir.iterdir() if p.is_dir())


READER = f"""\
import errno, os
print(sorted(os.listdir({str(PACKAGE)!r})))
print(os.path.exists({str(PACKAGE / "homework" / "mnist" / "reference" / "solution.ipynb")!r}))
try:
    open({str(PACKAGE / "planted.py")!r}, "w").close()
    print("written")
except OSError as exc:
    print(errno.errorcode[exc.errno])
"""


def test_a_grader_inside_the_bound_python_installation_is_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grader installed system-wide sits inside the Python installation the sandbox shows: an empty read-only
    folder takes its place, so that no notebook reads the bundled rubric or reference solution."""
    # As if the grader were installed in the base Python's site-packages: its folder is under a bound prefix.
    monkeypatch.setattr(sys, "base_prefix", str(PACKAGE.parent))
    dataset = tmp_path / "mnist.npz"
    dataset.write_bytes(b"not read")
    with run_folder() as root:
        placement = prepare_placement(root, dataset, isolated=True, python=Path(sys.executable))
        result = run_sandboxed(READER, placement, Limits())
    assert result.stdout.split("\n")[:3] == ["[]", "False", "EROFS"]
