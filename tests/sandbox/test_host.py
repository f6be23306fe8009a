"""What the host allows: a root grader that cannot start its sandbox as nobody says so and keeps it as root."""

from __future__ import annotations

import logging
import os
import subprocess

import pytest

from grader.sandbox import host


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
    monkeypatch.setattr(host.shutil, "which", lambda name: None if name == missing else f"/usr/bin/{name}")
    refused = subprocess.CompletedProcess([], 1, stdout="", stderr=probe_error)
    monkeypatch.setattr(host.subprocess, "run", lambda *args, **kwargs: refused)
    monkeypatch.setattr(host, "bwrap_option", lambda path, option: True)
    host.sandbox_owner.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="grader.sandbox.host"):
            assert host.sandbox_owner() is None
    finally:
        host.sandbox_owner.cache_clear()
    assert "the sandbox runs as host root" in caplog.text and expected in caplog.text


def test_a_grader_that_cannot_mount_the_scratch_folders_says_so_and_keeps_the_sandbox_as_root(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(host.shutil, "which", lambda name: f"/usr/bin/{name}")

    def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        """bubblewrap starts as nobody; a mount namespace of the grader's own is refused (as in a container)."""
        refused = command[0] == "unshare"
        error = "unshare: unshare failed: Operation not permitted" if refused else ""
        return subprocess.CompletedProcess(command, int(refused), stdout="", stderr=error)

    monkeypatch.setattr(host.subprocess, "run", run)
    monkeypatch.setattr(host, "bwrap_option", lambda path, option: True)
    host.sandbox_owner.cache_clear()
    host.mount_namespace.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="grader.sandbox.host"):
            assert host.mount_namespace() is None
            assert host.sandbox_owner() is None
    finally:
        host.sandbox_owner.cache_clear()
        host.mount_namespace.cache_clear()
    assert "scratch folders have no cap on their number of files" in caplog.text
    assert "Operation not permitted" in caplog.text
    # Bind mounts made without a namespace of their own would be the host's: the sandbox stays root's instead.
    assert "the sandbox runs as host root, because the grader cannot mount its folders" in caplog.text
