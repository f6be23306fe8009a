"""The loaded rubric as frozen values that every stage receives: the homework, its sections and their checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from grader.assignment import Assignment
from grader.checks import KINDS, Params
from grader.errors import GraderError
from grader.execution.settings import RunLimits
from grader.facts import ProbeRequest
from grader.kernel_env import DEFAULT_REQUIREMENTS

# Two submissions are flagged as near-copies when this share of the smaller one's own code is shared.
DEFAULT_SIMILARITY_THRESHOLD = 0.7
# How many notebooks `grade serve` accepts from one student in an hour, unless the rubric's `service:` says.
DEFAULT_SUBMISSIONS_PER_HOUR = 10
# grades.csv's columns beside the sections' (before them, then after): no section may take one of these names.
GRADEBOOK_COLUMNS = (("student", "name"), ("bonus", "late", "late_penalty", "total", "status", "message"))


class RubricError(GraderError):
    """The rubric file is invalid; the message names the file, the key and, where known, the line."""


@dataclass(frozen=True, slots=True)
class CheckSpec:
    id: str
    title: str
    points: float
    kind: str = ""
    params: Params = field(default_factory=Params)
    hint: str = ""
    hidden: bool = False  # `visibility: hidden`: before `due`, a student sees the check and its points, no verdict


@dataclass(frozen=True, slots=True)
class SectionSpec:
    id: str
    title: str
    points: float
    checks: tuple[CheckSpec, ...]
    keywords: tuple[str, ...] = ()  # code words that mark the section's cells in a notebook
    integrity: tuple[str, ...] = ()  # integrity kinds whose evidence zeroes this section


@dataclass(frozen=True, slots=True)
class LatePolicy:
    """What a late submission costs: fixed points, a percentage of the points it earned, or a percentage per
    started day late (at most one of the three; all 0: nothing). `grace_minutes` past the due date still count
    as on time; after `max_days` days late (per-day policy only) a submission earns 0."""

    points: float = 0.0
    percent: float = 0.0
    percent_per_day: float = 0.0
    grace_minutes: float = 0.0
    max_days: int | None = None

    def describe(self) -> str:
        grace = f", after {self.grace_minutes:g} minutes' grace" if self.grace_minutes else ""
        if self.points:
            return f"{self.points:g} points off a late submission{grace}"
        if self.percent:
            return f"{self.percent:g}% of the points earned off a late submission{grace}"
        if self.percent_per_day:
            cap = f"; more than {self.max_days} days late earns 0" if self.max_days is not None else ""
            return f"{self.percent_per_day:g}% of the points earned off per started day late{grace}{cap}"
        return "no penalty for a late submission"


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """What `grade serve` allows each student (`service:` in the rubric)."""

    submissions_per_hour: int = DEFAULT_SUBMISSIONS_PER_HOUR


@dataclass(frozen=True, slots=True)
class Environment:
    """The packages the homework's kernel has (`environment.requirements`, pip's requirement syntax)."""

    requirements: tuple[str, ...] = DEFAULT_REQUIREMENTS


@dataclass(frozen=True, slots=True)
class Rubric:
    title: str  # the homework's name, in page titles and as the Canvas gradebook column
    path: Path
    reference: Path
    limits: RunLimits
    sections: tuple[SectionSpec, ...]
    assignment: Assignment = field(default_factory=Assignment)
    template: Path | None = None  # the notebook handed to students; its lines are nobody's own code
    similarity_threshold: float = DEFAULT_SIMILARITY_THRESHOLD
    late: LatePolicy = LatePolicy()
    due: datetime | None = None  # the due date, time-zone aware; lateness is measured against it (grader.lateness)
    dataset: Path | None = None  # the file served to notebooks, when the rubric names one
    custom_checks: Path | None = None
    environment: Environment = Environment()
    service: ServiceSettings = ServiceSettings()

    @property
    def max_total(self) -> float:
        return sum(s.points for s in self.sections)

    @property
    def accuracy_margin(self) -> float:
        return self.assignment.accuracy_margin

    def probe_request(self) -> ProbeRequest:
        """What every run must record for this rubric to be scored."""
        names = {
            name
            for section in self.sections
            for check in section.checks
            for name in KINDS[check.kind].variables(check.params, self.assignment)
        }
        return self.assignment.probe_request(names)
