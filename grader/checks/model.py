"""Checks of the model the notebook built: Sequential, its layers and their settings in order, its input shape,
its parameter count and its summary; and the evidence that the reported model is not the saved one."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pydantic import Field

from grader.assignment import Assignment, Identifier, LayerSpec
from grader.checks.base import (
    Context,
    Params,
    Verdict,
    check_kind,
    fail,
    integrity_kind,
    missing,
    ok,
    ordinal,
    setting_problem,
    shape_text,
    shown,
    value_text,
)
from grader.checks.layer_shapes import CannotDerive, expected_params, trace
from grader.checks.other_models import named_role, other_model
from grader.facts import Facts
from grader.keras_facts import LayerFacts

# The settings a layer is shown with, in Keras's argument order: Dense(128, sigmoid), Conv2D(32, (3, 3), relu).
_HEADLINE = ("units", "filters", "kernel_size", "pool_size", "rate", "activation")


def _text(class_name: str, settings: Mapping[str, object], every_setting: bool) -> str:
    parts = [
        "no activation" if key == "activation" and settings[key] is None else shown(settings[key])
        for key in _HEADLINE
        if key in settings
    ]
    if every_setting:
        parts += [f"{key}={shown(value)}" for key, value in settings.items() if key not in _HEADLINE]
    return f"{class_name}({', '.join(parts)})" if parts else class_name


def layer_text(layer: LayerFacts) -> str:
    """A found layer as a beginner reads it: Dense(128, sigmoid)."""
    return _text(layer.class_name, layer.config, every_setting=False)


def spec_text(spec: LayerSpec) -> str:
    """An expected layer with every setting the rubric declares."""
    return _text(spec.class_name, spec.arguments, every_setting=True)


def layers_text(layers: Sequence[LayerFacts]) -> str:
    return " -> ".join(layer_text(layer) for layer in layers) or "no layers"


def _class_key(name: str) -> str:
    """Keras's aliases as the class they name: MaxPool2D is MaxPooling2D, AvgPool1D is AveragePooling1D."""
    name = re.sub(r"^Avg(?=Pool)", "Average", name)
    return re.sub(r"Pool(?=[123]D$)", "Pooling", name).replace("Convolution", "Conv")


def _same_class(layer: LayerFacts, spec: LayerSpec) -> bool:
    return _class_key(layer.class_name) == _class_key(spec.class_name)


def _setting_problems(layer: LayerFacts, spec: LayerSpec) -> list[str]:
    problems = (setting_problem(key, layer.config, value) for key, value in spec.arguments.items())
    return [problem for problem in problems if problem]


def layer_problems(layer: LayerFacts, spec: LayerSpec) -> list[str]:
    """What differs between a found layer and an expected one ("has 64 units, expected 128"), or nothing."""
    if not _same_class(layer, spec):
        return [f"is {layer_text(layer)}, expected {spec_text(spec)}"]
    return _setting_problems(layer, spec)


def align(declared: Sequence[LayerSpec], found: Sequence[LayerFacts]) -> dict[int, int]:
    """Which found layer stands for each declared one: the order-preserving pairing of layers of the same class
    that pairs the most, and among those the most with every declared setting right. A missing or an extra layer
    then costs that layer only, not every layer after it."""
    rows, cols = len(declared), len(found)

    def score(i: int, j: int) -> int:
        if not _same_class(found[j], declared[i]):
            return 0
        return 3 if not _setting_problems(found[j], declared[i]) else 2

    best = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            paired = score(i, j)
            best[i][j] = max(best[i + 1][j], best[i][j + 1], paired + best[i + 1][j + 1] if paired else 0)
    pairs: dict[int, int] = {}
    i = j = 0
    while i < rows and j < cols:
        paired = score(i, j)
        if paired and best[i][j] == paired + best[i + 1][j + 1]:
            pairs[i] = j
            i, j = i + 1, j + 1
        elif best[i][j] == best[i + 1][j]:
            i += 1
        else:
            j += 1
    return pairs


