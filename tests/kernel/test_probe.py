"""The probe in this process, under an IPython shell, on a small random dataset: what it records of variables,
arrays under any name, the trained model however it was named or built, calls to fit and evaluate with their
arguments and data, layer configurations and figures; decoded by the grader's own strict decoder."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell
from matplotlib.backend_bases import FigureCanvasBase

from grader.facts import KernelFacts, ModelCall, ProbeRequest
from grader.keras_facts import KerasObject
from grader.kernel import hooks, keras_identity, state
from grader.kernel import probe as probe_module
from grader.strictjson import decode

N_TRAIN, N_TEST = 300, 100
VARIABLES = ["acc", "batch_size", "input_shape", "indices", "learning", "long_text", "model", "probability_model"]
VARIABLES += ["score", "shape"]


class Probe:
    """The probe installed in an IPython shell; `run` executes a cell as the student's code."""

    def __init__(self, shell: InteractiveShell, out_dir: Path) -> None:
        self.shell, self.out_dir = shell, out_dir

    def run(self, code: str) -> None:
        result = self.shell.run_cell(code, store_history=False)
        result.raise_error()

    def facts(self) -> KernelFacts:
        """What the probe collects now, through the grader's strict decoder."""
        return decode(json.dumps(probe_module._collect()), KernelFacts, max_bytes=8 << 20)


def _write_dataset(path: Path) -> None:
    rng = np.random.default_rng(3)
    x_train = rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8)
    y_train, y_test = (np.arange(N_TRAIN) % 10).astype(np.uint8), (np.arange(N_TEST) % 10).astype(np.uint8)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


@pytest.fixture
def probe(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Probe]:
    loader = getattr(request, "param", "mnist")
    _write_dataset(tmp_path / "data.npz")
    main = sys.modules["__main__"]  # IPython's shell puts a module of its own there
    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    loaders = {name: m.load_data for name, m in list(sys.modules.items()) if hasattr(m, "load_data")}
    printing = FigureCanvasBase.print_figure
    wire = json.dumps({"loader": loader, "variables": VARIABLES})
    probe_module.install(wire, str(tmp_path / "data.npz"), str(tmp_path))
    try:
        shell.run_cell("import numpy as np\nimport keras\nimport matplotlib\nmatplotlib.use('Agg')\n")
        yield Probe(shell, tmp_path)
    finally:
        # Put back what install replaced in this process, for the tests that follow.
        recorded = state.current()
        for name in hooks.TRACKED_METHODS:
            setattr(recorded.owners[name], name, recorded.originals[name])
        for name in ("__call__", "predict"):
            setattr(keras.Model, name, recorded.originals[f"model.{name}"])
        recorded.owners["variable"].__init__ = recorded.originals["variable"]
        FigureCanvasBase.print_figure = printing  # type: ignore[method-assign]
        sys.modules["__main__"] = main  # multiprocessing's spawn (Dask's nanny, later) reads its __spec__
        for name, load_data in loaders.items():
            sys.modules[name].load_data = load_data  # type: ignore[attr-defined]
        state.begin(None)
        shell.reset(new_session=False)


PREPARE = """\
(x_tr, y_tr), (x_te, y_te) = keras.datasets.{loader}.load_data()
X_train = x_tr.reshape(-1, 784).astype("float32") / 255
X_valid = X_train
X_test = x_te.reshape(-1, 784).astype("float32") / 255
Y_train = keras.utils.to_categorical(y_tr)
Y_test = keras.utils.to_categorical(y_te)
"""
BUILD = """\
def build():
    net = keras.Sequential([keras.Input((784,)), keras.layers.Dense(8, activation="sigmoid"),
                            keras.layers.Dense(10, activation="softmax")])
    net.compile(loss="categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    return net
"""


