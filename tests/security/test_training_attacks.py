"""Training judged as it happened, through the real CLI in one batch: attacks on what a fit trained on, on the
history and on the compile settings earn no Train points, and honest patterns beside them keep their points
with no flag."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from grader.sandbox.host import bwrap_path
from tests.security import make_training_notebooks
from tests.security.conftest import SecurityEnv, grade_batch

pytestmark = [
    pytest.mark.security,
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap (bwrap) is not installed"),
]


@dataclass(frozen=True)
class Graded:
    grades: dict[str, dict[str, Any]]

    def points(self, name: str) -> dict[str, float]:
        return {section: data["points"] for section, data in self.grades[name]["sections"].items()}

    def check(self, name: str, section: str, check_id: str) -> dict[str, Any]:
        return next(c for c in self.grades[name]["sections"][section]["checks"] if c["id"] == check_id)

    def flags(self, name: str) -> list[str]:
        return list(self.grades[name]["integrity"])


@pytest.fixture(scope="module")
def graded(training_env: SecurityEnv, tmp_path_factory: pytest.TempPathFactory) -> Graded:
    root = tmp_path_factory.mktemp("training")
    submissions = shutil.copytree(make_training_notebooks.FOLDER, root / "submissions")
    return Graded(grade_batch(training_env, submissions, root / "reports"))


@pytest.mark.parametrize(
    ("name", "flag"),
    [
        ("attack_earlier_fit_on_test", "fit call 1 was given test images (x_test) to train on"),
        ("attack_test_named_x_train", "was given test images (x_train) to train on"),
        ("attack_gradient_tape_on_test", "the model's weights were already trained when fit began"),
        ("attack_padded_history", "the history holds 20 epochs, but the fit that returned it ran 1"),
    ],
)
def test_training_that_did_not_happen_as_claimed_earns_no_train_points(graded: Graded, name: str, flag: str) -> None:
    assert graded.points(name)["train"] == 0
    assert any(flag in found for found in graded.flags(name)), graded.flags(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [("attack_rate_changed_after", "During training the learning rate was 0.3"), ("attack_recompiled_after", "adam")],
)
def test_the_optimizer_judged_is_the_one_in_effect_during_training(graded: Graded, name: str, message: str) -> None:
    optimizer = graded.check(name, "train", "optimizer")
    assert optimizer["points"] == 0 and message in optimizer["message"]


def test_a_fit_that_raised_earns_no_fit_argument_points(graded: Graded) -> None:
    fit_call = graded.check("mistake_fit_raised", "train", "fit_call")
    assert fit_call["points"] == 0 and "raised ValueError" in fit_call["message"]


def test_two_fits_in_a_row_are_noticed_by_the_epochs_checks_without_a_flag(graded: Graded) -> None:
    name = "mistake_two_fits_in_a_row"
    assert "40 epochs over 2 fits" in graded.check(name, "train", "history")["message"]
    assert "40 epochs in all (20 + 20)" in graded.check(name, "train", "fit_call")["message"]
    assert not graded.flags(name)


@pytest.mark.parametrize("name", ["honest_reference", "honest_halves", "honest_trial_then_rebuilt"])
def test_honest_training_keeps_full_marks(graded: Graded, name: str) -> None:
    assert graded.grades[name]["total"] == 100 and not graded.flags(name), graded.grades[name]


@pytest.mark.parametrize("name", ["honest_early_stopping", "honest_dataset", "honest_hand_split"])
def test_honest_training_the_rubric_does_not_ask_for_is_never_flagged(graded: Graded, name: str) -> None:
    """EarlyStopping restoring the best weights, a tf.data.Dataset, a validation set split off by hand: what the
    rubric asks for differently costs its own checks' points, never a flag; the data prepared earns Prepare."""
    assert not graded.flags(name), graded.flags(name)
    points = graded.points(name)
    assert points["prepare"] == 10 and points["build"] == 50 and points["evaluate"] == 10, graded.grades[name]


def test_a_custom_constraint_is_never_flagged(graded: Graded) -> None:
    """Training with a constraint of the notebook's own is recorded like any other (whether its saved model can
    be re-evaluated is the re-evaluation's business)."""
    assert not graded.flags("honest_custom_constraint")


def test_an_accuracy_far_above_the_reference_is_noted_for_review_only(graded: Graded) -> None:
    """The GradientTape attack also reaches an accuracy the assignment's settings never do: a note for a person;
    honest notebooks get none."""
    assert any("far above the reference's" in note for note in graded.grades["attack_gradient_tape_on_test"]["review"])
    assert not [name for name, grade in graded.grades.items() if name.startswith("honest_") and grade["review"]]


def test_committed_notebooks_match_the_generator(tmp_path: Path) -> None:
    make_training_notebooks.write_all(tmp_path)
    expected = {p.name: p.read_bytes() for p in tmp_path.glob("*.ipynb")}
    committed = {p.name: p.read_bytes() for p in make_training_notebooks.FOLDER.glob("*.ipynb")}
    assert committed == expected, "run `python tests/security/make_training_notebooks.py`"
