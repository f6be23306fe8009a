"""Times `grade` against plain nbclient and nbgrader on the same notebooks, on this machine, in one run.

    .venv/bin/python benchmarks/bench.py [--dataset NPZ] [--small] [--repeat N] [--no-nbgrader] [--work DIR]

1. Overhead: the reference solution run by plain nbclient (no sandbox, no facts; the dataset is patched in
   by an injected first cell) against `grade` on the same notebook, cold (which also runs the reference
   once to calibrate) and with the reference already cached (one execution, like nbclient).
2. Throughput: a batch of 8 submissions with --jobs 1 and --jobs 2 (the reference cached for both).
3. The cache: the same batch again, unchanged; then `--rescore` after moving a point in the rubric.
4. nbgrader's `autograde` of the same 8 notebooks, installed into its own venv under /tmp (skipped, with
   the reason, where it cannot be installed or run).

Every figure is wall-clock seconds of one command as a user would run it. Record results by hand in
benchmarks/RESULTS.md with the machine and the date that this script prints.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SHARED_STANDIN = ROOT.parent / "shared" / "data" / "mnist-standin.npz"
REFERENCE = ROOT / "reference" / "solution.ipynb"
# Eight bundled submissions that train for the full 20 epochs and load MNIST as `keras.datasets.mnist`
# (which the injected cell below can patch; ben's `tf.keras` spelling would need TensorFlow's lazy loader,
# and max's 200 epochs would measure the time limit, not the grader).
BATCH = (
    "ada_perfect",
    "cara_unscaled_pixels",
    "dev_sparse_labels",
    "eli_relu",
    "fay_adam_optimizer",
    "gus_missing_visualize",
    "hal_crashing_cell",
    "kim_onehot_titles",
)
SMALL = (12_000, 2_000)
NBGRADER_VENV = Path(tempfile.gettempdir()) / "mnist-grader-bench-nbgrader-venv"
NOTEBOOK_TIMEOUT_S = 1800

# What `grade` does for every notebook through its probe, done here the way a teacher would without it.
DATASET_CELL = """\
# Injected by benchmarks/bench.py: keras.datasets.mnist.load_data() reads the benchmark's dataset.
import numpy as _np
import keras as _keras


def _bench_load_data(path="mnist.npz"):
    with _np.load({path!r}) as _f:
        return (_f["x_train"], _f["y_train"]), (_f["x_test"], _f["y_test"])


_keras.datasets.mnist.load_data = _bench_load_data
"""


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and why."""


@dataclass
class Report:
    """Figures in the order they were measured, printed as they come and once more at the end."""

    lines: list[str] = field(default_factory=list)
    data: dict[str, object] = field(default_factory=dict)

    def heading(self, text: str) -> None:
        self._emit(f"\n{text}")

    def figure(self, label: str, value: str, key: str | None = None, raw: object = None) -> None:
        self._emit(f"  {label:<58} {value}")
        if key:
            self.data[key] = raw

    def note(self, text: str) -> None:
        self._emit(f"  {text}")

    def _emit(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)


# ------------------------------------------------------------------------------------------ the machine


def machine() -> str:
    cores = len(os.sched_getaffinity(0))
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name"))
    except (OSError, StopIteration):
        pass
    ram = ""
    try:
        kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        ram = f", {kb / 2**20:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{model}, {cores} cores{ram}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def dataset_for(args: argparse.Namespace, work: Path) -> Path:
    from grader.dataset import build_standin, subsample

    if args.dataset:
        source = args.dataset.resolve()
    elif SHARED_STANDIN.exists():
        source = SHARED_STANDIN
    else:
        print("building the grader's offline stand-in dataset ...", flush=True)
        source = build_standin(work / "standin.npz")
    if args.small:
        return subsample(source, work / "small.npz", *SMALL)
    return source


def describe_dataset(path: Path) -> str:
    import hashlib

    import numpy as np

    with np.load(path) as data:
        n_train, n_test = len(data["y_train"]), len(data["y_test"])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{path} ({n_train:,} train / {n_test:,} test images, sha256 {digest[:12]})"