def test_variables_are_recorded_as_plain_values(probe: Probe) -> None:
    probe.run(
        "input_shape = (28, 28, 1)\nbatch_size = np.int64(128)\nindices = [3, 1, 4]\nlearning = np.float32(0.5)\n"
        "shape = (None, 28)\nlong_text = 'x' * 300\nmodel = object()"
    )
    facts = probe.facts()
    assert facts.request == ProbeRequest(loader="mnist", variables=VARIABLES)
    assert facts.variable("input_shape").value == [28, 28, 1]
    assert facts.variable("input_shape").repr == "(28, 28, 1)"
    array = facts.variable("input_shape").array
    assert array is not None and array.shape == [3] and array.dtype == "int64"
    batch = facts.variable("batch_size")
    assert batch.value == 128 and isinstance(batch.value, int) and batch.type_name == "int64" and batch.array is None
    assert facts.variable("indices").value == [3, 1, 4]
    assert facts.variable("learning").value == pytest.approx(0.5)
    assert facts.variable("shape").value == [None, 28] and facts.variable("shape").array is None
    assert facts.variable("long_text").value is None and facts.variable("long_text").repr.startswith("'xxx")
    assert facts.variable("model").type_name == "object" and not facts.model.present
    assert not facts.variable("score").present


@pytest.mark.parametrize("probe", ["fashion_mnist"], indirect=True)
def test_any_loader_serves_the_data_and_arrays_are_found_under_any_name(probe: Probe) -> None:
    probe.run(PREPARE.format(loader="fashion_mnist"))
    facts = probe.facts()
    found = {tuple(entry.names): entry.facts for entry in facts.arrays}
    assert found[("X_train", "X_valid")].images == "train_scaled"
    assert found[("X_train", "X_valid")].shape == [N_TRAIN, 784]
    assert found[("x_tr",)].images == "train_raw"
    assert found[("X_test",)].images == "test_scaled"
    assert found[("Y_train",)].labels == "train_onehot" and found[("y_te",)].labels == "test_sparse"
    assert facts.integrity.hooks_intact["load_data"]


def test_a_model_trained_under_any_name_is_found_with_its_fit_and_evaluate(probe: Probe) -> None:
    probe.run(PREPARE.format(loader="mnist") + BUILD)
    probe.run("clf = build()\nclf.fit(X_train, Y_train, batch_size=32, epochs=2, validation_split=0.1, verbose=0)")
    probe.run("loss, acc = clf.evaluate(X_test, Y_test, verbose=0)")
    facts = probe.facts()
    assert facts.model.present and facts.model.found_by == "fit" and facts.model.names == ["clf"]
    (fit,) = facts.fit_calls
    assert fit.arguments == {"batch_size": 32, "epochs": 2, "validation_split": 0.1, "verbose": 0}
    assert fit.argument("shuffle") is True and fit.trained and fit.completed_epochs == 2
    assert fit.x.names == ["X_train", "X_valid"] and fit.x.images == "train_scaled"
    assert fit.x.n_samples == N_TRAIN and fit.x.sample_shape == [784]
    assert fit.y.names == ["Y_train"] and fit.y.labels == "train_onehot"
    (evaluated,) = facts.evaluate_calls
    assert evaluated.x.images == "test_scaled" and evaluated.y.labels == "test_onehot"
    assert evaluated.result is not None and len(evaluated.result) == 2
    assert evaluated.weights and evaluated.weights == fit.weights_after  # the weights the score belongs to
    assert facts.variable("acc").from_evaluate and facts.variable("acc").value == pytest.approx(evaluated.result[1])
    assert facts.history is not None and facts.history.from_fit and facts.history.epochs == 2


def test_a_model_built_and_trained_inside_a_function_is_saved_with_the_evaluated_test_arrays(probe: Probe) -> None:
    probe.run(PREPARE.format(loader="mnist") + BUILD)
    probe.run(
        "def train():\n    net = build()\n    net.fit(X_train, Y_train, epochs=1, verbose=0)\n"
        "    return net.evaluate(X_test[::-1], Y_test[::-1], verbose=0)\nscore = train()\n"
        "model = build()  # never trained"
    )
    probe_module.finish()
    facts = decode((probe.out_dir / "facts.json").read_bytes(), KernelFacts, max_bytes=8 << 20)
    assert facts.model.found_by == "fit" and facts.model.names == [] and facts.model.saved
    assert facts.variable("score").from_evaluate
    saved = keras.saving.load_model(probe.out_dir / "model.keras")
    assert keras_identity.weights_digest(saved) == facts.fit_calls[-1].weights_after
    with np.load(probe.out_dir / "student_test.npz") as test:
        assert np.array_equal(test["x"], probe.shell.user_ns["X_test"][::-1])


