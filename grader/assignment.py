"""What a homework asks for, as the rubric declares it: the dataset, the names, the model, compile and fit.

Every value here comes from the rubric file (`grader.rubric` validates and loads it); nothing in the grader
knows any one homework. Checks read these expectations through their `Context`, the probe is told which
dataset loader to serve and which names to record (`probe_request`), and the reports show them.
"""

from __future__ import annotations

import difflib
import keyword
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from grader.facts import ProbeRequest
from grader.keras_facts import Scalar

# What Keras's fit accepts as plain data; a rubric's `fit:` names some of these.
FIT_ARGUMENTS = (
    "batch_size",
    "epochs",
    "verbose",
    "validation_split",
    "shuffle",
    "initial_epoch",
    "steps_per_epoch",
    "validation_steps",
    "validation_batch_size",
    "validation_freq",
)
# The objects a homework is about, found by what they are; the rubric says what the notebook must call them.
Role = Literal["train_images", "train_labels", "test_images", "test_labels", "model", "score"]
ROLES: tuple[str, ...] = get_args(Role)


def identifier(name: str) -> str:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"{name!r} is not a Python variable name")
    return name


Identifier = Annotated[str, AfterValidator(identifier)]


def role_key(name: str) -> str:
    """A key of `variables:`: a role, or a name of the rubric's own for another object (a second model), which
    must not be a misspelt role."""
    close = difflib.get_close_matches(name, ROLES, n=1, cutoff=0.8)
    if name not in ROLES and close:
        raise ValueError(f"{name!r} is not allowed; did you mean {close[0]!r}?")
    return identifier(name)


RoleKey = Annotated[str, AfterValidator(role_key)]


class Spec(BaseModel):
    """Every part of a rubric: unknown keys are refused, values never change once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSpec(Spec):
    loader: Identifier = Field("mnist", description="the keras.datasets module the notebooks call load_data on")
    npz: str | None = Field(None, description="the file served to the notebooks, relative to the rubric")


class KerasObjectSpec(Spec):
    """An expected Keras object (a layer, loss, optimizer or metric): its class or function name and the arguments
    that matter (any not named are free)."""

    class_name: str
    arguments: dict[str, Scalar | list[Scalar]] = {}

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, value: Any) -> Any:
        """`Flatten`, or `{Dense: {units: 128, activation: sigmoid}}`."""
        if isinstance(value, str):
            return {"class_name": value}
        if isinstance(value, dict) and len(value) == 1 and "class_name" not in value:
            ((name, arguments),) = value.items()
            return {"class_name": name, "arguments": arguments if arguments is not None else {}}
        return value

    def describe(self) -> str:
        if not self.arguments:
            return self.class_name
        shown = ", ".join(f"{k}={_text(v)}" for k, v in self.arguments.items())
        return f"{self.class_name}({shown})"


class LayerSpec(KerasObjectSpec):
    """One expected layer: a Keras layer class and the arguments that matter (`activation: null` is Keras's
    default, no activation)."""


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "(" + ", ".join(_text(v) for v in value) + ")"
    return str(value)


class ModelSpec(Spec):
    sequential: bool = True
    input_shape: list[int] | None = Field(None, description="one sample's shape, without the batch axis")
    layers: list[LayerSpec] = []
    params: int | None = Field(None, description="trainable and other parameters; derived from layers if omitted")

    def describe(self) -> str:
        return " -> ".join(layer.describe() for layer in self.layers)


class CompileSpec(Spec):
    """Each of loss, optimizer and metrics is a name (`adam`) or a class with the settings that matter
    (`{SparseCategoricalCrossentropy: {from_logits: true}}`); any spelling of the same object passes."""

    loss: KerasObjectSpec | None = None
    optimizer: KerasObjectSpec | None = None
    learning_rate: float | None = None
    metrics: list[KerasObjectSpec] = []


class Assignment(Spec):
    """The homework: what the notebook works on and must leave behind."""

    dataset: DatasetSpec = DatasetSpec()
    # role -> the name the notebook must use for it (the grader also finds the object by what it is); a key
    # that is not one of ROLES names another object the checks refer to, e.g. a second model
    variables: dict[RoleKey, Identifier] = {}
    model: ModelSpec = ModelSpec()
    compile: CompileSpec = CompileSpec()
    fit: dict[str, Scalar] = {}
    accuracy_margin: float = Field(0.03, ge=0, lt=1)

    def name(self, role: str) -> str:
        """The name the notebook must use for `role`; the role itself when the rubric names none."""
        return self.variables.get(role, role)

    def probe_request(self, extra_names: set[str]) -> ProbeRequest:
        """What the probe records: the roles' names and every name a check reads."""
        names = sorted({*(self.name(role) for role in ROLES), *self.variables.values(), *extra_names})
        return ProbeRequest(loader=self.dataset.loader, variables=names)
