"""Which mode layers ran in: the ``training`` value each layer's ``call`` receives, recorded by wrapping ``call``
(:class:`ModeRecorder`), and the step functions that ``fit`` traced before, set aside so that a recorder sees the
layers run (:func:`steps_set_aside`).

:mod:`companion.flags.probes` and :mod:`companion.flags.report` measure with these; the reader's Keras stays as written.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
from typing import Callable, Iterator

import numpy as np

from companion.flags.walk import is_batch_norm, is_dropout, walk_layers


def takes_training_argument(layer) -> bool:
    """Whether ``layer``'s ``call`` has a ``training`` parameter (Keras then passes it the mode)."""
    try:
        return "training" in inspect.signature(type(layer).call).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def is_batch_norm_or_dropout(layer) -> bool:
    return is_batch_norm(layer) or is_dropout(layer)


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
    accepts, by default every layer whose ``call`` takes a ``training`` argument, and unwraps them on exit. Calls
    Keras makes to build or infer shapes (on symbolic ``KerasTensor`` inputs, or in Keras 3's symbolic scope, as
    ``fit`` does once with ``training=False`` before its first step) are not recorded: they compute nothing.
    Inside ``fit`` a value is recorded when Keras traces the step function, which is when the mode is decided;
    a step function traced before the block records nothing (:mod:`companion.flags.report` retraces for that).
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
            if self.active and not _symbolic(args, kwargs):
                value = _training_flag(_bound_training(signature, default, args, kwargs))
                if value not in record:
                    record.append(value)
            return original(*args, **kwargs)

        return call


def _symbolic(args, kwargs) -> bool:
    """Whether a call runs on symbolic inputs to build a model or infer its shapes, not on data: a ``KerasTensor``
    among the inputs, or Keras 3's symbolic scope (its ``compute_output_spec`` traces backend tensors in it)."""
    if any(type(value).__name__ == "KerasTensor" for value in (*args, *kwargs.values())):
        return True
    scope = sys.modules.get("keras.src.backend.common.symbolic_scope")  # loaded with Keras 3, absent with tf-keras
    return bool(scope and getattr(scope, "in_symbolic_scope", lambda: False)())


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


@contextlib.contextmanager
def recording_steps(model, recorder: ModeRecorder) -> Iterator[None]:
    """Inside the block, ``recorder`` records only while ``fit`` runs a training step (the model's ``train_step``),
    not the calls Keras makes before the first step to build the model or infer its shapes (with ``training=False``,
    on every Keras 3 release)."""
    original = model.train_step

    def train_step(*args, **kwargs):
        with recorder.recording():
            return original(*args, **kwargs)

    with replaced_attribute(model, "train_step", train_step):
        yield


def layer_kind(layer) -> str:
    if is_batch_norm(layer):
        return "BatchNormalization"
    return "Dropout" if is_dropout(layer) else type(layer).__name__


# --- Step functions traced before ---------------------------------------------------------------------------------

# Keras 3 keeps each traced step in `train_function`, `test_function` and `predict_function`; tf_keras also in
# `*_tf_function`. Set to None, the next fit, evaluate or predict traces its step anew (as `force=True` would).
STEP_FUNCTIONS = ("train_function", "test_function", "predict_function",
                  "train_tf_function", "test_tf_function", "predict_tf_function")
# Both keep the `trainable` flags of compile time here; Keras 3's fit overwrites it when it warns that they changed.
COMPILED_STATE = "_compiled_trainable_state"


@contextlib.contextmanager
def steps_set_aside(model, names: tuple[str, ...] = STEP_FUNCTIONS) -> Iterator[dict]:
    """Inside the block, the model's traced step functions ``names`` are None, so that ``fit`` (or ``evaluate``,
    ``predict``) traces its step again and the layers' ``call`` runs, where a recorder sees it. On exit they are put
    back, so that later code runs exactly the functions it would have run, unless the block called ``compile``
    (which discards them: the block's own traces are then the model's). Yields the functions set aside (None
    where none was traced)."""
    saved = {name: getattr(model, name) for name in names if hasattr(model, name)}
    compiled = []

    def compile(*args, **kwargs):
        compiled.append(True)
        return original_compile(*args, **kwargs)

    original_compile = getattr(model, "compile", None)
    try:
        for name in saved:
            setattr(model, name, None)
        with replaced_attribute(model, "compile", compile) if saved else contextlib.nullcontext():
            yield saved
    finally:
        for name, value in saved.items() if not compiled else ():
            setattr(model, name, value)


def trainable_changed_since_compile(model) -> tuple[str, ...]:
    """Paths of the layers whose ``trainable`` flag changed since ``compile`` (no recompile since): a step traced
    before the change still trains what it trained, and a new trace would not."""
    compiled = getattr(model, COMPILED_STATE, None)
    if not compiled:
        return ()
    layers = [(model.name, model), *walk_layers(model)]
    return tuple(path for path, layer in layers if layer in compiled and compiled[layer] != layer.trainable)


def traced_step_trains_other_variables(model) -> bool:
    """Whether a step traced before would train other variables than a new trace: a ``trainable`` flag changed
    since ``compile``, or (Keras 3, whose ``fit`` forgets the compile-time flags once it warned about them) the
    optimizer was built for other variables than those trainable now."""
    optimizer = getattr(model, "optimizer", None)
    built_for = getattr(optimizer, "_trainable_variables", None) if getattr(optimizer, "built", False) else None
    return bool(trainable_changed_since_compile(model)) or (
        built_for is not None and {id(v) for v in built_for} != {id(v) for v in model.trainable_variables})
