"""The homework's own Python environment, in which student kernels run: named by its requirements, built once.

A student's notebook imports what the course environment gives it (pandas, seaborn, scikit-learn, ...), and
nothing of the grader's own (pydantic, dask, msgspec): the kernel and the re-evaluation run on the interpreter
of a virtual environment built from the rubric's `environment.requirements` with uv. Its folder is named by a
digest of the normalized requirements and the interpreter, under the grader's cache (`<cache>/envs/<digest>`),
so it is built once and found again by every later run. uv installs from its own cache (hard links, no
download) when it can, so a build needs the network only for wheels uv has never seen; `grade --build-env`
does that ahead of time and grading itself stays offline.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from grader.errors import GraderError

# What the grader itself runs in the kernel: ipykernel is the kernel, so it is always added. The probe and the
# re-evaluation import numpy, keras and matplotlib; a rubric must name them, with the versions the course uses.
KERNEL_PACKAGE = "ipykernel"
PROBE_PACKAGES = ("numpy", "keras", "matplotlib")
# A rubric without `environment`: the course environment of the MNIST assignment (as in rubric.yaml). Keras and
# TensorFlow keep the major versions the grader is tested on; tensorflow-cpu is TensorFlow's CPU-only wheel (the
# sandbox shows no GPU), a quarter of the size, and `import tensorflow` works the same.
DEFAULT_REQUIREMENTS = (
    "numpy",
    "keras>=3.15,<3.16",
    "tensorflow-cpu>=2.16,<3",
    "matplotlib",
    "pandas",
    "seaborn",
    "scikit-learn",
)
_BUILD_TIMEOUT_S = 1800


class EnvironmentUnavailable(GraderError):
    """The homework environment is not built and cannot be built now (offline, or a requirement uv cannot find)."""


@dataclass(frozen=True, slots=True)
class KernelEnvironment:
    """One homework environment: its requirements (normalized, ipykernel included) and where it lives."""

    requirements: tuple[str, ...]
    digest: str
    prefix: Path

    @property
    def python(self) -> Path:
        return self.prefix / "bin" / "python"

    @property
    def built(self) -> bool:
        # A build is renamed into place whole, so the folder exists only once it is complete.
        return self.python.exists()


def normalize_requirements(requirements: Iterable[str]) -> tuple[str, ...]:
    """The requirements in one spelling each (PEP 503 names, sorted, without duplicates), ipykernel added.

    Raises ValueError, saying what to change, for a line that is not a requirement or a probe package missing.
    """
    parsed = []
    for line in requirements:
        try:
            parsed.append(Requirement(line))
        except InvalidRequirement as exc:
            raise ValueError(f"{line!r} is not a requirement ({str(exc).splitlines()[0]})") from None
    names = {canonicalize_name(r.name) for r in parsed}
    missing = [name for name in PROBE_PACKAGES if name not in names]
    if missing:
        raise ValueError(f"the grader's probe runs in the kernel and needs {', '.join(missing)}: add them to the list")
    if KERNEL_PACKAGE not in names:
        parsed.append(Requirement(KERNEL_PACKAGE))
    for requirement in parsed:
        requirement.name = canonicalize_name(requirement.name)
    return tuple(sorted({str(r) for r in parsed}))


def interpreter_identity() -> str:
    """What besides the requirements decides the environment: the grader's Python, which it is built on."""
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    return f"{platform.python_implementation()} {platform.python_version()} {platform.machine()} {base}"


def locate(requirements: Iterable[str], cache_dir: Path) -> KernelEnvironment:
    """The environment for these requirements under `cache_dir`, built or not."""
    normalized = normalize_requirements(requirements)
    digest = hashlib.sha256("\n".join((interpreter_identity(), *normalized)).encode()).hexdigest()[:20]
    return KernelEnvironment(normalized, digest, cache_dir / "envs" / digest)


def ensure_built(env: KernelEnvironment) -> KernelEnvironment:
    """Builds `env` unless it exists; a parallel grader building it meanwhile is waited for, never raced.

    The build is made in a temporary folder and renamed into place whole, so a reader never sees half of it.
    uv tries its cache alone first (no network); only what it lacks is downloaded.
    """
    if env.built:
        return env
    env.prefix.parent.mkdir(parents=True, exist_ok=True)
    with _locked(env.prefix.parent / f"{env.digest}.lock"):
        if env.built:
            return env
        staging = env.prefix.parent / f".{env.digest}.building"
        shutil.rmtree(staging, ignore_errors=True)  # left by a build that was killed; the lock is ours now
        try:
            _build(env.requirements, staging)
            shutil.rmtree(env.prefix, ignore_errors=True)  # an incomplete folder from an older grader
            staging.rename(env.prefix)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return env


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def uv_binary() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


def _build(requirements: tuple[str, ...], prefix: Path) -> None:
    uv = uv_binary()
    # Never a Python of uv's own: the environment runs on the grader's interpreter, which the sandbox binds.
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    _uv([uv, "venv", "--quiet", "--relocatable", "--python", sys.executable, str(prefix)], env)
    # Bytecode is compiled now: the sandbox's interpreter can write none, and TensorFlow compiled at every kernel
    # start would cost seconds per notebook.
    install = [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(prefix / "bin" / "python")]
    try:
        _uv([*install, "--offline", *requirements], env)
    except EnvironmentUnavailable:
        _uv([*install, *requirements], env)


def _uv(argv: list[str], env: dict[str, str]) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=_BUILD_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentUnavailable(_unavailable(str(exc))) from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        raise EnvironmentUnavailable(_unavailable(" ".join(lines[-3:])[:400] or f"exit status {result.returncode}"))


def _unavailable(why: str) -> str:
    return (
        f"the homework environment (the rubric's environment.requirements) could not be built: {why}; "
        "build it while online with `grade --build-env --rubric RUBRIC` (or `make kernel-env`)"
    )
