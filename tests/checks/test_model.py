"""Model checks over hand-made facts: layers in order, their settings, a convnet, parameter counts, and a
saved model that disagrees with the kernel's record."""

from __future__ import annotations

from pathlib import Path

import pytest
from msgspec.structs import replace

from grader.facts import Facts
from grader.keras_facts import LayerFacts
from grader.rubric.load import load_rubric
from grader.score import score_facts
from tests.checks.conftest import kind_verdict
from tests.factories import (
    CONTEXT,
    check,
    dense,
    make_facts,
    make_grade,
    points,
)


def test_relu_hidden_layer() -> None:
    layers = list(make_facts().kernel.model.layers)
    layers[1] = dense(128, "relu", 100480)
    facts = make_facts(kernel={"model": replace(make_facts().kernel.model, layers=layers)})
    grade = make_grade(facts=facts)
    assert points(grade, "build") == 40 and "'relu'" in check(grade, "hidden").message


def test_extra_layer_fails_output_exactness() -> None:
    layers = [*make_facts().kernel.model.layers, dense(10, "softmax", 110)]
    facts = make_facts(kernel={"model": replace(make_facts().kernel.model, layers=layers, total_params=101880)})
    grade = make_grade(facts=facts)
    assert not check(grade, "output").passed and not check(grade, "params").passed


def test_model_facts_disagreeing_with_the_saved_model_zero_build() -> None:
    saved_layers = list(make_facts().kernel.model.layers)
    saved_layers[1] = dense(16, "relu", 12560)
    facts = make_facts(reevaluation={"layers": saved_layers, "total_params": 12730})
    grade = make_grade(facts=facts)
    assert points(grade, "build") == 0
    assert any("Dense(16, relu)" in flag for flag in grade.integrity_flags)


def test_matching_saved_model_is_no_evidence() -> None:
    model = make_facts().kernel.model
    saved = {"layers": list(model.layers), "total_params": model.total_params}
    grade = make_grade(facts=make_facts(reevaluation=saved))
    assert grade.total == 100 and not grade.integrity_flags


CONVNET_RUBRIC = """
model:
  input_shape: [28, 28, 1]
  layers:
    - Conv2D: {filters: 32, kernel_size: 3, activation: relu}
    - MaxPooling2D: {pool_size: 2}
    - Conv2D: {filters: 64, kernel_size: [3, 3], activation: ReLU}
    - MaxPool2D: {pool_size: 2}
    - Flatten
    - Dropout: {rate: 0.5}
    - Dense: {units: 10, activation: softmax}
sections:
  build:
    points: 10
    integrity: [model]
    checks:
      layers: {kind: model.layers, points: 4, title: "The convnet's layers"}
      convs: {kind: model.layers, indices: [0, 2], points: 2, title: "Two convolutions"}
      output: {kind: model.layer, index: 6, last: true, points: 2, title: "Dense(10, softmax) last"}
      params: {kind: model.params, points: 2, title: "34,826 parameters"}
"""


def conv(filters: int, kernel: int, params: int) -> LayerFacts:
    config = {"filters": filters, "kernel_size": [kernel, kernel], "strides": [1, 1], "padding": "valid"}
    return LayerFacts("Conv2D", {**config, "activation": "relu", "use_bias": True}, params=params)


def pool() -> LayerFacts:
    return LayerFacts("MaxPooling2D", {"pool_size": [2, 2], "strides": [2, 2], "padding": "valid"})


def convnet(first: LayerFacts, total: int) -> Facts:
    layers = [
        first,
        pool(),
        conv(64, 3, 18_496),
        pool(),
        LayerFacts("Flatten", {}),
        LayerFacts("Dropout", {"rate": 0.5}),
        dense(10, "softmax", 16_010),
    ]
    model = replace(make_facts().kernel.model, layers=layers, total_params=total)
    return make_facts(kernel={"model": model}, reevaluation={"layers": layers, "total_params": total})


def test_a_convnet_is_checked_layer_by_layer(tmp_path: Path) -> None:
    (tmp_path / "rubric.yaml").write_text(CONVNET_RUBRIC, encoding="utf-8")
    cnn = load_rubric(tmp_path / "rubric.yaml")
    assert score_facts("ada", convnet(conv(32, 3, 320), 34_826), cnn, CONTEXT).total == 10
    grade = score_facts("bo", convnet(conv(16, 5, 416), 34_922), cnn, CONTEXT)
    layers, convs = check(grade, "layers"), check(grade, "convs")
    assert layers.points == pytest.approx(4 * 6 / 7, abs=0.01) and convs.points == 1
    assert "the first layer has 16 filters, expected 32; it has kernel_size (5, 5), expected 3" in layers.message
    assert check(grade, "output").passed and not check(grade, "params").passed
    assert "18,496 in the third layer, Conv2D(64, (3, 3), ReLU)" in check(grade, "params").message


def test_a_missing_layer_costs_that_layer_only(tmp_path: Path) -> None:
    """No Dropout: the layers after it are still paired with the declared ones."""
    (tmp_path / "rubric.yaml").write_text(CONVNET_RUBRIC, encoding="utf-8")
    cnn = load_rubric(tmp_path / "rubric.yaml")
    facts = convnet(conv(32, 3, 320), 34_826)
    layers = [layer for layer in facts.kernel.model.layers if layer.class_name != "Dropout"]
    model = replace(facts.kernel.model, layers=layers)
    saved = {"layers": layers, "total_params": 34_826}
    grade = score_facts("eve", make_facts(kernel={"model": model}, reevaluation=saved), cnn, CONTEXT)
    assert check(grade, "layers").points == pytest.approx(4 * 6 / 7, abs=0.01)
    assert "no layer is Dropout(0.5)" in check(grade, "layers").message
    assert check(grade, "output").passed


def test_a_model_on_flattened_input_is_judged_by_its_layers_not_their_positions() -> None:
    """Input(784) -> Dense(128, sigmoid) -> Dense(10, softmax): no Flatten, the rest as declared."""
    layers = [dense(128, "sigmoid", 100_480), dense(10, "softmax", 1_290)]
    model = replace(make_facts().kernel.model, layers=layers, input_shape=[None, 784])
    saved = {"layers": layers, "total_params": 101_770}
    grade = make_grade(facts=make_facts(kernel={"model": model}, reevaluation=saved))
    assert [check(grade, c).passed for c in ("flatten", "hidden", "output", "params")] == [False, True, True, True]
    assert "no layer like Flatten" in check(grade, "flatten").message


def test_a_layer_between_the_declared_ones_fails_the_last_layer() -> None:
    layers = list(make_facts().kernel.model.layers)
    layers.insert(2, dense(64, "sigmoid", 8_256))
    model = replace(make_facts().kernel.model, layers=layers, total_params=110_026)
    saved = {"layers": layers, "total_params": 110_026}
    grade = make_grade(facts=make_facts(kernel={"model": model}, reevaluation=saved))
    assert check(grade, "hidden").passed and not check(grade, "output").passed


OUTPUT_LAYER = {"model": {"layers": [{"Dense": {"units": 10, "activation": None}}]}}


@pytest.mark.parametrize(("activation", "passes"), [("linear", True), ("softmax", False)])
def test_activation_null_is_keras_s_default(activation: str, passes: bool) -> None:
    model = replace(make_facts().kernel.model, layers=[dense(10, activation, 7850)])
    verdict = kind_verdict("model.layers", make_facts(kernel={"model": model}), OUTPUT_LAYER)
    assert verdict.passed is passes
    assert "'linear'" not in verdict.message
    if not passes:
        assert "has activation 'softmax', expected no activation" in verdict.message
