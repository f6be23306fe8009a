"""The facts cache: what its key depends on, damaged entries, and re-grading a class from it."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from grader.dataset import Dataset
from grader.execution.settings import RunLimits, RunSettings
from grader.facts import ProbeRequest, facts_to_json
from grader.facts_cache import (
    FactsCache,
    Shortfall,
    cache_key,
    fact_code_digest,
    fact_sources,
    installed_code_digest,
    rerun_notice,
    shortfall,
)
from grader.kernel_env import KernelEnvironment
from grader.rubric.load import load_rubric
from grader.rubric.model import Rubric
from tests.conftest import ROOT, run_grade
from tests.factories import make_facts
from tests.recorded_runs import ROLES, WANTED, facts

NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def touch(path: Path, content: bytes = NOTEBOOK) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# --- cache key -----------------------------------------------------------------------------------------


def dataset(sha256: str = "a" * 64) -> Dataset:
    return Dataset(Path("mnist.npz"), sha256, "option", True, 60_000, 10_000)


DATA = make_facts().dataset
ENVIRONMENT = KernelEnvironment(("ipykernel", "keras", "matplotlib", "numpy"), "f" * 20, Path("envs") / ("f" * 20))
REQUEST = ProbeRequest("mnist", ["model"])
SETTINGS = RunSettings(RunLimits(), isolated=True, threads=2, request=REQUEST, environment=ENVIRONMENT, dataset=DATA)
DIGEST = "d" * 64


OTHER_ENVIRONMENT = dataclasses.replace(ENVIRONMENT, requirements=("ipykernel", "seaborn"), digest="0" * 20)


def test_cache_key_depends_on_what_changes_facts() -> None:
    key = cache_key(NOTEBOOK, dataset(), SETTINGS, DIGEST)
    assert cache_key(NOTEBOOK, dataset(), SETTINGS, DIGEST) == key
    changed = [
        cache_key(NOTEBOOK + b" ", dataset(), SETTINGS, DIGEST),
        cache_key(NOTEBOOK, dataset("b" * 64), SETTINGS, DIGEST),
        cache_key(NOTEBOOK, dataset(), dataclasses.replace(SETTINGS, limits=RunLimits(cell_timeout_s=20)), DIGEST),
        cache_key(NOTEBOOK, dataset(), dataclasses.replace(SETTINGS, limits=RunLimits(memory_mb=2048)), DIGEST),
        cache_key(NOTEBOOK, dataset(), dataclasses.replace(SETTINGS, isolated=False), DIGEST),
        cache_key(NOTEBOOK, dataset(), SETTINGS, "e" * 64),
        cache_key(NOTEBOOK, dataset(), dataclasses.replace(SETTINGS, environment=OTHER_ENVIRONMENT), DIGEST),
    ]
    assert key not in changed
    assert len(set(changed)) == len(changed)


def test_cache_key_ignores_scoring_and_threads(tmp_path: Path) -> None:
    # Points, titles and hints are scoring: a rubric that changes only them keeps every cached fact.
    data = yaml.safe_load((ROOT / "rubric.yaml").read_text())
    build = data["sections"]["build"]["checks"]
    build["hidden"]["points"] -= 1
    build["input_shape"]["points"] += 1
    build["hidden"]["hint"] = "Use sigmoid, as the assignment says."
    data["accuracy_margin"] = 0.05
    edited = tmp_path / "rubric.yaml"
    edited.write_text(yaml.safe_dump(data))
    original = load_rubric(ROOT / "rubric.yaml")
    changed = load_rubric(edited)
    assert original.sections != changed.sections

    def key(rubric: Rubric, threads: int = 2) -> str:
        settings = RunSettings(rubric.limits, True, threads, rubric.probe_request(), ENVIRONMENT, DATA)
        return cache_key(NOTEBOOK, dataset(), settings, DIGEST)

    assert key(original) == key(changed)
    # Threads depend on --jobs and the machine; facts do not.
    assert key(original, threads=1) == key(original, threads=16)
    # Nor is what the probe records part of the key: a cached run that lacks a name the rubric reads is found,
    # and run again (tests/test_executors.py).
    reads_more = dataclasses.replace(original, assignment=original.assignment.model_copy(update={"variables": {}}))
    assert reads_more.probe_request() != original.probe_request()
    assert key(reads_more) == key(original)


def test_code_digest_is_stable() -> None:
    assert fact_code_digest() == fact_code_digest()
    assert len(fact_code_digest()) == 64


def test_the_digest_covers_the_packages_that_decide_facts_and_what_they_import() -> None:
    package = ROOT / "grader"
    sources = {path.relative_to(package).as_posix() for path in fact_sources()}
    for folder in ("execution", "kernel"):
        assert {p.relative_to(package).as_posix() for p in (package / folder).glob("*.py")} <= sources
    # Imported by the run, so found without being named: the sandbox (a module or a package), the relay,
    # the bounded channels, the facts schema and its strict decoder.
    sandbox = package / "sandbox"
    imported = ["kernel_relay.py", "kernel_channels.py", "facts.py", "strictjson.py", "files.py"]
    parts = sandbox.glob("*.py") if sandbox.is_dir() else [package / "sandbox.py"]
    imported += [p.relative_to(package).as_posix() for p in parts]
    assert set(imported) <= sources
    # Scoring and reporting decide no facts: editing them keeps the cache.
    assert not {"score.py", "rubric.py", "pipeline.py", "checks/base.py"} & sources


@pytest.mark.parametrize("where", ["execution", "kernel", "imported"])
def test_a_new_module_in_a_fact_package_changes_the_digest(tmp_path: Path, where: str) -> None:
    package = tmp_path / "grader"
    shutil.copytree(ROOT / "grader", package, ignore=shutil.ignore_patterns("__pycache__"))
    before = fact_code_digest(package)
    if where == "imported":  # a module the run comes to import: its package's new file counts, and its edits
        (package / "execution" / "retries.py").write_text("from grader.late_policy import x\n")
        (package / "late_policy.py").write_text("x = 1\n")
        with_import = fact_code_digest(package)
        assert with_import != before
        (package / "late_policy.py").write_text("x = 2\n")
        assert fact_code_digest(package) != with_import
    else:
        (package / where / "newly_added.py").write_text("VALUE = 1\n")
        assert fact_code_digest(package) != before
    # A module nothing that runs a notebook imports is not part of it.
    changed = fact_code_digest(package)
    (package / "unrelated_report_helper.py").write_text("VALUE = 1\n")
    assert fact_code_digest(package) == changed


# --- facts cache ---------------------------------------------------------------------------------------


def test_facts_cache_round_trip(tmp_path: Path) -> None:
    cache = FactsCache(tmp_path)
    facts = make_facts(execution={"status": "kernel_died", "message": "the kernel died"})
    assert cache.get("k1") is None
    cache.put("k1", facts)
    assert cache.get("k1") == facts
    # A second cache over the same folder (the next run) sees it too.
    assert FactsCache(tmp_path).get("k1") == facts


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"{not json",
        b'{"schema": 1}',
        b"\xff\xfe binary",
        b"[]",
    ],
    ids=["empty", "truncated", "missing-fields", "not-utf8", "wrong-type"],
)
def test_a_damaged_entry_is_dropped_and_recomputed(tmp_path: Path, damage: bytes) -> None:
    cache = FactsCache(tmp_path)
    entry = cache.root / "k1.json"
    entry.write_bytes(damage)
    assert cache.get("k1") is None
    assert not entry.exists()
    cache.put("k1", make_facts())
    assert cache.get("k1") == make_facts()


def test_a_truncated_valid_entry_is_dropped(tmp_path: Path) -> None:
    cache = FactsCache(tmp_path)
    text = facts_to_json(make_facts())
    (cache.root / "k1.json").write_text(text[: len(text) // 2])
    assert cache.get("k1") is None


# --- re-grading from the cache (real CLI, real kernels) ------------------------------------------------


def test_the_grader_process_does_not_import_tensorflow() -> None:
    """Re-scoring must not pay for importing TensorFlow (seconds): only kernels and re-evaluations do."""
    code = "import sys, grader.cli; print(sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"


def edited_rubric(folder: Path) -> Path:
    """The real rubric with 1 point moved from build.hidden to build.input_shape and a new hint on hidden."""
    data = yaml.safe_load((ROOT / "rubric.yaml").read_text())
    data["reference"] = str(ROOT / "reference" / "solution.ipynb")
    data["template"] = str(ROOT / "reference" / "template.ipynb")
    checks = data["sections"]["build"]["checks"]
    checks["hidden"]["points"] -= 1
    checks["input_shape"]["points"] += 1
    checks["hidden"]["hint"] = "Re-read the assignment: the hidden layer uses sigmoid."
    path = folder / "edited.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.integration
def test_unchanged_batch_is_cached_and_a_rubric_edit_rescores_without_kernels(
    small_dataset: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "submissions"
    for name in ("ada_perfect.ipynb", "eli_relu.ipynb"):
        touch(folder / name, (ROOT / "submissions" / name).read_bytes())
    cache, out = tmp_path / "cache", tmp_path / "out"
    common = ("--dataset", small_dataset, "--out", out, "--verbose")

    first = run_grade(folder, *common, "--jobs", "2", cache=cache)
    assert first.returncode == 0, first.stderr[-3000:]
    before = json.loads((out / "grades.json").read_text())["students"]
    assert [(s["student"], s["total"]) for s in before] == [("ada_perfect", 100), ("eli_relu", 90)]
    entries = {p: p.stat().st_mtime_ns for p in (cache / "facts").glob("*.json")}
    assert len(entries) == 3  # the reference and the two students

    again = run_grade(folder, *common, "--jobs", "2", cache=cache)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("[cached]") == 2, again.stderr
    assert json.loads((out / "grades.json").read_text())["students"] == before

    rescored = run_grade(folder, *common, "--rescore", "--rubric", edited_rubric(tmp_path), cache=cache)
    assert rescored.returncode == 0, rescored.stderr[-3000:]
    after = {s["student"]: s for s in json.loads((out / "grades.json").read_text())["students"]}
    assert after["ada_perfect"]["total"] == 100
    assert after["eli_relu"]["total"] == 91
    build = after["eli_relu"]["sections"]["build"]
    assert build["points"] == 41
    hidden = next(c for c in build["checks"] if c["id"] == "hidden")
    assert (hidden["points"], hidden["max"], hidden["passed"]) == (0, 9, False)
    assert hidden["message"].endswith("Re-read the assignment: the hidden layer uses sigmoid.")
    # Nothing was executed: the cache holds the same entries, untouched.
    assert {p: p.stat().st_mtime_ns for p in (cache / "facts").glob("*.json")} == entries


def test_rescore_without_cached_facts_names_the_students_instead_of_running_them(
    small_dataset: Path, tmp_path: Path
) -> None:
    touch(tmp_path / "subs" / "ada.ipynb", (ROOT / "submissions" / "ada_perfect.ipynb").read_bytes())
    result = run_grade(
        tmp_path / "subs",
        "--rescore",
        "--dataset",
        small_dataset,
        "--out",
        tmp_path / "out",
        cache=tmp_path / "cache",
        timeout=300,
    )
    assert result.returncode == 2
    # The reference, never run before, runs (next term's rubric comes with its reference); a student does not.
    assert "no cached facts for ada: run without --rescore" in result.stderr
    assert not (tmp_path / "out").exists()


# --- what a cached run lacks, for a rubric that reads more -----------------------------------------------


def test_a_run_that_recorded_the_same_names_or_more_covers_the_rubric() -> None:
    assert shortfall(facts(WANTED.variables), WANTED) is None
    assert shortfall(facts([*WANTED.variables, "bar", "history"]), WANTED) is None


def test_a_run_lacking_a_name_or_serving_another_loader_does_not() -> None:
    assert shortfall(facts(ROLES), WANTED) == Shortfall(("foo",), None)
    assert shortfall(facts(["model", "x_train"]), WANTED) == Shortfall(
        ("foo", "score", "x_test", "y_test", "y_train"), None
    )
    assert shortfall(facts(WANTED.variables, loader="fashion_mnist"), WANTED) == Shortfall((), "fashion_mnist")


@pytest.mark.parametrize("status", ["unreadable", "grader_error"])
def test_facts_no_kernel_produced_need_no_run(status: str) -> None:
    assert shortfall(facts([], loader="", status=status), WANTED) is None


def test_the_notice_names_what_the_rubric_reads_and_how_many_runs_lack_it() -> None:
    one = rerun_notice([("bob", Shortfall(("foo",), None))], WANTED, rescore=False)
    assert one == "the rubric reads `foo`, which 1 cached run did not record: running that notebook again (bob)"

    students = [f"s{i:02}" for i in range(12)]
    lacks = [(s, Shortfall(("foo", "bar") if s == "s00" else ("foo",), None)) for s in students]
    many = rerun_notice(lacks, WANTED, rescore=True)
    assert many.startswith("the rubric reads `bar` and `foo`, which 12 cached runs did not record: running those")
    assert "even with --rescore" in many
    assert many.endswith("(s00, s01, s02, s03, s04 and 7 more)")

    loader = rerun_notice([("ada", Shortfall((), "mnist"))], ProbeRequest("fashion_mnist", []), rescore=False)
    assert loader.startswith("the rubric serves keras.datasets.fashion_mnist, where 1 cached run served mnist:")


def test_the_probe_request_is_not_part_of_the_cache_key() -> None:
    # So that a rubric reading a new name finds its old entries, and can tell what they lack.
    wider = dataclasses.replace(SETTINGS, request=WANTED)
    assert cache_key(NOTEBOOK, dataset(), SETTINGS, DIGEST) == cache_key(NOTEBOOK, dataset(), wider, DIGEST)


def test_the_digest_is_the_same_from_threads_at_once() -> None:
    """`grade serve` grades on several threads; CPython 3.11's ast.parse fails when two threads parse at once."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        digests = set(pool.map(lambda _: fact_code_digest(), range(8)))
    assert digests == {installed_code_digest()}
