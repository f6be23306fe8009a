"""Finding the homework's arrays by what they are, whatever the notebook called them."""

from __future__ import annotations

import re

from msgspec.structs import replace

from grader.facts import DataOrigin, Facts, FoundArray, VariableFacts
from tests.factories import (
    check,
    make_facts,
    make_grade,
)

RENAMED = {"x_train": "X_train", "y_train": "Y_train", "x_test": "X_test", "y_test": "Y_test"}


def renamed_arrays() -> Facts:
    """The perfect run with its arrays called X_train, Y_train, X_test, Y_test."""
    perfect = make_facts()
    kernel = perfect.kernel
    arrays = [
        FoundArray([RENAMED[name]], variable.array)
        for name, variable in kernel.variables.items()
        if name in RENAMED and variable.array
    ]
    fit, evaluate = kernel.fit_calls[0], kernel.evaluate_calls[0]

    def renamed(data: DataOrigin) -> DataOrigin:
        return replace(data, names=[RENAMED[n] for n in data.names])

    return make_facts(
        variables=dict.fromkeys(RENAMED),
        kernel={
            "arrays": arrays,
            "fit_calls": [replace(fit, x=renamed(fit.x), y=renamed(fit.y))],
            "evaluate_calls": [replace(evaluate, x=renamed(evaluate.x), y=renamed(evaluate.y))],
        },
    )


def test_arrays_under_other_names_pass_the_data_checks_and_lose_only_the_names() -> None:
    assert make_grade(facts=make_facts()).total == 100
    grade = make_grade(facts=renamed_arrays())
    failed = [c for s in grade.sections for c in s.checks if not c.passed]
    assert [c.id for c in failed] == ["names"] and grade.total == 99 and not grade.integrity_flags
    assert "`X_train` holds the training images; the assignment calls it `x_train`" in failed[0].message
    assert "`Y_test` holds the test labels; the assignment calls it `y_test`" in failed[0].message


def test_an_array_found_nowhere_is_reported_under_the_rubric_name() -> None:
    grade = make_grade(facts=make_facts(variables={"x_train": None}))
    for check_id in ("x_shape", "x_float", "x_scaled", "printed"):
        message = check(grade, check_id).message
        assert "`x_train` is not defined" in message, message
        assert not re.search(r"`x_train` is [;:.]", message), message


def test_a_value_that_is_not_an_array_is_named_as_what_it_is() -> None:
    listed = VariableFacts(True, "list", "[[0, 1], ...]")
    message = check(make_grade(facts=make_facts(variables={"x_train": listed})), "x_float").message
    assert "`x_train` is a list, not an array" in message
