"""How Keras names are spelt: one key for a name however it is written, snake_case, and the strings that
name an accuracy (standard library only: shared by the probe, the re-evaluation and the grader's checks)."""

from __future__ import annotations

import re

# The metric strings whose kind `compile` picks from the labels (categorical, sparse or binary accuracy).
ACCURACY_STRINGS = ("accuracy", "acc")
# What Keras may name after "accuracy": the metric it picks for that string, from the labels.
ACCURACY_KINDS = frozenset({"accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy"})


def name_key(name: str) -> str:
    """A Keras name however it is written: CategoricalCrossentropy, categorical_crossentropy, SGD, sgd."""
    return name.replace("_", "").replace(" ", "").lower()


def snake_case(name: str) -> str:
    """A class name as Keras spells its function: CategoricalCrossentropy -> categorical_crossentropy."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
