"""The saved model's re-evaluation, graded through the real CLI on notebooks of `evaluation_notebooks`, in one
batch with the reference: no honest way of computing a test score is taken for faking, a score on arrays
that are not the test set is not vouched for, and a model the grader cannot re-load is not verified."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

import pytest

from grader.sandbox.host import bwrap_path
from tests.security import evaluation_notebooks
from tests.security.conftest import REFERENCE, SecurityEnv, grade_batch

pytestmark = [
    pytest.mark.security,
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap (bwrap) is not installed"),
]


@dataclass(frozen=True)
class Graded:
    grades: dict[str, dict[str, Any]]

    def check(self, student: str, check_id: str, section: str) -> dict[str, Any]:
        checks = self.grades[student]["sections"][section]["checks"]
        return next(c for c in checks if c["id"] == check_id)


@pytest.fixture(scope="module")
def graded(training_env: SecurityEnv, tmp_path_factory: pytest.TempPathFactory) -> Graded:
    root = tmp_path_factory.mktemp("evaluation")
    evaluation_notebooks.write(root / "submissions")
    shutil.copyfile(REFERENCE, root / "submissions" / "reference.ipynb")
    return Graded(grade_batch(training_env, root / "submissions", root / "reports"))


def test_the_reference_keeps_full_marks(graded: Graded) -> None:
    assert graded.grades["reference"]["total"] == 100, graded.grades["reference"]


@pytest.mark.parametrize("student", sorted(evaluation_notebooks.HONEST))
def test_no_honest_notebook_is_flagged(graded: Graded, student: str) -> None:
    assert graded.grades[student]["status"] == "graded"
    assert graded.grades[student]["integrity"] == []


@pytest.mark.parametrize(
    "student",
    sorted(set(evaluation_notebooks.HONEST) - {"honest_tf_data"}),  # evaluate on a Dataset: no arrays to name
)
def test_an_honest_test_score_matches_the_graders_own_evaluate(graded: Graded, student: str) -> None:
    matches = graded.check(student, "matches", "evaluate")
    assert matches["passed"], matches["message"]


def test_a_model_built_from_keras_own_classes_is_verified(graded: Graded) -> None:
    for check_id in ("history", "trained"):
        verdict = graded.check("honest_loadable_constraint", check_id, "train")
        assert verdict["passed"], verdict["message"]


def test_test_arrays_swapped_for_what_the_model_gets_right_are_not_vouched_for(graded: Graded) -> None:
    """evaluate on the images the model classifies correctly reports accuracy 1.0; the test set does not."""
    matches = graded.check("forge_swapped_test_set", "matches", "evaluate")
    assert not matches["passed"] and "not on the test set" in matches["message"], matches["message"]
    assert graded.grades["forge_swapped_test_set"]["sections"]["evaluate"]["points"] <= 7


def test_a_model_that_cannot_be_re_loaded_is_not_verified(graded: Graded) -> None:
    """One epoch, a padded history and weights trained on the test set, behind a constraint of the notebook's
    own: every check that needs the saved model fails, saying why and how a model is made loadable."""
    grade = graded.grades["forge_unloadable_model"]
    for section, check_id in (("train", "trained"), ("evaluate", "matches")):
        verdict = graded.check("forge_unloadable_model", check_id, section)
        assert not verdict["passed"] and "Not verified" in verdict["message"], verdict["message"]
        assert "`KeepAll`" in verdict["message"] and "Keras's own classes" in verdict["message"]
    # The padded history is caught by what the probe saw of the fit itself, before anything needs the saved model.
    history = graded.check("forge_unloadable_model", "history", "train")
    assert not history["passed"] and "the fit that returned it ran 1" in history["message"], history["message"]
    assert not graded.check("forge_unloadable_model", "accuracy", "evaluate")["passed"]
    assert grade["total"] <= 88