def _model_missing(facts: Facts, ctx: Context) -> Verdict | None:
    model, name = facts.kernel.model, ctx.assignment.name("model")
    if not model.present:
        return missing(facts, f"No `{name}` variable was defined", name)
    if not model.class_name or not model.built and not model.layers:
        return fail(f"`{name}` is a {model.class_name or 'value'}, not a Keras model.")
    return None


@check_kind("model.sequential")
def sequential(facts: Facts, params: Params, ctx: Context) -> Verdict:
    """The model is a keras.Sequential."""
    if problem := _model_missing(facts, ctx):
        return problem
    model = facts.kernel.model
    if not model.is_sequential:
        return fail(
            f"`{ctx.assignment.name('model')}` is a {model.class_name}; the assignment asks for keras.Sequential."
        )
    return ok("The model is a keras.Sequential.")


class Layer(Params):
    index: int = Field(ge=0)  # position among the rubric's `model: layers:`, from 0
    last: bool = False  # nothing may follow it

    def check_assignment(self, assignment: Assignment) -> str | None:
        declared = len(assignment.model.layers)
        if self.index >= declared:
            return f"index {self.index} is past the {declared} layer(s) declared under `model: layers:`"
        return None


@check_kind("model.layer", Layer)
def one_layer(facts: Facts, params: Layer, ctx: Context) -> Verdict:
    """One layer is the declared one (its class and every setting the rubric gives)."""
    if problem := _model_missing(facts, ctx):
        return problem
    declared, layers = ctx.assignment.model.layers, facts.kernel.model.layers
    spec, want, found = declared[params.index], spec_text(declared[params.index]), layers_text(layers)
    pairs = align(declared, layers)
    if params.index not in pairs:
        return fail(f"The model has no layer like {want}. Layers found: {found}.")
    position = pairs[params.index]
    label = ordinal(position)
    problems = _setting_problems(layers[position], spec)
    if problems:
        return fail(f"The {label} layer " + "; it ".join(problems) + ".")
    unpaired = [layer_text(layer) for j, layer in enumerate(layers) if j not in pairs.values()]
    if params.last and (position != len(layers) - 1 or unpaired):
        return fail(
            f"The model has {len(layers)} layers after the input, expected {want} to end the declared "
            f"{len(declared)}. Layers found: {found}."
        )
    return ok(f"The {label} layer is {want}.")


class Layers(Params):
    indices: list[int] | None = None  # the declared layers to compare, by position; None: all, and nothing more
    model: Identifier = "model"  # the role of the model compared: the trained one, or a key of `variables:`
    layers: list[LayerSpec] | None = None  # that model's layers; default: `model: layers:`

    def declared(self, assignment: Assignment) -> list[LayerSpec]:
        return self.layers if self.layers is not None else assignment.model.layers

    def check_assignment(self, assignment: Assignment) -> str | None:
        if self.model != "model" and (problem := named_role(self.model, assignment)):
            return problem
        if self.model != "model" and self.layers is None:
            return f"give the layers of `{self.model}` as `layers:` (`model: layers:` are the trained model's)"
        declared = len(self.declared(assignment))
        if not declared:
            return "there are no layers to compare: declare them under `model: layers:`"
        past = [i for i in self.indices or () if not 0 <= i < declared]
        return f"indices {past} are not among the {declared} declared layers" if past else None


@check_kind("model.layers", Layers)
def all_layers(facts: Facts, params: Layers, ctx: Context) -> Verdict:
    """The layers (of the trained model, or of another named one) are the declared ones, in order; partial credit
    for each that is."""
    if params.model == "model":
        if problem := _model_missing(facts, ctx):
            return problem
        found = facts.kernel.model.layers
    else:
        other = other_model(facts, ctx.assignment, params.model)
        if isinstance(other, Verdict):
            return other
        found = other.layers
    declared = params.declared(ctx.assignment)
    selected = params.indices if params.indices is not None else range(len(declared))
    pairs = align(declared, found)
    problems, matched = [], 0
    for i in selected:
        if i not in pairs:
            problems.append(f"no layer is {spec_text(declared[i])} (the {ordinal(i)} declared)")
        elif differences := layer_problems(found[pairs[i]], declared[i]):
            problems.append(f"the {ordinal(pairs[i])} layer " + "; it ".join(differences))
        else:
            matched += 1
    extra = [layer_text(layer) for j, layer in enumerate(found) if j not in pairs.values()]
    if params.indices is None and extra:
        problems.append(f"{', '.join(extra)}: not in the declared model")
    total = len(selected) + (len(extra) if params.indices is None else 0)
    if not problems:
        return ok(f"The layers are {' -> '.join(spec_text(declared[i]) for i in selected)}.")
    return fail(
        f"{matched} of {total} layers are as declared: "
        + "; ".join(problems[:3])
        + f". Layers found: {layers_text(found)}.",
        fraction=matched / total,
    )


