"""Writes tests/security/training_notebooks/: training that did not happen as the notebook claims, and the
honest patterns that must keep their points beside them (run it after editing).

Each attack earned full marks with no flag before the grader judged training as it happened: every fit's data
by value, the weights each fit started from, the epochs and the compile settings in effect while it trained.

    python tests/security/make_training_notebooks.py          # rewrite the folder
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nbformat

from tests.security.make_notebooks import BUILD, COMPILE, EVALUATE, FIT, PREPARE, SETUP, notebook

FOLDER = Path(__file__).parent / "training_notebooks"


def _fit_on(x: str, y: str) -> str:
    return FIT.replace("model.fit(x_train, y_train,", f"model.fit({x}, {y},")


VISUALIZE = """\
indices = np.random.choice(len(x_train), 9, replace=False)
plt.figure(figsize=(6, 6))
for i, idx in enumerate(indices):
    plt.subplot(3, 3, i + 1)
    plt.imshow(x_train[idx].squeeze(), cmap="gray")
    plt.title(int(np.argmax(y_train[idx])))
    plt.axis("off")
plt.show()"""


def _solution_with(*train: str) -> list[str]:
    """The solution up to the model, then `train` in place of compiling and fitting, then the evaluation."""
    return [SETUP, PREPARE, VISUALIZE, BUILD, *train, EVALUATE]


HONEST = COMPILE + "\n" + FIT

# ------------------------------------------------------------------------------------------- attacks (18.5)

# An earlier fit on the test set, then the honest compile and fit.
EARLIER_FIT_ON_TEST = _solution_with(COMPILE + "\n" + _fit_on("x_test", "y_test"), HONEST)
# One fit on an array named x_train that holds the test images (repeated to the training set's size), the
# name restored afterwards.
TEST_NAMED_X_TRAIN = _solution_with(
    """\
