"""Keras objects as the facts describe them, alike in the kernel's record and in the re-evaluation's: layers,
and losses, optimizers and metrics by what they are."""

from __future__ import annotations

from msgspec import Struct, field

# What the probe may record of a student's value: JSON scalars, and flat lists of them.
Scalar = int | float | str | bool | None
Value = Scalar | list[Scalar]


class LayerFacts(Struct, frozen=True, forbid_unknown_fields=True):
    """One layer after the input: its class and every argument of its configuration that is plain data (units,
    filters, kernel_size, pool_size, strides, padding, activation as a snake_case name, rate, ...)."""

    class_name: str
    config: dict[str, Value] = field(default_factory=dict)
    output_shape: list[int | None] | None = None
    params: int = 0

    @property
    def units(self) -> int | None:
        units = self.config.get("units")
        return units if isinstance(units, int) and not isinstance(units, bool) else None

    @property
    def activation(self) -> str | None:
        activation = self.config.get("activation")
        return activation if isinstance(activation, str) else None


class KerasObject(Struct, frozen=True, forbid_unknown_fields=True):
    """A loss, optimizer or metric by what it is: Keras's snake_case name of its class or function (a string
    resolved as `compile` resolves it; "accuracy", whose kind `compile` picks from the labels, stays "accuracy"),
    and every setting that is plain data: a class's configuration, a function's keyword defaults."""

    name: str
    settings: dict[str, Value] = field(default_factory=dict)
