"""Typed evidence: the values the checks measure, how they are written to JSON and read back, and how a table
shows them.

A check returns a bool, an int, an enum member or one of the small frozen dataclasses below, never text: audit
verdicts and the chapters' sentences read these values, so rewording a table cannot change a verdict. Text is made
only where a table is drawn (:func:`show`). :func:`to_json` and :func:`from_json` keep the types through the cache.

This module uses only the standard library and the companion's formatter of values (:func:`companion.core.tables.show`),
so the checks import it under any Keras and backend.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, ClassVar

from companion.core.tables import show

# Every enum and dataclass that a check may return, by class name (how JSON names them).
_TYPES: dict[str, type] = {}


def _register(cls: type) -> type:
    _TYPES[cls.__name__] = cls
    return cls


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
class BatchNormCall(Fields):
    """One call of a BatchNormalization layer: which statistics normalised the batch, and whether the call moved the
    moving statistics."""

    normalised_with: Statistics
    statistics_moved: bool


@dataclasses.dataclass(frozen=True)
class DropoutOutput(Fields):
    """What a Dropout-like layer made of inputs of ones: the fraction zeroed and the distinct surviving values."""

    fraction_zeroed: float
    survivor_values: tuple[float, ...]

    @property
    def identity(self) -> bool:
        return self.fraction_zeroed == 0.0 and self.survivor_values == (1.0,)

    def inverted(self, rate: float, tolerance: float = 0.02) -> bool:
        """About ``rate`` of the inputs zeroed and every survivor scaled by exactly ``1/(1-rate)``."""
        return abs(self.fraction_zeroed - rate) < tolerance and self.survivor_values == (round(1 / (1 - rate), 5),)


@dataclasses.dataclass(frozen=True)
class AutoScale(Fields):
    """The Keras FAQ's AutoScaleDropout: trainable weights, drops in training mode, ``fit`` moved its scale, ``fit``
    ran it in training mode."""

    trainable_weights: int
    drops_in_training: bool
    fit_moved_scale: bool
    fit_ran_training_mode: bool


@dataclasses.dataclass(frozen=True)
class Serving(Fields):
    """A model with augmentation inside, called outside ``fit``: did the augmentation run, did BatchNormalization
    statistics move, did the Dropout run in training mode?"""

    augmented: bool
    statistics_moved: bool
    dropout: bool


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


@dataclasses.dataclass(frozen=True)
class NotApplicable(Fields):
    """A check, or a part of one, that does not apply here: why (KerasHub needs a newer Keras, a base with no Dropout
    inside). A table cell says "not applicable"; the reason is for a list."""

    reason: str

    def __str__(self) -> str:
        return "not applicable"


@dataclasses.dataclass(frozen=True)
class NotRun(Fields):
    """A check outside the columns it runs in (:attr:`companion.checks.check.Check.scope`): why."""

    reason: str

    def __str__(self) -> str:
        return "not run"


@dataclasses.dataclass(frozen=True)
class NotInstalled(Fields):
    """A column whose Keras or backend is not installed here: what to install."""

    reason: str

    def __str__(self) -> str:
        return "not installed"


def unmeasured(value) -> bool:
    """A value that says the check did not measure: not run, not applicable, not installed, or raised."""
    return isinstance(value, (NotRun, NotApplicable, NotInstalled, Failed))


# --- The timing of a trainable change, and the optimizer ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainableTiming(Fields):
    """``trainable = False`` set on a layer at four moments: was it honoured by the next ``fit`` (or did it raise)?"""

    before_first_fit: bool | Failed
    after_fit: bool | Failed
    after_make_train_function: bool | Failed
    after_recompile: bool | Failed


@dataclasses.dataclass(frozen=True)
class OptimizerReuse(Fields):
    """The base unfrozen after phase 1, then compiled with phase 1's optimizer instance, or its train step made again
    without compiling, or compiled with a new optimizer: did fit train the base?"""

    same_instance: bool | Failed  # Failed("... Unknown variable ..."): the optimizer refused the base
    make_train_function: bool | Failed
    new_instance: bool | Failed


# --- Fine-tuning (companion.checks.fine_tuning) ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Phase(Fields):
    """One phase of the tutorials' fine-tuning (a compile and a training step) on a model around a base: the
    base's BatchNormalization layers whose moving statistics moved (found through their variables, at any depth),
    whether their gamma/beta moved, the base's kernels and biases updated of those trainable, the ``training`` value
    its BatchNormalization layers received, and whether its own Dropout and the head's Dropout ran in training mode
    (not applicable where there is none)."""

    statistics: Count
    affine: bool
    kernels: Count
    bn_received: Training | NotApplicable
    dropout_inside: bool | NotApplicable
    dropout_after: bool | NotApplicable
    # The layers the reader's guard flagged (companion.flags.stated: what the model states, measured the same step).
    guard_flagged: int = 0

    def __str__(self) -> str:
        dropouts = ", ".join(f"{name} {'on' if value else 'off'}" for name, value in (
            ("Dropout in", self.dropout_inside), ("after", self.dropout_after)) if isinstance(value, bool))
        return (f"BN {self.statistics} moved, gamma/beta {show(self.affine)}, kernels {self.kernels} trained"
                + (f"; {dropouts}" if dropouts else ""))


@dataclasses.dataclass(frozen=True)
class Guarded(Fields):
    """The guard over one kind of model's fine-tunings, every way it is fine-tuned, both phases: of the phases where a
    layer did not behave as the model states, those where the guard fired; of the others, those where it was silent."""

    broken: int
    fired_on_broken: int
    as_stated: int
    silent_on_as_stated: int

    def __str__(self) -> str:
        return f"fired {self.fired_on_broken} of {self.broken} broken; silent {self.silent_on_as_stated} of {self.as_stated} others"

    @property
    def exact(self) -> bool:
        """It fired on every phase that broke what the model states, and on no other."""
        return self.fired_on_broken == self.broken and self.silent_on_as_stated == self.as_stated


@dataclasses.dataclass(frozen=True)
class FineTuned(Fields):
    """The tutorials' two phases: the base frozen, then fine-tuned; and how many BatchNormalization layers the remedy
    froze before fine-tuning (0 without it)."""

    frozen_phase: Phase
    fine_tuning: Phase
    remedy_froze: int

    def __str__(self) -> str:
        return f"frozen: {self.frozen_phase}. Fine-tuned: {self.fine_tuning}" + (
            f" (remedy froze {self.remedy_froze})" if self.remedy_froze else "")
