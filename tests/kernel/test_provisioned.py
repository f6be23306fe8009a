"""The provisioned test images prepared as a model takes them, and the student's images recognised as them."""

from __future__ import annotations

import keras
import numpy as np

from grader.kernel.provisioned import prepared_test_images, same_images
from tests.kernel.models import N_TEST, provisioned


def test_a_model_whose_input_matches_no_reshaping_gets_the_reference_preparation() -> None:
    data = provisioned()
    odd = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    assert prepared_test_images(odd, data, True).shape == (N_TEST, 28, 28, 1)


def test_images_scaled_and_shifted_alike_are_the_provisioned_ones() -> None:
    raw = provisioned().x_test
    for prepared in (raw, raw / 255.0, (raw - raw.mean()) / raw.std(), raw.astype("float32") / 127.5 - 1):
        assert same_images(prepared.reshape(N_TEST, 784), raw)
    assert not same_images(raw[::-1], raw)
    assert not same_images(raw[:50], raw)
    assert not same_images(np.sqrt(raw), raw)
