"""Times `grade serve` against `grade` on the same notebook, and the service's throughput, in one run.

    .venv/bin/python benchmarks/bench_service.py [--dataset NPZ] [--queued 20] [--jobs 2] [--work DIR]

1. Upload to report: the reference solution (a copy with one comment added, so that no cached facts serve
   it) uploaded to a running `grade serve`, from the POST to the moment its report can be fetched, against
   another such copy graded by `grade` (the whole command, with the reference already calibrated from the
   cache). The difference is the service's overhead (goal: under 1 s).
2. Throughput: `--queued` copies uploaded at once to a service with `--jobs`, from the first POST to the
   last report; printed as notebooks per minute.

The dataset is the 12,000/2,000 subsample of ../shared/data/mnist-standin.npz unless --dataset is given.
Every figure is wall-clock time on this machine, shared with whatever else runs on it: record the load
average this script prints beside the results in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's grader (for the dataset helpers), not the venv's install
SHARED_STANDIN = ROOT.parent / "shared" / "data" / "mnist-standin.npz"
REFERENCE = ROOT / "reference" / "solution.ipynb"
START_TIMEOUT_S = 900
GRADE_TIMEOUT_S = 3600


def variant(n: int) -> bytes:
    """The reference solution with a comment cell of its own: the same work, facts not in the cache."""
    nb = nbformat.read(REFERENCE, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"Benchmark copy {n} ({time.time_ns()})", id=f"bench-{n}"))
    return nbformat.writes(nb).encode()


def grade_cli(*args: str | Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "grader", *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"grade failed: {done.stderr[-2000:]}")
    return time.monotonic() - started


@contextlib.contextmanager
def service(work: Path, dataset: Path, jobs: int, cache: Path) -> Iterator[tuple[str, str]]:
    """A fresh `grade serve` on 127.0.0.1 with one student, ready (as the tests start it); yields its URL and the
    student's token."""
    from tests.service.conftest import course_rubric, running, tokens, write_roster

    roster = write_roster(work, ["bench"])
    data = work / f"data-{time.time_ns()}"
    token = tokens(data, roster)["bench"]
    rubric = course_rubric(work, per_hour=10_000)
    with running(data, rubric, roster, dataset, cache, "--jobs", str(jobs), "--queue-size", "1000") as server:
        yield server.url, token


def upload_to_reports(url: str, token: str, notebooks: list[bytes]) -> float:
    """Seconds from the first upload to the last report fetched."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        started = time.monotonic()
        ids = []
        for n, content in enumerate(notebooks):
            answer = client.post("/api/submissions", files={"notebook": (f"bench{n}.ipynb", content)})
            answer.raise_for_status()
            ids.append(answer.json()["id"])
        waiting = set(ids)
        deadline = started + GRADE_TIMEOUT_S
        while waiting and time.monotonic() < deadline:
            for upload_id in sorted(waiting):
                status = client.get(f"/api/submissions/{upload_id}").json()
                if status["report"] and client.get(status["report"]).status_code == 200:
                    waiting.discard(upload_id)
            time.sleep(0.05)
        if waiting:
            raise SystemExit(f"not graded in {GRADE_TIMEOUT_S} s: {sorted(waiting)}")
        return time.monotonic() - started


def main() -> None:
    from grader.dataset import subsample

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path)
    p.add_argument("--queued", type=int, default=20)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--work", type=Path)
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-service-"))
    work.mkdir(parents=True, exist_ok=True)
    dataset = args.dataset or subsample(SHARED_STANDIN, work / "small.npz", 12_000, 2_000)
    from tests.conftest import grader_environ

    cache = work / "cache"
    env = {**grader_environ(cache), "PYTHONPATH": str(ROOT)}  # the homework environment as built, facts apart
    print(f"{platform.node()}: {os.cpu_count()} cores, load average {os.getloadavg()}, dataset {dataset}")

    folder = work / "cli"
    folder.mkdir(exist_ok=True)
    (folder / "warmup.ipynb").write_bytes(variant(0))
    grade_cli(folder, "--out", work / "out-warmup", "--dataset", dataset, "--quiet", env=env)  # calibrates
    (folder / "warmup.ipynb").unlink()
    (folder / "bench.ipynb").write_bytes(variant(1))
    by_grade = grade_cli(folder, "--out", work / "out", "--dataset", dataset, "--quiet", env=env)
    with service(work, dataset, 1, cache) as (url, token):
        by_service = upload_to_reports(url, token, [variant(2)])
    print(
        f"1. one notebook: grade {by_grade:.1f} s, service upload to report {by_service:.1f} s, "
        f"difference {by_service - by_grade:+.1f} s"
    )
    with service(work, dataset, args.jobs, cache) as (url, token):
        batch = upload_to_reports(url, token, [variant(10 + n) for n in range(args.queued)])
    print(
        f"2. {args.queued} queued on --jobs {args.jobs}: {batch:.1f} s, "
        f"{args.queued / batch * 60:.2f} notebooks per minute"
    )
    print(json.dumps({"grade_s": by_grade, "service_s": by_service, "batch_s": batch, "load": os.getloadavg()}))


if __name__ == "__main__":
    main()