kept_images, kept_labels = x_train, y_train
x_train = np.concatenate([x_test] * (len(kept_images) // len(x_test)))
y_train = np.concatenate([y_test] * (len(kept_labels) // len(y_test)))""",
    HONEST,
    "x_train, y_train = kept_images, kept_labels",
)
# A GradientTape loop with a private optimizer on the test set, then the honest compile and fit.
GRADIENT_TAPE_ON_TEST = _solution_with(
    """\
import tensorflow as tf
private = keras.optimizers.Adam(0.01)
for step in range(60):
    with tf.GradientTape() as tape:
        loss = keras.losses.categorical_crossentropy(y_test, model(x_test, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    private.apply_gradients(zip(grads, model.trainable_variables))""",
    HONEST,
)

# ------------------------------------------------------------------------------------------- history (18.7)

# fit(epochs=20) stopped after one epoch by a callback, then the History padded to 20 entries.
PADDED_HISTORY = _solution_with(
    COMPILE,
    """\
class StopAfterOne(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True
history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1, verbose=0,
                    callbacks=[StopAfterOne()])
history.history = {key: values * epochs for key, values in history.history.items()}
history.epoch = list(range(epochs))""",
)

# ------------------------------------------------------------------------------------------- compile (18.8)

# SGD at 0.3 during training, 0.02 afterwards.
RATE_CHANGED_AFTER = _solution_with(
    COMPILE.replace("learning_rate=0.02", "learning_rate=0.3") + "\n" + FIT,
    "model.optimizer.learning_rate = 0.02",
)
# Adam during training, then recompiled with SGD(0.02) and its step counter put back.
RECOMPILED_AFTER = _solution_with(
    COMPILE.replace("keras.optimizers.SGD(learning_rate=0.02)", "keras.optimizers.Adam()") + "\n" + FIT,
    """\
steps = int(model.optimizer.iterations.numpy())
model.compile(loss=keras.losses.CategoricalCrossentropy(), optimizer=keras.optimizers.SGD(learning_rate=0.02),
              metrics=[keras.metrics.CategoricalAccuracy()])
model.optimizer.build(model.trainable_variables)
model.optimizer.iterations.assign(steps)""",
)

# ------------------------------------------------------------------------------------------- mistakes (19.6)

# A fit that raises (integer labels for a one-hot loss): its arguments earn nothing.
FIT_RAISED = _solution_with(COMPILE + "\n" + _fit_on("x_train", "np.argmax(y_train, axis=1)[:10]"))
# Two fit(epochs=20) in a row: 40 epochs of training.
TWO_FITS_IN_A_ROW = _solution_with(HONEST, FIT)

# ------------------------------------------------------------------------------------------- honest patterns

# Training split over two fits of half the epochs each, the history plotted.
HALVES = _solution_with(
    COMPILE,
    FIT.replace("epochs=epochs", "epochs=epochs // 2"),
    FIT.replace("epochs=epochs", "epochs=epochs // 2"),
    'plt.plot(history.history["loss"], label="loss")\nplt.plot(history.history["val_loss"], label="val_loss")\n'
    "plt.legend()\nplt.show()",
)
# A first try of one epoch, then the model built again and trained as asked.
TRIAL_THEN_REBUILT = _solution_with(COMPILE + "\n" + FIT.replace("epochs=epochs", "epochs=1"), BUILD, HONEST)
# A custom kernel constraint, registered so that the saved model loads.
CUSTOM_CONSTRAINT = _solution_with(
    """\
@keras.saving.register_keras_serializable(package="homework")
class Bounded(keras.constraints.Constraint):
    def __init__(self, limit=10.0):
        self.limit = limit
    def __call__(self, w):
        return keras.ops.clip(w, -self.limit, self.limit)
    def get_config(self):
        return {"limit": self.limit}
model = keras.Sequential([
    keras.Input(shape=input_shape),
    layers.Flatten(),
    layers.Dense(128, activation="sigmoid", kernel_constraint=Bounded()),
    layers.Dense(num_classes, activation="softmax"),
])""",
    HONEST,
)
STOPPING = 'keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)'
EARLY_STOPPING = _solution_with(COMPILE, FIT.replace("verbose=0)", f"verbose=0,\n    callbacks=[{STOPPING}])"))
DATASET = _solution_with(
    COMPILE,
    "import tensorflow as tf\ntrain = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(2000).batch(128)\n"
    "history = model.fit(train, epochs=epochs, verbose=0)",
)
# A validation set split off by hand: fit is given the rest of the training set.
HAND_SPLIT = [
    SETUP,
    PREPARE,
    VISUALIZE,
    """\
cut = len(x_train) * 9 // 10
order = np.random.default_rng(0).permutation(len(x_train))
x_train, x_val = x_train[order[:cut]], x_train[order[cut:]]
y_train, y_val = y_train[order[:cut]], y_train[order[cut:]]""",
    BUILD,
    COMPILE,
    "history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_data=(x_val, y_val), "
    "verbose=0)",
    EVALUATE,
]
REFERENCE = _solution_with(HONEST)


def notebooks() -> dict[str, str]:
    """File name -> file text."""
    cells = {
        "attack_earlier_fit_on_test": EARLIER_FIT_ON_TEST,
        "attack_test_named_x_train": TEST_NAMED_X_TRAIN,
        "attack_gradient_tape_on_test": GRADIENT_TAPE_ON_TEST,
        "attack_padded_history": PADDED_HISTORY,
        "attack_rate_changed_after": RATE_CHANGED_AFTER,
        "attack_recompiled_after": RECOMPILED_AFTER,
        "mistake_fit_raised": FIT_RAISED,
        "mistake_two_fits_in_a_row": TWO_FITS_IN_A_ROW,
        "honest_reference": REFERENCE,
        "honest_halves": HALVES,
        "honest_trial_then_rebuilt": TRIAL_THEN_REBUILT,
        "honest_custom_constraint": CUSTOM_CONSTRAINT,
        "honest_early_stopping": EARLY_STOPPING,
        "honest_dataset": DATASET,
        "honest_hand_split": HAND_SPLIT,
    }
    return {f"{name}.ipynb": nbformat.writes(notebook(source)) + "\n" for name, source in cells.items()}


def write_all(folder: Path = FOLDER) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, text in notebooks().items():
        (folder / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER)
