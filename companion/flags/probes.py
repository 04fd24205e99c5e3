"""Probes: run one action on a layer or model and report what it did.

A probe snapshots every variable, runs an action (a call with ``training=True/False/None``, a few ``fit``
steps, a ``train_on_batch``), and reports

- which variables changed, grouped by kind (kernels and biases, BatchNormalization gamma/beta,
  BatchNormalization moving statistics, other non-trainable state such as random-generator seeds); a variable
  that holds NaN or Inf afterwards counts as changed and says so, it is never reported unchanged;
- which ``training`` value each Dropout and BatchNormalization layer's ``call`` received, i.e. whether it
  ran in training mode.

The mechanism is shared with :mod:`companion.flags.report` and every check of :mod:`companion.checks`:
:func:`companion.flags.walk.walk_layers` reaches every layer of a model (nested models, layers held as attributes of
custom layers, each shared layer once), :class:`Snapshot` is the one snapshot-and-compare of a model's variables, and
:class:`companion.flags.modes.ModeRecorder` the one recorder of the ``training`` value each layer's ``call`` receives.

The probe works with Keras 3 on any backend and with ``tf_keras``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
from typing import Callable, Iterator

import numpy as np

from companion.flags.modes import (
    STEP_FUNCTIONS,
    ModeRecorder,
    is_batch_norm_or_dropout,
    layer_kind,
    steps_set_aside,
    traced_step_trains_other_variables,
)
from companion.flags.walk import children, is_batch_norm, walk_layers

KERNELS = "kernels and biases"
BN_AFFINE = "BN gamma/beta"
BN_MOVING = "BN moving statistics"
OTHER_STATE = "other non-trainable state"
KINDS = (KERNELS, BN_AFFINE, BN_MOVING, OTHER_STATE)
# The names Keras gives a BatchNormalization layer's moving statistics: a variable so named counts as BN statistics
# whoever owns it (a hand-written normalisation layer's statistics move like BatchNormalization's).
STATISTICS = ("moving_mean", "moving_variance")


# --- Variables and their changes --------------------------------------------------------------------------------


def _short_name(variable) -> str:
    # Keras 3: "moving_mean"; tf_keras: "batch_normalization/moving_mean:0"
    return variable.name.split("/")[-1].split(":")[0]


@dataclasses.dataclass(frozen=True)
class TrackedVariable:
    layer: str
    name: str
    kind: str
    variable: object
    path: str = ""  # the owning layer's path from the model (see `walk_layers`); "" for the model's own


def tracked_variables(model) -> list[TrackedVariable]:
    """Every variable of ``model``, with the innermost layer that owns it and its kind.

    Layers at any depth count: nested models, and sublayers a custom layer holds as attributes (the inner
    BatchNormalization of a custom block is a BatchNormalization, not the block's "other state").
    """
    result = []
    seen: set[int] = set()
    owners = walk_layers(model)
    if hasattr(model, "variables"):  # a model (or layer) may own variables of its own, besides its layers'
        owners.insert(0, ("", model))
    for path, layer in owners:
        bn = is_batch_norm(layer)
        moving = {id(getattr(layer, a)) for a in ("moving_mean", "moving_variance")} if bn else set()
        affine = {id(getattr(layer, a)) for a in ("gamma", "beta") if getattr(layer, a, None) is not None} if bn else set()
        trainable_at_creation = _created_trainable(layer)
        for variable in _own_variables(layer):
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            if id(variable) in moving or _short_name(variable) in STATISTICS:
                kind = BN_MOVING
            elif id(variable) in affine:
                kind = BN_AFFINE
            elif id(variable) in trainable_at_creation:
                kind = KERNELS
            else:
                kind = OTHER_STATE
            result.append(TrackedVariable(layer.name, _short_name(variable), kind, variable, path))
    for variable in getattr(model, "weights", []):  # owned by no layer the walk reached
        if id(variable) not in seen:
            seen.add(id(variable))
            name = _short_name(variable)
            kind = BN_MOVING if name in STATISTICS else KERNELS if variable.trainable else OTHER_STATE
            result.append(TrackedVariable(model.name, name, kind, variable))
    return result


def _own_variables(layer) -> list:
    """``layer.variables`` less those of the layers inside it.

    ``variables`` (not ``weights``) because it also holds Keras 3 random-seed state.
    """
    inner = {id(v) for child in children(layer) for v in child.variables}
    return [v for v in layer.variables if id(v) not in inner]


def _created_trainable(layer) -> set[int]:
    """Ids of the variables ``layer`` created as trainable, whatever its ``trainable`` flag is now.

    Keras 3 keeps them in ``_trainable_variables`` (it flips their ``trainable`` flag when the layer is
    frozen); tf_keras in ``_trainable_weights``. A frozen Dense kernel is still a kernel.
    """
    created = getattr(layer, "_trainable_variables", None)
    if created is None:
        created = getattr(layer, "_trainable_weights", [])
    return {id(v) for v in created}


def to_numpy(variable) -> np.ndarray:
    """A copy of ``variable``'s value as a numpy array, on any backend.

    ``Variable.numpy()`` is Keras 3's own API on every backend (``np.array(self)`` on JAX, the tensor's value
    under TensorFlow) and tf_keras'; it avoids TensorFlow's ``__array__``, which numpy 2 warns about.
    """
    return np.array(variable.numpy() if hasattr(variable, "numpy") else variable, copy=True)


@dataclasses.dataclass(frozen=True)
class VariableChange:
    layer: str
    name: str
    kind: str
    max_abs_change: float  # NaN (or Inf) when a NaN or Inf entry is involved before or after
    nan: int = 0  # entries that are NaN after the action
    inf: int = 0  # entries that are +-Inf after the action
    finite_before: bool = True
    path: str = ""

    @property
    def changed(self) -> bool:
        """True unless the variable provably kept its value: a NaN or Inf is never "unchanged"."""
        return not self.max_abs_change == 0.0

    @property
    def finite(self) -> bool:
        """No NaN or Inf after the action."""
        return not (self.nan or self.inf)

    @property
    def status(self) -> str:
        if not self.finite:
            what = "NaN" if self.nan else "Inf"
            return f"became {what}" if self.finite_before else f"{what} (non-finite before too)"
        if not self.finite_before:
            return "became finite"
        return "changed" if self.changed else "unchanged"


def measure_changes(tracked: list[TrackedVariable], before: list[np.ndarray]) -> list[VariableChange]:
    """Each tracked variable's change since ``before`` (their values then, in the same order)."""
    changes = []
    for t, old in zip(tracked, before):
        new = to_numpy(t.variable).astype(np.float64)
        old = old.astype(np.float64)
        with np.errstate(invalid="ignore"):  # Inf - Inf is NaN, as it should be here
            delta = float(np.max(np.abs(new - old))) if old.size else 0.0
        changes.append(VariableChange(
            t.layer, t.name, t.kind, delta, nan=int(np.isnan(new).sum()), inf=int(np.isinf(new).sum()),
            finite_before=bool(np.isfinite(old).all()), path=t.path,
        ))
    return changes


