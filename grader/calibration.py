"""Calibration on the reference solution: the accuracy threshold, and proof that the rubric gives it full marks."""

from __future__ import annotations

from dataclasses import dataclass

from grader.assignment import Assignment
from grader.checks import Context
from grader.errors import GraderError
from grader.facts import Facts
from grader.rubric.model import Rubric
from grader.score import score_facts


@dataclass(frozen=True, slots=True)
class Calibration:
    """The reference's accuracy, the threshold derived from it, the reference's facts (shown in reports), and
    the assignment the checks compare facts with."""

    reference_accuracy: float
    threshold: float
    reference_facts: Facts
    assignment: Assignment

    def context(self) -> Context:
        return Context(
            accuracy_threshold=self.threshold, reference_accuracy=self.reference_accuracy, assignment=self.assignment
        )


def calibrate(reference: Facts, rubric: Rubric) -> Calibration:
    """Derives the accuracy threshold from the reference run, and insists the reference scores full marks."""
    accuracy = reference.reevaluation.accuracy
    if not reference.reevaluation.ok or accuracy is None:
        raise GraderError(
            f"the reference notebook {rubric.reference} produced no model to calibrate on: "
            f"{reference.execution.message or reference.reevaluation.message}"
        )
    calibration = Calibration(accuracy, accuracy - rubric.accuracy_margin, reference, rubric.assignment)
    grade = score_facts("reference", reference, rubric, calibration.context())
    if grade.total < rubric.max_total:
        failed = [f"{s.id}.{c.id}: {c.message}" for s in grade.sections for c in s.checks if not c.passed]
        raise GraderError(
            f"the reference notebook {rubric.reference} scores {grade.total:g}/{rubric.max_total:g}, not full marks; "
            "fix the rubric or the reference first. Failed: " + " | ".join(failed[:3])
        )
    return calibration
