"""The facts cache: facts on disk, keyed by everything that can change them.

The key covers the notebook's bytes, the dataset, the grader's version, the code that runs in or around
the kernel, and the limits. Scoring is not part of the key, and neither is what the rubric asks the probe to
record (`ProbeRequest`), so a rubric edit re-scores every student from the cache without starting a kernel.
Facts keep the request they were recorded for: where the rubric now asks for more (a variable no check read
before, another dataset loader), `shortfall` says what is missing and that notebook runs again.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from grader import __version__
from grader.dataset import Dataset
from grader.execution.settings import RunSettings
from grader.facts import Facts, ProbeRequest, load_facts, save_facts
from grader.statuses import NOT_FROM_A_KERNEL

_PACKAGE = Path(__file__).parent
# The code that runs a notebook and the code that runs inside its kernel: every file of these packages, and
# every module of the grader they import (a package imported is taken whole), decides what facts a run
# produces, so editing any of them invalidates the cache. Found by reading the imports: nothing to forget.
_FACT_ROOTS = ("execution", "kernel")
# CPython 3.11's `ast.parse` is not safe in two threads at once (it fails with "AST constructor recursion depth
# mismatch"), and `grade serve` grades on several threads: sources are parsed under this lock.
_PARSING = threading.Lock()


def fact_sources(package: Path = _PACKAGE) -> list[Path]:
    """The grader's files whose code decides the facts, in a stable order."""
    found: set[Path] = set()
    todo = [path for root in _FACT_ROOTS for path in _modules(package / root)]
    while todo:
        path = todo.pop()
        if path in found:
            continue
        found.add(path)
        for name in _grader_imports(path):
            todo += _modules(_module_path(package, name)) + _package_inits(package, name)
    return sorted(found)


def _package_inits(package: Path, name: str) -> list[Path]:
    """The `__init__.py` of each package that importing `grader.a.b.c` runs first (`a`, `a/b`)."""
    parts = name.split(".")[1:-1]
    inits = (package.joinpath(*parts[:n], "__init__.py") for n in range(1, len(parts) + 1))
    return [init for init in inits if init.is_file()]


def _modules(path: Path) -> list[Path]:
    """The Python files of a module: itself, or every one of a package's (an unknown name: none)."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
    module = path.with_suffix(".py")
    return [module] if module.is_file() else []


def _module_path(package: Path, name: str) -> Path:
    """Where `grader.a.b` lives (without its suffix), under `package`."""
    return package.joinpath(*name.split(".")[1:])


def _grader_imports(path: Path) -> set[str]:
    """The grader's modules that `path` imports (`from grader.x import y` names both `grader.x` and `grader.x.y`)."""
    names: set[str] = set()
    with _PARSING:
        tree = ast.parse(path.read_bytes())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.startswith("grader.")}


@functools.cache
def installed_code_digest() -> str:
    """The digest of the grader's own code that decides facts: computed once per process (it cannot change while
    the process runs, and a long-running `grade serve` would otherwise read its sources for every submission)."""
    return fact_code_digest(_PACKAGE)


def fact_code_digest(package: Path = _PACKAGE) -> str:
    digest = hashlib.sha256(__version__.encode())
    for path in fact_sources(package):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_key(notebook: bytes, dataset: Dataset, settings: RunSettings, code_digest: str) -> str:
    digest = hashlib.sha256()
    for part in (
        hashlib.sha256(notebook).hexdigest(),
        dataset.sha256,
        code_digest,
        repr(asdict(settings.limits)),
        str(settings.isolated),
        settings.environment.digest,
    ):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


# Facts that no kernel produced (the notebook could not be read, or the grader failed): they record nothing
# a rubric could ask for, and running the notebook again would give the same.
_NAMES_SHOWN = 5


@dataclass(frozen=True, slots=True)
class Shortfall:
    """What a cached run did not record that the rubric now reads."""

    variables: tuple[str, ...]  # names the rubric reads that the run did not record
    loader: str | None  # the dataset loader the run served, when it is not the rubric's


def shortfall(facts: Facts, wanted: ProbeRequest) -> Shortfall | None:
    """None when `facts` hold all that `wanted` asks for: the same loader, and every variable (or more)."""
    if facts.execution.status in NOT_FROM_A_KERNEL:
        return None
    recorded = facts.kernel.request
    variables = tuple(sorted(set(wanted.variables) - set(recorded.variables)))
    loader = recorded.loader if recorded.loader != wanted.loader else None
    if not variables and loader is None:
        return None
    return Shortfall(variables, loader)


def rerun_notice(stale: Sequence[tuple[str, Shortfall]], wanted: ProbeRequest, rescore: bool) -> str:
    """One line for a batch: what the rubric reads that `stale` (student, shortfall) cached runs did not record,
    and that those notebooks run again."""
    names = sorted({name for _, lack in stale for name in lack.variables})
    lacking_names = sum(bool(lack.variables) for _, lack in stale)
    loaders = sorted({lack.loader for _, lack in stale if lack.loader is not None})
    lacking_loader = sum(lack.loader is not None for _, lack in stale)
    clauses = []
    if names:
        shown = [f"`{name}`" for name in names[:_NAMES_SHOWN]]
        clauses.append(f"the rubric reads {_listed(shown, len(names))}, which {_runs(lacking_names)} did not record")
    if loaders:
        clauses.append(
            f"the rubric serves keras.datasets.{wanted.loader}, where {_runs(lacking_loader)} served "
            + " or ".join(loaders)
        )
    students = [student for student, _ in stale]
    which = "that notebook" if len(students) == 1 else "those notebooks"
    why = ", even with --rescore, rather than score them on facts they lack" if rescore else ""
    return f"{'; '.join(clauses)}: running {which} again{why} ({_listed(students[:_NAMES_SHOWN], len(students))})"


def _runs(count: int) -> str:
    return f"{count} cached run{'' if count == 1 else 's'}"


def _listed(shown: list[str], total: int) -> str:
    """`a`, `a and b`, `a, b and c`, or `a, b, c, d, e and 3 more`."""
    if total > len(shown):
        return f"{', '.join(shown)} and {total - len(shown)} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


class FactsCache:
    """Facts on disk, one JSON file per cache key."""

    def __init__(self, root: Path) -> None:
        self.root = root / "facts"
        self.root.mkdir(parents=True, exist_ok=True)
        self.damaged: set[str] = set()  # keys whose entry could not be read back (and was removed)

    def get(self, key: str) -> Facts | None:
        path = self.root / f"{key}.json"
        try:
            return load_facts(path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a damaged entry is recomputed, even under --rescore
            self.damaged.add(key)
            return None

    def put(self, key: str, facts: Facts) -> None:
        save_facts(facts, self.root / f"{key}.json")


def default_cache_dir() -> Path:
    env = os.environ.get("MNIST_GRADER_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "mnist-grader"
