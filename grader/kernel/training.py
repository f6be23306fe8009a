"""Training as it happened: the value each weight was created with or a recorded fit left, and what a fit
really ran (epochs, steps, optimizer, learning rates)."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import keras
import numpy as np

from .keras_identity import identity, learning_rate, optimizer_name, weights_digest
from .plain import MAX_LIST, guarded
from .state import current


def variable_digest(variable: Any) -> str:
    return hashlib.sha1(np.ascontiguousarray(keras.ops.convert_to_numpy(variable)).tobytes()).hexdigest()


def hook_variables() -> None:
    """Records the value each Keras variable is created with: a model's weights that enter a fit with any other
    value, and that no recorded fit left them at, were trained (or set) by something the probe did not see."""
    st = current()
    owner = next(cls for cls in keras.Variable.__mro__ if "__init__" in vars(cls))
    original = owner.__init__
    st.originals["variable"], st.owners["variable"] = original, owner

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        with contextlib.suppress(Exception):  # a variable whose value comes later (a stateless scope) has none yet
            st.explained[id(self)] = {variable_digest(self)}

    init.__name__, init.__doc__ = original.__name__, original.__doc__
    st.hooks["variable"] = init
    owner.__init__ = init


def note_weights(model: Any) -> None:
    """The model's trainable weights as a recorded fit left them: explained from now on."""
    st = current()
    for variable in model.trainable_variables:
        digest = variable_digest(variable)
        if len(st.fit_values) < 100 * MAX_LIST:
            st.fit_values.add(digest)
        if id(variable) in st.explained and len(st.explained[id(variable)]) < MAX_LIST:
            st.explained[id(variable)].add(digest)


def _unexplained(model: Any) -> int:
    """How many of the model's trainable weights hold a value that neither their creation nor a recorded fit
    gave them, nor any variable after a recorded fit (weights the probe saw created only: a variable made before
    install is not judged)."""
    st = current()
    unexplained = 0
    for variable in model.trainable_variables:
        if id(variable) in st.explained:
            digest = variable_digest(variable)
            unexplained += digest not in st.explained[id(variable)] and digest not in st.fit_values
    return unexplained


def training_start(model: Any) -> dict[str, Any]:
    """What a fit starts from: the weights, whether something unrecorded trained them, the loss compiled."""
    return {
        "weights_before": weights_digest(model),
        "trained_before": _unexplained(model),
        "loss": identity(getattr(model, "loss", None), "loss"),
    }


def _watch(record: dict[str, Any]) -> Any:
    """A callback, run after the notebook's own, that writes into `record` what the fit really did: the epochs
    and batches it ran, the optimizer and every learning rate its steps used; each epoch's weights are explained
    (a checkpoint restored later is one of them)."""
    st = current()
    record.update(epochs_seen=0, steps_seen=0, learning_rates=[])

    class TrainingWatch(st.callback_cls):  # type: ignore[name-defined]
        def on_train_begin(self, logs: Any = None) -> None:
            record["optimizer"] = optimizer_name(getattr(self.model, "optimizer", None))

        def on_train_batch_begin(self, batch: Any, logs: Any = None) -> None:
            rate = learning_rate(getattr(self.model, "optimizer", None))
            rates = record["learning_rates"]
            if rate is not None and rate not in rates and len(rates) < 10:
                rates.append(rate)

        def on_train_batch_end(self, batch: Any, logs: Any = None) -> None:
            record["steps_seen"] += 1

        def on_epoch_end(self, epoch: Any, logs: Any = None) -> None:
            record["epochs_seen"] += 1
            guarded(lambda: note_weights(self.model), None)

    return TrainingWatch()


def watched(record: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """fit's keyword arguments with a `_watch` writing into `record` after the notebook's callbacks; unchanged
    when the callbacks were passed by position or as something else than a list (the fit is then recorded
    without what the watch sees: `epochs_seen` stays unknown, not zero)."""
    callbacks = kwargs.get("callbacks")
    if len(args) > 5 or not (callbacks is None or isinstance(callbacks, list | tuple)):
        return kwargs
    return {**kwargs, "callbacks": [*(callbacks or ()), _watch(record)]}
