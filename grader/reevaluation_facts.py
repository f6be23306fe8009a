"""What the grader's re-evaluation of the saved model found, in a fresh sandboxed process: its accuracy and
evaluate's results on the provisioned data, its compile config and its structure."""

from __future__ import annotations

from msgspec import Struct, field

from grader.keras_facts import KerasObject, LayerFacts


class ValidationFacts(Struct, frozen=True, forbid_unknown_fields=True):
    """The saved model's loss and metrics on that validation split, as model.evaluate returns them."""

    validation_split: float
    n_samples: int
    values: dict[str, float]  # "loss" and each compiled metric's name; a history has them with a "val_" prefix


class MetricFacts(Struct, frozen=True, forbid_unknown_fields=True):
    """One compiled metric of the saved model."""

    name: str  # its display name, which the student chooses freely
    identity: str  # what it computes: class or function and non-default config, e.g. "top_k_categorical_accuracy(k=10)"
    # what Keras would resolve the display name to, as a metric string; None if nothing
    name_identity: str | None = None


class CompiledFacts(Struct, frozen=True, forbid_unknown_fields=True):
    """The saved model's compile config, read by class and configuration in the fresh process."""

    loss: str | None  # identity, as MetricFacts.identity
    metrics: list[MetricFacts]
    optimizer: str | None
    learning_rate: float | None
    # as CompileCall's: the same reading of the saved model's loss, optimizer and metrics
    loss_object: KerasObject | None = None
    optimizer_object: KerasObject | None = None
    metric_objects: list[KerasObject] = field(default_factory=list)


class Reevaluation(Struct, frozen=True, forbid_unknown_fields=True):
    """The grader's own evaluation of the saved model, in a fresh sandboxed process."""

    ok: bool
    message: str = ""
    # model.evaluate on the student's own test arrays, with the model's own compiled loss and metrics
    student_data_result: list[float] | None = None
    # accuracy and categorical cross-entropy on the grader's canonical preparation of the test set
    accuracy: float | None = None
    loss: float | None = None
    optimizer_iterations: int | None = None
    # the saved model's own structure, to cross-check what the kernel reported
    layers: list[LayerFacts] | None = None
    total_params: int | None = None
    # accuracy on the student's saved test images, when they are the provisioned ones, against the provisioned labels
    student_data_accuracy: float | None = None
    compiled: CompiledFacts | None = None  # None when the saved model is not compiled
    weights_digest: str = ""  # as `FitCall.weights_after`
    validation: ValidationFacts | None = None  # on the training fit's validation split, when it could be rebuilt
    # model.evaluate on the provisioned test set and labels: the student's test images when they are those (as the
    # student prepared them), else the grader's preparation; None when the compiled loss or metrics are not Keras's
    test_result: list[float] | None = None
    unrestored: list[str] = field(default_factory=list)  # compiled loss or metrics that are the notebook's own code
