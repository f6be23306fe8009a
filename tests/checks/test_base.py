"""What every check shares: messages free of terminal codes, and a failure blamed on the cell that caused it."""

from __future__ import annotations

from msgspec.structs import replace

from tests.factories import (
    check,
    make_facts,
    make_grade,
    plain,
    points,
)


def test_a_dead_kernel_keeps_earlier_points() -> None:
    cells = list(make_facts().execution.cells)
    cells[4] = replace(cells[4], status="kernel_died")
    cells[5] = replace(cells[5], status="not_run")
    facts = make_facts(
        execution={"status": "kernel_died", "cells": cells},
        variables={"score": None},
        kernel={"fit_calls": [], "history": None, "evaluate_calls": []},
        reevaluation={"ok": False, "message": "no trained model was saved"},
    )
    grade = make_grade(facts=facts)
    assert points(grade, "prepare") == 10 and points(grade, "build") == 50
    assert "cell 5 crashed the kernel" in check(grade, "fit_call").message


def test_messages_carry_no_terminal_control_codes() -> None:
    cells = list(make_facts().execution.cells)
    cells[1] = replace(
        cells[1], status="error", error_name="\x1b[0;31mNameError\x1b[0m", error_value="\x1b[1mboom\x1b[0m"
    )
    facts = make_facts(
        variables={"x_train": None},
        execution={"cells": cells},
        reevaluation={"validation": None, "message": "\x1b[31mevaluate failed\x1b[0m"},
    )
    grade = make_grade(facts=facts)
    texts = [c.message for s in grade.sections for c in s.checks] + grade.integrity_flags
    assert not any("\x1b" in text for text in texts)
    assert "Likely cause: cell 2 raised NameError: boom" in check(grade, "x_shape").message
    assert "(evaluate failed)" in check(grade, "history").message


def test_a_wrong_value_is_not_blamed_on_a_cell_that_ran_out_of_time() -> None:
    cells = list(make_facts().execution.cells)
    cells[4] = replace(cells[4], status="timeout")
    wrong = check(make_grade(execution={"cells": cells}, variables={"epochs": plain(200)}), "settings")
    assert wrong.message == "`epochs` is 200, expected 20."
    absent = check(make_grade(execution={"cells": cells}, variables={"epochs": None}), "settings")
    assert "`epochs` is not defined: set epochs = 20." in absent.message
    assert "Likely cause: cell 5 ran out of time." in absent.message
