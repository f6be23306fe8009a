"""The output shape and parameter count of each declared layer, computed as Keras computes them.

A rubric may leave out the model's `params:`; the count is then derived from the declared input shape and
layers. Only layers whose arithmetic is written here can be derived (channels-last data, as Keras's default);
for any other the rubric must state `params:`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from grader.assignment import LayerSpec, ModelSpec
from grader.keras_facts import Scalar

_CONV = re.compile(r"Conv([123])D")
_POOL = re.compile(r"(?:Max|Average|Avg)Pool(?:ing)?([123])D")
# Layers that change neither the shape nor add weights.
_SHAPE_KEEPING = frozenset({"Dropout", "Activation", "ReLU", "LeakyReLU", "Softmax"})


class CannotDerive(ValueError):
    """The parameter count cannot be derived from the declared model; the message says what to state."""


@dataclass(frozen=True, slots=True)
class LayerShape:
    output_shape: list[int]  # without the batch axis
    params: int


def trace(model: ModelSpec) -> list[LayerShape]:
    """Each declared layer's output shape and parameter count."""
    if model.input_shape is None:
        raise CannotDerive("the parameter count needs the model's `input_shape:`, or state `params:`")
    shape, traced = list(model.input_shape), []
    for layer in model.layers:
        shape, params = _layer(layer, shape)
        traced.append(LayerShape(shape, params))
    return traced


def expected_params(model: ModelSpec) -> int:
    """The parameter count the rubric states, else the one its layers give."""
    if model.params is not None:
        return model.params
    return sum(layer.params for layer in trace(model))


def _layer(layer: LayerSpec, shape: list[int]) -> tuple[list[int], int]:
    name, args = layer.class_name, layer.arguments
    conv, pool = _CONV.fullmatch(name), _POOL.fullmatch(name)
    if name == "Dense":
        units = _int(layer, "units")
        return [*shape[:-1], units], shape[-1] * units + (units if _bool(layer, "use_bias", True) else 0)
    if conv:
        return _conv(layer, shape, int(conv.group(1)))
    if pool:
        rank = int(pool.group(1))
        size = _ints(layer, "pool_size", rank, 2)
        strides = _ints(layer, "strides", rank, size) if args.get("strides") is not None else size
        return [*_spatial(layer, shape, rank, size, strides, [1] * rank), shape[-1]], 0
    if name == "Flatten":
        return [math.prod(shape)], 0
    if name == "Reshape":
        return _reshape(layer, shape), 0
    if name == "BatchNormalization":
        weights = 2 + _bool(layer, "center", True) + _bool(layer, "scale", True)  # and the moving mean and variance
        return shape, weights * shape[_int(layer, "axis", -1)]
    if name in _SHAPE_KEEPING:
        return shape, 0
    raise CannotDerive(f"the parameter count of a {name} layer cannot be derived: state the model's `params:`")


def _conv(layer: LayerSpec, shape: list[int], rank: int) -> tuple[list[int], int]:
    filters = _int(layer, "filters")
    kernel = _ints(layer, "kernel_size", rank)
    strides = _ints(layer, "strides", rank, [1] * rank)
    dilation = _ints(layer, "dilation_rate", rank, [1] * rank)
    groups = _int(layer, "groups", 1)
    weights = math.prod(kernel) * (shape[-1] // groups) * filters
    bias = filters if _bool(layer, "use_bias", True) else 0
    return [*_spatial(layer, shape, rank, kernel, strides, dilation), filters], weights + bias


def _spatial(
    layer: LayerSpec, shape: list[int], rank: int, window: list[int], strides: list[int], dilation: list[int]
) -> list[int]:
    if len(shape) != rank + 1:
        raise CannotDerive(f"a {layer.class_name} layer needs a {rank + 1}-axis input, but it gets {shape}")
    padding = str(layer.arguments.get("padding", "valid")).lower()
    if padding in ("same", "causal"):
        return [-(-n // s) for n, s in zip(shape[:-1], strides, strict=True)]
    return [(n - (k - 1) * d - 1) // s + 1 for n, k, s, d in zip(shape[:-1], window, strides, dilation, strict=True)]


def _reshape(layer: LayerSpec, shape: list[int]) -> list[int]:
    target = _ints(layer, "target_shape", None)
    if -1 in target:
        known = math.prod(n for n in target if n != -1)
        return [math.prod(shape) // known if n == -1 else n for n in target]
    return target


def _value(layer: LayerSpec, key: str, default: Scalar | list[int] | None) -> Scalar | list[Scalar] | list[int]:
    value = layer.arguments.get(key, default)
    if value is None:
        raise CannotDerive(f"a {layer.class_name} layer needs `{key}` to derive the parameter count")
    return value


def _int(layer: LayerSpec, key: str, default: int | None = None) -> int:
    value = _value(layer, key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CannotDerive(f"{layer.class_name}'s `{key}` must be a whole number, found {value!r}")
    return value


def _bool(layer: LayerSpec, key: str, default: bool) -> bool:
    value = _value(layer, key, default)
    if not isinstance(value, bool):
        raise CannotDerive(f"{layer.class_name}'s `{key}` must be true or false, found {value!r}")
    return value


def _ints(layer: LayerSpec, key: str, rank: int | None, default: int | list[int] | None = None) -> list[int]:
    """A size per axis: `3` is (3, 3) for a 2D layer."""
    value = _value(layer, key, default)
    values = [value] * (rank or 1) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(values, list)
        or (rank is not None and len(values) != rank)
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    ):
        count = f"{rank} " if rank else ""
        raise CannotDerive(f"{layer.class_name}'s `{key}` must be a whole number or a list of {count}whole numbers")
    return [v for v in values if isinstance(v, int)]
