"""The facts cache: facts on disk, keyed by everything that can change them.

The key covers the notebook's bytes, the dataset, the grader's version, the code that runs in or around
the kernel, and the limits. Scoring is not part of the key, so a rubric edit re-scores every student from
the cache without starting a kernel.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from pathlib import Path

from grader import __version__
from grader.dataset import Dataset
from grader.execute import RunSettings
from grader.facts import Facts, load_facts, save_facts

_PACKAGE = Path(__file__).parent
# Files whose code decides what facts a run produces; editing any of them invalidates the cache.
_FACT_SOURCES = (
    "execute.py",
    "files.py",
    "sandbox.py",
    "facts.py",
    "strictjson.py",
    "kernel/probe.py",
    "kernel/reevaluate.py",
)


def fact_code_digest() -> str:
    digest = hashlib.sha256(__version__.encode())
    for name in _FACT_SOURCES:
        digest.update((_PACKAGE / name).read_bytes())
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


class FactsCache:
    """Facts on disk, one JSON file per cache key."""

    def __init__(self, root: Path) -> None:
        self.root = root / "facts"
        self.root.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> Facts | None:
        path = self.root / f"{key}.json"
        try:
            return load_facts(path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a damaged entry is recomputed
            return None

    def put(self, key: str, facts: Facts) -> None:
        save_facts(facts, self.root / f"{key}.json")


def default_cache_dir() -> Path:
    env = os.environ.get("MNIST_GRADER_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "mnist-grader"
