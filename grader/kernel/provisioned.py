"""The dataset as the grader provisioned it, and its test images prepared the way a model takes them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .labels import class_count


@dataclass(frozen=True)
class Provisioned:
    """The dataset as the grader provisioned it (never the student's copy)."""

    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any

    @property
    def classes(self) -> int:
        """The width of a one-hot label."""
        return class_count(self.y_train)


def load_dataset(path: str) -> Provisioned:
    import numpy as np

    with np.load(path) as data:
        return Provisioned(data["x_train"], data["y_train"], data["x_test"], data["y_test"])


def prepared_test_images(model: Any, data: Provisioned, scaled: bool) -> Any:
    """The provisioned test images in the model's own input format: reshaped to the shape it accepts when the
    element count matches (784 and 28x28x1 alike), else with a channel axis as the reference prepares them;
    divided by 255 unless the student trained on raw pixels."""
    import numpy as np

    x = data.x_test.astype("float32")
    if scaled:
        x /= np.float32(255)
    accepted = _input_shape(model)
    if accepted is not None and math.prod(accepted) == x[0].size:
        return x.reshape(len(x), *accepted)
    return np.expand_dims(x, -1)


def _input_shape(model: Any) -> tuple[int, ...] | None:
    """The shape of one sample the model accepts; None when it has several inputs or an open dimension."""
    try:
        shape = tuple(model.input_shape)
    except Exception:
        return None
    sample = shape[1:]
    if not sample or not all(isinstance(n, int) and n > 0 for n in sample):
        return None
    return sample


def same_images(x: Any, raw: Any) -> bool:
    """Whether `x` holds the provisioned images `raw`, in order, each pixel scaled and shifted alike (raw, divided
    by 255, standardized, mapped to [-1, 1]): a * raw + b for one a != 0 and one b."""
    import numpy as np

    if x.size != raw.size or len(x) != len(raw) or x.dtype.kind not in "biuf" or not raw.size:
        return False
    flat_x, flat_raw = x.reshape(-1), raw.reshape(-1)
    low, high = int(flat_raw.argmin()), int(flat_raw.argmax())
    if flat_raw[low] == flat_raw[high]:
        return False
    a = (float(flat_x[high]) - float(flat_x[low])) / (float(flat_raw[high]) - float(flat_raw[low]))
    b = float(flat_x[low]) - a * float(flat_raw[low])
    if a == 0 or not math.isfinite(a) or not math.isfinite(b):
        return False
    tolerance = 1e-5 * (abs(a) * float(flat_raw[high]) + abs(b)) + 1e-6
    # In blocks: the whole training set at once would take several temporary copies of hundreds of MB.
    for start in range(0, len(x), 4096):
        block = np.asarray(x[start : start + 4096], dtype=np.float64).reshape(-1)
        expected = raw[start : start + 4096].astype(np.float64).reshape(-1) * a + b
        if np.abs(block - expected).max(initial=0) > tolerance:
            return False
    return True
