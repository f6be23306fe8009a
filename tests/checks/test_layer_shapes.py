"""The parameter count derived from a declared model, as Keras counts it (each expected number is what Keras's
count_params gave for the same layers)."""

from __future__ import annotations

from typing import Any

import pytest

from grader.assignment import ModelSpec
from grader.checks.layer_shapes import CannotDerive, expected_params, trace

MNIST_MLP = ["Flatten", {"Dense": {"units": 128, "activation": "sigmoid"}}, {"Dense": {"units": 10}}]
# The Keras "simple MNIST convnet" example.
SIMPLE_CONVNET = [
    {"Conv2D": {"filters": 32, "kernel_size": 3, "activation": "relu"}},
    {"MaxPooling2D": {"pool_size": 2}},
    {"Conv2D": {"filters": 64, "kernel_size": [3, 3], "activation": "relu"}},
    {"MaxPool2D": {"pool_size": [2, 2]}},
    "Flatten",
    {"Dropout": {"rate": 0.5}},
    {"Dense": {"units": 10, "activation": "softmax"}},
]


@pytest.mark.parametrize(
    ("input_shape", "layers", "params"),
    [
        ([28, 28, 1], MNIST_MLP, 101_770),
        ([28, 28, 1], SIMPLE_CONVNET, 34_826),
        (
            [28, 28, 1],
            [
                {"Conv2D": {"filters": 8, "kernel_size": 3, "padding": "same", "strides": 2}},
                "BatchNormalization",
                {"Reshape": {"target_shape": [-1]}},
                {"Dense": {"units": 2, "use_bias": False}},
            ],
            3_248,
        ),
        (
            [100, 3],
            [
                {"Conv1D": {"filters": 4, "kernel_size": 5, "dilation_rate": 2}},
                {"AveragePooling1D": {"pool_size": 3, "strides": 2}},
                {"Conv1D": {"filters": 6, "kernel_size": 3, "padding": "same", "groups": 2}},
                {"MaxPooling1D": {"pool_size": 4, "padding": "same"}},
                "Flatten",
                {"Activation": {"activation": "relu"}},
                {"Dense": {"units": 3}},
            ],
            325,
        ),
        (
            [8, 8, 8, 2],
            [
                {"Conv3D": {"filters": 3, "kernel_size": [3, 2, 1], "strides": [1, 2, 1]}},
                {"AveragePooling3D": {"pool_size": 2, "padding": "same"}},
                {"BatchNormalization": {"center": False}},
                "Flatten",
            ],
            48,
        ),
    ],
)
def test_derived_parameter_count_is_keras_count(input_shape: list[int], layers: list[Any], params: int) -> None:
    assert expected_params(ModelSpec(input_shape=input_shape, layers=layers)) == params


def test_output_shapes_of_the_simple_convnet() -> None:
    traced = trace(ModelSpec(input_shape=[28, 28, 1], layers=SIMPLE_CONVNET))
    assert [t.output_shape for t in traced] == [
        [26, 26, 32],
        [13, 13, 32],
        [11, 11, 64],
        [5, 5, 64],
        [1600],
        [1600],
        [10],
    ]
    assert [t.params for t in traced] == [320, 0, 18_496, 0, 0, 0, 16_010]


def test_a_stated_count_is_used_as_it_is() -> None:
    assert expected_params(ModelSpec(input_shape=None, layers=[{"LSTM": {"units": 4}}], params=99)) == 99


@pytest.mark.parametrize(
    ("model", "words"),
    [
        (ModelSpec(input_shape=[10, 3], layers=[{"LSTM": {"units": 4}}]), ["LSTM", "`params:`"]),
        (ModelSpec(input_shape=None, layers=MNIST_MLP), ["`input_shape:`", "`params:`"]),
        (ModelSpec(input_shape=[28, 28, 1], layers=["Flatten", "Dense"]), ["Dense", "`units`"]),
        (ModelSpec(input_shape=[28, 28], layers=[{"Conv2D": {"filters": 2, "kernel_size": 3}}]), ["3-axis input"]),
        (
            ModelSpec(input_shape=[28, 28, 1], layers=[{"Conv2D": {"filters": 2, "kernel_size": [3, 3, 3]}}]),
            ["kernel_size", "list of 2 whole numbers"],
        ),
    ],
)
def test_what_cannot_be_derived_says_what_to_state(model: ModelSpec, words: list[str]) -> None:
    with pytest.raises(CannotDerive) as error:
        expected_params(model)
    for word in words:
        assert word in str(error.value)
