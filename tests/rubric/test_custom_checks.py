"""An instructor's own check kinds, loaded from the file the rubric names: they score from facts like the
built-in kinds, a failing one costs its own points only, and a file that fails to load is one line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.checks import KINDS
from grader.rubric.load import load_rubric
from grader.rubric.model import RubricError
from grader.score import score_facts
from tests.factories import CONTEXT, make_facts
from tests.rubric.edits import RUBRIC, write

CUSTOM = '''
"""The instructor's own check: the validation loss went down."""

from pydantic import Field

from grader.checks import Params, check_kind, fail, ok


class Improves(Params):
    by: float = Field(0.0, ge=0)


@check_kind("custom.history_improves", Improves)
def history_improves(facts, params, ctx):
    """The validation loss went down by more than `by` during training."""
    history = facts.kernel.history
    losses = history.values.get("val_loss", []) if history else []
    if len(losses) < 2:
        return fail("No validation loss to compare.")
    if losses[0] - losses[-1] > params.by:
        return ok(f"The validation loss went from {losses[0]:.3f} to {losses[-1]:.3f}.")
    return fail(f"The validation loss went from {losses[0]:.3f} to {losses[-1]:.3f}.")
'''

EXTRA_SECTION = """  extra:
    title: Beyond the assignment
    points: 5
    checks:
      improves: {kind: custom.history_improves, by: 0.1, points: 5, title: "The validation loss went down"}
"""


@pytest.fixture
def own_kinds() -> Iterator[None]:
    """Forgets the kinds a test's custom file registered."""
    before = set(KINDS)
    yield
    for name in set(KINDS) - before:
        del KINDS[name]


def test_a_custom_check_file_adds_kinds_that_score_from_facts(tmp_path: Path, own_kinds: None) -> None:
    write(tmp_path, CUSTOM, "extra_checks.py")
    text = RUBRIC.replace("similarity_threshold: 0.7", "similarity_threshold: 0.7\ncustom_checks: extra_checks.py")
    rubric = load_rubric(write(tmp_path, text + EXTRA_SECTION))
    assert rubric.custom_checks == (tmp_path / "extra_checks.py").resolve()
    grade = score_facts("ada", make_facts(), rubric, CONTEXT)
    extra = next(s for s in grade.sections if s.id == "extra")
    assert extra.points == 5 and grade.total == 105
    assert extra.checks[0].message.startswith("The validation loss went from")
    flat = {"val_loss": [0.5, 0.45]}
    history = make_facts().kernel.history
    assert history is not None
    stalled = make_facts(kernel={"history": type(history)(2, ["val_loss"], flat, True)})
    assert next(s for s in score_facts("ada", stalled, rubric, CONTEXT).sections if s.id == "extra").points == 0


BROKEN_CHECKS = '''
from grader.checks import check_kind


@check_kind("custom.raises")
def raises(facts, params, ctx):
    """Raises for the second student."""
    if facts.kernel.history is None:
        raise ValueError("boom")
    from grader.checks import ok
    return ok("fine")


@check_kind("custom.not_a_verdict")
def not_a_verdict(facts, params, ctx):
    """Returns a bool."""
    return True
'''


def test_a_check_that_fails_costs_that_check_only_and_says_where(tmp_path: Path, own_kinds: None) -> None:
    write(tmp_path, BROKEN_CHECKS, "broken.py")
    extra = """  extra:
    points: 2
    checks:
      one: {kind: custom.raises, points: 1, title: "raises"}
      two: {kind: custom.not_a_verdict, points: 1, title: "bool"}
"""
    text = RUBRIC.replace("similarity_threshold: 0.7", "similarity_threshold: 0.7\ncustom_checks: broken.py")
    rubric = load_rubric(write(tmp_path, text + extra))
    fine = score_facts("ada", make_facts(), rubric, CONTEXT)
    assert fine.status == "error" and fine.total == 101
    assert "extra.two" in fine.message and "returned bool, not a verdict" in fine.message
    broken = score_facts("bo", make_facts(kernel={"history": None}), rubric, CONTEXT)
    one = next(c for s in broken.sections for c in s.checks if c.id == "one")
    assert one.points == 0 and "custom.raises" in one.message and "ValueError: boom" in one.message
    assert "broken.py" in one.message and broken.status == "error"
    assert broken.sections[0].points == 10  # the other checks are scored as usual


def test_a_custom_check_file_that_fails_to_import_is_one_line(tmp_path: Path, own_kinds: None) -> None:
    write(tmp_path, "import no_such_module_for_the_grader\n", "broken.py")
    text = RUBRIC.replace("similarity_threshold: 0.7", "similarity_threshold: 0.7\ncustom_checks: broken.py")
    path = write(tmp_path, text)
    with pytest.raises(RubricError) as error:
        load_rubric(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "custom_checks (line " in message
    assert "broken.py failed to load: ModuleNotFoundError" in message


def test_a_missing_custom_check_file_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path, RUBRIC.replace("similarity_threshold: 0.7", "similarity_threshold: 0.7\ncustom_checks: x.py")
    )
    with pytest.raises(RubricError, match="custom_checks .*file not found"):
        load_rubric(path)