# ------------------------------------------------------------------------------------------ the runs


def timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def patched_notebook(source: Path, data: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(source, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(DATASET_CELL.format(path=str(data))))
    return nb


def run_nbclient(notebook: Path, data: Path, folder: Path) -> None:
    """The notebook as plain nbclient runs it: the Python 3 kernel of this venv, no sandbox, no limits."""
    nb = patched_notebook(notebook, data)
    folder.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(
        nb, timeout=NOTEBOOK_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    if errors:
        raise BenchError(f"nbclient: {notebook.name} raised {errors[0].ename}: {errors[0].evalue}")


def run_grade(target: Path, *args: str | Path, cache: Path, log: Path) -> str:
    """`grade` as a user runs it, with its own cache; returns its stderr (one line per student)."""
    cmd = [sys.executable, "-m", "grader", str(target), "--cache", str(cache), "--verbose", *map(str, args)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    log.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    if proc.returncode != 0:
        raise BenchError(f"grade exited {proc.returncode} (log: {log}): {proc.stderr.strip()[-600:]}")
    return proc.stderr


def byte_copy(notebook: Path, dest: Path, tag: str) -> Path:
    """The same notebook with different bytes (a metadata tag), so that the facts cache misses it."""
    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["benchmark_copy"] = tag
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest


def edited_rubric(dest: Path) -> Path:
    """The real rubric with one point moved between two build checks and a new hint: scoring only."""
    data = yaml.safe_load((ROOT / "rubric.yaml").read_text())
    data["reference"] = str(REFERENCE)
    checks = data["sections"]["build"]["checks"]
    checks["hidden"]["points"] -= 1
    checks["input_shape"]["points"] += 1
    checks["hidden"]["hint"] = "The assignment asks for a sigmoid hidden layer."
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


def spread(values: Sequence[float]) -> str:
    if len(values) == 1:
        return ""
    return "  [" + ", ".join(f"{v:.1f}" for v in values) + "]"


# ------------------------------------------------------------------------------------------ the sections


def overhead(report: Report, data: Path, work: Path, repeat: int) -> Path:
    """Section 1; returns a cache that holds the reference's facts for this dataset."""
    report.heading("1. One notebook: the reference solution")
    cache = work / "cache-ref"
    shutil.rmtree(cache, ignore_errors=True)
    out = work / "out-single"
    cold_nb = byte_copy(REFERENCE, work / "single" / "cold" / "solution.ipynb", "cold")
    cold = timed(lambda: run_grade(cold_nb, "--dataset", data, "--out", out, cache=cache, log=work / "grade-cold.log"))
    raw: list[float] = []
    warm: list[float] = []
    for i in range(repeat):  # interleaved, so that drift in the machine's speed hits both alike
        raw.append(timed(lambda: run_nbclient(REFERENCE, data, work / "nbclient")))
        print(f"    nbclient run {i + 1}: {raw[-1]:.1f} s", flush=True)
        nb = byte_copy(REFERENCE, work / "single" / f"warm{i}" / "solution.ipynb", f"warm{i}")
        log = work / f"grade-warm{i}.log"
        warm.append(timed(lambda nb=nb, log=log: run_grade(nb, "--dataset", data, "--out", out, cache=cache, log=log)))
        print(f"    grade run {i + 1} (reference cached): {warm[-1]:.1f} s", flush=True)
    best_raw, best_warm = min(raw), min(warm)
    report.figure("plain nbclient, no sandbox (best)", f"{best_raw:7.1f} s{spread(raw)}", "nbclient_s", raw)
    report.figure("grade, fresh cache (also runs the reference to calibrate)", f"{cold:7.1f} s", "grade_cold_s", cold)
    report.figure("grade, reference already cached (best)", f"{best_warm:7.1f} s{spread(warm)}", "grade_warm_s", warm)
    ratio = best_warm / best_raw
    report.figure("overhead ratio grade / nbclient (target <= 1.05)", f"{ratio:7.3f}", "overhead_ratio", ratio)
    return cache


def throughput(report: Report, data: Path, work: Path, ref_cache: Path) -> tuple[Path, Path]:
    """Section 2; returns the batch folder and a cache holding its facts."""
    report.heading(f"2. A batch of {len(BATCH)} submissions (reference cached)")
    batch = work / "batch"
    batch.mkdir(exist_ok=True)
    for name in BATCH:
        shutil.copy(ROOT / "submissions" / f"{name}.ipynb", batch / f"{name}.ipynb")
    seconds: dict[int, float] = {}
    for jobs in (1, 2):
        cache = work / f"cache-jobs{jobs}"
        shutil.rmtree(cache, ignore_errors=True)
        shutil.copytree(ref_cache, cache)
        out = work / f"out-jobs{jobs}"
        log = work / f"grade-jobs{jobs}.log"
        seconds[jobs] = timed(
            lambda jobs=jobs, cache=cache, out=out, log=log: run_grade(
                batch, "--dataset", data, "--out", out, "--jobs", str(jobs), cache=cache, log=log
            )
        )
        per = seconds[jobs] / len(BATCH)
        report.figure(f"grade --jobs {jobs}", f"{seconds[jobs]:7.1f} s  ({per:.1f} s per notebook)", f"jobs{jobs}_s", seconds[jobs])
    ratio = seconds[1] / seconds[2]
    report.figure("throughput ratio --jobs 2 / --jobs 1", f"{ratio:7.2f}x", "throughput_ratio", ratio)
    return batch, work / "cache-jobs2"


def caching(report: Report, data: Path, work: Path, batch: Path, cache: Path) -> None:
    report.heading("3. Re-grading the same batch from the cache")
    out = work / "out-jobs2"
    stderr = ""

    def regrade() -> None:
        nonlocal stderr
        stderr = run_grade(batch, "--dataset", data, "--out", out, cache=cache, log=work / "grade-regrade.log")

    again = timed(regrade)
    cached = stderr.count("[cached]")
    report.figure(f"unchanged batch ({cached}/{len(BATCH)} from the cache)", f"{again:7.2f} s", "regrade_s", again)
    rubric = edited_rubric(work / "rubric-edited.yaml")
    rescore = timed(
        lambda: run_grade(
            batch, "--rescore", "--rubric", rubric, "--dataset", data, "--out", out, cache=cache,
            log=work / "grade-rescore.log",
        )
    )
    report.figure("--rescore after a rubric edit (no kernel started)", f"{rescore:7.2f} s", "rescore_s", rescore)
    cli = timed(
        lambda: subprocess.run([sys.executable, "-m", "grader", "--version"], capture_output=True, check=True)
    )
    report.figure("of which starting the CLI (grade --version)", f"{cli:7.2f} s", "cli_start_s", cli)


def nbgrader(report: Report, data: Path, work: Path, batch: Path, grade_jobs1: float | None) -> None:
    report.heading(f"4. nbgrader autograde of the same {len(BATCH)} notebooks")
    try:
        exe = install_nbgrader(work)
        version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False).stdout
        course = nbgrader_course(work / "nbgrader-course", data, batch)
        env = {**os.environ, "JUPYTER_PATH": str(kernelspec(work / "jupyter"))}
        cmd = [str(exe), "generate_assignment", "mnist", "--force"]
        run_logged(cmd, course, env, work / "nbgrader-generate.log")
        cmd = [str(exe), "autograde", "mnist", "--force", f"--Execute.timeout={NOTEBOOK_TIMEOUT_S}"]
        seconds = timed(lambda: run_logged(cmd, course, env, work / "nbgrader-autograde.log"))
        failed = nbgrader_failures(course)
    except BenchError as exc:
        report.note(f"skipped: {exc}")
        return
    report.note(f"nbgrader {version.strip().splitlines()[-1] if version.strip() else '(version unknown)'}")
    report.figure("nbgrader autograde (one at a time, no sandbox)", f"{seconds:7.1f} s", "nbgrader_s", seconds)
    if failed:
        report.note(f"warning: nbgrader reported errors in: {', '.join(failed)}")
    if grade_jobs1:
        report.figure("grade --jobs 1 / nbgrader", f"{grade_jobs1 / seconds:7.3f}", "grade_vs_nbgrader", grade_jobs1 / seconds)
    report.note("nbgrader executes and collects outputs only: no sandbox, no facts, no re-evaluation,")
    report.note("and these notebooks carry no nbgrader test cells, so it scores nothing.")


def install_nbgrader(work: Path) -> Path:
    exe = NBGRADER_VENV / "bin" / "nbgrader"
    if exe.exists():
        return exe
    print(f"    installing nbgrader into {NBGRADER_VENV} ...", flush=True)
    log = work / "nbgrader-install.log"
    try:
        run_logged([sys.executable, "-m", "venv", "--clear", str(NBGRADER_VENV)], work, None, log)
        run_logged([str(NBGRADER_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "nbgrader"], work, None, log)
    except BenchError as exc:
        shutil.rmtree(NBGRADER_VENV, ignore_errors=True)
        raise BenchError(f"nbgrader could not be installed (offline?): {exc}") from None
    return exe


def kernelspec(folder: Path) -> Path:
    """A `python3` kernel spec that runs this venv's Python (which has Keras), found first via JUPYTER_PATH."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
    return folder


def nbgrader_course(course: Path, data: Path, batch: Path) -> Path:
    """nbgrader's layout: source/<assignment>/<nb>.ipynb and submitted/<student>/<assignment>/<nb>.ipynb."""
    shutil.rmtree(course, ignore_errors=True)
    source = course / "source" / "mnist"
    source.mkdir(parents=True)
    nbformat.write(patched_notebook(REFERENCE, data), source / "mnist.ipynb")
    for nb in sorted(batch.glob("*.ipynb")):
        folder = course / "submitted" / nb.stem / "mnist"
        folder.mkdir(parents=True)
        nbformat.write(patched_notebook(nb, data), folder / "mnist.ipynb")
    (course / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\n")
    return course


def nbgrader_failures(course: Path) -> list[str]:
    """Students whose autograded notebook is missing (nbgrader gave up on them)."""
    return [s for s in BATCH if not (course / "autograded" / s / "mnist" / "mnist.ipynb").exists()]


def run_logged(cmd: list[str], cwd: Path, env: dict[str, str] | None, log: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    with log.open("a") as f:
        f.write(f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}\n")
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"`{' '.join(cmd[:3])}` exited {proc.returncode}: {tail[0][:300]} (log: {log})")


# ------------------------------------------------------------------------------------------ main


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path, help="MNIST .npz (default: ../shared/data/mnist-standin.npz, else a stand-in)")
    p.add_argument("--small", action="store_true", help=f"use the first {SMALL[0]:,}/{SMALL[1]:,} images (quick run)")
    p.add_argument("--repeat", type=int, default=1, help="runs of nbclient and of grade for the overhead (best of)")
    p.add_argument("--no-nbgrader", action="store_true", help="skip the nbgrader comparison")
    p.add_argument("--work", type=Path, help="working folder, kept (default: a new folder under /tmp)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    work = (args.work or Path(tempfile.mkdtemp(prefix="mnist-grader-bench-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    report = Report()
    started = time.perf_counter()
    try:
        data = dataset_for(args, work)
        report.heading(f"mnist-grader benchmark, {datetime.datetime.now().isoformat(timespec='minutes')}")
        report.note(f"machine: {machine()}")
        report.note(f"dataset: {describe_dataset(data)}")
        report.note(f"work folder and logs: {work}")
        ref_cache = overhead(report, data, work, max(1, args.repeat))
        batch, batch_cache = throughput(report, data, work, ref_cache)
        caching(report, data, work, batch, batch_cache)
        if args.no_nbgrader:
            report.heading("4. nbgrader: skipped (--no-nbgrader)")
        else:
            jobs1 = report.data.get("jobs1_s")
            nbgrader(report, data, work, batch, jobs1 if isinstance(jobs1, float) else None)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    report.heading(f"Total benchmark time: {(time.perf_counter() - started) / 60:.1f} min")
    (work / "results.json").write_text(json.dumps(report.data, indent=1))
    print("\nSummary\n" + "\n".join(report.lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
