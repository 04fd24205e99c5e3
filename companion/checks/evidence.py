"""Typed evidence: the values the checks measure, how they are written to JSON and read back, and how a table
shows them.

A check returns a bool, an int, an enum member or one of the small frozen dataclasses below, never text: audit
verdicts and the chapters' sentences read these values, so rewording a table cannot change a verdict. Text is made
only where a table is drawn (:func:`show`). :func:`to_json` and :func:`from_json` keep the types through the cache.

This module uses only the standard library: the decisive checks (:mod:`companion.checks.decisive`) import it under any
Keras and backend.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, ClassVar

# Every enum and dataclass that a check may return, by class name (how JSON names them).
_TYPES: dict[str, type] = {}


def _register(cls: type) -> type:
    _TYPES[cls.__name__] = cls
    return cls


def show(value: Any) -> str:
    """The text a table shows for ``value``: yes/no for a bool, the plain text of everything else."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def listing(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    return " and ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " and " + items[-1]


@_register
class Statistics(str, enum.Enum):
    """Which statistics a BatchNormalization layer normalised a batch with."""

    BATCH = "batch statistics"
    MOVING = "moving statistics"
    NEITHER = "neither"


@_register
class Training(str, enum.Enum):
    """The ``training`` value a layer's ``call`` received: True, False, None, or a symbolic tensor."""

    TRUE = "True"
    FALSE = "False"
    NONE = "None"
    SYMBOLIC = "symbolic"

    @classmethod
    def of(cls, value) -> "Training":
        if value is None:
            return cls.NONE
        if isinstance(value, bool):
            return cls.TRUE if value else cls.FALSE
        return cls.SYMBOLIC


class Fields:
    """A frozen dataclass of a few values, shown as ``a / b / c`` in a table."""

    separator: ClassVar[str] = " / "

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _register(cls)

    def __str__(self) -> str:
        return self.separator.join(show(getattr(self, f.name)) for f in dataclasses.fields(self))


@dataclasses.dataclass(frozen=True)
class Updates(Fields):
    """What ``fit`` changed in a base: its BN moving statistics, its BN gamma/beta, its kernels."""

    statistics: bool
    affine: bool
    kernels: bool


@dataclasses.dataclass(frozen=True)
class Recompile(Fields):
    """``trainable = False`` set after ``compile``: did ``fit`` update the layer, without and after a recompile?"""

    without_recompile: bool | Failed  # Failed: fit raised (the JAX backend) instead of training or not
    after_recompile: bool


@dataclasses.dataclass(frozen=True)
class ByTraining(Fields):
    """One yes/no under ``training=True`` and one under ``training=False``."""

    training_true: bool
    training_false: bool


@dataclasses.dataclass(frozen=True)
class PredictEvaluate(Fields):
    """One yes/no for ``predict`` and one for ``evaluate``."""

    predict: bool
    evaluate: bool


@dataclasses.dataclass(frozen=True)
class FrozenBase(Fields):
    """``fit`` with the base frozen: were its kernels / its BN statistics updated?"""

    kernels: bool
    statistics: bool


@dataclasses.dataclass(frozen=True)
class TrainableWeights(Fields):
    """Trainable weights of a frozen base and of the tutorial model around it."""

    base: int
    model: int


@dataclasses.dataclass(frozen=True)
class BatchNormVariables(Fields):
    """What a BatchNormalization layer stores per channel, and which of its variables are trainable."""

    parameters_per_channel: int
    moving_statistics_non_trainable: bool
    gamma_beta_trainable: bool


@dataclasses.dataclass(frozen=True)
class AutoScale(Fields):
    """The Keras FAQ's AutoScaleDropout: trainable weights, drops in training mode, ``fit`` moved its scale."""

    trainable_weights: int
    drops_in_training: bool
    fit_moved_scale: bool


@dataclasses.dataclass(frozen=True)
class Count(Fields):
    """``changed`` of ``total`` things."""

    changed: int
    total: int

    def __str__(self) -> str:
        return f"{self.changed} of {self.total}"

    @property
    def none(self) -> bool:
        return self.changed == 0

    @property
    def all(self) -> bool:
        """Every one of them, and at least one."""
        return self.changed == self.total > 0


@dataclasses.dataclass(frozen=True)
class FineTuneCounts(Fields):
    """Fine-tuning a real architecture: BN layers whose statistics moved, kernels that were updated."""

    bn_moved: Count
    kernels_updated: Count

    def __str__(self) -> str:
        return f"{self.bn_moved} BN moved, {self.kernels_updated} kernels updated"


@dataclasses.dataclass(frozen=True)
class Failed(Fields):
    """A check, or a step of one, that raised instead of measuring: the first line of its error. A table cell
    names the exception; the whole line is for a list of errors below the table."""

    error: str

    def __str__(self) -> str:
        name = self.error.split(":", 1)[0]
        return f"raised {name}" if name.isidentifier() else "failed"


def first_line(error: BaseException | str) -> str:
    """The first non-empty line of an error (its type named when it is an exception)."""
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    return next((line.strip() for line in text.splitlines() if line.strip()), "no message")


# --- JSON ---------------------------------------------------------------------------------------------------------


def to_json(value: Any):
    """A JSON-ready form of a typed value (an enum or dataclass carries its class name)."""
    if isinstance(value, enum.Enum):
        return {"enum": type(value).__name__, "value": value.value}
    if dataclasses.is_dataclass(value) and type(value).__name__ in _TYPES:
        return {"type": type(value).__name__,
                **{f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{type(value).__name__} is not a typed evidence value: {value!r}")


def from_json(data: Any):
    """The typed value :func:`to_json` wrote."""
    if isinstance(data, dict) and "enum" in data:
        return _TYPES[data["enum"]](data["value"])
    if isinstance(data, dict) and "type" in data:
        fields = {key: from_json(item) for key, item in data.items() if key != "type"}
        return _TYPES[data["type"]](**fields)
    return data


def values_to_json(values: dict[str, Any]) -> dict:
    return {key: to_json(value) for key, value in values.items()}


def values_from_json(data: dict) -> dict[str, Any]:
    return {key: from_json(item) for key, item in data.items()}


# --- The architecture checks (companion.suite.architectures) ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NotApplicable(Fields):
    """A check, or a part of one, that does not apply here: why (KerasHub needs a newer Keras, a column where the
    row does not run, a base with no Dropout inside). A table cell says "not applicable"; the reason is for a list."""

    reason: str

    def __str__(self) -> str:
        return "not applicable"


@dataclasses.dataclass(frozen=True)
class BaseOutcome(Fields):
    """Training a model around a base: the base's BatchNormalization layers (found through its weights), how many
    of them the remedy froze, how many whose moving statistics moved; whether BN gamma/beta and the base's kernels
    were updated; whether a Dropout (or stochastic depth) inside the base, and the Dropout after it, ran in training
    mode (not applicable where there is none)."""

    batch_norm: int
    frozen: int
    statistics_moved: int
    affine_updated: bool
    kernels_updated: bool
    dropout_inside: bool | NotApplicable
    dropout_after: bool | NotApplicable

    def __str__(self) -> str:
        return (f"BN {self.statistics_moved} of {self.batch_norm} moved ({self.frozen} frozen), gamma/beta "
                f"{show(self.affine_updated)}, kernels {show(self.kernels_updated)}, Dropout inside "
                f"{show(self.dropout_inside)}, after {show(self.dropout_after)}")
