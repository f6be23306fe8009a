"""The seccomp filter the sandbox hands to bubblewrap: system calls a notebook never needs fail with EPERM.

The list follows what Docker's default profile and bubblewrap/Flatpak refuse to unprivileged containers:
debugging other processes, mounting, the kernel keyring, BPF and perf, modules, kexec, reboot and swap,
handles to arbitrary files, userfaultfd, new namespaces, io_uring, and the clock. Everything else is allowed:
TensorFlow, matplotlib and Keras need a wide and changing set of calls, and the namespaces, the missing
capabilities and `no_new_privs` already stand between the rest and the host. Calls fail with EPERM rather
than killing the process, so a library that probes for one (as some do for `perf_event_open`) carries on.
"""

from __future__ import annotations

import errno
import functools
import tempfile

import pyseccomp

# Each group: the calls, and why a notebook never needs them.
BLOCKED: dict[str, tuple[str, ...]] = {
    "other processes' memory": ("ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd"),
    "mounts": (
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "open_tree",
        "move_mount",
        "mount_setattr",
    ),
    "namespaces": ("setns", "unshare"),
    "the kernel keyring": ("add_key", "request_key", "keyctl"),
    "BPF and performance counters": ("bpf", "perf_event_open", "lookup_dcookie"),
    "kernel modules and kexec": (
        "init_module",
        "finit_module",
        "delete_module",
        "kexec_load",
        "kexec_file_load",
        "uselib",
    ),
    "the machine": ("reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog", "vhangup"),
    "the clock": ("settimeofday", "clock_settime", "clock_adjtime"),
    "raw hardware access": ("iopl", "ioperm"),
    "files by handle": ("open_by_handle_at", "name_to_handle_at"),
    "page-fault handlers and moving pages between memory nodes": ("userfaultfd", "move_pages", "migrate_pages"),
    "io_uring": ("io_uring_setup", "io_uring_enter", "io_uring_register"),
    "obsolete": ("_sysctl", "ustat", "sysfs", "nfsservctl"),
}
# personality(2) must not turn address-space randomisation off or make readable memory executable; 0xffffffff
# (every bit) only asks for the current personality and stays allowed.
BLOCKED_PERSONALITY_FLAGS = {
    "ADDR_NO_RANDOMIZE": 0x0040000,
    "MMAP_PAGE_ZERO": 0x0100000,
    "ADDR_COMPAT_LAYOUT": 0x0200000,
    "READ_IMPLIES_EXEC": 0x0400000,
}
# Pushing characters into a terminal's input (TIOCSTI) or the console (TIOCLINUX); there is no terminal.
BLOCKED_IOCTLS = (0x5412, 0x541C)


def blocked_syscalls() -> list[str]:
    """Every call the filter refuses whatever its arguments, as listed in the README."""
    return sorted(name for names in BLOCKED.values() for name in names)


@functools.cache
def filter_program() -> bytes:
    """The filter as a BPF program (what `bwrap --seccomp FD` reads), built once per process."""
    denied = pyseccomp.ERRNO(errno.EPERM)
    program = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in blocked_syscalls():
        try:
            program.add_rule(denied, name)
        except (OSError, ValueError):  # not a call on this architecture (e.g. iopl on arm64)
            continue
    # libseccomp allows one condition per argument in a rule, and joins rules with OR: "flag set and the value
    # is not 0xffffffff" is "flag set and some other bit clear", one rule per other bit. The kernel reads the
    # argument as 32 bits, and so do the masks.
    for flag in BLOCKED_PERSONALITY_FLAGS.values():
        for bit in (1 << n for n in range(32)):
            if bit != flag:
                program.add_rule(denied, "personality", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag | bit, flag))
    for request in BLOCKED_IOCTLS:
        program.add_rule(denied, "ioctl", pyseccomp.Arg(1, pyseccomp.MASKED_EQ, 0xFFFFFFFF, request))
    with tempfile.TemporaryFile() as out:
        program.export_bpf(out)
        out.seek(0)
        return out.read()
