"""What a data array holds, read by the kernel package as the facts schema reads it."""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.facts import ArrayFacts
from grader.kernel import arrays

N_TRAIN = 300


def test_the_probe_reads_images_and_labels_as_the_facts_schema_does() -> None:
    """The kernel package cannot import grader.facts: its copy of ArrayFacts.images and .labels must agree."""
    for split in ("", "train", "test"):
        for scaled, raw, onehot, match in np.ndindex(2, 2, 2, 2):
            for shape in ([N_TRAIN], [N_TRAIN, 10]):
                fields: dict[str, Any] = {"present": True, "shape": shape, "split": split}
                fields |= {"matches_scaled": bool(scaled), "matches_raw": bool(raw)}
                fields |= {"onehot": bool(onehot), "labels_match": bool(match)}
                array = ArrayFacts(**fields)
                assert arrays.images_held(fields) == array.images
                assert arrays.labels_held(fields) == array.labels
