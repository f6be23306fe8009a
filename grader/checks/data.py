"""Checks of the data the notebook prepared and of the values it left in its namespace: array shapes, pixel
types and scaling, one-hot labels, printed lines, named values, and the names themselves."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import Field, model_validator

from grader.assignment import ROLES, Assignment, Identifier, Role
from grader.checks.base import (
    Context,
    Params,
    Problem,
    Verdict,
    check_kind,
    fail,
    failure,
    ok,
    same_value,
    shape_text,
    value_text,
)
from grader.checks.found import ARRAY_ROLES, ArrayRole, Located, evaluation_on_test, locate, role_words
from grader.facts import FIRST_LABELS, Facts
from grader.keras_facts import Value

# The Keras call that loads the provisioned arrays: a cell mentioning it that failed explains missing data.
_LOADER = "load_data"


def _arrays(facts: Facts, ctx: Context, what: str) -> list[Located]:
    """The notebook's training and test arrays of one kind ("images" or "labels")."""
    return [locate(facts, ctx.assignment, role) for role in ARRAY_ROLES if role.endswith(what)]


def _cells(*arrays: Located) -> tuple[str, ...]:
    """Words that mark the cells which should have defined `arrays`."""
    return (*(array.expected_name for array in arrays), _LOADER)


class ImagesShape(Params):
    # One image's shape; by default the model's input shape, else the provisioned image's.
    sample_shape: list[int] | None = None


@check_kind("data.images_shape", ImagesShape)
def images_shape(facts: Facts, params: ImagesShape, ctx: Context) -> Verdict:
    """The training and test images have shape (N, *sample shape)."""
    sample = params.sample_shape or ctx.assignment.model.input_shape or facts.dataset.image_shape
    problems = []
    found = _arrays(facts, ctx, "images")
    for array in found:
        expected = [array.n_samples(facts.dataset), *sample]
        if problem := array.not_an_array():
            problems.append(problem)
        elif array.facts.shape != expected:
            shape = array.facts.shape
            hint = " (add the channel axis with np.expand_dims(x, -1))" if [*(shape or []), 1] == expected else ""
            problems.append(Problem(f"{array} has shape {shape_text(shape)}, expected {shape_text(expected)}{hint}"))
    if problems:
        return failure(facts, problems, *_cells(*found))
    return ok(" and ".join(f"{array} {shape_text(array.facts.shape)}" for array in found) + ".")


@check_kind("data.images_float")
def images_float(facts: Facts, params: Params, ctx: Context) -> Verdict:
    """The pixels are floating point."""
    problems = []
    found = _arrays(facts, ctx, "images")
    for array in found:
        if problem := array.not_an_array():
            problems.append(problem)
        elif not array.facts.dtype.startswith("float"):
            problems.append(Problem(f"{array} is {array.facts.dtype or array.facts.type_name}"))
    if any(not problem.absent for problem in problems):
        problems.append(Problem('pixels must be floating point (e.g. x.astype("float32") / 255)'))
    if problems:
        return failure(facts, problems, *_cells(*found))
    return ok(f"Floating-point pixels ({found[0].facts.dtype}).")


@check_kind("data.images_scaled")
def images_scaled(facts: Facts, params: Params, ctx: Context) -> Verdict:
    """The pixels are the provisioned images divided by 255."""
    for array in _arrays(facts, ctx, "images"):
        arr = array.facts
        if problem := array.not_an_array():
            return failure(facts, [problem], *_cells(array))
        held = arr.held_images
        if held == f"{array.split}_scaled":
            continue
        if held == f"{array.split}_raw":
            top = f" (max {arr.max:g})" if arr.max is not None else ""
            return fail(f"{array} still holds the raw 0-255 pixel values{top}: divide by 255.")
        if held:
            return fail(
                f"{array} holds {role_words(held.partition('_')[0] + '_images')}, not {role_words(array.role)}."
            )
        values = f"values from {arr.min:g} to {arr.max:g}" if arr.min is not None and arr.max is not None else ""
        shown = ", ".join(part for part in (values, f"shape {shape_text(arr.shape)}") if part)
        return fail(f"{array} is not the provisioned images divided by 255 ({shown}).")
    return ok("Pixels are the original images divided by 255, in [0, 1].")


