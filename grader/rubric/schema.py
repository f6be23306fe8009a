"""The rubric file's structure as pydantic models: what each key may hold, checked before anything is built."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from grader.assignment import Assignment, Identifier, Spec
from grader.execution.settings import RunLimits
from grader.kernel_env import normalize_requirements
from grader.rubric.model import DEFAULT_SIMILARITY_THRESHOLD, DEFAULT_SUBMISSIONS_PER_HOUR

Visibility = Literal["visible", "hidden"]  # whether a student sees a check's verdict before the due date


class CheckEntry(Spec):
    """The keys of a check entry that are the rubric's; the others are the check kind's parameters."""

    kind: str
    points: float = Field(ge=0)
    title: str
    hint: str = ""
    visibility: Visibility = "visible"


class SectionEntry(Spec):
    title: str | None = None
    visibility: Visibility = "visible"
    points: float = Field(ge=0)
    keywords: list[str] = []
    integrity: list[str] = []
    checks: dict[Identifier, dict[str, Any]]

    @model_validator(mode="after")
    def _points_add_up(self) -> SectionEntry:
        given = [entry.get("points") for entry in self.checks.values()]
        points = [p for p in given if isinstance(p, int | float) and not isinstance(p, bool)]
        if len(points) < len(given):
            return self  # the check whose points are not a number is reported on its own line
        total = sum(points)
        if abs(total - self.points) > 1e-9:
            raise ValueError(f"check points add up to {total:g}, but the section is worth {self.points:g}")
        return self


class LateEntry(Spec):
    penalty_points: float | None = Field(None, ge=0)
    penalty_percent: float | None = Field(None, ge=0, le=100)
    penalty_percent_per_day: float | None = Field(None, ge=0, le=100, description="per started day late")
    grace_minutes: float = Field(0, ge=0, description="minutes past `due` that still count as on time")
    max_days: int | None = Field(None, ge=0, description="days late after which a submission earns 0")

    @model_validator(mode="after")
    def _one(self) -> LateEntry:
        kinds = ("penalty_points", "penalty_percent", "penalty_percent_per_day")
        given = [k for k in kinds if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of {', '.join(kinds)}, not {' and '.join(given)}")
        if self.max_days is not None and self.penalty_percent_per_day is None:
            raise ValueError("max_days needs penalty_percent_per_day")
        return self


class ServiceEntry(Spec):
    submissions_per_hour: int = Field(DEFAULT_SUBMISSIONS_PER_HOUR, ge=1)


class EnvironmentEntry(Spec):
    requirements: list[str]

    @field_validator("requirements")
    @classmethod
    def _requirements(cls, requirements: list[str]) -> list[str]:
        normalize_requirements(requirements)  # its ValueError says what to change
        return requirements


class RubricFile(Spec):
    """The rubric file's own keys; the assignment's keys (`ASSIGNMENT_KEYS`) sit beside them at the top level."""

    title: str | None = Field(None, description="the homework's name; default: the rubric's folder name")
    reference: str = "reference/solution.ipynb"
    template: str | None = None
    custom_checks: str | None = Field(None, description="a Python file beside the rubric that adds check kinds")
    similarity_threshold: float = Field(DEFAULT_SIMILARITY_THRESHOLD, gt=0, le=1)
    limits: RunLimits = RunLimits()
    late: LateEntry = LateEntry()
    due: datetime | None = Field(None, description="the due date: an ISO date-time with its time zone")
    environment: EnvironmentEntry | None = None
    service: ServiceEntry = ServiceEntry()
    sections: dict[Identifier, SectionEntry] = Field(min_length=1)

    @field_validator("due")
    @classmethod
    def _aware(cls, due: datetime | None) -> datetime | None:
        if due is not None and due.utcoffset() is None:
            raise ValueError(f"{due.isoformat()} has no time zone: add its UTC offset, e.g. {due.isoformat()}-06:00")
        return due

    @model_validator(mode="after")
    def _limits_positive(self) -> RubricFile:
        for name, value in asdict(self.limits).items():
            if value < 1:
                raise ValueError(f"limits.{name} must be at least 1, found {value:g}")
        return self


# Keys of a check entry that are the rubric's, not the check kind's parameters.
ENTRY_KEYS = tuple(CheckEntry.model_fields)
# Top-level keys that describe the assignment (validated by `grader.assignment.Assignment`).
ASSIGNMENT_KEYS = tuple(Assignment.model_fields)