def largest_change(a: float, b: float) -> float:
    """The larger change, a NaN winning: an unknown change is not a small one."""
    return a if math.isnan(a) or (not math.isnan(b) and a >= b) else b


class VariableChanges:
    """Queries over a report's ``variables`` (a list of :class:`VariableChange`)."""

    variables: list[VariableChange]

    def changed(self, kind: str | None = None) -> list[VariableChange]:
        return [v for v in self.variables if v.changed and (kind is None or v.kind == kind)]

    def nonfinite(self) -> list[VariableChange]:
        """The variables that hold NaN or Inf after the action."""
        return [v for v in self.variables if not v.finite]

    def changed_layers(self, kind: str) -> list[str]:
        """Names of the layers with at least one changed variable of ``kind``, in model order."""
        return list(dict.fromkeys(v.layer for v in self.changed(kind)))

    def per_layer(self, kind: str, name: str | None = None) -> dict[str, float]:
        """Layer name -> largest change among its variables of ``kind`` (optionally only ``name``)."""
        result: dict[str, float] = {}
        for v in self.variables:
            if v.kind == kind and (name is None or v.name == name):
                result[v.layer] = largest_change(result.get(v.layer, 0.0), v.max_abs_change)
        return result

    def counts(self) -> dict[str, tuple[int, int]]:
        """kind -> (variables changed, variables of that kind)."""
        total = collections.Counter(v.kind for v in self.variables)
        changed = collections.Counter(v.kind for v in self.changed())
        return {kind: (changed[kind], total[kind]) for kind in KINDS if total[kind]}


