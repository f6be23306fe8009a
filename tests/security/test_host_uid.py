"""Whose files a sandbox writes on the host: with the grader as root, nobody's, never root's."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from grader.sandbox import (
    NOBODY,
    Limits,
    bwrap_path,
    kernel_environment,
    prepare_placement,
    run_folder,
    sandbox_owner,
    wrap_command,
)

pytestmark = [
    pytest.mark.security,
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap (bwrap) is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="only a grader running as root runs its sandboxes as nobody"),
]

WRITER = """\
import os
os.mkdir("/grader/run/folder")
with open("/grader/run/folder/file.txt", "w") as fh:
    fh.write("written in the sandbox")
print(os.getuid(), open("/proc/self/status").read().split("Seccomp:")[1].split()[0])
"""


def test_files_the_sandbox_writes_belong_to_nobody_and_its_folders_to_no_one_else(tmp_path: Path) -> None:
    if sandbox_owner() is None:
        pytest.skip("this host forbids unprivileged user namespaces: the sandbox falls back to root, with a warning")
    dataset = tmp_path / "mnist.npz"
    dataset.write_bytes(b"not read")
    with run_folder() as root:
        placement = prepare_placement(root, dataset, isolated=True, python=Path(sys.executable))
        argv = [placement.python_path, "-c", WRITER]
        cmd = wrap_command(argv, placement, Limits(), kernel_environment(1, placement))
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
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
        assert all(not any(p.iterdir()) for p in (root / "mounts").iterdir() if p.is_dir())
    assert not root.exists()