def test_without_a_fit_the_model_is_found_by_name_then_anywhere(probe: Probe) -> None:
    probe.run(BUILD + "other = build()")
    assert probe.facts().model.found_by == "namespace"
    probe.run("model = build()")
    facts = probe.facts()
    assert facts.model.found_by == "name" and facts.model.names == ["model"]


def test_without_an_evaluate_the_namespace_test_arrays_are_saved(probe: Probe) -> None:
    probe.run(PREPARE.format(loader="mnist") + BUILD + "model = build()\nmodel.fit(X_train, Y_train, verbose=0)")
    probe_module.finish()
    with np.load(probe.out_dir / "student_test.npz") as test:
        assert np.array_equal(test["x"], probe.shell.user_ns["X_test"])
        assert np.array_equal(test["y"], probe.shell.user_ns["Y_test"])


def test_layer_configurations_are_plain_data(probe: Probe) -> None:
    probe.run(
        "model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, (3, 3), activation='relu'),\n"
        "    keras.layers.MaxPooling2D((2, 2)), keras.layers.Dropout(0.25), keras.layers.Flatten(),\n"
        "    keras.layers.Dense(10, activation=keras.activations.softmax)])"
    )
    conv, pool, dropout, _, dense = probe.facts().model.layers
    assert conv.config["kernel_size"] == [3, 3] and conv.config["filters"] == 4 and conv.activation == "relu"
    assert conv.config["padding"] == "valid" and conv.config["strides"] == [1, 1]
    assert pool.config["pool_size"] == [2, 2] and dropout.config["rate"] == 0.25
    assert dense.units == 10 and dense.activation == "softmax"
    for unwanted in ("name", "trainable", "dtype", "kernel_initializer"):
        assert unwanted not in conv.config


def test_a_figure_panel_is_matched_to_its_training_image_without_an_indices_variable(probe: Probe) -> None:
    probe.run(
        PREPARE.format(loader="mnist")
        + "import matplotlib.pyplot as plt\nfig, axes = plt.subplots(1, 2)\n"
        + "axes[0].imshow(X_train[123].reshape(28, 28))\naxes[1].imshow(x_tr[7])\naxes[0].set_title('3')\n"
    )
    probe.shell.user_ns["fig"].savefig(io.BytesIO())
    (figure,) = probe.facts().figures
    assert [p.matched_index for p in figure.panels] == [123, 7]
    assert [p.true_label for p in figure.panels] == [3, 7]


def test_a_saved_model_loads_compiled_as_without_the_probe(probe: Probe) -> None:
    """Keras compiles a loaded model from its config unless `compile` is overridden: the hooks must not look so."""
    path = str(probe.out_dir / "best.keras")
    probe.run(PREPARE.format(loader="mnist") + BUILD + f"model = build()\nmodel.save({path!r})")
    probe.run(f"again = keras.models.load_model({path!r})\nresult = again.evaluate(X_test, Y_test, verbose=0)")
    assert len(probe.shell.user_ns["result"]) == 2


def test_the_model_evaluated_on_the_test_set_is_the_notebook_s_even_if_another_is_trained_after(
    probe: Probe,
) -> None:
    probe.run(PREPARE.format(loader="mnist") + BUILD)
    probe.run("model = build()\nmodel.fit(X_train, Y_train, epochs=2, verbose=0)")
    probe.run("score = model.evaluate(X_test, Y_test, verbose=0)")
    probe.run("tiny = build()\ntiny.fit(X_train[:10], Y_train[:10], epochs=1, verbose=0)")
    facts = probe.facts()
    assert facts.model.names == ["model"]
    fit = facts.training_fit()
    assert fit is not None and fit.x.n_samples == N_TRAIN and fit.argument("epochs") == 2
    assert [call.of_model for call in facts.fit_calls] == [True, False]


