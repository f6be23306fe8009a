"""The whole run behind `grade`: discover, provision, calibrate, execute, score, then report and export.

Each stage is a module of its own: grader.discover, grader.dataset, grader.calibration, grader.executors
(with grader.facts_cache), grader.score (with grader.adjustments, grader.lateness and grader.late),
grader.report and grader.export (with grader.d2l_gradebook). This module only passes the values from one
to the next.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from grader import __version__
from grader.adjustments import Adjustment, apply_adjustments, read_adjustments
from grader.archive import Ignored
from grader.calibration import Calibration, calibrate
from grader.d2l_gradebook import D2LRoster, d2l_warnings, is_d2l_export, read_d2l_roster, write_d2l_csv
from grader.dataset import Dataset, provision_dataset
from grader.discover import Discovery, Submission, open_submissions
from grader.errors import GraderError
from grader.execution.settings import RunLimits, RunSettings, dataset_facts
from grader.executors import Executor, SubmissionProgress, dask_executor, execute_all, local_executor
from grader.export.canvas import write_canvas_csv
from grader.export.feedback_notebook import write_feedback_notebook
from grader.export.file_stems import file_stems
from grader.export.grades_csv import write_grades_csv
from grader.export.grades_json import write_grades_json
from grader.export.gradescope import write_gradescope
from grader.export.roster import RosterEntry, read_roster
from grader.facts import Facts
from grader.facts_cache import FactsCache
from grader.isolation import FEEDBACK, NEAR_COPIES, SCORE, StageFailure, StageGuard
from grader.kernel_env import KernelEnvironment, ensure_built, locate
from grader.late import apply_late_policy
from grader.lateness import measure_lateness
from grader.near_copies import NearCopy, find_near_copies
from grader.output_layout import OutputLayout
from grader.progress import Progress
from grader.rubric.load import load_rubric
from grader.rubric.model import Rubric
from grader.rubric_choice import BUNDLED_RUBRIC
from grader.sandbox.host import require_bwrap
from grader.score import StudentGrade, grade_with_notes, unscored_grade

if TYPE_CHECKING:  # the reports' imports (matplotlib, Jinja) load in the background: see _import_meanwhile
    from grader.report.render import ReportContext


@dataclass(frozen=True, slots=True)
class Options:
    submissions: Path
    out: Path = Path("reports")
    rubric: Path = BUNDLED_RUBRIC
    reference: Path | None = None
    dataset: Path | None = None
    jobs: int | None = None
    timeout: float | None = None
    cell_timeout: float | None = None
    sandbox: bool = True
    rescore: bool = False
    scheduler: str | None = None
    roster: Path | None = None  # roster.csv, or D2L's grades export (then d2l.csv is written)
    lms_timezone: str | None = None  # the zone of the LMS's time stamps (D2L); default: the rubric's `due`
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
    warnings: list[str] = field(default_factory=list)  # one line each: a duplicate student, one left out of d2l.csv


Adjustments = dict[str, list[Adjustment]]  # student id -> the instructor's adjustments of their grade


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def lms_zone(options: Options, rubric: Rubric) -> tzinfo:
    """The time zone of the LMS's time stamps: `--lms-timezone`, else the zone of the rubric's `due`, else UTC."""
    if options.lms_timezone:
        try:
            return ZoneInfo(options.lms_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise GraderError(
                f"--lms-timezone {options.lms_timezone!r} is not a time zone (use a name like America/Chicago)"
            ) from None
    if rubric.due is not None and rubric.due.tzinfo is not None:
        return rubric.due.tzinfo
    return UTC


def run_limits(limits: RunLimits, options: Options) -> RunLimits:
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


@dataclass(frozen=True, slots=True)
class Session:
    """What stays fixed while a class is graded, and re-graded as work arrives (`--watch`)."""

    options: Options
    rubric: Rubric
    reference: Path
    dataset: Dataset
    settings: RunSettings
    jobs: int
    cache: FactsCache
    calibration: Calibration
    roster: dict[str, RosterEntry] | None
    d2l_roster: D2LRoster | None = None
    zone: tzinfo = UTC  # the LMS's time zone


@dataclass(frozen=True, slots=True)
class Round:
    """One grading of the class: the grades, in discovery order, and the near-copies found among them."""

    grades: list[StudentGrade]
    pairs: list[NearCopy] | None  # None where looking for them failed (a grader fault)


def executor_for(
    options: Options,
    dataset: Dataset,
    settings: RunSettings,
    jobs: int,
    on_start: Callable[[], None],
    guard: StageGuard,
    on_cell: SubmissionProgress | None = None,
) -> Executor:
    """Where notebooks run: a Dask cluster (`--scheduler`) or local threads. Under `--rescore` it runs only the
    notebooks whose cached facts lack something the rubric reads (see `execute_all`). `on_cell` hears which code
    cell each local run is in (a Dask worker's run tells nothing until it is done)."""
    if options.scheduler:
        return dask_executor(options.scheduler, dataset, settings, on_start, guard)
    return local_executor(dataset, settings, jobs, on_start, guard, on_cell)


def start_session(options: Options, rubric: Rubric, cache_dir: Path, students: int) -> Session:
    """Checks the inputs and the environment, provisions the data and calibrates on the reference."""
    limits = run_limits(rubric.limits, options)
    reference = (options.reference or rubric.reference).resolve()
    if not reference.is_file():
        raise GraderError(f"reference notebook not found: {reference} (set `reference:` in the rubric or --reference)")
    if rubric.template is not None and not rubric.template.is_file():
        raise GraderError(f"template notebook not found: {rubric.template} (fix `template:` in the rubric)")
    d2l = options.roster is not None and is_d2l_export(options.roster)
    roster = read_roster(options.roster) if options.roster and not d2l else None
    d2l_roster = read_d2l_roster(options.roster) if options.roster and d2l else None
    if options.sandbox and not options.rescore:
        require_bwrap()
    dataset = provision_dataset(options.dataset or rubric.dataset, cache_dir, loader=rubric.assignment.dataset.loader)
    jobs = options.jobs or default_jobs()
    if jobs < 1:
        raise GraderError("--jobs must be at least 1")
    # Found (or built, from uv's cache when offline) before anything runs; --rescore runs nothing and needs its
    # name only, for the facts cache's keys.
    environment = locate(rubric.environment.requirements, cache_dir)
    settings = RunSettings(
        limits=limits,
        isolated=options.sandbox,
        threads=max(1, default_jobs() // min(jobs, max(1, students))),
        request=rubric.probe_request(),
        environment=environment if options.rescore or options.scheduler else ensure_built(environment),
        dataset=dataset_facts(dataset),
    )
    cache = FactsCache(cache_dir)
    _import_meanwhile("grader.report.render")
    calibration = calibrate(run_reference(options, reference, dataset, settings, cache), rubric)
    zone = lms_zone(options, rubric)
    return Session(options, rubric, reference, dataset, settings, jobs, cache, calibration, roster, d2l_roster, zone)


def build_environment(rubric_path: Path, cache_dir: Path) -> KernelEnvironment:
    """The homework environment of a rubric, built now if it is not yet (`grade --build-env`)."""
    rubric = load_rubric(rubric_path)
    return ensure_built(locate(rubric.environment.requirements, cache_dir))


def run_reference(
    options: Options, reference: Path, dataset: Dataset, settings: RunSettings, cache: FactsCache
) -> Facts:
    """The reference's facts: run alone with every core, and cached like any submission.

    A failure there is not a student's: `calibrate` turns it into a user error that ends the run. Cached facts
    that lack what the rubric reads run it again, as for a student; a reference never run before runs even with
    --rescore (next term's rubric comes with next term's reference: the class is still re-scored from the cache).
    """
    settings = replace(settings, threads=default_jobs())
    guard = StageGuard()
    executor = executor_for(options, dataset, settings, 1, lambda: None, guard)
    only = [Submission("reference", reference)]
    say = Progress(total=1, quiet=options.quiet).say
    (result,) = execute_all(only, dataset, settings, cache, executor, guard, say=say)
    return result.facts


def read_session_adjustments(options: Options, rubric: Rubric, submissions: list[Submission]) -> Adjustments:
    """The instructor's adjustments (`--adjustments`), checked against the students found; none without it."""
    if options.adjustments is None:
        return {}
    return read_adjustments(options.adjustments, [s.student for s in submissions], rubric)


def grade_round(
    session: Session,
    submissions: list[Submission],
    adjustments: Adjustments,
    progress: Progress,
    guard: StageGuard,
    on_cell: SubmissionProgress | None = None,
) -> Round:
    """Every submission's grade, in discovery order (facts from the cache or a run, then scored and adjusted),
    and the near-copies among them. Whatever fails for one student is that student's alone (grader.isolation).
    """
    grades: dict[str, StudentGrade] = {}
    rubric, calibration = session.rubric, session.calibration

    def graded(sub: Submission, facts: Facts) -> StudentGrade:
        def unscored(failure: StageFailure) -> StudentGrade:
            return unscored_grade(sub.student, facts, rubric, failure.message)

        def scored() -> StudentGrade:
            grade = apply_adjustments(
                grade_with_notes(sub, facts, rubric, calibration.context()), adjustments.get(sub.student, [])
            )
            # Last, so that a percentage is of what the student ends up with, adjustments included.
            origin = sub.origin
            lateness = measure_lateness(origin.submitted_at, origin.late, rubric.due, rubric.late.grace_minutes)
            return apply_late_policy(grade, rubric.late, lateness)

        return guard.run(SCORE, sub.student, unscored, scored)

    options, jobs = session.options, session.jobs
    executor = executor_for(options, session.dataset, session.settings, jobs, progress.start_one, guard, on_cell)
    try:
        for result in execute_all(
            submissions,
            session.dataset,
            session.settings,
            session.cache,
            executor,
            guard,
            cached_only=session.options.rescore,
            say=progress.say,
        ):
            grade = grades[result.submission.student] = graded(result.submission, result.facts)
            progress.finish_one(grade, result.seconds, result.cached)
    finally:
        progress.close()
    bases = [session.reference, *([rubric.template] if rubric.template else [])]
    paths = {s.student: s.path for s in submissions}

    # A whole-class step: should it fail (a grader fault), the grades stand and the summary says so.
    def look_for_near_copies() -> list[NearCopy] | None:
        return find_near_copies(paths, bases, rubric.similarity_threshold)

    pairs = guard.run(NEAR_COPIES, "the class", lambda _: None, look_for_near_copies)
    return Round([grades[s.student] for s in submissions], pairs)


def run(options: Options, cache_dir: Path) -> Outcome:
    """Grades every notebook under `options.submissions` and writes the outputs; raises GraderError on misuse."""
    rubric = load_rubric(options.rubric)
    with open_submissions(options.submissions, zone=lms_zone(options, rubric)) as found:  # discover
        # Read before anything runs, so a wrong line costs no execution and leaves no output behind.
        adjustments = read_session_adjustments(options, rubric, found.submissions)
        session = start_session(options, rubric, cache_dir, len(found.submissions))  # provision, calibrate
        progress = Progress(total=len(found.submissions), quiet=options.quiet, verbose=options.verbose)
        guard = StageGuard()
        graded = grade_round(session, found.submissions, adjustments, progress, guard)  # execute, score
        written = write_outputs(graded, session, found, guard)  # report, export
    # Two notebooks for one student, and students left out of d2l.csv: the instructor decides, so they are said.
    warnings = [f"{s.student}: {s.note}" for s in found.submissions if s.note]
    warnings += d2l_warnings(written, session.d2l_roster) if session.d2l_roster else []
    return Outcome(written, session.calibration, options.out, graded.pairs or [], warnings)


def write_outputs(
    graded: Round, session: Session, found: Discovery, guard: StageGuard, changed: set[str] | None = None
) -> list[StudentGrade]:
    """Writes every output; returns the grades as written, marked with any stage that failed for a student.

    Feedback notebooks come first, then the files that show a student's status (Gradescope results,
    reports, grades.json, the CSV files). Should one of those fail for a student, they are all written once
    more with that failure marked, so that every file tells the same story. Only the students in `changed`
    (None: everyone) get their report and feedback notebook rewritten. Each file is written to a temporary
    name and renamed into place, and a Ctrl-C waits for the writing to end, so the outputs are always whole.
    """
    with interrupts_deferred():
        return _write_outputs(graded, session, found, guard, changed)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Holds a Ctrl-C (SIGINT) until the block ends, then raises it: outputs are written whole, never half."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def report_context(session: Session, ignored: tuple[Ignored, ...] = (), near_copies: bool = True) -> ReportContext:
    """What the reports show beside the grades: the run, the data and the calibration on the reference."""
    from grader.report.render import ReportContext

    calibration, rubric = session.calibration, session.rubric
    reference = calibration.reference_facts.kernel
    return ReportContext(
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        grader_version=__version__,
        dataset_description=session.dataset.describe(),
        standin=session.dataset.standin,
        reference_history=reference.history.values if reference.history else None,
        accuracy_threshold=calibration.threshold,
        reference_accuracy=calibration.reference_accuracy,
        similarity_threshold=rubric.similarity_threshold if near_copies else None,
        late_policy=rubric.late.describe(),
        ignored=ignored,
        reference_model=reference.model,
        homework=rubric.title,
    )


def _write_outputs(
    graded: Round, session: Session, found: Discovery, guard: StageGuard, changed: set[str] | None
) -> list[StudentGrade]:
    from grader.report.render import write_reports

    options, grades, pairs = session.options, graded.grades, graded.pairs
    rubric = session.rubric
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    layout = OutputLayout(out)
    stems = file_stems(g.student for g in grades)
    if options.feedback_notebooks:
        layout.feedback_dir.mkdir(exist_ok=True)
        paths = {s.student: s.path for s in found.submissions}
        for grade in grades:
            if changed is not None and grade.student not in changed:
                continue
            dest = layout.feedback_notebook(stems[grade.student])
            guard.run(
                FEEDBACK,
                grade.student,
                lambda _: None,
                write_feedback_notebook,
                grade,
                paths[grade.student],
                dest,
                rubric,
            )
    context = report_context(session, tuple(found.ignored), pairs is not None)
    for _ in range(2):
        failed_before = sum(len(f) for f in guard.failures.values())
        marked = [guard.mark(g) for g in grades]
        write_gradescope(marked, layout, rubric, guard)
        marked = write_reports(marked, out, context, rubric, guard, pairs or [], changed)
        write_grades_json(marked, layout.grades_json, rubric, guard, pairs or [], found.ignored)
        write_grades_csv(marked, layout.grades_csv, rubric, guard)
        write_canvas_csv(marked, layout.canvas_csv, rubric, session.roster, guard=guard)
        if session.d2l_roster is not None:
            write_d2l_csv(marked, layout.d2l_csv, rubric, session.d2l_roster, guard)
        if sum(len(f) for f in guard.failures.values()) == failed_before:
            break
    return [guard.mark(g) for g in grades]
