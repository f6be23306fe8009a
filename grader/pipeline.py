"""The whole run behind `grade`: rubric, data, reference calibration, executions, scores, outputs."""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from grader import __version__
from grader.adjustments import apply_adjustments, read_adjustments
from grader.batch import (
    Calibration,
    Executor,
    FactsCache,
    Progress,
    Submission,
    calibrate,
    dask_executor,
    discover,
    execute_all,
    grade_with_notes,
    local_executor,
)
from grader.dataset import provision_dataset
from grader.errors import GraderError
from grader.execute import RunSettings
from grader.export import (
    RosterEntry,
    file_stems,
    read_roster,
    write_canvas_csv,
    write_feedback_notebook,
    write_grades_csv,
    write_grades_json,
    write_gradescope,
)
from grader.facts import Facts
from grader.isolation import FEEDBACK, NEAR_COPIES, SCORE, StageFailure, StageGuard
from grader.near_copies import NearCopy, find_near_copies
from grader.rubric import load_rubric
from grader.sandbox import Limits, require_bwrap
from grader.score import KNOWN_CHECKS, StudentGrade, unscored_grade


@dataclass(frozen=True, slots=True)
class Options:
    submissions: Path
    out: Path = Path("reports")
    rubric: Path = Path("rubric.yaml")
    reference: Path | None = None
    dataset: Path | None = None
    jobs: int | None = None
    timeout: float | None = None
    cell_timeout: float | None = None
    sandbox: bool = True
    rescore: bool = False
    scheduler: str | None = None
    roster: Path | None = None
    adjustments: Path | None = None
    feedback_notebooks: bool = False
    quiet: bool = False
    verbose: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    grades: list[StudentGrade]
    calibration: Calibration
    out: Path
    near_copies: list[NearCopy]


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def run_limits(limits: Limits, options: Options) -> Limits:
    """The rubric's limits with the command line's time limits in place of its own."""
    for flag, value in (("--timeout", options.timeout), ("--cell-timeout", options.cell_timeout)):
        if value is not None and not value > 0:
            raise GraderError(f"{flag} must be a positive number of seconds, got {value:g}")
    if options.timeout is not None:
        limits = replace(
            limits, notebook_timeout_s=options.timeout, cell_timeout_s=min(limits.cell_timeout_s, options.timeout)
        )
    if options.cell_timeout is not None:
        limits = replace(limits, cell_timeout_s=options.cell_timeout)
    return limits


def _import_meanwhile(module: str) -> None:
    """Imports `module` in a background thread; a later `import` of it waits for that one to finish.

    The reports need matplotlib, Jinja and Pygments, about half a second of imports: loaded while the
    first kernel starts, they stay off a notebook's critical path. A failure here is left for the later
    import to raise where it can be reported.
    """

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    threading.Thread(target=load, name=f"import {module}", daemon=True).start()


