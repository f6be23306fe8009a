"""The watchdog's own failures: a watchdog that cannot measure kills its sandbox and says why."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from grader.sandbox import watchdog
from grader.sandbox.limits import Limits
from grader.sandbox.watchdog import Watchdog


@pytest.mark.parametrize(
    ("measurement", "failure"),
    [("tree_memory", RuntimeError("cannot measure")), ("directory_bytes", RecursionError("too deep"))],
)
def test_a_watchdog_that_fails_kills_its_sandbox_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, measurement: str, failure: Exception
) -> None:
    def broken(*args: object) -> int:
        raise failure

    monkeypatch.setattr(watchdog, measurement, broken)
    # A watchdog that never acted would let the sleep end by itself, with status 0.
    proc = subprocess.Popen(["sleep", "60"])
    dog = Watchdog(Limits(), (tmp_path,), proc.kill, interval=0.01)
    try:
        dog.start(proc.pid)
        assert proc.wait() == -9
    finally:
        dog.stop()
        proc.kill()
        proc.wait()
    assert dog.reason == f"killed because the grader's watchdog failed ({type(failure).__name__}: {failure})"
