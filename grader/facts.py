"""The facts schema: everything a notebook run left behind that scoring may read, and its JSON round trip.

Two producers fill it. `KernelFacts` are collected inside the student's kernel by `grader.kernel.probe`
and cross the sandbox boundary as JSON; they are untrusted and decoded strictly (`grader.strictjson`:
unknown keys, wrong types, deep nesting and out-of-range numbers are refused). `ExecutionFacts` and
`Reevaluation` (`grader.reevaluation_facts`) are produced by the grader itself, outside the student's process.
Layers, losses, optimizers and metrics are described alike by both (`grader.keras_facts`).
"""

from __future__ import annotations

import json
from pathlib import Path

from msgspec import Struct, field, to_builtins

from grader.atomic_write import atomic_write
from grader.keras_facts import KerasObject, LayerFacts, Scalar, Value
from grader.reevaluation_facts import Reevaluation
from grader.statuses import CellStatus, RunStatus
from grader.strictjson import decode

SCHEMA_VERSION = 2
# How many of the provisioned training labels the facts keep, in order, for checks of what a notebook printed.
FIRST_LABELS = 100
# A cached Facts holds the notebook's kept outputs (images, stdout) beside the kernel's facts.
MAX_FACTS_JSON_BYTES = 64 << 20
# Every part is immutable, and decoding refuses a key it does not declare (forbid_unknown_fields).


class ProbeRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """What the grader asks the probe to record, from the rubric: sent into the kernel at install and kept in
    the facts, so that a rubric asking for more than a cached run recorded re-executes that notebook."""

    loader: str  # the keras.datasets module whose load_data serves the provisioned arrays, e.g. "mnist"
    variables: list[str]  # namespace names to summarize, whatever they hold


class ArrayFacts(Struct, frozen=True, forbid_unknown_fields=True):
    """An array-like value: its summary, and how it relates to the provisioned dataset."""

    present: bool
    type_name: str = ""
    shape: list[int] | None = None
    dtype: str = ""
    min: float | None = None
    max: float | None = None
    # The provisioned split whose sample count it has ("train" or "test"), else "".
    split: str = ""
    # Images: every pixel equals that split's provisioned pixel divided by 255 (scaled), or equals it (raw);
    # compared element by element whatever the shape, so a flattened or channel-added copy matches.
    matches_scaled: bool | None = None
    matches_raw: bool | None = None
    # Labels: every row one-hot; the argmax (or the value itself, 1-D) equals that split's provisioned label.
    onehot: bool | None = None
    labels_match: bool | None = None
    # Sample by sample, in any order and count (a hand-split part, a shuffled or reshaped copy): how many samples
    # are a provisioned training image, and how many a test image that is no training image; None: not compared.
    train_rows: int | None = None
    test_rows: int | None = None
    rows_scaled: bool | None = None  # the samples matched are the provisioned pixels divided by 255, else raw
    # Labels passed beside images (to fit or evaluate): the split whose provisioned labels they equal, row for
    # row, at the images' own positions in it ("train" or "test"); "" when they do not or were not compared.
    rows_labels: str = ""

    @property
    def held_images(self) -> str:
        """Which split's provisioned images every sample is, in any order and count: "train_scaled", "test_raw",
        ... (all of them in order included) or ""."""
        n = self.shape[0] if self.shape else 0
        for split, rows in (("train", self.train_rows), ("test", self.test_rows)):
            if n and rows == n:
                return f"{split}_{'scaled' if self.rows_scaled else 'raw'}"
        return self.images

    @property
    def held_labels(self) -> str:
        """Which split's provisioned labels it holds, in order or at the positions of the images beside it."""
        if self.labels or not self.rows_labels or self.shape is None:
            return self.labels
        form = "sparse" if len(self.shape) == 1 else "onehot" if self.onehot else "other"
        return f"{self.rows_labels}_{form}"

    @property
    def images(self) -> str:
        """Which provisioned images it holds, all of them in order: "train_scaled", "test_raw", ... or ""."""
        if self.split and (self.matches_scaled or self.matches_raw):
            return f"{self.split}_{'scaled' if self.matches_scaled else 'raw'}"
        return ""

    @property
    def labels(self) -> str:
        """Which provisioned labels it holds: "train_onehot", "test_sparse", "train_other" (the right classes,
        not strictly one-hot) ... or ""."""
        if not self.split or not self.labels_match or self.shape is None:
            return ""
        form = "sparse" if len(self.shape) == 1 else "onehot" if self.onehot else "other"
        return f"{self.split}_{form}"


