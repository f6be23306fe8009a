"""Where one run's files live on the host, the paths the sandboxed process knows them by, and its environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.host import sandbox_owner
from grader.sandbox.seccomp import filter_program

INSIDE_DATA = "/grader/data/mnist.npz"
INSIDE_RUN = "/grader/run"
INSIDE_LIB = "/grader/lib"
INSIDE_ENV = "/grader/env"
INSIDE_HOME = "/home/student"
KERNEL_PACKAGE = "grader_kernel"
_KERNEL_SOURCE = Path(__file__).parent.parent / "kernel"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one run's files live on the host, and the paths the sandboxed process uses for them."""

    root: Path  # the run's own folder, which the others are in
    run_dir: Path  # results written by the kernel: facts.json, model.keras
    socket_dir: Path  # the kernel's ipc sockets and connection file (same path inside)
    channels_dir: Path  # the sockets on which the kernel's relay serves the grader; never shown to the sandbox
    lib_dir: Path  # holds the `grader_kernel` package
    dataset: Path
    isolated: bool
    python: Path  # the interpreter the sandboxed processes run: the homework environment's (grader.kernel_env)
    owner: tuple[int, int] | None = None  # the host uid and gid the sandbox runs as, when not the grader's

    @property
    def seccomp_file(self) -> Path:
        return self.root / "seccomp.bpf"

    @property
    def mounts_dir(self) -> Path:
        """Where the sandbox's own mounts are made before bubblewrap starts (empty on the host)."""
        return self.root / "mounts"

    @property
    def data_path(self) -> str:
        return INSIDE_DATA if self.isolated else str(self.dataset)

    @property
    def run_path(self) -> str:
        return INSIDE_RUN if self.isolated else str(self.run_dir)

    @property
    def lib_path(self) -> str:
        return INSIDE_LIB if self.isolated else str(self.lib_dir)

    @property
    def python_path(self) -> str:
        """The interpreter as the sandboxed process calls it: its environment (`python`'s bin/..) is at /grader/env."""
        return f"{INSIDE_ENV}/bin/{self.python.name}" if self.isolated else str(self.python)

    @property
    def home_path(self) -> str:
        return INSIDE_HOME if self.isolated else str(self.run_dir)


def prepare_placement(root: Path, dataset: Path, isolated: bool, python: Path) -> Placement:
    """Creates the run, socket and library folders of one execution under `root`, a folder of the grader's own.

    The run and socket folders belong to the sandbox's host uid, mode 700. When the sandbox runs as nobody,
    they sit in `private/`, which only root can open: the sandbox's bubblewrap reaches them (and the Python
    installation, which may be under /root) through bind mounts in `mounts/` made in a mount namespace of its
    own (`grader.sandbox.bwrap`), so no other process of uid nobody on the host can reach them.
    """
    owner = sandbox_owner() if isolated else None
    private = root / "private"
    run_dir, socket_dir, lib_dir = private / "run", private / "sock", private / "lib"
    channels_dir = private / "channels"
    for d in (run_dir, socket_dir, lib_dir, channels_dir):
        d.mkdir(parents=True, exist_ok=True)
    # The kernel package is linked, not copied: the sandbox binds its real folder read-only.
    link = lib_dir / KERNEL_PACKAGE
    if not link.exists():
        link.symlink_to(_KERNEL_SOURCE.resolve(), target_is_directory=True)
    os.chmod(private, 0o700)
    for d in (run_dir, socket_dir):
        if owner is not None:
            os.chown(d, *owner)
        os.chmod(d, 0o700)
    placement = Placement(
        root=root,
        run_dir=run_dir,
        socket_dir=socket_dir,
        channels_dir=channels_dir,
        lib_dir=lib_dir,
        dataset=dataset,
        isolated=isolated,
        python=python,
        owner=owner,
    )
    if owner is not None:
        os.chmod(root, 0o711)  # passable, not listable: the mount points below must be reachable as nobody
        placement.mounts_dir.mkdir(exist_ok=True)
        os.chmod(placement.mounts_dir, 0o755)
    if isolated:
        placement.seccomp_file.write_bytes(filter_program())
    return placement


def hand_to_sandbox(path: Path, placement: Placement) -> None:
    """Gives a file the grader wrote for the sandbox (the kernel's connection file) to the sandbox's uid."""
    if placement.owner is not None:
        os.chown(path, *placement.owner, follow_symlinks=False)


def kernel_environment(threads: int, placement: Placement) -> dict[str, str]:
    """The environment of a sandboxed process: nothing of the grader's own, threads pinned to its share."""
    n = str(max(1, threads))
    return {
        "PATH": f"{Path(placement.python_path).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": placement.home_path,
        "LANG": "C.UTF-8",
        "PYTHONPATH": placement.lib_path,
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "MPLCONFIGDIR": placement.home_path + "/.mpl",
        "KERAS_HOME": placement.home_path + "/.keras",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_NUM_INTRAOP_THREADS": n,
        "TF_NUM_INTEROP_THREADS": "1" if threads <= 2 else "2",
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "CUDA_VISIBLE_DEVICES": "",
    }
