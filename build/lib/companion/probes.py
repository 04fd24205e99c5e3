"""Probes: run one action on a layer or model and report what it did.

A probe snapshots every variable, runs an action (a call with ``training=True/False/None``, a few ``fit``
steps, a ``train_on_batch``), and reports

- which variables changed, grouped by kind (kernels and biases, BatchNormalization gamma/beta,
  BatchNormalization moving statistics, other non-trainable state such as random-generator seeds); a variable
  that holds NaN or Inf afterwards counts as changed and says so, it is never reported unchanged;
- which ``training`` value each Dropout and BatchNormalization layer's ``call`` received, i.e. whether it
  ran in training mode.

The mechanism is shared with :mod:`companion.report`: :func:`walk_layers` reaches every layer of a model (nested
models, layers held as attributes of custom layers, each shared layer once) and :class:`ModeRecorder` wraps the
``call`` of the layers it selects to record the ``training`` value each receives.

Every fact table in the book is computed from these reports. The probe works with Keras 3 and ``tf_keras``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import inspect
import math
from typing import Callable, Iterator

import numpy as np

# `iter_layers` is re-exported: the runs and the facts walk a model's layers through `probes.iter_layers`.
from companion.models import is_batch_norm, is_dropout, iter_layers  # noqa: F401
from companion.variants import load_keras

KERNELS = "kernels and biases"
BN_AFFINE = "BN gamma/beta"
BN_MOVING = "BN moving statistics"
OTHER_STATE = "other non-trainable state"
KINDS = (KERNELS, BN_AFFINE, BN_MOVING, OTHER_STATE)


@dataclasses.dataclass
class LayerList:
    """Lets a probe walk loose layers as if they were a model."""

    layers: list


# --- Walking every layer ----------------------------------------------------------------------------------------


def _children(layer) -> list:
    """The layers directly inside ``layer``: a model's layers and the sublayers a custom layer holds as attributes.

    Keras 3 and tf_keras both track them in ``_flatten_layers``; a :class:`LayerList` has only ``layers``.
    """
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=False, recursive=False))
    return list(getattr(layer, "layers", []))


def walk_layers(root) -> list[tuple[str, object]]:
    """Every layer reachable from ``root`` (not ``root`` itself), depth first, each once, with its path.

    The path joins the names from ``root`` down (``"block/bn"``); a layer shared between sub-models keeps the
    path where the walk meets it first.
    """
    result: list[tuple[str, object]] = []
    seen: set[int] = set()

    def visit(layer, prefix: str) -> None:
        for child in _children(layer):
            if id(child) in seen:
                continue
            seen.add(id(child))
            path = f"{prefix}{child.name}"
            result.append((path, child))
            visit(child, path + "/")

    visit(root, "")
    return result


def takes_training_argument(layer) -> bool:
    """Whether ``layer``'s ``call`` has a ``training`` parameter (Keras then passes it the mode)."""
    try:
        return "training" in inspect.signature(type(layer).call).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def is_batch_norm_or_dropout(layer) -> bool:
    return is_batch_norm(layer) or is_dropout(layer)


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
            if id(variable) in moving:
                kind = BN_MOVING
            elif id(variable) in affine:
                kind = BN_AFFINE
            elif id(variable) in trainable_at_creation:
                kind = KERNELS
            else:
                kind = OTHER_STATE
            result.append(TrackedVariable(layer.name, _short_name(variable), kind, variable, path))
    return result


def _own_variables(layer) -> list:
    """``layer.variables`` less those of the layers inside it.

    ``variables`` (not ``weights``) because it also holds Keras 3 random-seed state.
    """
    inner = {id(v) for child in _children(layer) for v in child.variables}
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
    under TensorFlow) and tf_keras'; it avoids TensorFlow's ``__array__``, which numpy 2 warns about. Anything
    else goes through ``keras.ops.convert_to_numpy`` where it exists, else ``np.asarray``.
    """
    if hasattr(variable, "numpy"):
        value = variable.numpy()
    else:
        ops = getattr(load_keras(), "ops", None)
        value = ops.convert_to_numpy(variable) if hasattr(ops, "convert_to_numpy") else np.asarray(variable)
    return np.array(value, copy=True)


def snapshot(tracked: list[TrackedVariable]) -> list[np.ndarray]:
    return [to_numpy(t.variable) for t in tracked]


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
    """Each tracked variable's change since ``before`` (see :func:`snapshot`)."""
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
            rows.append((f"{kind} {layer!r} received training=", ", ".join(map(str, values)) or "(not called)"))
        return rows