class ModelCall(Struct, frozen=True, forbid_unknown_fields=True):
    """A call of a Keras model on data by the notebook (`model(x)` or `model.predict(x)`), not by Keras itself."""

    method: str  # "call" | "predict"
    n_samples: int
    # how many of its samples are provisioned test images (raw or divided by 255, any shape), matched by value
    test_images: int


class OtherModelFacts(Struct, frozen=True, forbid_unknown_fields=True):
    """A Keras model under a name the rubric asked about (a second model built from the trained one)."""

    class_name: str
    layers: list[LayerFacts]  # as ModelFacts.layers; a model used as a layer is one layer, a functional input none
    is_trained: bool  # it is the very model that ModelFacts describes
    wraps_trained: bool  # the model that ModelFacts describes is one of its layers (or theirs), this very object
    calls: list[ModelCall] = field(default_factory=list)  # the last calls, in order


class VariableFacts(Struct, frozen=True, forbid_unknown_fields=True):
    """One namespace name the rubric asked about, as the notebook left it."""

    present: bool
    type_name: str = ""
    repr: str = ""  # bounded
    # The value itself when it is a scalar, a short string, or a flat sequence of scalars (bounded length).
    value: Value = None
    array: ArrayFacts | None = None  # when it is an array of numbers (or converts to one)
    from_evaluate: bool = False  # its numbers are what a recorded `evaluate` returned
    model: OtherModelFacts | None = None  # when it is a Keras model


class FoundArray(Struct, frozen=True, forbid_unknown_fields=True):
    """A namespace array with a provisioned split's sample count, found whatever its name."""

    names: list[str]  # every namespace name bound to this very object
    facts: ArrayFacts


class PanelFacts(Struct, frozen=True, forbid_unknown_fields=True):
    """One image panel of a figure."""

    row: int
    col: int
    title: str
    image_shape: list[int] | None
    matched_index: int | None  # the index into the provisioned training images whose pixels it shows, if any
    true_label: int | None  # the provisioned label of that image


class FigureFacts(Struct, frozen=True, forbid_unknown_fields=True):
    """A figure the student rendered (shown inline or saved)."""

    cell: int
    nrows: int | None
    ncols: int | None
    panels: list[PanelFacts]


class CompileCall(Struct, frozen=True, forbid_unknown_fields=True):
    """A recorded `compile`, each argument reduced to a canonical name, and to its class and settings."""

    loss: str | None
    optimizer: str | None
    learning_rate: float | None
    metrics: list[str]
    error: str | None = None
    loss_object: KerasObject | None = None
    optimizer_object: KerasObject | None = None
    metric_objects: list[KerasObject] = field(default_factory=list)


# What Keras's fit uses for an argument that was not passed (Keras's own defaults, not the assignment's): a batch
# size of 32 for arrays, the only data whose batch size the grader records.
FIT_DEFAULTS: dict[str, Scalar] = {"batch_size": 32, "epochs": 1, "validation_split": 0.0, "shuffle": True}


class DataOrigin(Struct, frozen=True, forbid_unknown_fields=True):
    """What a call was given as x or y: the names bound to it and which provisioned data it holds."""

    names: list[str] = field(default_factory=list)  # every namespace name bound to this very object
    images: str = ""  # as ArrayFacts.images
    labels: str = ""  # as ArrayFacts.labels
    n_samples: int | None = None
    sample_shape: list[int] | None = None  # the shape of one sample
    array: ArrayFacts | None = None  # the array itself, compared with the provisioned data sample by sample

    @property
    def held_images(self) -> str:
        return self.array.held_images if self.array is not None else self.images

    @property
    def held_labels(self) -> str:
        return self.array.held_labels if self.array is not None else self.labels

    @property
    def test_rows(self) -> int:
        """How many of its samples are provisioned test images (that are no training images)."""
        if self.array is not None and self.array.test_rows is not None:
            return self.array.test_rows
        return self.n_samples or 0 if self.images.startswith("test_") else 0


