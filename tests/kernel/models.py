"""Small Keras models and a random stand-in for the provisioned dataset, for the re-evaluation's tests (no
kernel, no sandbox)."""

from __future__ import annotations

import keras
import numpy as np

from grader.kernel.provisioned import Provisioned

RNG = np.random.default_rng(7)
N_TRAIN, N_TEST = 300, 100


def provisioned() -> Provisioned:
    """Random images and labels standing in for the dataset file the grader provisions."""
    return Provisioned(
        RNG.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        RNG.integers(0, 10, N_TRAIN).astype(np.uint8),
        RNG.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        RNG.integers(0, 10, N_TEST).astype(np.uint8),
    )


def small_model(metrics: list[object], loss: str = "categorical_crossentropy") -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation="sigmoid"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(loss=loss, optimizer=keras.optimizers.SGD(learning_rate=0.02), metrics=metrics)
    return model


def trained(output: str | None, loss: keras.losses.Loss, metrics: list[object]) -> tuple[keras.Model, Provisioned]:
    data = provisioned()
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, activation=output)])
    model.compile(loss=loss, optimizer="adam", metrics=metrics)
    model.fit(data.x_train / 255.0, data.y_train, epochs=2, verbose=0)
    return model, data
