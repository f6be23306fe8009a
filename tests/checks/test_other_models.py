"""Checks of a second model built on the trained one, over hand-made facts: that it wraps the trained model, its
layers, and that the notebook called it on test images."""

from __future__ import annotations

from typing import Any

import pytest
from msgspec.structs import replace

from grader.assignment import Assignment
from grader.checks import KINDS, Verdict
from grader.facts import Facts, ModelCall, OtherModelFacts, VariableFacts
from grader.keras_facts import LayerFacts
from tests.checks.conftest import kind_verdict
from tests.factories import make_facts

VARIABLES = {"variables": {"test_images": "x_test", "probability_model": "probs"}}
DECLARED = Assignment.model_validate(VARIABLES)
WRAPPER = OtherModelFacts(
    class_name="Sequential",
    layers=[LayerFacts("Sequential"), LayerFacts("Softmax", {"axis": -1})],
    is_trained=False,
    wraps_trained=True,
    calls=[ModelCall("call", 5, 5)],
)


def _facts(model: OtherModelFacts | None = WRAPPER, present: bool = True) -> Facts:
    variable = VariableFacts(present, "Sequential" if model else "list", model=model)
    return make_facts({"probs": variable})


def _run(kind: str, facts: Facts, **params: Any) -> Verdict:
    return kind_verdict(kind, facts, VARIABLES, model="probability_model", **params)


def test_a_model_built_on_the_trained_one_and_called_on_test_images_passes() -> None:
    assert _run("model.wraps_trained", _facts()).passed
    assert _run("model.called_on_test", _facts(), samples=5).passed
    assert _run("model.layers", _facts(), layers=["Sequential", "Softmax"]).passed


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"wraps_trained": False}, "does not hold the trained model as a layer"),
        ({"wraps_trained": False, "is_trained": True}, "is the trained model itself"),
    ],
)
def test_a_model_not_built_on_the_trained_one_fails(changes: dict[str, bool], words: str) -> None:
    verdict = _run("model.wraps_trained", _facts(replace(WRAPPER, **changes)))
    assert not verdict.passed and words in verdict.message


@pytest.mark.parametrize(
    ("calls", "words"),
    [
        ([], "`probs` was never called on data"),
        ([ModelCall("predict", 5, 0)], "called on 5 sample(s), none of them test images"),
        ([ModelCall("call", 3, 3)], "3 of them test images; call it on x_test[:5]"),
    ],
)
def test_calls_on_too_few_test_images_fail(calls: list[ModelCall], words: str) -> None:
    verdict = _run("model.called_on_test", _facts(replace(WRAPPER, calls=calls)), samples=5)
    assert not verdict.passed and words in verdict.message


def test_a_missing_or_non_model_variable_fails_every_check() -> None:
    for facts, words in ((_facts(None, present=False), "No `probs` variable"), (_facts(None), "not a Keras model")):
        for kind in ("model.wraps_trained", "model.called_on_test"):
            verdict = _run(kind, facts)
            assert not verdict.passed and words in verdict.message


def test_another_model_must_be_named_under_variables_and_given_layers() -> None:
    unnamed = KINDS["model.wraps_trained"].params.model_validate({"model": "extractor"})
    assert "`extractor` is not a key of `variables:`" in (unnamed.check_assignment(DECLARED) or "")
    no_layers = KINDS["model.layers"].params.model_validate({"model": "probability_model"})
    assert "give the layers of `probability_model`" in (no_layers.check_assignment(DECLARED) or "")
    assert "probs" in DECLARED.probe_request(set()).variables