class FitCall(Struct, frozen=True, forbid_unknown_fields=True):
    """A recorded `fit`, with what it actually did to the model."""

    arguments: dict[str, Scalar]  # every argument passed explicitly whose value is plain data
    x: DataOrigin
    y: DataOrigin
    completed_epochs: int
    iterations_before: int | None
    iterations_after: int | None
    weights_changed: bool
    history_keys: list[str]
    error: str | None = None
    unknown_arguments: list[str] = field(default_factory=list)
    weights_after: str = ""  # digest of the model's weights when it returned, as `Reevaluation.weights_digest`
    of_model: bool = True  # called on the model that `ModelFacts` describes (not on another model of the notebook)
    # Training as it happened, recorded when it happened (a History or a compile changed later cannot alter it):
    weights_before: str = ""  # digest of the model's weights when it was called
    # trainable variables whose values at the start neither their initialization nor a recorded fit explains
    # (trained or set by something else: a GradientTape loop, set_weights, load_weights)
    trained_before: int = 0
    epochs_seen: int | None = None  # epochs the probe's own callback saw end; None when it could not watch
    steps_seen: int | None = None  # training batches it saw
    optimizer: str | None = None  # the optimizer in effect when training began (as CompileCall.optimizer)
    learning_rates: list[float] = field(default_factory=list)  # the distinct rates the steps used (bounded)
    loss: str | None = None  # the compiled loss when training began (as CompiledFacts.loss)

    def argument(self, name: str) -> Scalar:
        """The value fit used: as passed, else Keras's default."""
        return self.arguments.get(name, FIT_DEFAULTS.get(name))

    @property
    def epochs(self) -> int:
        """The epochs it completed: as the probe's callback counted them, else as its History said then."""
        return self.epochs_seen if self.epochs_seen is not None else self.completed_epochs

    @property
    def trained(self) -> bool:
        return self.epochs > 0 or self.weights_changed


class EvaluateCall(Struct, frozen=True, forbid_unknown_fields=True):
    """A recorded `evaluate`: on which data, and what it returned."""

    x: DataOrigin
    y: DataOrigin
    result: list[float] | None
    error: str | None = None
    weights: str = ""  # digest of the model's weights when evaluate ran, as `Reevaluation.weights_digest`


class ModelFacts(Struct, frozen=True, forbid_unknown_fields=True):
    """The model the notebook trained: the one its last training `fit` was called on, else the namespace value
    of the rubric's model name, else the last Keras model in the namespace."""

    present: bool
    class_name: str = ""
    names: list[str] = field(default_factory=list)  # every namespace name bound to it
    found_by: str = ""  # "fit" | "name" | "namespace"
    is_sequential: bool = False
    built: bool = False
    input_shape: list[int | None] | None = None
    layers: list[LayerFacts] = field(default_factory=list)
    total_params: int = 0
    optimizer: str | None = None
    learning_rate: float | None = None
    loss: str | None = None
    optimizer_iterations: int | None = None
    saved: bool = False


class HistoryFacts(Struct, frozen=True, forbid_unknown_fields=True):
    epochs: int
    keys: list[str]
    values: dict[str, list[float]]
    from_fit: bool  # the very object a recorded fit returned


class IntegrityFacts(Struct, frozen=True, forbid_unknown_fields=True):
    """Whether the grader's recording hooks were still in place when facts were collected."""

    hooks_intact: dict[str, bool]
    instance_overrides: list[str]  # methods replaced on the model object itself


