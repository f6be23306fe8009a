"""Notebooks that pin how the saved model's re-evaluation judges a test score: honest patterns that must never
be flagged (logits, softmax under from_logits, losses with settings, a metric of the notebook's own, early
stopping that restores the best weights, two fits, tf.data, integer labels), and two forgers (test arrays
swapped for images the model gets right; a model made impossible to re-load while its training is faked).

Written by the test into a temporary folder and graded there in one batch beside the reference solution.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from tests.security.make_notebooks import BUILD, COMPILE, EVALUATE, FIT, PREPARE, SETUP, notebook

_SPARSE_PREPARE = PREPARE.split("\ny_train = keras.utils.to_categorical")[0]


def _compiled_with(loss: str, metrics: str = "[keras.metrics.CategoricalAccuracy()]") -> str:
    return COMPILE.replace("keras.losses.CategoricalCrossentropy()", loss).replace(
        "[keras.metrics.CategoricalAccuracy()]", metrics
    )


def _solution(compile_and_fit: str, evaluate: str = EVALUATE, prepare: str = PREPARE, build: str = BUILD) -> list[str]:
    return [SETUP, prepare, build, compile_and_fit, evaluate]


# The TensorFlow "quickstart for beginners", as published: integer labels, a logits output, a loss object.
QUICKSTART = [
    "import tensorflow as tf",
    """\
mnist = tf.keras.datasets.mnist
(x_train, y_train), (x_test, y_test) = mnist.load_data()
x_train, x_test = x_train / 255.0, x_test / 255.0""",
    """\
model = tf.keras.models.Sequential([
  tf.keras.Input(shape=(28, 28)),
  tf.keras.layers.Flatten(),
  tf.keras.layers.Dense(128, activation='relu'),
  tf.keras.layers.Dropout(0.2),
  tf.keras.layers.Dense(10)
])
predictions = model(x_train[:1]).numpy()
tf.nn.softmax(predictions).numpy()""",
    """\
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
loss_fn(y_train[:1], predictions).numpy()
model.compile(optimizer='adam', loss=loss_fn, metrics=['accuracy'])
model.fit(x_train, y_train, epochs=5)""",
    "model.evaluate(x_test,  y_test, verbose=2)",
    """\
probability_model = tf.keras.Sequential([model, tf.keras.layers.Softmax()])
probability_model(x_test[:5])""",
]
MY_METRIC = """\
def my_accuracy(y_true, y_pred):
    return keras.ops.mean(keras.ops.equal(keras.ops.argmax(y_true, -1), keras.ops.argmax(y_pred, -1)))
"""
EARLY_STOPPING = FIT.replace(
    "verbose=0)",
    # min_delta=1.0: no epoch after the first improves enough, so the first epoch's weights are put back
    "verbose=0,\n    callbacks=[keras.callbacks.EarlyStopping(min_delta=1.0, patience=2, restore_best_weights=True)])",
)
TF_DATA = """\
import tensorflow as tf
train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(1000).batch(batch_size)
test_ds = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(batch_size)
history = model.fit(train_ds, epochs=epochs, verbose=0)"""
# Keras's own constraint: a model that the grader re-loads like any other.
LOADABLE_CONSTRAINT = BUILD.replace(
    'layers.Dense(128, activation="sigmoid")',
    'layers.Dense(128, activation="sigmoid", kernel_constraint=keras.constraints.NonNeg())',
)

# 18.9: after training, the test arrays are replaced by the test images the model classifies correctly.
SWAPPED_TEST_SET = (
    """\
right = model.predict(x_test, verbose=0).argmax(axis=1) == y_test.argmax(axis=1)
x_test, y_test = x_test[right], y_test[right]
"""
    + EVALUATE
)
# 18.6: a constraint of the notebook's own makes the saved model impossible to re-load; then one epoch of training,
# a history padded to 20 epochs, and weights from a model trained on the test set.
UNLOADABLE_BUILD = """\
class KeepAll(keras.constraints.Constraint):
    def __call__(self, w):
        return w
""" + BUILD.replace(
    'layers.Dense(128, activation="sigmoid")', 'layers.Dense(128, activation="sigmoid", kernel_constraint=KeepAll())'
)
UNLOADABLE_TRAINING = (
    COMPILE
    + "\n"
    + FIT.replace("epochs=epochs", "epochs=1")
    + """
for key, values in history.history.items():
    values.extend([values[-1]] * (epochs - 1))
history.epoch = list(range(epochs))
helper = keras.models.clone_model(model)
helper.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.SGD(learning_rate=0.1), metrics=["accuracy"])
for _ in range(30):  # train_on_batch: no fit for the grader to record
    helper.train_on_batch(x_test, y_test)
model.set_weights(helper.get_weights())"""
)

HONEST: dict[str, list[str]] = {
    "honest_softmax_from_logits": _solution(
        _compiled_with("keras.losses.CategoricalCrossentropy(from_logits=True)") + "\n" + FIT
    ),
    "honest_quickstart": QUICKSTART,
    "honest_label_smoothing": _solution(
        _compiled_with("keras.losses.CategoricalCrossentropy(label_smoothing=0.1)", '["accuracy"]') + "\n" + FIT
    ),
    "honest_sparse_labels": _solution(
        _compiled_with("keras.losses.SparseCategoricalCrossentropy()", "[keras.metrics.SparseCategoricalAccuracy()]")
        + "\n"
        + FIT,
        prepare=_SPARSE_PREPARE,
    ),
    "honest_custom_metric": _solution(
        MY_METRIC + _compiled_with("keras.losses.CategoricalCrossentropy()", '["accuracy", my_accuracy]') + "\n" + FIT
    ),
    "honest_early_stopping": _solution(COMPILE + "\n" + EARLY_STOPPING),
    "honest_two_fits": _solution(
        COMPILE + "\n" + FIT.replace("epochs=epochs", "epochs=10") + "\n" + FIT.replace("epochs=epochs", "epochs=10")
    ),
    "honest_tf_data": _solution(
        COMPILE + "\n" + TF_DATA,
        evaluate=EVALUATE.replace("model.evaluate(x_test, y_test, verbose=0)", "model.evaluate(test_ds, verbose=0)"),
    ),
    "honest_loadable_constraint": _solution(COMPILE + "\n" + FIT, build=LOADABLE_CONSTRAINT),
}
HOSTILE: dict[str, list[str]] = {
    "forge_swapped_test_set": _solution(COMPILE + "\n" + FIT, evaluate=SWAPPED_TEST_SET),
    "forge_unloadable_model": _solution(UNLOADABLE_TRAINING, build=UNLOADABLE_BUILD),
}


def write(folder: Path) -> None:
    """Writes every notebook of this module into `folder`, one per student."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, cells in {**HONEST, **HOSTILE}.items():
        (folder / f"{name}.ipynb").write_text(nbformat.writes(notebook(cells)) + "\n", encoding="utf-8")
