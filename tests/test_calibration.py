"""Calibration on the reference: the accuracy threshold, and a reference that the rubric must give full marks."""

from __future__ import annotations

import pytest
from msgspec import structs

from grader.calibration import calibrate
from grader.errors import GraderError
from grader.reevaluation_facts import Reevaluation
from tests.factories import make_facts, rubric


def test_calibration_sets_the_threshold_below_the_reference() -> None:
    calibration = calibrate(make_facts(), rubric())
    assert calibration.reference_accuracy == pytest.approx(0.9251)
    assert calibration.threshold == pytest.approx(0.9251 - rubric().accuracy_margin)


def test_a_reference_without_full_marks_is_refused() -> None:
    no_layers = make_facts(kernel={"model": structs.replace(make_facts().kernel.model, layers=[])})
    with pytest.raises(GraderError, match=r"scores .*/100, not full marks") as raised:
        calibrate(no_layers, rubric())
    assert "build." in str(raised.value)


def test_a_reference_without_a_model_is_refused() -> None:
    broken = make_facts(
        reevaluation=Reevaluation(ok=False, message="no `model` variable was left at the end of the notebook"),
        execution={"status": "kernel_died", "message": "the kernel died while running cell 4"},
    )
    with pytest.raises(GraderError, match="produced no model to calibrate on: the kernel died"):
        calibrate(broken, rubric())
