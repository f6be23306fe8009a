"""Build the model: input shape, Sequential[Flatten, Dense(128, sigmoid), Dense(10, softmax)], summary."""

from __future__ import annotations

from grader.checks import Check, Context, Verdict, cell_trouble, fail, ok, shape_text
from grader.facts import Facts, LayerFacts

EXPECTED_PARAMS = 101_770


def _model_missing(facts: Facts) -> Verdict | None:
    model = facts.kernel.model
    if not model.present:
        return fail("No `model` variable was defined." + cell_trouble(facts, "Sequential", "model"))
    if not model.class_name or not model.built and not model.layers:
        return fail(f"`model` is a {model.class_name or 'value'}, not a Keras model.")
    return None


def input_shape(facts: Facts, ctx: Context) -> Verdict:
    k = facts.kernel
    if k.input_shape == [28, 28, 1]:
        return ok("input_shape = (28, 28, 1).")
    if not k.input_shape_repr:
        return fail("`input_shape` is not defined: set input_shape = (28, 28, 1)." + cell_trouble(facts, "input_shape"))
    return fail(f"`input_shape` is {k.input_shape_repr}, expected (28, 28, 1) (height, width, 1 channel).")


def sequential(facts: Facts, ctx: Context) -> Verdict:
    missing = _model_missing(facts)
    if missing:
        return missing
    model = facts.kernel.model
    if not model.is_sequential:
        return fail(f"`model` is a {model.class_name}; the assignment asks for keras.Sequential.")
    return ok("The model is a keras.Sequential.")


def _layer_text(layer: LayerFacts) -> str:
    if layer.class_name == "Dense":
        return f"Dense({layer.units}, {layer.activation})"
    return layer.class_name


def _layer_check(facts: Facts, position: int, want: str, units: int | None, activation: str | None) -> Verdict:
    missing = _model_missing(facts)
    if missing:
        return missing
    layers = facts.kernel.model.layers
    found = " -> ".join(_layer_text(layer) for layer in layers) or "no layers"
    label = {0: "first", 1: "second", 2: "third"}[position]
    if position >= len(layers):
        return fail(f"The model has no {label} layer; expected {want}. Layers found: {found}.")
    layer = layers[position]
    if layer.class_name != ("Flatten" if units is None else "Dense"):
        return fail(f"The {label} layer is {_layer_text(layer)}, expected {want}. Layers found: {found}.")
    if units is not None and layer.units != units:
        return fail(f"The {label} layer has {layer.units} units, expected {units}.")
    if activation is not None and layer.activation != activation:
        return fail(f"The {label} layer uses activation {layer.activation!r}, expected {activation!r}.")
    if position == 2 and len(layers) != 3:
        return fail(f"The model has {len(layers)} layers after the input, expected exactly 3. Layers found: {found}.")
    return ok(f"The {label} layer is {want}.")


def flatten(facts: Facts, ctx: Context) -> Verdict:
    return _layer_check(facts, 0, "Flatten", None, None)


def hidden(facts: Facts, ctx: Context) -> Verdict:
    return _layer_check(facts, 1, "Dense(128, sigmoid)", 128, "sigmoid")


def output(facts: Facts, ctx: Context) -> Verdict:
    return _layer_check(facts, 2, "Dense(10, softmax)", 10, "softmax")


def model_input(facts: Facts, ctx: Context) -> Verdict:
    missing = _model_missing(facts)
    if missing:
        return missing
    shape = facts.kernel.model.input_shape
    if shape == [None, 28, 28, 1]:
        return ok("The model takes input of shape (None, 28, 28, 1).")
    if shape is None:
        return fail("The model has no defined input: start it with keras.Input(shape=input_shape).")
    return fail(f"The model's input is {shape_text(shape)}, expected (None, 28, 28, 1).")


def params(facts: Facts, ctx: Context) -> Verdict:
    missing = _model_missing(facts)
    if missing:
        return missing
    total = facts.kernel.model.total_params
    if total == EXPECTED_PARAMS:
        return ok(f"{total:,} parameters.")
    return fail(
        f"The model has {total:,} parameters, expected {EXPECTED_PARAMS:,} "
        "(784*128 + 128 for the hidden layer, 128*10 + 10 for the output)."
    )


def summary(facts: Facts, ctx: Context) -> Verdict:
    if facts.kernel.summary_calls:
        return ok("model.summary() was called.")
    return fail("model.summary() was never called." + cell_trouble(facts, "summary"))


def integrity(facts: Facts, ctx: Context) -> list[str]:
    """Evidence that the reported model is not the one the notebook built: the saved model disagrees."""
    saved, reported = facts.reevaluation, facts.kernel.model
    if not saved.ok or saved.layers is None or not reported.present:
        return []
    shape = [(layer.class_name, layer.units, layer.activation) for layer in saved.layers]
    claimed = [(layer.class_name, layer.units, layer.activation) for layer in reported.layers]
    if shape != claimed or saved.total_params != reported.total_params:
        found = " -> ".join(_layer_text(layer) for layer in saved.layers)
        return [f"the saved model is {found} ({saved.total_params or 0:,} parameters), not what the notebook reported"]
    return []


CHECKS: dict[str, Check] = {
    "input_shape": input_shape,
    "sequential": sequential,
    "flatten": flatten,
    "hidden": hidden,
    "output": output,
    "model_input": model_input,
    "params": params,
    "summary": summary,
}
