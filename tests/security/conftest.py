"""Fixtures for the hostile-notebook suite: short limits, a tiny dataset, and helpers to read what ran."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from grader.dataset import subsample
from grader.facts import Facts, load_facts
from tests.conftest import ROOT, run_grade

# Short enough that the suite's deliberate hangs cost seconds; long enough for the reference to train
# on the tiny dataset below while another kernel runs beside it on a 2-core machine.
LIMITS = {
    "cell_timeout_s": 10,
    "notebook_timeout_s": 60,
    "startup_timeout_s": 60,
    "memory_mb": 1500,  # importing TensorFlow takes about 600 MB
    "processes": 128,
    "output_kb": 256,
    "scratch_mb": 200,
    "file_mb": 64,
}
# For batches of notebooks that train side by side on a loaded 2-core machine, where nothing hangs on purpose: a
# stopped fit is not what those tests are about.
TRAINING_LIMITS = {**LIMITS, "cell_timeout_s": 120, "notebook_timeout_s": 600, "startup_timeout_s": 180}
REFERENCE = ROOT / "reference" / "solution.ipynb"
_FINDINGS = re.compile(r"^FINDINGS (\{.*\})$", re.MULTILINE)


@dataclass(frozen=True)
class SecurityEnv:
    dataset: Path
    rubric: Path
    cache: Path

    def args(self) -> list[str | Path]:
        """The CLI options every security run shares, so the reference run is cached once for all."""
        return ["--dataset", self.dataset, "--rubric", self.rubric, "--reference", REFERENCE, "--quiet"]


@pytest.fixture(scope="session")
def security_env(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> SecurityEnv:
    folder = tmp_path_factory.mktemp("security")
    # Hostile notebooks need no training data; the few that train take seconds on this.
    dataset = subsample(small_dataset, folder / "tiny.npz", 1500, 300)
    rubric = yaml.safe_load((ROOT / "rubric.yaml").read_text(encoding="utf-8"))
    rubric["limits"] = LIMITS
    rubric["template"] = str(ROOT / "reference" / "template.ipynb")  # the copy lives elsewhere
    rubric_path = folder / "rubric.yaml"
    rubric_path.write_text(yaml.safe_dump(rubric), encoding="utf-8")
    cache = folder / "cache-of-the-grader"
    cache.mkdir()
    return SecurityEnv(dataset, rubric_path, cache)


@pytest.fixture(scope="session")
def training_env(security_env: SecurityEnv, tmp_path_factory: pytest.TempPathFactory) -> SecurityEnv:
    """The security dataset with `TRAINING_LIMITS`, and a cache of its own that every batch of training notebooks
    shares: the reference is run (and calibrated on) once for all of them."""
    folder = tmp_path_factory.mktemp("training-env")
    rubric = yaml.safe_load(security_env.rubric.read_text(encoding="utf-8"))
    rubric["limits"] = TRAINING_LIMITS
    (folder / "rubric.yaml").write_text(yaml.safe_dump(rubric), encoding="utf-8")
    (folder / "cache").mkdir()
    return SecurityEnv(security_env.dataset, folder / "rubric.yaml", folder / "cache")


def grade_batch(env: SecurityEnv, submissions: Path, out: Path) -> dict[str, dict[str, Any]]:
    """`submissions` graded through the real CLI with `env`, two at a time; the grades by student."""
    result = run_grade(submissions, "--out", out, "--jobs", "2", *env.args(), cache=env.cache, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    return grades_by_student(out)


def grades_by_student(out: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((out / "grades.json").read_text(encoding="utf-8"))
    return {s["student"]: s for s in data["students"]}


def cached_facts(cache: Path) -> tuple[Facts, ...]:
    """Every run's facts in the grader's cache; what a notebook printed is in `execution.stdout`."""
    return tuple(load_facts(path) for path in sorted((cache / "facts").glob("*.json")))


def facts_with_source(runs: tuple[Facts, ...], needle: str) -> Facts:
    """The facts of the one run whose cells contain `needle` (facts carry no student id)."""
    matches = [facts for facts in runs if any(needle in cell.source for cell in facts.execution.cells)]
    assert len(matches) == 1, f"{len(matches)} cached runs contain {needle!r}"
    return matches[0]


def findings(facts: Facts, probe: str | None = None) -> dict[str, Any]:
    """What a hostile notebook printed on its `FINDINGS {...}` line (the one whose "probe" is `probe`)."""
    found = [json.loads(line) for line in _FINDINGS.findall(facts.execution.stdout)]
    found = [f for f in found if probe is None or f.get("probe") == probe]
    assert found, f"no FINDINGS line ({probe}) in the notebook's output: {facts.execution.stdout[-500:]!r}"
    return found[-1]
