"""Probes: run one action on a layer or model and report what it did.

A probe snapshots every variable, runs an action (a call with ``training=True/False/None``, a few ``fit``
steps, a ``train_on_batch``), and reports

- which variables changed, grouped by kind (kernels and biases, BatchNormalization gamma/beta,
  BatchNormalization moving statistics, other non-trainable state such as random-generator seeds);
- which ``training`` value each Dropout and BatchNormalization layer's ``call`` received, i.e. whether it
  ran in training mode.

Every fact table in the book is computed from these reports. The probe works with Keras 3 and ``tf_keras``.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Callable, Iterable

import numpy as np

from companion.models import is_batch_norm, is_dropout, iter_layers

KERNELS = "kernels and biases"
BN_AFFINE = "BN gamma/beta"
BN_MOVING = "BN moving statistics"
OTHER_STATE = "other non-trainable state"
KINDS = (KERNELS, BN_AFFINE, BN_MOVING, OTHER_STATE)


@dataclasses.dataclass
class LayerList:
    """Lets a probe walk loose layers as if they were a model."""

    layers: list


def _short_name(variable) -> str:
    # Keras 3: "moving_mean"; tf_keras: "batch_normalization/moving_mean:0"
    return variable.name.split("/")[-1].split(":")[0]


@dataclasses.dataclass(frozen=True)
class TrackedVariable:
    layer: str
    name: str
    kind: str
    variable: object


def tracked_variables(model) -> list[TrackedVariable]:
    """Every variable of ``model``, with the leaf layer that owns it and its kind."""
    result = []
    seen = set()
    for layer in iter_layers(model):
        bn = is_batch_norm(layer)
        moving = {id(getattr(layer, a)) for a in ("moving_mean", "moving_variance")} if bn else set()
        affine = {id(getattr(layer, a)) for a in ("gamma", "beta") if getattr(layer, a, None) is not None} if bn else set()
        trainable_at_creation = _created_trainable(layer)
        # `variables` also holds Keras 3 random-seed state, which `weights` leaves out.
        for variable in layer.variables:
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            if id(variable) in moving:
                kind = BN_MOVING
            elif id(variable) in affine:
                kind = BN_AFFINE
            elif id(variable) in trainable_at_creation:
                kind = KERNELS
            else:
                kind = OTHER_STATE
            result.append(TrackedVariable(layer.name, _short_name(variable), kind, variable))
    return result


def _created_trainable(layer) -> set[int]:
    """Ids of the variables ``layer`` created as trainable, whatever its ``trainable`` flag is now.

    Keras 3 keeps them in ``_trainable_variables`` (it flips their ``trainable`` flag when the layer is
    frozen); tf_keras in ``_trainable_weights``. A frozen Dense kernel is still a kernel.
    """
    created = getattr(layer, "_trainable_variables", None)
    if created is None:
        created = getattr(layer, "_trainable_weights", [])
    return {id(v) for v in created}


def _value(variable) -> np.ndarray:
    return np.array(variable.numpy(), copy=True)


@dataclasses.dataclass(frozen=True)
class VariableChange:
    layer: str
    name: str
    kind: str
    max_abs_change: float

    @property
    def changed(self) -> bool:
        return self.max_abs_change > 0.0


@dataclasses.dataclass
class ProbeReport:
    """What one action did: every variable's change and every Dropout/BN layer's ``training`` values."""

    variables: list[VariableChange]
    modes: dict[str, tuple]  # layer name -> distinct `training` values its call received, in order
    layer_kinds: dict[str, str]  # layer name -> "Dropout" or "BatchNormalization"

    def changed(self, kind: str | None = None) -> list[VariableChange]:
        return [v for v in self.variables if v.changed and (kind is None or v.kind == kind)]

    def changed_layers(self, kind: str) -> list[str]:
        """Names of the layers with at least one changed variable of ``kind``, in model order."""
        return list(dict.fromkeys(v.layer for v in self.changed(kind)))

    def per_layer(self, kind: str, name: str | None = None) -> dict[str, float]:
        """Layer name -> largest change among its variables of ``kind`` (optionally only ``name``)."""
        result: dict[str, float] = {}
        for v in self.variables:
            if v.kind == kind and (name is None or v.name == name):
                result[v.layer] = max(result.get(v.layer, 0.0), v.max_abs_change)
        return result

    def counts(self) -> dict[str, tuple[int, int]]:
        """kind -> (variables changed, variables of that kind)."""
        total = collections.Counter(v.kind for v in self.variables)
        changed = collections.Counter(v.kind for v in self.changed())
        return {kind: (changed[kind], total[kind]) for kind in KINDS if total[kind]}

    def ran_in_training_mode(self, layer: str) -> bool | None:
        """True if the layer's call received ``training=True`` (None if it was never called)."""
        values = self.modes.get(layer)
        if not values:
            return None
        return any(v is True for v in values)

    def summary_rows(self) -> list[tuple[str, str]]:
        rows = [(kind, f"{c} of {t} changed") for kind, (c, t) in self.counts().items()]
        for layer, kind in self.layer_kinds.items():
            values = self.modes.get(layer, ())
            rows.append((f"{kind} {layer!r} received training=", ", ".join(map(str, values)) or "(not called)"))
        return rows


