"""The number of classes, one reading for the probe, the re-evaluation and the grader."""

from __future__ import annotations

import numpy as np

from grader.kernel.labels import class_count


def test_the_classes_are_the_distinct_labels_the_width_of_a_one_hot_label() -> None:
    labels = np.array([3, 0, 9, 1, 2, 4, 5, 6, 7, 8, 3], dtype=np.uint8)
    assert class_count(labels) == 10 == np.eye(10)[labels].shape[1]