class KernelFacts(Struct, frozen=True, forbid_unknown_fields=True):
    """Collected inside the student's kernel (untrusted; decoded strictly)."""

    request: ProbeRequest
    variables: dict[str, VariableFacts]  # every name of request.variables
    arrays: list[FoundArray]  # arrays holding a provisioned split's samples, any name
    figures: list[FigureFacts]
    model: ModelFacts
    summary_calls: int
    compile_calls: list[CompileCall]
    fit_calls: list[FitCall]
    evaluate_calls: list[EvaluateCall]
    history: HistoryFacts | None
    integrity: IntegrityFacts

    def variable(self, name: str) -> VariableFacts:
        return self.variables.get(name) or VariableFacts(present=False)

    def training_fit(self) -> FitCall | None:
        """The last fit that trained (completed an epoch or changed the weights): the saved weights, the history
        and the validation split are its, unless something changed the model after it."""
        return next((call for call in reversed(self.fit_calls) if call.trained and call.of_model), None)

    def continued(self, fit: FitCall) -> list[FitCall]:
        """The training `fit` belongs to, in order: the earlier fits of the same model whose weights it went on
        from (two fit(epochs=5) in a row are 10 epochs of training), then `fit` itself."""
        earlier = self.fit_calls[: next(i for i, call in enumerate(self.fit_calls) if call is fit)]
        chain = [fit]
        for call in reversed(earlier):
            start = chain[0].weights_before
            if call.trained and start and call.weights_after == start:
                chain.insert(0, call)
        return chain

    @staticmethod
    def empty(request: ProbeRequest) -> KernelFacts:
        """What is known when nothing could be collected (the kernel never ran a cell)."""
        return KernelFacts(
            request=request,
            variables={name: VariableFacts(present=False) for name in request.variables},
            arrays=[],
            figures=[],
            model=ModelFacts(present=False),
            summary_calls=0,
            compile_calls=[],
            fit_calls=[],
            evaluate_calls=[],
            history=None,
            integrity=IntegrityFacts(hooks_intact={}, instance_overrides=[]),
        )


class CellFacts(Struct, frozen=True, forbid_unknown_fields=True):
    """How one code cell of the notebook ran."""

    index: int  # position among the notebook's code cells, from 1
    status: CellStatus
    source: str
    error_name: str = ""
    error_value: str = ""
    traceback_tail: list[str] = field(default_factory=list)


class ExecutionFacts(Struct, frozen=True, forbid_unknown_fields=True):
    """How the notebook ran, as observed by the grader."""

    status: RunStatus
    message: str
    cells: list[CellFacts]
    stdout: str  # the text the student's cells printed (bounded)
    limits_hit: list[str]
    duration_s: float
    images: dict[str, str] = field(default_factory=dict)  # cell index -> last PNG output, base64


class ValidationRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """How the re-evaluation rebuilds a fit's validation split from the provisioned training set: the grader
    sends it to the fresh process, which takes Keras's split (the last `validation_split` of the samples)."""

    validation_split: float
    x_scaled: bool  # pixels divided by 255, else raw
    x_sample_shape: list[int]
    y_onehot: bool  # else integer labels

    @staticmethod
    def of(fit: FitCall | None) -> ValidationRequest | None:
        """The request for `fit`, when it was given the provisioned training images and labels and a split."""
        if fit is None or fit.x.sample_shape is None:
            return None
        split = fit.argument("validation_split")
        if fit.x.images not in ("train_scaled", "train_raw") or fit.y.labels not in ("train_onehot", "train_sparse"):
            return None
        if isinstance(split, bool) or not isinstance(split, int | float) or not 0.0 < split < 1.0:
            return None
        return ValidationRequest(
            float(split),
            fit.x.images == "train_scaled",
            list(fit.x.sample_shape),
            fit.y.labels == "train_onehot",
        )


class DatasetFacts(Struct, frozen=True, forbid_unknown_fields=True):
    n_train: int
    n_test: int
    image_shape: list[int]  # one provisioned image, e.g. [28, 28]
    classes: int  # distinct labels in the provisioned training set
    standin: bool
    description: str
    sha256: str
    first_labels: list[int]  # y_train[:FIRST_LABELS], for checks of the printed labels


class Facts(Struct, frozen=True, forbid_unknown_fields=True):
    """Everything scoring reads about one submission."""

    execution: ExecutionFacts
    kernel: KernelFacts
    reevaluation: Reevaluation
    dataset: DatasetFacts
    schema: int = SCHEMA_VERSION


def facts_to_json(facts: Facts) -> str:
    # Python's json rather than msgspec's encoder: it writes NaN and Infinity (a diverged loss) as
    # tokens that `decode` reads back, where msgspec would write null.
    return json.dumps(to_builtins(facts), indent=1, sort_keys=True)


def facts_from_json(text: str | bytes) -> Facts:
    """Facts from JSON; raises `grader.strictjson.DecodeError` for anything that does not fit the schema."""
    return decode(text, Facts, max_bytes=MAX_FACTS_JSON_BYTES)


def save_facts(facts: Facts, path: Path) -> None:
    atomic_write(path, facts_to_json(facts))


def load_facts(path: Path) -> Facts:
    return facts_from_json(path.read_bytes())
