"""The seccomp filter's make-up: it builds, and it refuses every call the README lists."""

from __future__ import annotations

from grader.sandbox import seccomp
from tests.conftest import ROOT


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
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in readme for name in blocked), "README's security model lists every blocked call"