@check_kind("data.labels_onehot")
def labels_onehot(facts: Facts, params: Params, ctx: Context) -> Verdict:
    """The training and test labels are one-hot rows, one column per class, matching the provisioned labels."""
    classes = facts.dataset.classes
    for array in _arrays(facts, ctx, "labels"):
        arr, n = array.facts, array.n_samples(facts.dataset)
        if problem := array.not_an_array():
            return failure(facts, [problem], "to_categorical", *_cells(array))
        if arr.shape != [n, classes]:
            hint = (
                f" These are still integer labels: use keras.utils.to_categorical(y, {classes})."
                if arr.shape == [n]
                else ""
            )
            return fail(f"{array} has shape {shape_text(arr.shape)}, expected {shape_text([n, classes])}.{hint}")
        if not arr.onehot:
            return fail(f"{array} has shape {shape_text(arr.shape)} but its rows are not one-hot vectors.")
        if wrong := _not_the_labels(array, "is one-hot, but its argmax does not equal the true labels"):
            return wrong
    return ok(f"Labels are one-hot (N, {classes}) and match the true digits.")


def _not_the_labels(array: Located, mismatch: str) -> Verdict | None:
    """The failure of labels in the right form that are another split's, or not the true labels (`mismatch`
    says how they differ); None when they are that split's."""
    arr = array.facts
    held = arr.held_labels.partition("_")[0] or arr.split  # the split whose labels they are, in any order or count
    if held and held != array.split:
        return fail(f"{array} holds {role_words(held + '_labels')}, not {role_words(array.role)}.")
    if not arr.held_labels:
        return fail(f"{array} {mismatch} (were they shuffled?).")
    return None


@check_kind("data.labels_integer")
def labels_integer(facts: Facts, params: Params, ctx: Context) -> Verdict:
    """The training and test labels are integer class ids (any integer dtype), one per image, matching the
    provisioned labels."""
    for array in _arrays(facts, ctx, "labels"):
        arr, n = array.facts, array.n_samples(facts.dataset)
        if problem := array.not_an_array():
            return failure(facts, [problem], *_cells(array))
        if arr.shape != [n]:
            hint = " These are one-hot rows: keep the integer labels as load_data returns them." if arr.onehot else ""
            return fail(f"{array} has shape {shape_text(arr.shape)}, expected {shape_text([n])}.{hint}")
        if not arr.dtype.startswith(("int", "uint")):
            return fail(f"{array} holds {arr.dtype or arr.type_name} values, expected integer class ids.")
        if wrong := _not_the_labels(array, "does not equal the true labels"):
            return wrong
    return ok(f"Labels are integer class ids ({facts.dataset.classes} classes) matching the true digits.")


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", " ", text)


class Printed(Params):
    shape_of: list[ArrayRole] = []  # the arrays whose shape the output must show
    first_labels: int = Field(0, ge=0, le=FIRST_LABELS)  # how many of the first training labels it must show

    @model_validator(mode="after")
    def _something(self) -> Printed:
        if not self.shape_of and not self.first_labels:
            raise ValueError("give `shape_of:` or `first_labels:`, or there is nothing to look for")
        return self


@check_kind("data.printed", Printed)
def printed(facts: Facts, params: Printed, ctx: Context) -> Verdict:
    """The output shows the arrays' shapes and the first training labels."""
    wanted: list[tuple[str, tuple[str, ...]]] = []
    for role in params.shape_of:
        array = locate(facts, ctx.assignment, role)
        if problem := array.not_an_array():
            text = f"{problem.text}, so its printed shape cannot be checked"
            return failure(facts, [Problem(text, problem.absent)], *_cells(array))
        shape = array.facts.shape or []
        # A part of the split (a validation set split off by hand) was printed whole before the split, or after.
        whole = [array.split_count(facts.dataset), *shape[1:]]
        wanted.append((f"the shape of {array}", (shape_text(shape), shape_text(whole))))
    if params.first_labels:
        labels = facts.dataset.first_labels[: params.first_labels]
        text = "[" + " ".join(str(label) for label in labels) + "]"
        wanted.append((f"the first {len(labels)} integer labels", (text,)))
    out = _squeezed(facts.execution.stdout)
    absent = [what for what, texts in wanted if not any(_squeezed(text) in out for text in texts)]
    if absent:
        return fail("The output does not show " + " and ".join(absent) + " (print them as the assignment asks).")
    return ok("Printed " + " and ".join(what for what, _ in wanted) + ".")


