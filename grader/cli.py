"""The `grade` command: parses arguments, shows progress, turns user errors into one-line messages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader import __version__
from grader.errors import GraderError
from grader.facts_cache import default_cache_dir
from grader.pipeline import Options, build_environment, run
from grader.rubric_choice import choose_rubric
from grader.watch import watch


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grade",
        description="Grade a folder of Keras homework notebooks against a rubric, in a sandbox, and write reports.",
        epilog="`grade serve --help`: the grading service, where students submit and read their reports.",
    )
    p.add_argument(
        "submissions", type=Path, nargs="?", help="folder of .ipynb files, one notebook, or an LMS download zip"
    )
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports)")
    p.add_argument(
        "--rubric",
        type=Path,
        help="rubric file (default: ./rubric.yaml if there is one, else the bundled MNIST homework)",
    )
    p.add_argument("--reference", type=Path, help="reference solution notebook (default: from the rubric)")
    p.add_argument(
        "--dataset",
        type=Path,
        help="the homework's data in Keras's mnist.npz layout (default: the rubric's; for MNIST, find or build)",
    )
    p.add_argument("--jobs", type=int, help="notebooks run at once (default: number of cores)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="time limit per notebook (default: rubric)")
    p.add_argument("--cell-timeout", type=float, metavar="SECONDS", help="time limit per cell (default: rubric)")
    p.add_argument(
        "--build-env",
        action="store_true",
        help="build the rubric's homework environment (needs the network once), print its folder and exit",
    )
    p.add_argument("--no-sandbox", action="store_true", help="run student code with your own rights (unsafe)")
    p.add_argument(
        "--rescore",
        action="store_true",
        help="re-score from cached facts; run only notebooks whose cached facts lack what the rubric reads",
    )
    p.add_argument("--watch", action="store_true", help="keep grading new and changed notebooks until Ctrl-C")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--cache", type=Path, help=f"facts cache folder (default: {default_cache_dir()})")
    p.add_argument(
        "--roster",
        type=Path,
        help="roster.csv mapping notebook names to LMS ids, or D2L's grades export (then d2l.csv is written too)",
    )
    p.add_argument(
        "--lms-timezone",
        metavar="ZONE",
        help="time zone of the LMS's time stamps (D2L), e.g. America/Chicago (default: that of the rubric's due)",
    )
    p.add_argument(
        "--adjustments",
        type=Path,
        metavar="FILE",
        help="CSV of grade changes by hand (student,check,points,comment); combine with --rescore",
    )
    p.add_argument("--feedback-notebooks", action="store_true", help="also write notebooks with feedback cells")
    p.add_argument("--verbose", action="store_true", help="show per-student timings")
    p.add_argument("--quiet", action="store_true", help="print only the final summary")
    p.add_argument("--version", action="version", version=f"mnist-grader {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # the grading service (`grade serve --help`), above everything else
        from grader.service.cli import main as serve

        return serve(argv[1:])
    p = parser()
    args = p.parse_args(argv)
    cache = args.cache or default_cache_dir()
    if args.submissions is None and not args.build_env:
        p.error("the following arguments are required: submissions (or --build-env)")
    rubric = choose_rubric(args.rubric)
    if not args.quiet:
        print(rubric.describe(), flush=True)
    options = Options(
        submissions=args.submissions,
        out=args.out,
        rubric=rubric.path,
        reference=args.reference,
        dataset=args.dataset,
        jobs=args.jobs,
        timeout=args.timeout,
        cell_timeout=args.cell_timeout,
        sandbox=not args.no_sandbox,
        rescore=args.rescore,
        scheduler=args.scheduler,
        roster=args.roster,
        lms_timezone=args.lms_timezone,
        adjustments=args.adjustments,
        feedback_notebooks=args.feedback_notebooks,
        quiet=args.quiet,
        verbose=args.verbose,
    )
    try:
        if args.build_env:
            print(build_environment(rubric.path, cache).prefix)
            return 0
        outcome = (watch if args.watch else run)(options, cache)
    except GraderError as exc:
        print(f"grade: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grade: interrupted", file=sys.stderr)
        return 130
    grades = outcome.grades
    for warning in outcome.warnings:
        print(f"grade: warning: {warning}", file=sys.stderr)
    errors = sum(g.status == "error" for g in grades)
    flagged = sum(bool(g.integrity_flags) for g in grades)
    adjusted = sum(g.adjusted for g in grades)
    mean = sum(g.total for g in grades) / max(1, len(grades))
    most = max((g.max_total for g in grades), default=0.0)  # every grade has the rubric's total
    print(
        f"Graded {len(grades)} notebook(s): mean {mean:.1f}/{most:g}, {errors} with status error, "
        f"{flagged} flagged for integrity, {adjusted} adjusted by hand, "
        f"{len(outcome.near_copies)} near-copy pair(s) to review. Reports: {outcome.out / 'index.html'}"
    )
    if outcome.warnings:
        print(f"{len(outcome.warnings)} warning(s) above: students to check by hand.")
    return 0