class Snapshot(VariableChanges):
    """Every variable of a model or layer (:func:`tracked_variables`) and its value now; :attr:`variables` gives each
    one's change since then, whenever it is read::

        snapshot = probes.Snapshot(model)
        model.fit(x, y)
        snapshot.changed(probes.BN_MOVING)

    The one snapshot-and-compare of the companion: the probes, the model report, the checks and the runner's
    drift all measure with it."""

    def __init__(self, model):
        self.tracked = tracked_variables(model)
        self.before = [to_numpy(t.variable) for t in self.tracked]

    @property
    def variables(self) -> list[VariableChange]:
        return measure_changes(self.tracked, self.before)


def ran_in_training_mode(values) -> bool | None:
    """True if ``values`` (what a layer's call received) hold ``training=True``; None if it was never called."""
    if not values:
        return None
    return any(v is True for v in values)


@dataclasses.dataclass
class ProbeReport(VariableChanges):
    """What one action did: every variable's change and every Dropout/BN layer's ``training`` values."""

    variables: list[VariableChange]
    modes: dict[str, tuple]  # layer name -> distinct `training` values its call received, in order
    layer_kinds: dict[str, str]  # layer name -> "Dropout" or "BatchNormalization" (else the class name)
    # The block could run a step function traced before it (kept because `trainable` flags changed since compile,
    # see `watching`): the layers it calls then record nothing, so an empty `modes` entry is "not seen".
    traced_before: bool = False

    def ran_in_training_mode(self, layer: str) -> bool | None:
        """True if the layer's call received ``training=True`` (None if it was never called)."""
        return ran_in_training_mode(self.modes.get(layer))

    def summary_rows(self) -> list[tuple[str, str]]:
        rows = []
        for kind, (c, t) in self.counts().items():
            bad = sum(1 for v in self.nonfinite() if v.kind == kind)
            rows.append((kind, f"{c} of {t} changed" + (f" ({bad} hold NaN or Inf)" if bad else "")))
        for layer, kind in self.layer_kinds.items():
            values = self.modes.get(layer, ())
            unseen = "(not seen: a step traced before ran)" if self.traced_before else "(not called)"
            rows.append((f"{kind} {layer!r} received training=", ", ".join(map(str, values)) or unseen))
        return rows


class Watched:
    """What :func:`watching` saw; ``report`` is set when the ``with`` block ends."""

    report: ProbeReport | None = None


@contextlib.contextmanager
def watching(model, select: Callable[[object], bool] = is_batch_norm_or_dropout) -> Iterator[Watched]:
    """Report what the Keras code inside the ``with`` block changed in ``model`` and in which mode layers ran::

        with probes.watching(model) as seen:
            model.fit(x, y, epochs=1)
        seen.report

    The block is the reader's own code; the measuring stays outside it. The modes are those of the layers
    ``select`` accepts: by default Dropout and BatchNormalization (:func:`takes_training_argument` selects every
    layer that receives the mode).

    Keras decides the modes when it traces a step function, so a second ``fit`` without recompiling would call
    the layers through the step traced by the first, unseen. The model's traced steps are therefore set aside for
    the block (:func:`steps_set_aside`): the block traces its own, which trains what the old one trained as long
    as no ``trainable`` flag changed since the old one was traced. If one did, the old step (which still trains
    the old flags' variables) is kept, as the reader's code would run it, and the report says that modes may be
    unseen (``traced_before``).
    """
    snapshot = Snapshot(model)
    watched = Watched()
    keep = traced_step_trains_other_variables(model)
    traced_before = keep and any(getattr(model, name, None) is not None for name in STEP_FUNCTIONS)
    with ModeRecorder(model, select) as recorder, steps_set_aside(model, () if keep else STEP_FUNCTIONS):
        yield watched
    watched.report = ProbeReport(
        variables=snapshot.variables,
        modes={name: tuple(values) for name, values in recorder.modes.items()},
        layer_kinds={layer.name: layer_kind(layer) for layer in recorder.layers},
        traced_before=traced_before,
    )


def observe(model, action: Callable[[], object], select: Callable[[object], bool] = is_batch_norm_or_dropout
            ) -> ProbeReport:
    """Run ``action()`` and report what it changed in ``model`` and in which mode layers ran (see :func:`watching`)."""
    with watching(model, select) as seen:
        action()
    return seen.report


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
