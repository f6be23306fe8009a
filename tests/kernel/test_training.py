"""Training as it happened: the watch a fit gets, and when it cannot join."""

from __future__ import annotations

from grader.kernel import training


def test_a_fit_given_its_callbacks_by_position_is_recorded_without_a_watch() -> None:
    """The watch cannot join callbacks passed by position: that fit's epochs stay unknown, never zero."""
    record: dict[str, object] = {}
    args = ("x", "y", 128, 20, 0, [])
    assert training.watched(record, args, {"verbose": 0}) == {"verbose": 0}
    assert "epochs_seen" not in record
