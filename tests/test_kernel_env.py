"""The homework environment: named by its requirements, built once (whole, never raced, cache before network),
and what student code sees in it: the course's packages, none of the grader's."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import nbformat
import pytest

import grader.kernel_env
from grader.execution.run import grade_run
from grader.kernel_env import (
    DEFAULT_REQUIREMENTS,
    EnvironmentUnavailable,
    ensure_built,
    locate,
    normalize_requirements,
)
from grader.rubric.load import load_rubric
from grader.sandbox.host import bwrap_path
from tests.conftest import ROOT, real_run

PROBE = ["numpy", "keras", "matplotlib"]

# --- names ---------------------------------------------------------------------------------------------


def test_requirements_are_spelled_one_way_with_ipykernel_added() -> None:
    spelled = normalize_requirements(["Scikit_Learn", "keras >= 3.3, <4", "numpy", "matplotlib", "numpy"])
    assert spelled == ("ipykernel", "keras<4,>=3.3", "matplotlib", "numpy", "scikit-learn")
    assert normalize_requirements(spelled) == spelled


@pytest.mark.parametrize(
    ("requirements", "words"),
    [
        (["numpy", "keras", "seaborn=="], ["'seaborn=='", "not a requirement"]),
        (["numpy", "seaborn"], ["probe", "keras, matplotlib"]),
    ],
)
def test_a_wrong_list_says_what_to_change(requirements: list[str], words: list[str]) -> None:
    with pytest.raises(ValueError) as raised:
        normalize_requirements(requirements)
    assert all(word in str(raised.value) for word in words), raised.value


def test_the_same_requirements_find_the_same_folder_and_others_another(tmp_path: Path) -> None:
    env = locate([*PROBE, "pandas"], tmp_path)
    assert env.prefix == tmp_path / "envs" / env.digest
    assert locate(["Pandas", *reversed(PROBE), "ipykernel"], tmp_path) == env
    assert locate([*PROBE, "pandas<2"], tmp_path).digest != env.digest
    assert not env.built


def test_a_rubric_without_environment_gets_the_bundled_rubrics(tmp_path: Path) -> None:
    """The default is the course environment of rubric.yaml, so both share one build."""
    text = (ROOT / "rubric.yaml").read_text()
    without = tmp_path / "rubric.yaml"
    without.write_text(text[: text.index("environment:")] + text[text.index("sections:") :])
    assert load_rubric(without).environment.requirements == DEFAULT_REQUIREMENTS
    bundled = load_rubric(ROOT / "rubric.yaml").environment.requirements
    assert locate(bundled, tmp_path) == locate(DEFAULT_REQUIREMENTS, tmp_path)


# --- building, with a fake uv ----------------------------------------------------------------------------

FAKE_UV = """#!/bin/sh
echo "$*" >> "$UV_LOG"
for arg; do last=$arg; done
case "$1" in
  venv) mkdir -p "$last/bin" && ln -s "$PYTHON" "$last/bin/python" && sleep "${UV_SLOW:-0}" ;;
  pip)
    case "$*" in
      *--offline*) [ -z "$UV_CACHE_HAS_ALL" ] && { echo "error: not in the cache (offline)" >&2; exit 2; } ;;
    esac
    [ -n "$UV_NO_NETWORK" ] && { echo "error: Failed to fetch: pypi.org unreachable" >&2; exit 2; } ;;
esac
exit 0
"""


@pytest.fixture
def uv_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    fake = tmp_path / "uv"
    fake.write_text(FAKE_UV)
    fake.chmod(0o755)
    log = tmp_path / "uv.log"
    log.touch()
    monkeypatch.setattr(grader.kernel_env, "uv_binary", lambda: str(fake))
    monkeypatch.setenv("UV_LOG", str(log))
    monkeypatch.setenv("PYTHON", sys.executable)
    return log


def uv_calls(log: Path) -> list[str]:
    return [line.split()[0] + (" --offline" if "--offline" in line else "") for line in log.read_text().splitlines()]


def test_an_environment_is_built_once_from_uvs_cache_alone_when_it_can(
    uv_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV_CACHE_HAS_ALL", "1")
    env = locate(PROBE, tmp_path / "cache")
    assert ensure_built(env).built
    assert ensure_built(env).built
    assert uv_calls(uv_log) == ["venv", "pip --offline"]
    assert [p.name for p in env.prefix.parent.iterdir() if p.is_dir()] == [env.digest]  # no half-built folder
    assert f"--python {sys.executable}" in uv_log.read_text()  # on the grader's own interpreter


def test_what_uvs_cache_lacks_is_downloaded(uv_log: Path, tmp_path: Path) -> None:
    assert ensure_built(locate(PROBE, tmp_path)).built
    assert uv_calls(uv_log) == ["venv", "pip --offline", "pip"]


def test_offline_without_the_wheels_is_one_actionable_error(
    uv_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV_NO_NETWORK", "1")
    env = locate(PROBE, tmp_path)
    with pytest.raises(EnvironmentUnavailable) as raised:
        ensure_built(env)
    message = str(raised.value)
    assert "\n" not in message and "pypi.org unreachable" in message and "grade --build-env" in message
    assert not env.built
    assert [p.name for p in env.prefix.parent.iterdir() if p.is_dir()] == []


def test_graders_building_at_once_build_it_once(uv_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_CACHE_HAS_ALL", "1")
    monkeypatch.setenv("UV_SLOW", "0.5")  # the second grader arrives while the first is building
    env = locate(PROBE, tmp_path)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_built(env).built)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True, True, True]
    assert uv_calls(uv_log) == ["venv", "pip --offline"]


def test_a_build_that_was_killed_is_started_over(uv_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_CACHE_HAS_ALL", "1")
    env = locate(PROBE, tmp_path)
    leftover = env.prefix.parent / f".{env.digest}.building"
    (leftover / "bin").mkdir(parents=True)
    (env.prefix / "lib").mkdir(parents=True)  # renamed by an older grader without its interpreter
    assert ensure_built(env).built
    assert not leftover.exists() and not (env.prefix / "lib").exists()


# --- the real environment ----------------------------------------------------------------------------------

IMPORTS = {
    "course": "import pandas, seaborn as sns, sklearn\nprint(sns.__name__, sklearn.__name__)",
    "dask": "import dask",
    "pydantic": "import pydantic",
    "msgspec": "import msgspec",
}


@pytest.mark.integration
@pytest.mark.parametrize("isolated", [True, False], ids=["sandbox", "no-sandbox"])
def test_student_code_imports_the_course_packages_and_none_of_the_graders(
    isolated: bool, small_dataset: Path, tmp_path: Path
) -> None:
    if isolated and bwrap_path() is None:
        pytest.skip("bubblewrap (bwrap) is not installed")
    notebook = tmp_path / "imports.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in IMPORTS.values()]), notebook)
    dataset, settings = real_run(small_dataset, tmp_path, isolated)

    facts = grade_run(notebook, dataset, settings)

    outcome = {name: (cell.status, cell.error_name) for name, cell in zip(IMPORTS, facts.execution.cells, strict=True)}
    assert outcome == {
        "course": ("ok", ""),
        "dask": ("error", "ModuleNotFoundError"),
        "pydantic": ("error", "ModuleNotFoundError"),
        "msgspec": ("error", "ModuleNotFoundError"),
    }
    assert "seaborn sklearn" in facts.execution.stdout
