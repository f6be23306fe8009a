"""A grader installed system-wide sits inside the Python installation the sandbox shows: it is hidden there,
so that no notebook reads the bundled rubric or reference solution."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grader import sandbox
from grader.sandbox import Limits, bwrap_path, kernel_environment, prepare_placement, run_folder, wrap_command

pytestmark = [
    pytest.mark.security,
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap (bwrap) is not installed"),
]

PACKAGE = Path(sandbox.__file__).resolve().parent
READER = f"""\
import os
print(sorted(os.listdir({str(PACKAGE)!r})))
print(os.path.exists({str(PACKAGE / "homework" / "mnist" / "reference" / "solution.ipynb")!r}))
"""


def test_a_grader_inside_the_bound_python_installation_is_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the grader were installed in the base Python's site-packages: its folder is under a bound prefix.
    monkeypatch.setattr(sys, "base_prefix", str(PACKAGE.parent))
    dataset = tmp_path / "mnist.npz"
    dataset.write_bytes(b"not read")
    with run_folder() as root:
        placement = prepare_placement(root, dataset, isolated=True, python=Path(sys.executable))
        cmd = wrap_command([placement.python_path, "-c", READER], placement, Limits(), kernel_environment(1, placement))
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:2] == ["[]", "False"]