class InputShape(Params):
    def check_assignment(self, assignment: Assignment) -> str | None:
        return (
            None
            if assignment.model.input_shape
            else "the model's input shape is not declared: add `input_shape:` under `model:`"
        )


@check_kind("model.input_shape", InputShape)
def input_shape(facts: Facts, params: InputShape, ctx: Context) -> Verdict:
    """The model takes input of shape (None, *the declared input shape)."""
    if problem := _model_missing(facts, ctx):
        return problem
    declared = ctx.assignment.model.input_shape or []
    expected: list[int | None] = [None, *declared]
    shape = facts.kernel.model.input_shape
    if shape == expected:
        return ok(f"The model takes input of shape {shape_text(expected)}.")
    if shape is None:
        return fail(f"The model has no defined input: start it with keras.Input(shape={value_text(declared)}).")
    return fail(f"The model's input is {shape_text(shape)}, expected {shape_text(expected)}.")


class ParamCount(Params):
    def check_assignment(self, assignment: Assignment) -> str | None:
        try:
            expected_params(assignment.model)
        except CannotDerive as exc:
            return str(exc)
        return None


def _breakdown(ctx: Context, expected: int) -> str:
    """' (100,480 in the second layer Dense(128, sigmoid), ...)' when the declared layers give `expected`."""
    model = ctx.assignment.model
    try:
        traced = trace(model)
    except CannotDerive:
        return ""
    if sum(layer.params for layer in traced) != expected:
        return ""
    parts = [
        f"{shape.params:,} in the {ordinal(i)} layer, {spec_text(spec)}"
        for i, (spec, shape) in enumerate(zip(model.layers, traced, strict=True))
        if shape.params
    ]
    return f" ({'; '.join(parts)})"


@check_kind("model.params", ParamCount)
def parameter_count(facts: Facts, params: ParamCount, ctx: Context) -> Verdict:
    """The model has the declared number of parameters (derived from the layers when not declared)."""
    if problem := _model_missing(facts, ctx):
        return problem
    total, expected = facts.kernel.model.total_params, expected_params(ctx.assignment.model)
    if total == expected:
        return ok(f"{total:,} parameters.")
    return fail(f"The model has {total:,} parameters, expected {expected:,}{_breakdown(ctx, expected)}.")


@check_kind("model.summary")
def summary(facts: Facts, params: Params, ctx: Context) -> Verdict:
    """model.summary() was called."""
    if facts.kernel.summary_calls:
        return ok("model.summary() was called.")
    return missing(facts, "model.summary() was never called", "summary")


def _signature(layer: LayerFacts) -> tuple[str, str]:
    return _class_key(layer.class_name), repr([layer.config.get(key) for key in _HEADLINE])


@integrity_kind("model")
def saved_model_differs(facts: Facts, ctx: Context) -> list[str]:
    """Evidence that the reported model is not the one the notebook built: the saved model disagrees."""
    saved, reported = facts.reevaluation, facts.kernel.model
    if not saved.ok or saved.layers is None or not reported.present:
        return []
    same_layers = [_signature(layer) for layer in saved.layers] == [_signature(layer) for layer in reported.layers]
    if same_layers and saved.total_params == reported.total_params:
        return []
    found = layers_text(saved.layers)
    return [f"the saved model is {found} ({saved.total_params or 0:,} parameters), not what the notebook reported"]