# --- Recording the `training` argument --------------------------------------------------------------------------

_MISSING = object()


@contextlib.contextmanager
def replaced_attribute(obj, name: str, value) -> Iterator[None]:
    """Set ``obj.name = value`` on the instance for the ``with`` block, then put back exactly what was there:
    the instance's own attribute if it had one, else nothing (the class attribute shows through again)."""
    own = vars(obj).get(name, _MISSING)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if own is _MISSING:
            delattr(obj, name)
        else:
            setattr(obj, name, own)


class ModeRecorder:
    """Records the ``training`` argument that layers' ``call`` receives, inside a ``with`` block.

    It wraps the ``call`` of every layer reachable from ``model`` (see :func:`walk_layers`) that ``select``
    accepts, by default every layer whose ``call`` takes a ``training`` argument, and unwraps them on exit.
    Inside ``fit`` a value is recorded when Keras traces the step function, which is when the mode is decided;
    a step function traced before the block records nothing (:mod:`companion.report` retraces for that).
    While ``active`` is False calls are not recorded (see :meth:`recording`).

    ``modes`` maps each layer's name to the distinct values it received, in order; ``values`` maps its path.
    """

    def __init__(self, model, select: Callable[[object], bool] = takes_training_argument, active: bool = True):
        self.entries = [(path, layer) for path, layer in walk_layers(model) if select(layer)]
        self.layers = [layer for _, layer in self.entries]
        self.values: dict[str, list] = {path: [] for path, _ in self.entries}
        self.modes: dict[str, list] = {layer.name: self.values[path] for path, layer in self.entries}
        self.active = active
        self._stack: contextlib.ExitStack | None = None

    def __enter__(self):
        with contextlib.ExitStack() as stack:
            for path, layer in self.entries:
                stack.enter_context(replaced_attribute(layer, "call", self._wrap(layer.call, self.values[path])))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc):
        self._stack.close()
        self._stack = None
        return False

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Record only inside this block (e.g. only inside ``train_step``, not during Keras' symbolic build)."""
        before, self.active = self.active, True
        try:
            yield
        finally:
            self.active = before

    def _wrap(self, original, record: list):
        signature = inspect.signature(original)
        parameter = signature.parameters.get("training")
        default = None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default

        @functools.wraps(original)
        def call(*args, **kwargs):
            if self.active:
                value = _training_flag(_bound_training(signature, default, args, kwargs))
                if value not in record:
                    record.append(value)
            return original(*args, **kwargs)

        return call


def _bound_training(signature: inspect.Signature, default, args, kwargs):
    """The ``training`` value a call received, by keyword or by position (its default if not passed)."""
    if "training" in kwargs:
        return kwargs["training"]
    try:
        return signature.bind_partial(*args, **kwargs).arguments.get("training", default)
    except TypeError:
        return default


def _training_flag(training):
    if training is None or isinstance(training, bool):
        return training
    try:
        return bool(np.asarray(training))
    except Exception:  # a symbolic tensor: the mode is only known at run time
        return "symbolic"


def layer_kind(layer) -> str:
    if is_batch_norm(layer):
        return "BatchNormalization"
    return "Dropout" if is_dropout(layer) else type(layer).__name__


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
    """
    tracked = tracked_variables(model)
    before = snapshot(tracked)
    watched = Watched()
    with ModeRecorder(model, select) as recorder:
        yield watched
    watched.report = ProbeReport(
        variables=measure_changes(tracked, before),
        modes={name: tuple(values) for name, values in recorder.modes.items()},
        layer_kinds={layer.name: layer_kind(layer) for layer in recorder.layers},
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