def test_evaluate_with_return_dict_records_the_loss_first(probe: Probe) -> None:
    probe.run(PREPARE.format(loader="mnist") + BUILD + "model = build()\nmodel.fit(X_train, Y_train, verbose=0)")
    probe.run("score = model.evaluate(X_test, Y_test, verbose=0, return_dict=True)")
    result = probe.facts().evaluate_calls[-1].result
    assert result is not None and result[0] == pytest.approx(probe.shell.user_ns["score"]["loss"])


def test_a_value_that_raises_base_exceptions_does_not_stop_the_collection(probe: Probe) -> None:
    probe.run(
        "class Lazy:\n    __array__ = None\n"
        "    shape = property(lambda self: (_ for _ in ()).throw(KeyboardInterrupt))\n"
        "shape = Lazy()\nbatch_size = 128\n" + "long" * 60 + "_name = np.zeros((300, 2))"
    )
    facts = probe.facts()
    assert facts.variable("batch_size").value == 128
    assert all(len(name) <= 100 for array in facts.arrays for name in array.names)


def test_a_title_on_the_left_is_read(probe: Probe) -> None:
    probe.run(
        PREPARE.format(loader="mnist") + "import io\nimport matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"
        "ax.imshow(x_tr[0])\n"
        "ax.set_title(str(y_tr[0]), loc='left')\nfig.canvas.draw()\nfig.savefig(io.BytesIO())"
    )
    (figure,) = probe.facts().figures
    assert figure.panels[0].title == str(probe.shell.user_ns["y_tr"][0])


def test_compile_records_each_argument_by_class_and_settings(probe: Probe) -> None:
    probe.run(PREPARE.format(loader="mnist"))
    probe.run(
        "net = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])\n"
        "net.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer='adam',\n"
        "            metrics=['accuracy', keras.metrics.SparseTopKCategoricalAccuracy(k=3)])\n"
        "net.compile(loss='sparse_categorical_crossentropy', optimizer=keras.optimizers.SGD(0.02), metrics=['acc'])"
    )
    logits, named = probe.facts().compile_calls
    assert logits.loss_object is not None and logits.loss_object.name == "sparse_categorical_crossentropy"
    assert logits.loss_object.settings["from_logits"] is True and "name" not in logits.loss_object.settings
    assert logits.optimizer_object is not None and logits.optimizer_object.name == "adam"
    assert logits.optimizer_object.settings["learning_rate"] == pytest.approx(0.001)
    assert [m.name for m in logits.metric_objects] == ["accuracy", "sparse_top_k_categorical_accuracy"]
    assert logits.metric_objects[1].settings["k"] == 3
    # A string is what compile resolves it to: the function, with its keyword defaults.
    assert named.loss_object is not None and named.loss_object.settings["from_logits"] is False
    assert named.optimizer_object is not None and named.optimizer_object.name == "sgd"
    assert named.optimizer_object.settings["learning_rate"] == pytest.approx(0.02)
    assert named.metric_objects == [KerasObject("accuracy")]


def test_a_second_model_records_that_it_wraps_the_trained_one_and_its_calls_on_test_images(probe: Probe) -> None:
    probe.run(PREPARE.format(loader="mnist") + BUILD)
    probe.run("model = build()\nmodel.fit(X_train, Y_train, epochs=1, verbose=0)\nmodel(X_train[:2])")
    probe.run("probability_model = keras.Sequential([model, keras.layers.Softmax()])")
    probe.run("probability_model(X_test[:5])\nprobability_model.predict(x_te[3:6].reshape(3, 784), verbose=0)")
    probe.run("probability_model.predict(X_train[:4], verbose=0)")
    facts = probe.facts()
    other = facts.variable("probability_model").model
    assert other is not None and other.wraps_trained and not other.is_trained
    assert [layer.class_name for layer in other.layers] == ["Sequential", "Softmax"]
    # Keras's own calls of the inner model, inside fit or inside the outer model, are not the notebook's.
    assert other.calls == [ModelCall("call", 5, 5), ModelCall("predict", 3, 3), ModelCall("predict", 4, 0)]
    trained = facts.variable("model").model
    assert trained is not None and trained.is_trained and trained.calls == [ModelCall("call", 2, 0)]
    # A functional wrapper: the same layers (its input is none), built on the same trained model.
    probe.run(
        "inputs = keras.Input((784,))\nprobability_model = keras.Model(inputs, keras.layers.Softmax()(model(inputs)))"
    )
    functional = probe.facts().variable("probability_model").model
    assert functional is not None and functional.wraps_trained and functional.calls == []
    assert [layer.class_name for layer in functional.layers] == ["Sequential", "Softmax"]


