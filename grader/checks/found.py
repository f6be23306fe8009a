"""Finds the homework's objects by what they are, whatever the notebook called them: its data arrays, and its
test score as the recorded evaluate on the test data returned it.

A notebook that prepares the training images correctly under another name (`X_train`) has prepared them: the
data checks judge that array, and only a check on the names (`data.names`) costs the naming slip. The order of
search: the rubric's name when it holds that split's provisioned data; else an array found under any name that
does (preferring one the notebook passed to fit or evaluate); else the rubric's name whatever it holds, so that
its wrong shape or values can be reported; else nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from grader.assignment import Assignment
from grader.checks.base import Problem
from grader.facts import ArrayFacts, DataOrigin, DatasetFacts, EvaluateCall, Facts, FitCall

ArrayRole = Literal["train_images", "train_labels", "test_images", "test_labels"]
ARRAY_ROLES: tuple[str, ...] = get_args(ArrayRole)
_SPLIT_WORDS = {"train": "training", "test": "test"}
_ROLE_WORDS = {"model": "the model", "score": "the test score"}


def role_words(role: str) -> str:
    """How a message names a role: "the training images", "the test score"."""
    split, _, what = role.partition("_")
    return f"the {_SPLIT_WORDS[split]} {what}" if what else _ROLE_WORDS[role]


@dataclass(frozen=True, slots=True)
class Located:
    """The array the notebook holds for one role, and the name it is bound to."""

    role: str  # one of ARRAY_ROLES
    name: str  # the notebook's name for it; the rubric's name when nothing was found
    expected_name: str  # the rubric's name for the role
    facts: ArrayFacts  # present=False when nothing was found

    @property
    def split(self) -> str:
        return self.role.partition("_")[0]

    @property
    def holds_data(self) -> bool:
        """Whether it holds this split's provisioned images (raw or scaled) or labels (in any form)."""
        return holds(self.facts, self.role)

    def n_samples(self, dataset: DatasetFacts) -> int:
        """How many samples it should have: its own count when it holds a part of the split (a hand-split
        validation set taken off), else the split's."""
        if self.holds_data and self.facts.shape:
            return self.facts.shape[0]
        return self.split_count(dataset)

    def split_count(self, dataset: DatasetFacts) -> int:
        """How many samples the whole provisioned split has."""
        return dataset.n_train if self.split == "train" else dataset.n_test

    def __str__(self) -> str:
        return f"`{self.name}`"

    def not_an_array(self) -> Problem | None:
        """'`x_train` is not defined' (something missing) or '... is a list, not an array' when there is no
        array to judge, else None."""
        if not self.facts.present:
            return Problem(f"{self} is not defined", absent=True)
        if self.facts.shape is None:
            return Problem(f"{self} is a {self.facts.type_name or 'value'}, not an array")
        return None


def holds(array: ArrayFacts, role: str) -> bool:
    """Whether it holds `role`'s provisioned data, sample by sample (all of them in order, or a part)."""
    split, _, what = role.partition("_")
    held = array.held_images if what == "images" else array.held_labels
    return held.startswith(f"{split}_")


def _received(facts: Facts, role: str) -> DataOrigin | None:
    """What the judged fit (training roles) or the last evaluate given the test images (test roles) received for
    `role`, when it holds that role's data by value: the arrays the model really trained and was scored on."""
    split, _, what = role.partition("_")
    calls: Sequence[FitCall | EvaluateCall]
    if split == "train":
        fit = facts.kernel.training_fit()
        calls = [fit] if fit is not None else []
    else:
        calls = [call for call in facts.kernel.evaluate_calls if call.x.held_images.startswith("test_")][-1:]
    origins = [call.x if what == "images" else call.y for call in calls]
    return next((o for o in origins if o.array is not None and holds(o.array, role)), None)


def locate(facts: Facts, assignment: Assignment, role: str) -> Located:
    """The notebook's array for `role` (one of ARRAY_ROLES): what fit or evaluate received, matched by value;
    else the rubric's name when it holds that data; else an array found under any name that does (preferring
    one passed to fit or evaluate); else the rubric's name, whatever it holds."""
    expected = assignment.name(role)
    variable = facts.kernel.variable(expected)
    named = Located(role, expected, expected, variable.array or ArrayFacts(variable.present, variable.type_name))
    received = _received(facts, role)
    if received is not None and received.array is not None:
        # An expression (`x_train[:54000]`) has no name: the rubric's name stands for it.
        name = expected if expected in received.names or not received.names else received.names[0]
        return Located(role, name, expected, received.array)
    if named.holds_data:
        return named
    calls: list[FitCall | EvaluateCall] = [*facts.kernel.fit_calls, *facts.kernel.evaluate_calls]
    passed = {name for call in calls for origin in (call.x, call.y) for name in origin.names}
    found = [entry for entry in facts.kernel.arrays if entry.names and holds(entry.facts, role)]
    found.sort(key=lambda entry: not passed.intersection(entry.names))
    if found:
        return Located(role, found[0].names[0], expected, found[0].facts)
    return named


def evaluation_on_test(facts: Facts, assignment: Assignment) -> EvaluateCall | None:
    """The last recorded evaluate on the test images and labels that returned a result, however the notebook
    stored it (`score = ...`, `loss, acc = ...` or not at all)."""

    def on_test_data(call: EvaluateCall) -> bool:
        # By content; by name only when the data are none of the provisioned ones (the training images renamed
        # `x_test` are not the test images).
        x_ok = call.x.images.startswith("test_") or (
            not call.x.images and assignment.name("test_images") in call.x.names
        )
        y_ok = call.y.labels.startswith("test_") or (
            not call.y.labels and assignment.name("test_labels") in call.y.names
        )
        return x_ok and y_ok and call.result is not None

    return next((call for call in reversed(facts.kernel.evaluate_calls) if on_test_data(call)), None)
