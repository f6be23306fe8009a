"""Times the grader's own work on hostile-sized inputs: the figures the unit tests no longer assert.

    .venv/bin/python benchmarks/bench_hostile_inputs.py

Each line is the best of three runs, in seconds of CPU time of this process (the work is single-threaded,
so CPU time is its wall time on a quiet machine and does not grow when other jobs share the cores):
- decoding facts with long runs of NaN/Infinity tokens (once quadratic; linear now);
- comparing a class of 300 notebooks, all pairs, for near-copies;
- rendering the report of a notebook of 400 failing cells;
- drawing training curves of a million epochs.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.facts import Reevaluation  # noqa: E402
from grader.near_copies import baseline, class_own_code, code_cells, near_copies  # noqa: E402
from grader.report import charts  # noqa: E402
from tests.factories import REFERENCE_HISTORY  # noqa: E402
from tests.report.test_render import render_400_failing_cells  # noqa: E402
from tests.test_near_copies import BASES, THRESHOLD, synthetic_class  # noqa: E402
from tests.test_strictjson import NAN_TOKEN_RUNS, decodes_or_refuses  # noqa: E402


def cpu_seconds(work: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    for name, text in NAN_TOKEN_RUNS.items():
        print(f"decode, {name}: {cpu_seconds(lambda text=text: decodes_or_refuses(text, Reevaluation)):.3f} s")

    base = baseline(code_cells(path) for path in BASES)
    sources, _ = synthetic_class(300, 10, random.Random(383))
    seconds = cpu_seconds(lambda: near_copies(class_own_code(sources, base), base, THRESHOLD))
    print(f"near-copies, 300 notebooks all pairs: {seconds:.2f} s")

    print(f"report of 400 failing cells: {cpu_seconds(render_400_failing_cells):.2f} s")

    million = {"loss": [0.5 + (i % 7) / 10 for i in range(1_000_000)], "accuracy": [0.9] * 1_000_000}
    seconds = cpu_seconds(lambda: charts.training_curves(million, REFERENCE_HISTORY))
    print(f"training curves, a million epochs: {seconds:.2f} s")


if __name__ == "__main__":
    main()
