"""The names a rubric gives Keras (its dataset loader, layers, loss, optimizer, metrics) checked against Keras."""

from __future__ import annotations

import difflib

from grader.assignment import Assignment, KerasObjectSpec
from grader.keras_api import keras_names
from grader.kernel.keras_spelling import ACCURACY_STRINGS, name_key
from grader.rubric.source import Source, suggestion


def check_keras_names(source: Source, assignment: Assignment) -> None:
    """Every name the rubric gives Keras is one of Keras's: the dataset loader, the layers, the loss, the
    optimizer and the metrics (a typo here would otherwise show only as a reference that does not score 100)."""
    loaders = keras_names("datasets")
    if loaders and assignment.dataset.loader not in loaders:
        name = assignment.dataset.loader
        problem = f"{name!r} is not a keras.datasets loader{suggestion(name, sorted(loaders))}"
        raise source.error(("dataset", "loader"), problem)
    layers = keras_names("layers")
    for n, layer in enumerate(assignment.model.layers):
        if layers and layer.class_name not in layers:
            problem = f"{layer.class_name!r} is not a Keras layer{suggestion(layer.class_name, sorted(layers))}"
            raise source.error(("model", "layers", n), problem)
    settings = assignment.compile
    named: list[tuple[tuple[str | int, ...], KerasObjectSpec | None, str]] = [
        (("compile", "loss"), settings.loss, "losses"),
        (("compile", "optimizer"), settings.optimizer, "optimizers"),
        *((("compile", "metrics", n), metric, "metrics") for n, metric in enumerate(settings.metrics)),
    ]
    for where, spec, module in named:
        given = spec.class_name if spec is not None else None
        # One spelling per name, a function's (categorical_crossentropy) before its class's (CategoricalCrossentropy).
        known = {name_key(n): n for n in sorted(keras_names(module), key=str.islower)}
        if module == "metrics":
            known |= {name: name for name in ACCURACY_STRINGS}  # compile picks the accuracy from the labels
        if given is not None and known and name_key(given) not in known:
            close = difflib.get_close_matches(name_key(given), list(known), n=1, cutoff=0.6)
            hint = f"; did you mean {known[close[0]]!r}?" if close else ""
            raise source.error(where, f"{given!r} is not one of keras.{module}{hint}")
