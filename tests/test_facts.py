"""The facts schema: any valid facts survive a round trip through JSON, non-finite numbers and defaults included,
facts are immutable, and a fit call says which validation split the grader can rebuild."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from msgspec.structs import replace

from grader.facts import (
    ArrayFacts,
    Facts,
    HistoryFacts,
    KernelFacts,
    ProbeRequest,
    ValidationRequest,
    facts_from_json,
    facts_to_json,
)
from grader.reevaluation_facts import Reevaluation
from grader.strictjson import DecodeError, decode
from tests.factories import X_TRAIN, Y_TRAIN, perfect_fit
from tests.facts_values import FAST, filled, valid


@FAST
@given(valid(Facts))
def test_any_valid_facts_round_trip(facts: Facts) -> None:
    assert facts_from_json(facts_to_json(facts)) == facts


def test_nan_and_infinity_tokens_are_kept_as_floats_and_round_trip() -> None:
    values = {"loss": [math.nan, math.inf, -math.inf, 0.5], "val_loss": [1.7e308]}
    perfect = filled(Facts)
    history = HistoryFacts(epochs=4, keys=sorted(values), values=values, from_fit=True)
    facts = replace(perfect, kernel=replace(perfect.kernel, history=history))
    text = facts_to_json(facts)
    assert "NaN" in text and "-Infinity" in text
    again = facts_from_json(text)
    assert again.kernel.history is not None
    loss = again.kernel.history.values["loss"]
    assert math.isnan(loss[0]) and loss[1:] == [math.inf, -math.inf, 0.5]
    assert facts_to_json(again) == text


def test_defaults_and_the_empty_kernel_facts_survive_a_round_trip() -> None:
    request = ProbeRequest(loader="mnist", variables=["model", "score"])
    empty = replace(filled(Facts), kernel=KernelFacts.empty(request), reevaluation=Reevaluation(ok=False))
    again = facts_from_json(facts_to_json(empty))
    assert again == empty
    assert again.kernel.model.layers == [] and again.reevaluation.accuracy is None
    assert again.kernel.request == request and not again.kernel.variable("score").present
    minimal = decode('{"present": false}', ArrayFacts, max_bytes=100)
    assert minimal == ArrayFacts(present=False) and minimal.shape is None


def test_facts_are_immutable() -> None:
    facts = filled(Facts)
    with pytest.raises(AttributeError):
        facts.kernel.summary_calls = 3


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, ValidationRequest(0.1, True, [28, 28, 1], True)),
        (
            {"x": replace(X_TRAIN, images="train_raw"), "y": replace(Y_TRAIN, labels="train_sparse")},
            ValidationRequest(0.1, False, [28, 28, 1], False),
        ),
        ({"x": replace(X_TRAIN, images="")}, None),  # not images the grader has: nothing to rebuild
        ({"y": replace(Y_TRAIN, labels="train_other")}, None),
        ({"arguments": {"batch_size": 128, "epochs": 20, "validation_split": 0.0}}, None),
        ({"arguments": {"batch_size": 128, "epochs": 20}}, None),
    ],
)
def test_validation_request_rebuilds_only_the_provisioned_training_set(
    changes: dict[str, object], expected: ValidationRequest | None
) -> None:
    assert ValidationRequest.of(perfect_fit(**changes)) == expected


@pytest.mark.parametrize(("field", "status"), [("cell", "finished"), ("run", "done")])
def test_a_status_the_grader_never_writes_is_refused_on_decoding(field: str, status: str) -> None:
    facts = filled(Facts)
    execution = facts.execution
    if field == "cell":
        execution = replace(execution, cells=[replace(execution.cells[0], status=status)])  # type: ignore[arg-type]
    else:
        execution = replace(execution, status=status)  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match=f"Invalid enum value {status!r}"):
        facts_from_json(facts_to_json(replace(facts, execution=execution)))