class ModeRecorder:
    """Records the ``training`` argument that each Dropout/BatchNormalization layer's ``call`` receives.

    It wraps the layers' ``call`` for the duration of a ``with`` block. Inside ``fit`` the value is
    recorded when Keras traces the step function, which is when the mode is decided.
    """

    def __init__(self, model):
        self.layers = [layer for layer in iter_layers(model) if is_batch_norm(layer) or is_dropout(layer)]
        self.modes: dict[str, list] = {layer.name: [] for layer in self.layers}

    def __enter__(self):
        for layer in self.layers:
            layer.call = self._wrap(layer)
        return self

    def _wrap(self, layer):
        original = type(layer).call.__get__(layer)
        record = self.modes[layer.name]

        @functools.wraps(original)
        def call(inputs, *args, **kwargs):
            training = kwargs.get("training", args[0] if args else None)
            value = training if training is None or isinstance(training, bool) else _tensor_flag(training)
            if value not in record:
                record.append(value)
            return original(inputs, *args, **kwargs)

        return call

    def __exit__(self, *exc):
        for layer in self.layers:
            del layer.call
        return False


def _tensor_flag(training):
    try:
        return bool(np.asarray(training))
    except Exception:  # a symbolic tensor: the mode is only known at run time
        return "symbolic"


def observe(model, action: Callable[[], object]) -> ProbeReport:
    """Run ``action()`` and report what it changed in ``model`` and in which mode layers ran."""
    tracked = tracked_variables(model)
    before = [_value(t.variable) for t in tracked]
    with ModeRecorder(model) as recorder:
        action()
    changes = []
    for t, old in zip(tracked, before):
        new = _value(t.variable)
        delta = float(np.max(np.abs(new.astype(np.float64) - old.astype(np.float64)))) if old.size else 0.0
        changes.append(VariableChange(t.layer, t.name, t.kind, delta))
    return ProbeReport(
        variables=changes,
        modes={name: tuple(values) for name, values in recorder.modes.items()},
        layer_kinds={
            layer.name: "BatchNormalization" if is_batch_norm(layer) else "Dropout" for layer in recorder.layers
        },
    )


# Actions: small callables so that a chapter reads `observe(model, fit(model, x, y, steps=3))`.


def call(model, x, training):
    """Action: call the model once with the given ``training`` argument."""
    if training is None:
        return lambda: model(x)
    return lambda: model(x, training=training)


def fit(model, x, y, steps: int = 3, batch_size: int = 8):
    """Action: ``model.fit`` for ``steps`` steps (one epoch) on the first ``steps * batch_size`` samples."""
    n = steps * batch_size
    return lambda: model.fit(x[:n], y[:n], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)


def train_on_batch(model, x, y):
    """Action: one ``model.train_on_batch``."""
    return lambda: model.train_on_batch(x, y)
