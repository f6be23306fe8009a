"""Figure checks over hand-made facts: the panels' images and their titles."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from msgspec.structs import replace

from grader.checks import KINDS, Context
from grader.checks.figures import Titles
from grader.facts import Facts, VariableFacts
from tests.factories import (
    INDICES,
    check,
    make_facts,
    make_grade,
    points,
    rubric,
)


def test_wrong_titles_earn_partial_credit() -> None:
    facts = make_facts()
    figure = facts.kernel.figures[0]
    panels = [replace(p, title=f"[0. 1. {i}]") if i < 3 else p for i, p in enumerate(figure.panels)]
    facts = make_facts(kernel={"figures": [replace(figure, panels=panels)]})
    verdict = check(make_grade(facts=facts), "titles")
    assert verdict.points == pytest.approx(3 * 6 / 9, abs=0.01)
    assert "one-hot" in verdict.message


def test_panels_of_other_images_do_not_count() -> None:
    """The panels show training images, but not the ones the notebook's `indices` picked."""
    shifted = VariableFacts(True, "ndarray", value=[i + 1 for i in INDICES])
    facts = make_facts(variables={"indices": shifted})
    assert check(make_grade(facts=facts), "pixels").points == 0


def titled(form: Callable[[int], str]) -> Facts:
    figure = make_facts().kernel.figures[0]
    panels = [replace(p, title=form(p.true_label or 0)) for p in figure.panels]
    return make_facts(kernel={"figures": [replace(figure, panels=panels)]})


@pytest.mark.parametrize(
    ("form", "passed"),
    [
        (str, True),
        (lambda label: f"Class {label}", True),
        (lambda label: f"label: {label}", True),
        (lambda label: f"Label = {label}", True),
        (lambda label: f"Digit {label} (index 4711)", True),
        (lambda label: str([float(i == label) for i in range(10)]), False),  # a one-hot vector
        (lambda label: f"Class {(label + 1) % 10}", False),  # a wrong label
        (lambda label: f"{label} or {(label + 1) % 10}", False),  # not one label
        (lambda label: f"{label}.0", False),
    ],
)
def test_a_title_states_the_label_with_or_without_words(form: Callable[[int], str], passed: bool) -> None:
    assert check(make_grade(facts=titled(form)), "titles").passed is passed


def test_extra_words_earn_the_share_the_rubric_gives() -> None:
    ctx = Context(0.89, 0.92, rubric().assignment)
    run = KINDS["figures.titles"].run
    wordy = run(titled(lambda label: f"Class {label}"), Titles(count=9, extra_words=0.5), ctx)
    assert not wordy.passed and wordy.earned == 0.5 and "9 with extra words, worth 0.5 each" in wordy.message
    assert run(titled(str), Titles(count=9, extra_words=0.5), ctx).passed
    onehot = run(titled(lambda label: f"[0. 1. {label}.]"), Titles(count=9), ctx)
    assert onehot.earned == 0 and "one-hot vector" in onehot.message


def test_panels_picked_by_another_variable_are_training_images() -> None:
    """No `indices` variable: the panels are judged by their pixels, and only the indices check fails."""
    grade = make_grade(facts=make_facts(variables={"indices": None}))
    assert check(grade, "pixels").passed and not check(grade, "indices").passed
    assert points(grade, "visualize") == 8