def run(options: Options, cache_dir: Path) -> Outcome:
    """Grades every notebook under `options.submissions` and writes the outputs; raises GraderError on misuse."""
    rubric = load_rubric(options.rubric, KNOWN_CHECKS)
    limits = run_limits(rubric.limits, options)
    reference = (options.reference or rubric.reference).resolve()
    if not reference.is_file():
        raise GraderError(f"reference notebook not found: {reference} (set `reference:` in the rubric or --reference)")
    if rubric.template is not None and not rubric.template.is_file():
        raise GraderError(f"template notebook not found: {rubric.template} (fix `template:` in the rubric)")
    submissions = discover(options.submissions)
    roster = read_roster(options.roster) if options.roster else None
    # Read before anything runs, so a wrong line costs no execution and leaves no output behind.
    adjustments = (
        read_adjustments(options.adjustments, [s.student for s in submissions], rubric) if options.adjustments else {}
    )
    if options.sandbox and not options.rescore:
        require_bwrap()
    dataset = provision_dataset(options.dataset, cache_dir)
    jobs = options.jobs or default_jobs()
    if jobs < 1:
        raise GraderError("--jobs must be at least 1")
    cores = default_jobs()
    settings = RunSettings(
        limits=limits, isolated=options.sandbox, threads=max(1, cores // min(jobs, len(submissions)))
    )
    cache = FactsCache(cache_dir)
    _import_meanwhile("grader.report")
    progress = Progress(total=len(submissions), quiet=options.quiet, verbose=options.verbose)

    def executor_for(
        run_settings: RunSettings, n_jobs: int, on_start: Callable[[], None], guard: StageGuard
    ) -> Executor | None:
        if options.rescore:
            return None
        if options.scheduler:
            return dask_executor(options.scheduler, dataset, run_settings, on_start, guard)
        return local_executor(dataset, run_settings, n_jobs, on_start, guard)

    # The reference runs alone with every core; it is cached like any submission. A failure there is not a
    # student's: `calibrate` turns it into a user error that ends the run.
    reference_settings = replace(settings, threads=cores)
    reference_guard = StageGuard()
    reference_run = execute_all(
        [Submission("reference", reference)],
        dataset,
        reference_settings,
        cache,
        executor_for(reference_settings, 1, lambda: None, reference_guard),
        lambda *_: None,
        reference_guard,
    )
    reference_facts = reference_run["reference"]
    calibration = calibrate(reference_facts, rubric)

    # From here on, whatever fails for one student is that student's alone (see grader.isolation).
    guard = StageGuard()
    grades: dict[str, StudentGrade] = {}

    def on_result(sub: Submission, facts: Facts, seconds: float, cached: bool) -> None:
        def unscored(failure: StageFailure) -> StudentGrade:
            return unscored_grade(sub.student, facts, rubric, failure.message)

        def scored() -> StudentGrade:
            return apply_adjustments(
                grade_with_notes(sub, facts, rubric, calibration), adjustments.get(sub.student, [])
            )

        grade = guard.run(SCORE, sub.student, unscored, scored)
        grades[sub.student] = grade
        progress.finish_one(grade, seconds, cached)

    try:
        execute_all(
            submissions,
            dataset,
            settings,
            cache,
            executor_for(settings, jobs, progress.start_one, guard),
            on_result,
            guard,
        )
    finally:
        progress.close()
    ordered = [grades[s.student] for s in submissions]
    bases = [reference, *([rubric.template] if rubric.template else [])]
    paths = {s.student: s.path for s in submissions}

    # A whole-class step: should it fail (a grader fault), the grades stand and the summary says so.
    def look_for_near_copies() -> list[NearCopy] | None:
        return find_near_copies(paths, bases, rubric.similarity_threshold)

    pairs = guard.run(NEAR_COPIES, "the class", lambda _: None, look_for_near_copies)
    written = write_outputs(
        ordered,
        pairs,
        rubric.similarity_threshold,
        options,
        calibration,
        dataset.describe(),
        dataset.standin,
        roster,
        submissions,
        guard,
    )
    return Outcome(written, calibration, options.out, pairs or [])


def write_outputs(
    grades: list[StudentGrade],
    pairs: list[NearCopy] | None,
    similarity_threshold: float,
    options: Options,
    calibration: Calibration,
    dataset_description: str,
    standin: bool,
    roster: dict[str, RosterEntry] | None,
    submissions: list[Submission],
    guard: StageGuard,
) -> list[StudentGrade]:
    """Writes every output; returns the grades as written, marked with any stage that failed for a student.

    `pairs` are the near-copies found, or None where looking for them failed.

    Feedback notebooks come first, then the files that show a student's status (Gradescope results,
    reports, grades.json, the CSV files). Should one of those fail for a student, they are all written once
    more with that failure marked, so that every file tells the same story.
    """
    from grader.report import ReportContext, write_reports

    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    stems = file_stems(g.student for g in grades)
    if options.feedback_notebooks:
        folder = out / "feedback"
        folder.mkdir(exist_ok=True)
        paths = {s.student: s.path for s in submissions}
        for grade in grades:
            dest = folder / f"{stems[grade.student]}.ipynb"
            guard.run(
                FEEDBACK, grade.student, lambda _: None, write_feedback_notebook, grade, paths[grade.student], dest
            )
    history = calibration.reference_facts.kernel.history
    context = ReportContext(
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        grader_version=__version__,
        dataset_description=dataset_description,
        standin=standin,
        reference_history=history.values if history else None,
        accuracy_threshold=calibration.threshold,
        reference_accuracy=calibration.reference_accuracy,
        similarity_threshold=similarity_threshold if pairs is not None else None,
    )
    for _ in range(2):
        failed_before = sum(len(f) for f in guard.failures.values())
        marked = [guard.mark(g) for g in grades]
        write_gradescope(marked, out / "gradescope", guard)
        marked = write_reports(marked, out, context, guard, pairs or [])
        write_grades_json(marked, out / "grades.json", guard, pairs or [])
        write_grades_csv(marked, out / "grades.csv", guard)
        write_canvas_csv(marked, out / "canvas.csv", roster, guard=guard)
        if sum(len(f) for f in guard.failures.values()) == failed_before:
            break
    return [guard.mark(g) for g in grades]
