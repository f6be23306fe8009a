"""What Keras offers, read without importing Keras (which takes seconds); how its names are spelt is
`grader.kernel.keras_spelling`."""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path


@functools.cache
def keras_names(module: str) -> frozenset[str]:
    """What `keras.<module>` offers (classes, functions, submodules), read from its API file without importing
    Keras; empty when Keras is not installed."""
    spec = importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    init = Path(next(iter(spec.submodule_search_locations))) / module / "__init__.py"
    # keras/layers/__init__.py: "from keras.src.layers.core.dense import Dense as Dense", or the same in brackets
    names = re.findall(r"\b\w+ as (\w+)\b", init.read_text(encoding="utf-8"))
    return frozenset(name for name in names if not name.startswith("_"))