def test_the_arrays_fit_and_evaluate_receive_are_matched_sample_by_sample(probe: Probe) -> None:
    """A hand-split part of the training set, shuffled, is training images and labels; test images hidden in an
    array with the training set's count are counted, whatever it is called."""
    probe.run(PREPARE.format(loader="mnist") + BUILD)
    probe.run(
        "order = np.random.default_rng(1).permutation(250)\n"
        "part, part_labels = X_train[:250][order], Y_train[:250][order]\n"
        "net = build()\nnet.fit(part, part_labels, validation_data=(X_train[250:], Y_train[250:]), verbose=0)\n"
        "mixed = np.concatenate([X_test, X_train[len(X_test):]])\nnet.fit(mixed, Y_train, verbose=0)\n"
        "net.evaluate(X_test[:50], Y_test[:50], verbose=0)"
    )
    part, mixed = probe.facts().fit_calls
    assert part.x.images == "" and part.x.held_images == "train_scaled" and part.x.test_rows == 0
    assert part.y.labels == "" and part.y.held_labels == "train_onehot"
    assert mixed.x.array is not None and mixed.x.array.train_rows == N_TRAIN - N_TEST
    assert mixed.x.test_rows == N_TEST and mixed.x.held_images == ""
    (evaluated,) = probe.facts().evaluate_calls
    assert evaluated.x.held_images == "test_scaled" and evaluated.y.held_labels == "test_onehot"


def test_training_is_recorded_as_it_happened(probe: Probe) -> None:
    """What a fit really did, as it did it: the epochs its callback saw (a History padded later changes nothing),
    the optimizer and learning rate of its steps (not a later one), weights trained by a loop of the notebook's own."""
    probe.run(PREPARE.format(loader="mnist") + BUILD)
    probe.run(
        "class Stop(keras.callbacks.Callback):\n"
        "    def on_epoch_end(self, epoch, logs=None):\n        self.model.stop_training = True\n"
        "net = build()\nnet.compile(loss='categorical_crossentropy', optimizer=keras.optimizers.SGD(0.3))\n"
        "h = net.fit(X_train, Y_train, batch_size=100, epochs=4, callbacks=[Stop()], verbose=0)\n"
        "h.history = {k: v * 4 for k, v in h.history.items()}\nh.epoch = [0, 1, 2, 3]\n"
        "net.optimizer.learning_rate = 0.02"
    )
    (stopped,) = probe.facts().fit_calls
    assert stopped.epochs_seen == 1 and stopped.steps_seen == 3 and stopped.epochs == 1
    assert stopped.optimizer == "sgd" and stopped.learning_rates == [pytest.approx(0.3)] and stopped.trained_before == 0
    probe.run(
        "net.fit(X_train, Y_train, verbose=0)\nrebuilt = build()\nrebuilt.fit(X_train, Y_train, verbose=0)\n"
        "copy = build()\ncopy.set_weights(net.get_weights())\ncopy.fit(X_train, Y_train, verbose=0)"
    )
    assert [call.trained_before for call in probe.facts().fit_calls] == [0, 0, 0, 0]
    probe.run(
        "import tensorflow as tf\ntaped = build()\nprivate = keras.optimizers.Adam()\n"
        "for _ in range(2):\n    with tf.GradientTape() as tape:\n"
        "        loss = keras.losses.categorical_crossentropy(Y_test, taped(X_test))\n"
        "    grads = tape.gradient(loss, taped.trainable_variables)\n"
        "    private.apply_gradients(zip(grads, taped.trainable_variables))\n"
        "taped.fit(X_train, Y_train, verbose=0)"
    )
    facts = probe.facts()
    assert facts.fit_calls[-1].trained_before == 4 and facts.integrity.hooks_intact["variable"]
    assert facts.continued(facts.fit_calls[1]) == facts.fit_calls[:2]
