"""The resource limits of one sandboxed run, as the rubric sets them, and how they read to people."""

from __future__ import annotations

from dataclasses import dataclass

# Each file or folder costs a filesystem at least an inode and a block. The disk limits charge this much per
# entry besides its bytes: the watchdog when it measures the host folders a sandbox writes, and each tmpfs
# the sandbox mounts, which holds one inode per this many bytes of its size. Either way, millions of empty
# files cannot pass under a limit meant for bytes.
ENTRY_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits for one notebook; set in rubric.yaml under `limits`."""

    cell_timeout_s: float = 300.0
    notebook_timeout_s: float = 900.0
    startup_timeout_s: float = 60.0
    memory_mb: int = 4096
    processes: int = 256
    output_kb: int = 1024
    scratch_mb: int = 512
    file_mb: int = 256


def inode_cap(size_bytes: int) -> int:
    """How many files and folders a tmpfs of `size_bytes` may hold (its own root among them)."""
    return max(1, size_bytes // ENTRY_BYTES)


def memory_text(megabytes: int) -> str:
    """A memory limit as people write it: "4 GiB", "1500 MB"."""
    return f"{megabytes // 1024} GiB" if megabytes % 1024 == 0 else f"{megabytes} MB"