class Variables(Params):
    equals: dict[Identifier, Value] = Field(min_length=1)  # name -> the value it must hold (a tuple as a list)


def _equals_names(params: Variables, assignment: Assignment) -> Iterable[str]:
    return params.equals


@check_kind("data.variables", Variables, variables=_equals_names)
def variables(facts: Facts, params: Variables, ctx: Context) -> Verdict:
    """Named values hold what the assignment sets them to."""
    problems = []
    for name, expected in params.equals.items():
        variable = facts.kernel.variable(name)
        if not variable.present:
            problems.append(Problem(f"`{name}` is not defined: set {name} = {value_text(expected)}", absent=True))
        elif not same_value(variable.value, expected):
            shown = variable.repr or value_text(variable.value)
            problems.append(Problem(f"`{name}` is {shown}, expected {value_text(expected)}"))
    if problems:
        return failure(facts, problems, *params.equals)
    return ok(", ".join(f"{name} = {value_text(value)}" for name, value in params.equals.items()) + ".")


class Names(Params):
    roles: list[Role] | None = None  # the roles whose names are checked; by default every role the rubric names


def _role_name(facts: Facts, assignment: Assignment, role: str) -> str | None:
    """The name the notebook bound `role`'s object to: "" when the object exists under no name (a score unpacked
    into two numbers), None when there is no such object."""
    expected = assignment.name(role)
    if role in ARRAY_ROLES:
        array = locate(facts, assignment, role)
        return array.name if array.facts.present else None
    if role == "model":
        model = facts.kernel.model
        if not model.present:
            return None
        return expected if expected in model.names else next(iter(model.names), "")
    stored, call = facts.kernel.variable(expected), evaluation_on_test(facts, assignment)
    if stored.from_evaluate or (call is not None and _rounded_from(stored.value, call.result)):
        return expected
    return None if call is None else ""


def _rounded_from(value: Value, result: list[float] | None) -> bool:
    """Whether a stored value is evaluate's result, rounded (`[round(v, 4) for v in score]`)."""
    if not isinstance(value, list) or result is None or len(value) != len(result) or not value:
        return False
    return all(
        isinstance(v, int | float) and not isinstance(v, bool) and abs(v - r) <= 1e-3 * max(1.0, abs(r))
        for v, r in zip(value, result, strict=True)
    )


@check_kind("data.names", Names)
def names(facts: Facts, params: Names, ctx: Context) -> Verdict:
    """The notebook's objects are bound to the names the assignment gives them."""
    assignment = ctx.assignment
    roles = params.roles if params.roles is not None else [r for r in ROLES if r in assignment.variables]
    problems = []
    for role in roles:
        expected, name = assignment.name(role), _role_name(facts, assignment, role)
        if name is None:
            problems.append(Problem(f"{role_words(role)} (`{expected}`) could not be found", absent=True))
        elif not name:
            problems.append(Problem(f"{role_words(role)} was not stored as `{expected}`"))
        elif name != expected:
            problems.append(Problem(f"`{name}` holds {role_words(role)}; the assignment calls it `{expected}`"))
    if problems:
        first = problems[0]
        problems[0] = Problem(first.text[0].upper() + first.text[1:], first.absent)  # it starts the message
        return failure(facts, problems, *(assignment.name(role) for role in roles))
    return ok("The names are the assignment's: " + ", ".join(f"`{assignment.name(r)}`" for r in roles) + ".")
