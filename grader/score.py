"""Applies the rubric to facts, giving a grade: a pure function, so a rubric edit re-scores without a kernel."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace

from grader.checks import INTEGRITY, KINDS, REVIEW, Context, Verdict, clean
from grader.discover import Origin, Submission
from grader.facts import Facts
from grader.lateness import Lateness
from grader.rubric.model import CheckSpec, Rubric, SectionSpec
from grader.statuses import NEVER_RAN, GradeStatus


@dataclass(frozen=True, slots=True)
class Adjusted:
    """An instructor's correction of one check: the points the grader gave, and why they were changed."""

    from_points: float
    comment: str


@dataclass(frozen=True, slots=True)
class Bonus:
    """Points an instructor added to (or, negative, took from) a student's total, and why."""

    points: float
    comment: str


@dataclass(frozen=True, slots=True)
class CheckResult:
    id: str
    title: str
    points: float
    max: float
    passed: bool
    message: str
    adjusted: Adjusted | None = None  # set when an instructor changed the points by hand
    hidden: bool = False  # withheld from the student until the due date (grader.visibility): points and message


@dataclass(frozen=True, slots=True)
class SectionResult:
    id: str
    title: str
    points: float
    max: float
    checks: tuple[CheckResult, ...]
    integrity: tuple[str, ...]  # evidence of a faked result; non-empty means the section scored zero


@dataclass(frozen=True, slots=True)
class StudentGrade:
    student: str
    status: GradeStatus
    message: str
    total: float
    max_total: float
    sections: tuple[SectionResult, ...]
    facts: Facts
    bonus: tuple[Bonus, ...] = ()
    origin: Origin = field(default_factory=Origin)  # the LMS's name for the student, late or not, ...
    late_penalty: float = 0.0  # already taken off `total` (see grader.late)
    lateness: Lateness = Lateness()  # when it came in and how late (see grader.lateness)
    review: tuple[str, ...] = ()  # findings worth a person's look that changed no points

    @property
    def integrity_flags(self) -> list[str]:
        return [f"{s.title}: {e}" for s in self.sections for e in s.integrity]

    @property
    def adjusted(self) -> bool:
        """Whether an instructor changed this grade by hand (a check's points or a bonus)."""
        return bool(self.bonus) or any(c.adjusted for s in self.sections for c in s.checks)

    @property
    def display_name(self) -> str:
        """The student's name where the LMS gave one, else their id."""
        return self.origin.name or self.student


def round_points(points: float) -> float:
    return round(points + 1e-12, 2)


def number(value: float) -> int | float:
    """A point value as JSON/CSV shows it best: 10 rather than 10.0, 7.5 as is."""
    return int(value) if float(value).is_integer() else round(value, 2)


def score_facts(student: str, facts: Facts, rubric: Rubric, ctx: Context) -> StudentGrade:
    """The grade of one student's facts under `rubric`: each check's kind run on its parameters, and each
    section's integrity kinds, whose evidence zeroes the section."""
    ctx = replace(ctx, assignment=rubric.assignment)  # the checks read the assignment of the rubric they score
    sections = []
    failed_checks: list[str] = []
    for spec in rubric.sections:
        checks = []
        for check in spec.checks:
            verdict = _run_check(check, facts, ctx)
            if isinstance(verdict, str):  # the check itself failed: the grader's fault, or the rubric's
                failed_checks.append(f"{spec.id}.{check.id}: {verdict}")
                checks.append(CheckResult(check.id, check.title, 0.0, check.points, False, f"Not scored: {verdict}"))
                continue
            message = verdict.message
            if not verdict.passed and check.hint:
                message = f"{message} {check.hint}"
            checks.append(
                CheckResult(
                    check.id,
                    check.title,
                    round_points(check.points * verdict.earned),
                    check.points,
                    verdict.passed,
                    message,
                )
            )
        evidence = tuple(clean(found) for kind in spec.integrity for found in INTEGRITY[kind](facts, ctx))
        if evidence:
            note = "Suspected integrity issue: this section earns zero. "
            checks = [
                CheckResult(c.id, c.title, 0.0, c.max, False, note + c.message if c.passed else c.message)
                for c in checks
            ]
        points = round_points(sum(c.points for c in checks))
        sections.append(SectionResult(spec.id, spec.title, points, spec.points, tuple(checks), evidence))
    # "error" only when the notebook could not be run at all; a crash inside it still earns what it earned.
    never_ran = facts.execution.status in NEVER_RAN
    unscored = "; ".join(f"the check {failed} could not be scored" for failed in failed_checks)
    return StudentGrade(
        student=student,
        status="error" if never_ran or failed_checks else "graded",
        message=" ".join(filter(None, (facts.execution.message, unscored))),
        total=round_points(sum(s.points for s in sections)),
        max_total=rubric.max_total,
        sections=tuple(sections),
        facts=facts,
        review=tuple(clean(note) for find in REVIEW.values() for note in find(facts, ctx)),
    )


def _run_check(check: CheckSpec, facts: Facts, ctx: Context) -> Verdict | str:
    """The check's verdict; or, when its kind raises or returns something else than a verdict (a bug in a custom
    check file, say), what went wrong and where: that check alone is not scored, and the grade says so."""
    kind = KINDS[check.kind]

    def where() -> str:  # looked up only for a failure: scoring a class runs every check of every student
        return f"{check.kind} ({inspect.getsourcefile(kind.run) or kind.run.__module__})"

    try:
        verdict = kind.run(facts, check.params, ctx)
    except Exception as exc:
        return clean(f"{where()} raised {type(exc).__name__}: {exc}")[:500]
    if not isinstance(verdict, Verdict):
        return f"{where()} returned {type(verdict).__name__}, not a verdict (return ok(...) or fail(...))"
    return verdict


def grade_with_notes(sub: Submission, facts: Facts, rubric: Rubric, ctx: Context) -> StudentGrade:
    """The submission's grade, with where it came from and its discovery note."""
    grade = replace(score_facts(sub.student, facts, rubric, ctx), origin=sub.origin)
    if sub.note:
        grade = replace(grade, message=(sub.note + " " + grade.message).strip())
    return grade


def unscored_section(spec: SectionSpec) -> SectionResult:
    """A section of the rubric with every check listed, none earned."""
    checks = tuple(CheckResult(c.id, c.title, 0.0, c.points, False, "Not scored.") for c in spec.checks)
    return SectionResult(spec.id, spec.title, 0.0, spec.points, checks, ())


def unscored_grade(student: str, facts: Facts, rubric: Rubric, message: str) -> StudentGrade:
    """The grade of a student whose scoring failed: every check of the rubric listed, none earned."""
    sections = tuple(unscored_section(spec) for spec in rubric.sections)
    return StudentGrade(student, "error", message, 0.0, rubric.max_total, sections, facts)


def rubric_sections(grade: StudentGrade, rubric: Rubric) -> tuple[SectionResult, ...]:
    """The grade's result of each section of `rubric`, in the rubric's order: what every output lists.

    A section the grade lacks (it was scored under another rubric) is listed as not scored.
    """
    results = {section.id: section for section in grade.sections}
    return tuple(results.get(spec.id) or unscored_section(spec) for spec in rubric.sections)
