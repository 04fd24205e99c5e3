"""Am I affected? One real ``fit`` step on your own model, and what it did.

:func:`fit_step_report` takes a model you built and compiled, runs ONE ``model.fit`` step on your data and
reports

- every layer whose ``call`` takes a ``training`` argument (augmentation, noise, Dropout, BatchNormalization,
  your own layers, nested models), at any depth, each once: whether it ran in training mode, and the ``training``
  values its ``call`` received during the step (a frozen BatchNormalization layer that receives ``True`` still runs
  in inference mode);
- what the step changed, per variable and grouped by kind (BatchNormalization moving statistics, BN
  gamma/beta, kernels and biases, other non-trainable state); a NaN or Inf after the step is reported as such.

The step is real: it updates your model's weights and optimizer state once, as your own ``fit`` would. Its
train function is traced afresh for the step (a train function traced before would call the layers without
letting the report see them), and the model's own train function is put back afterwards, so the next ``fit``
runs exactly the function it would have run without the report; no recording wrapper is left on any layer.

Works with Keras 3 (any backend: the measuring uses Keras APIs and numpy only) and with tf_keras.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Iterator

from companion.core.tables import FactTable, show
from companion.core.variants import current_name, load_keras
from companion.flags import modes, probes
from companion.flags.walk import is_batch_norm


class ReportError(ValueError):
    """The model or the data cannot be reported on; the message says what to do. Raised before anything runs."""


class ModelNotBuiltError(ReportError):
    pass


class ModelNotCompiledError(ReportError):
    pass


class DataShapeError(ReportError):
    pass


@dataclasses.dataclass(frozen=True)
class LayerMode:
    """One layer that receives the mode, and what it received during the step."""

    path: str  # names from the model down, "block/bn"; a shared layer is listed once, under its first path
    name: str
    class_name: str
    trainable: bool
    training: tuple  # the distinct `training` values its call received, in order (True, False, None, "symbolic")
    batch_norm: bool = False  # a BatchNormalization layer (or a subclass of one)

    @property
    def called(self) -> bool:
        return bool(self.training)

    @property
    def received_training(self) -> bool | None:
        """True if its call received ``training=True``; None if it was not called in the step."""
        return probes.ran_in_training_mode(self.training)

    @property
    def ran_in_training_mode(self) -> bool | None:
        """True if it ran in training mode: its call received ``training=True`` and, for a BatchNormalization layer,
        it was trainable (a frozen one normalises with its moving statistics and leaves them, whatever it receives,
        in Keras 3 and tf-keras alike); None if it was not called in the step."""
        received = self.received_training
        return received and (self.trainable or not self.batch_norm) if received is not None else None


@dataclasses.dataclass(frozen=True)
class ModelReport(probes.VariableChanges):
    """What one ``fit`` step did to a model. Values are typed; :meth:`mode_table` and :meth:`change_table`
    render them."""

    model: str
    keras_variant: str  # "keras", "keras-nightly" or "tf-keras"
    keras_version: str
    batch_size: int  # samples in the step
    loss: float  # the step's loss, as `fit` logged it (NaN if it was NaN)
    retraced: bool  # the model had a traced train function, which was set aside for the step and put back
    # Paths of the layers whose `trainable` flag changed since `compile` (no recompile since): Keras 3 then warns,
    # and a train function traced before the change still trains them, unlike the fresh one of the report.
    trainable_changed_since_compile: tuple[str, ...]
    layers: tuple[LayerMode, ...]
    variables: tuple[probes.VariableChange, ...]

    def layer(self, key: str) -> LayerMode:
        """The layer with path ``key``, else the one layer named ``key``."""
        matches = [m for m in self.layers if m.path == key] or [m for m in self.layers if m.name == key]
        if len(matches) != 1:
            found = "no layer" if not matches else f"{len(matches)} layers ({', '.join(m.path for m in matches)})"
            raise KeyError(f"{found} with path or name {key!r} receives the training argument")
        return matches[0]

    def modes(self) -> dict[str, tuple]:
        """Layer path -> the ``training`` values its call received."""
        return {m.path: m.training for m in self.layers}

    def ran_in_training_mode(self, layer: str) -> bool | None:
        return self.layer(layer).ran_in_training_mode

    def training_layers(self) -> list[str]:
        """Paths of the layers that received ``training=True``."""
        return [m.path for m in self.layers if m.ran_in_training_mode]

    def layer_changes(self, path: str, kind: str | None = None) -> list[probes.VariableChange]:
        """The variables owned by the layer at ``path`` (optionally only those of ``kind``)."""
        return [v for v in self.variables if v.path == path and (kind is None or v.kind == kind)]

    def statistics_moved(self) -> dict[str, bool]:
        """BatchNormalization layer path -> whether the step changed its moving statistics."""
        owners = dict.fromkeys(v.path for v in self.variables if v.kind == probes.BN_MOVING)
        return {path: any(v.changed for v in self.layer_changes(path, probes.BN_MOVING)) for path in owners}

    # --- Rendering ---------------------------------------------------------------------------------------------

    def _caption(self, what: str) -> str:
        return (f"{what}: one fit step of model {self.model!r} on {self.batch_size} samples, "
                f"{self.keras_variant} {self.keras_version}")

    def mode_table(self) -> FactTable:
        """One row per layer that receives the mode."""
        moved = self.statistics_moved()
        rows = [
            [m.path, m.class_name, show(m.trainable),
             "not called" if m.ran_in_training_mode is None else show(m.ran_in_training_mode),
             ", ".join(map(str, m.training)) or "(not called)", show(moved[m.path]) if m.path in moved else "-"]
            for m in self.layers
        ]
        header = ["layer", "class", "trainable", "ran in training mode", "training received", "BN statistics moved"]
        caption = self._caption("Layers and the mode they ran in")
        if self.trainable_changed_since_compile:
            caption += (f". trainable changed since compile for {', '.join(self.trainable_changed_since_compile)}:"
                        " recompile, or fit may not do what this shows")
        return FactTable(header, rows, caption=caption)

    def change_table(self, only_changed: bool = True) -> FactTable:
        """One row per layer and kind of variable (only those the step changed, unless ``only_changed=False``)."""
        groups: dict[tuple[str, str], list[probes.VariableChange]] = {}
        for v in self.variables:
            groups.setdefault((v.path or self.model, v.kind), []).append(v)
        rows = []
        for (path, kind), changes in groups.items():
            changed = [v for v in changes if v.changed]
            if only_changed and not changed:
                continue
            largest = 0.0
            for v in changes:
                largest = probes.largest_change(largest, v.max_abs_change)
            rows.append([path, kind, f"{len(changed)} of {len(changes)}", f"{largest:.3g}",
                         ", ".join(f"{v.name} {v.status}" for v in changes if not (v.finite and v.finite_before))])
        header = ["layer", "kind", "variables changed", "largest |change|", "NaN or Inf"]
        return FactTable(header, rows, caption=self._caption("Variables the step changed"))


# --- Running the step --------------------------------------------------------------------------------------------

@contextlib.contextmanager
def fresh_train_function(model, recorder: modes.ModeRecorder) -> Iterator[bool]:
    """Inside the block, ``fit`` traces a new train function whose ``train_step`` records modes in ``recorder``.

    The model's own train functions are set aside (:func:`companion.flags.modes.steps_set_aside`) and put back on exit,
    and the recording ``train_step`` is removed, so that the new function, which holds it, is dropped. The
    compile-time ``trainable`` flags are put back too, so that the user's next ``fit`` warns as it would have.
    Yields whether the model had a traced train function.
    """
    kept = getattr(model, modes.COMPILED_STATE, None)
    try:
        with modes.steps_set_aside(model, ("train_function", "train_tf_function")) as saved, \
                modes.recording_steps(model, recorder):
            yield saved.get("train_function") is not None
    finally:
        # (tf_keras cannot set its compiled state twice, nor needs to)
        if hasattr(model, modes.COMPILED_STATE) and getattr(model, modes.COMPILED_STATE) is not kept:
            setattr(model, modes.COMPILED_STATE, kept)


def fit_step_report(model, x, y, batch_size: int | None = None) -> ModelReport:
    """Run one ``model.fit`` step on the first ``batch_size`` samples of ``x, y`` (all of them by default) and
    report which layers ran in training mode and what the step changed.

    ``model`` must be built and compiled; ``x`` is an array (a list or dict of arrays for several inputs) whose
    shape matches the model's input. Both are checked before anything runs (:class:`ReportError`).
    """
    _check_model(model)
    samples = _check_data(model, x, y)
    if batch_size is not None and batch_size < 1:
        raise ReportError(f"batch_size must be at least 1, got {batch_size}")
    n = samples if batch_size is None else min(batch_size, samples)

    snapshot = probes.Snapshot(model)
    trainable_changed = modes.trainable_changed_since_compile(model)
    with modes.ModeRecorder(model, active=False) as recorder, fresh_train_function(model, recorder) as retraced:
        history = model.fit(_head(x, n), _head(y, n), batch_size=n, epochs=1, shuffle=False, verbose=0)
    return ModelReport(
        model=model.name,
        keras_variant=current_name(),
        keras_version=load_keras().__version__,
        batch_size=n,
        loss=float(history.history.get("loss", [math.nan])[-1]),
        retraced=retraced,
        trainable_changed_since_compile=trainable_changed,
        layers=tuple(
            LayerMode(path, layer.name, type(layer).__name__, bool(layer.trainable), tuple(recorder.values[path]),
                      is_batch_norm(layer))
            for path, layer in recorder.entries
        ),
        variables=tuple(snapshot.variables),
    )


# --- Checks ------------------------------------------------------------------------------------------------------


def _check_model(model) -> None:
    if not hasattr(model, "fit"):
        raise ReportError(f"{type(model).__name__} {getattr(model, 'name', model)!r} is not a model: "
                          "the report runs one step of model.fit; wrap the layer in a keras.Model")
    name = model.name
    if not model.built:
        raise ModelNotBuiltError(
            f"model {name!r} is not built: it has no weights yet, so there is nothing to report. Build it "
            "first: start it with keras.Input(shape), call model.build(input_shape), or call it on a batch")
    compiled = getattr(model, "compiled", None)  # Keras 3
    if compiled is None:
        compiled = getattr(model, "_is_compiled", False)  # tf_keras
    if not compiled or getattr(model, "optimizer", None) is None:
        raise ModelNotCompiledError(
            f"model {name!r} is not compiled: call model.compile(optimizer=..., loss=...) as you do before "
            "fit; the report runs one step of your own fit, with your optimizer and loss")


def _arrays(data, what: str) -> list:
    arrays = list(data.values()) if isinstance(data, dict) else list(data) if isinstance(data, (list, tuple)) \
        else [data]
    for array in arrays:
        if not hasattr(array, "shape"):
            raise DataShapeError(f"{what} must be an array (or a list or dict of arrays), "
                                 f"got {type(array).__name__}")
    return arrays


def _shape(shape) -> tuple:
    return tuple(None if d is None else int(d) for d in shape)


def _expected_inputs(model, x) -> list[tuple[str, tuple]] | None:
    """(input name, expected shape) per array of ``x``, in ``x``'s order; None if the model declares none."""
    try:
        inputs = list(model.inputs or [])
    except (AttributeError, ValueError):  # a subclassed model declares no inputs
        return None
    if not inputs:
        return None
    named = [(t.name.split(":")[0], _shape(t.shape)) for t in inputs]
    if isinstance(x, dict):
        by_name = dict(named)
        if set(x) != set(by_name):
            raise DataShapeError(f"model {model.name!r} takes the inputs {sorted(by_name)}, "
                                 f"got data for {sorted(x)}")
        return [(key, by_name[key]) for key in x]
    given = len(x) if isinstance(x, (list, tuple)) else 1
    if given != len(named):
        raise DataShapeError(f"model {model.name!r} takes {len(named)} input(s) "
                             f"({', '.join(f'{n} {s}' for n, s in named)}), got {given} array(s)")
    return named


def _check_data(model, x, y) -> int:
    """Check that ``x`` fits the model's inputs and that ``x`` and ``y`` hold as many samples; return that number."""
    inputs, targets = _arrays(x, "x"), _arrays(y, "y")
    expected = _expected_inputs(model, x)
    for (name, want), array in zip(expected or [], inputs):
        got = _shape(array.shape)
        if len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got)):
            raise DataShapeError(
                f"x does not match the input {name!r} of model {model.name!r}: the model expects shape {want} "
                f"(None: any size), the data has shape {got}")
    counts = {_shape(a.shape)[0] if a.shape else None for a in inputs + targets}
    if len(counts) != 1 or None in counts:
        raise DataShapeError("x and y must hold the same number of samples (their first dimension); got shapes "
                             f"x {[_shape(a.shape) for a in inputs]}, y {[_shape(a.shape) for a in targets]}")
    samples = counts.pop()
    if not samples:
        raise DataShapeError("x and y hold no samples")
    return samples


def _head(data, n: int):
    if isinstance(data, dict):
        return {key: value[:n] for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(value[:n] for value in data)
    return data[:n]
