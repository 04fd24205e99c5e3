"""``companion check --model FILE``: the fine-tuning step on a reader's own saved model, as written and with the
remedy.

The file (a ``.keras`` archive or a legacy ``.h5`` file) is read without running any code of its author: its
configuration is inspected first, and a model that needs custom objects (a layer class of its own, registered or
not) or holds a ``Lambda`` layer's Python bytecode is refused before Keras sees it; then Keras loads it with
``safe_mode=True, compile=False``.

Its **pretrained bases** are found as follows: a base is a layer directly inside the loaded model that holds layers
of its own (a nested Functional or Sequential model, or a layer with sublayers), and that holds, at any depth, at
least one BatchNormalization layer or at least half of the model's parameters. A model with no such layer is its
own base (a flat model, such as a ``keras.applications`` model saved whole).

The step is the one a reader writes to fine-tune: ``base.trainable = True`` on every base, ``compile``, ``fit``,
here one step (:func:`companion.flags.report.fit_step_report`) on synthetic data shaped as the model's inputs, with targets
shaped as its outputs (binary labels for one output unit, sparse labels for several, zeros to regress otherwise).
Statistics move whatever the weights are worth, so the synthetic data and the file's own weights are enough. The
file is loaded again for the remedy (:func:`companion.flags.remedy.freeze_batch_norm` on every base after unfreezing it),
and the same step runs on it. A model without BatchNormalization is not affected, and says so; a model whose weights
hold NaN or Inf is checked with a warning that names them.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import zipfile
from pathlib import Path

import numpy as np

from companion.checks import evidence
from companion.core.tables import listing
from companion.core.variants import load_keras
from companion.flags import probes, report
from companion.flags.remedy import freeze_batch_norm
from companion.flags.walk import batch_norm_layers, walk_layers

SUFFIXES = (".keras", ".h5", ".hdf5")
SAMPLES = 4  # a batch of 4: enough for BatchNormalization to have batch statistics that differ from its moving ones
FREE_SIZE = 32  # the size given to an input dimension the model leaves free (None)
BASE_SHARE = 0.5  # a layer holding at least this share of the model's parameters is a base, BN or not
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_CONTAINERS = {"Functional", "Sequential", "Model"}  # model classes Keras serialises as layers


class ModelCheckError(ValueError):
    """The file cannot be checked; the message (one line) says why and what to do."""


class Targets(str, enum.Enum):
    BINARY = "binary labels"
    SPARSE = "sparse labels"
    REGRESSION = "zeros to regress"


@dataclasses.dataclass(frozen=True)
class Base:
    path: str
    class_name: str
    batch_norm: int  # BatchNormalization layers inside it, at any depth
    parameters: int


@dataclasses.dataclass(frozen=True)
class Step:
    """One fine-tuning step: the report of :func:`companion.flags.report.fit_step_report`, and what ``fit`` trained."""

    report: report.ModelReport
    trainable: dict[str, int]  # kind of variable (probes.KINDS) -> how many were trainable in the step
    # Paths of the layers with weights that were still frozen after `base.trainable = True` (before any remedy).
    # On Keras 3's TensorFlow backend the assignment skips a nested model whose own flag is already True, and the
    # loader gives a nested Sequential the flag True while its layers keep their saved False: they stay frozen.
    left_frozen: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ModelCheck:
    """What one fine-tuning step did to the model as a reader writes it, and with the remedy."""

    file: str
    model: str
    parameters: int
    bases: tuple[Base, ...]
    targets: tuple[Targets, ...]  # per output
    as_written: Step
    frozen: int  # BatchNormalization layers the remedy set trainable=False
    remedied: Step
    nonfinite: tuple[str, ...] = ()  # the weights that hold NaN or Inf in the file

    def text(self) -> str:
        first = self.as_written.report
        bases = listing([f"{b.path!r} ({b.class_name}, {b.batch_norm} BatchNormalization layers, "
                                  f"{b.parameters:,} of the model's {self.parameters:,} parameters)"
                                  for b in self.bases])
        unfreeze = "; ".join("model.trainable = True" if b.path == self.model else
                             f"model.get_layer({b.path!r}).trainable = True" for b in self.bases)
        return "\n".join([
            f"Model {self.model!r} from {self.file} ({first.keras_variant} {first.keras_version})",
            f"Pretrained base{'s' if len(self.bases) > 1 else ''}: {bases}",
            "",
            f"Fine-tuned as written ({unfreeze}; compile; one fit step on {first.batch_size} synthetic samples, "
            f"{listing(sorted({t.value for t in self.targets}))}):",
            *_step_lines(self.as_written),
            *([f"  still frozen after the assignment: {len(self.as_written.left_frozen)} layers with weights "
               f"({', '.join(self.as_written.left_frozen)})"] if self.as_written.left_frozen else []),
            "",
            f"With the remedy (companion.flags.remedy.freeze_batch_norm on the base after unfreezing it; compile): "
            f"froze {self.frozen} BatchNormalization layer{'' if self.frozen == 1 else 's'}",
            *_step_lines(self.remedied),
            *([f"Warning: {len(self.nonfinite)} weights hold NaN or Inf in the file ({', '.join(self.nonfinite[:5])}"
               f"{', ...' if len(self.nonfinite) > 5 else ''}): the step ran, but what it changed says nothing "
               "about training them"] if self.nonfinite else []),
        ])


@dataclasses.dataclass(frozen=True)
class NotAffected:
    """A model without BatchNormalization: its fine-tuning is not affected by the statistics issue."""

    file: str
    model: str
    keras_version: str

    def text(self) -> str:
        return (f"Model {self.model!r} from {self.file} (keras {self.keras_version}) has no BatchNormalization "
                "layer: fine-tuning it is not affected by the statistics issue, and the remedy has nothing to freeze. "
                "training=False still sets the mode of its Dropout and other layers that take training.")


def _by_class(modes: list[report.LayerMode], totals: dict[str, int]) -> str:
    """``BatchNormalization 52 of 52; Dropout head_dropout``: a count per class, the paths where they are few."""
    if not modes:
        return "none"
    groups: dict[str, list[str]] = {}
    for m in modes:
        groups.setdefault(m.class_name, []).append(m.path)
    return "; ".join(f"{cls} {', '.join(paths)}" if len(paths) <= 3 else f"{cls} {len(paths)} of {totals[cls]}"
                     for cls, paths in groups.items())


def _step_lines(step: Step) -> list[str]:
    r = step.report
    totals: dict[str, int] = {}
    for m in r.layers:
        totals[m.class_name] = totals.get(m.class_name, 0) + 1
    moved = [path for path, changed in r.statistics_moved().items() if changed]
    trained = "; ".join(f"{kind} {step.trainable.get(kind, 0)} of {total}" for kind, (_, total) in r.counts().items()
                        if kind in (probes.KERNELS, probes.BN_AFFINE))
    inference = [m for m in r.layers if m.ran_in_training_mode is False]
    # A frozen BatchNormalization layer that receives training=True runs in inference mode: its mode is what counts,
    # the value it received a detail.
    overruled = [m for m in inference if m.received_training]
    detail = f" (frozen, though they received training=True: {_by_class(overruled, totals)})" if overruled else ""
    return [
        f"  ran in training mode:     {_by_class([m for m in r.layers if m.ran_in_training_mode], totals)}",
        f"  ran in inference mode:    {_by_class(inference, totals)}{detail}",
        f"  BN statistics moved:      {f'{len(moved)} of {len(r.statistics_moved())} layers' if moved else 'none'}",
        f"  trainable in the step:    {trained}",
    ]


# --- Reading the file without running its code -------------------------------------------------------------------


def _config(path: Path) -> dict:
    """The model's configuration, read from the file as data; refuses what is not a saved model."""
    if not path.exists():
        raise ModelCheckError(f"no file {path}: give the path of a model saved with model.save('NAME.keras') "
                              "(or a legacy .h5 file)")
    if path.is_dir() or path.suffix.lower() not in SUFFIXES:
        raise ModelCheckError(f"{path} is not a format this check reads: it reads a whole model saved as .keras "
                              "or .h5 (a weights file such as .npz, or a SavedModel folder, holds no architecture); "
                              "save the model with model.save('NAME.keras')")
    try:
        if path.suffix.lower() == ".keras":
            if not zipfile.is_zipfile(path):
                raise ModelCheckError(f"{path} is not a Keras model: a .keras file is a zip archive and this one is "
                                      "not; save the model with model.save('NAME.keras')")
            with zipfile.ZipFile(path) as archive:
                if "config.json" not in archive.namelist():
                    raise ModelCheckError(f"{path} is a zip archive without config.json, not a saved Keras model")
                return json.loads(archive.read("config.json"))
        with path.open("rb") as file:
            if file.read(len(_HDF5_SIGNATURE)) != _HDF5_SIGNATURE:
                raise ModelCheckError(f"{path} is not a Keras model: an .h5 file is HDF5 and this one is not")
        import h5py

        with h5py.File(path, "r") as file:
            config = file.attrs.get("model_config")
        if config is None:
            raise ModelCheckError(f"{path} holds weights only (model.save_weights), no architecture: build the "
                                  "model in your code, call model.load_weights, and save it with model.save")
        return json.loads(config)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        if isinstance(error, ModelCheckError):
            raise
        raise ModelCheckError(f"{path} cannot be read: {evidence.first_line(error)}") from error


def _serialised_objects(config):
    """Every serialised object (a dict with ``class_name`` and ``config``) in the configuration, depth first."""
    if isinstance(config, dict):
        if "class_name" in config and "config" in config:
            yield config
        for value in config.values():
            yield from _serialised_objects(value)
    elif isinstance(config, list):
        for value in config:
            yield from _serialised_objects(value)


def _refuse_code(path: Path, config: dict) -> None:
    """Refuse a model whose loading would run its author's code (custom classes) or that safe_mode refuses."""
    keras = load_keras()
    objects = list(_serialised_objects(config))
    if any(o["class_name"] in ("Lambda", "__lambda__") for o in objects):
        raise ModelCheckError(
            f"{path} holds a Lambda layer whose Python bytecode safe_mode refuses to run (arbitrary code): rebuild "
            "the model in your code (with the Lambda's function), load the file's weights with "
            "model.load_weights, and check that model with companion.flags.report.fit_step_report")
    layers = [o for o in objects if "inbound_nodes" in o or "build_config" in o or o.get("module") == "keras.layers"]
    custom = sorted({o["class_name"] for o in objects
                     if (o.get("module") is None and o.get("registered_name"))
                     or (o.get("module") and not str(o["module"]).startswith(("keras", "tf_keras")))}
                    | {o["class_name"] for o in layers
                       if o["class_name"] not in _CONTAINERS and not hasattr(keras.layers, o["class_name"])})
    if custom:
        raise ModelCheckError(
            f"{path} needs custom objects ({', '.join(custom)}): loading them would import and run their code, "
            "which this check never does; build the model in your code, load the file with "
            "keras.saving.load_model(path, custom_objects=...) yourself, and check it with "
            "companion.flags.report.fit_step_report")


def load(path: str | Path):
    """The saved model in ``path``, loaded with ``safe_mode=True`` and ``compile=False`` after the refusals above."""
    path = Path(path)
    _refuse_code(path, _config(path))
    try:
        return load_keras().saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras' own refusal of a file we let through: pass its reason on, in one line
        here, saved = load_keras().__version__, saved_by(path)
        other = (f" (the file was saved by Keras {saved}: load it under that Keras, or save it again under this one)"
                 if saved not in (None, here) else "")
        raise ModelCheckError(f"Keras {here} could not load {path}: {evidence.first_line(error)}{other}") from error


def saved_by(path: Path) -> str | None:
    """The Keras version a .keras file records as its saver (its metadata.json), or None where it records none or
    cannot be read: it only adds to the error of a file Keras could not load, and must not replace it."""
    if path.suffix.lower() != ".keras":
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("metadata.json")).get("keras_version")
    except (KeyError, ValueError, AttributeError, zipfile.BadZipFile):  # no metadata.json, not JSON, not an object
        return None


# --- Bases, data and the step ------------------------------------------------------------------------------------


def find_bases(model) -> list:
    """The model's pretrained bases (see the module's docstring); the model itself when it is flat."""
    total = model.count_params() or 1
    found = [layer for layer in model.layers
             if getattr(layer, "layers", None)
             and (batch_norm_layers(layer) or layer.count_params() >= BASE_SHARE * total)]
    return found or [model]


def _dims(shape) -> tuple[int, ...]:
    return tuple(FREE_SIZE if d is None else int(d) for d in shape[1:])


def gives_probabilities(tensor) -> bool:
    """Whether a model's output comes from a sigmoid or a softmax (its layer's activation, or a Softmax layer): its
    loss then takes probabilities, not logits (Keras warns that ``from_logits=True`` was given one)."""
    history = getattr(tensor, "_keras_history", None)
    layer = getattr(history, "operation", None) or getattr(history, "layer", None)  # Keras 3, tf-keras
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", "") if activation is not None else type(layer).__name__.lower()
    return name in ("sigmoid", "softmax")


def synthetic_data(model, samples: int = SAMPLES):
    """Inputs shaped as the model's (normal values, or small integers for an integer input), targets shaped as its
    outputs, and each output's kind of target and loss (on logits, or on probabilities where the output is a
    sigmoid's or a softmax's)."""
    keras = load_keras()
    rng = np.random.default_rng(0)

    def like(tensor):
        dtype = np.dtype(getattr(tensor.dtype, "name", tensor.dtype))
        shape = (samples, *_dims(tensor.shape))
        return rng.integers(0, 2, shape).astype(dtype) if dtype.kind in "iu" else rng.normal(size=shape).astype(dtype)

    # A model built on a dict of inputs takes a dict keyed as it was built (given a list, Keras warns that the
    # structure does not match: a line a reader would take for a problem with their model).
    named = getattr(model, "input", None)
    if isinstance(named, dict):
        x = {name: like(tensor) for name, tensor in named.items()}
    else:
        arrays = [like(tensor) for tensor in model.inputs]
        x = arrays[0] if len(arrays) == 1 else arrays
    y, kinds, losses = [], [], []
    for tensor in model.outputs:
        dims, logits = _dims(tensor.shape), not gives_probabilities(tensor)
        if dims == (1,):
            kind, target, loss = Targets.BINARY, rng.integers(0, 2, (samples, 1)).astype("float32"), \
                keras.losses.BinaryCrossentropy(from_logits=logits)
        elif len(dims) == 1:
            kind, target, loss = Targets.SPARSE, rng.integers(0, dims[0], (samples,)), \
                keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
        else:
            kind, target, loss = Targets.REGRESSION, np.zeros((samples, *dims), "float32"), \
                keras.losses.MeanSquaredError()
        y.append(target)
        kinds.append(kind)
        losses.append(loss)
    one = len(y) == 1
    return x, (y[0] if one else y), tuple(kinds), (losses[0] if one else losses)


def _fine_tuning_step(model, remedy: bool) -> tuple[Step, int]:
    """Unfreeze every base as a reader does (``base.trainable = True``), the remedy if asked, compile, one step."""
    keras = load_keras()
    keras.utils.set_random_seed(0)
    bases = find_bases(model)
    for base in bases:
        base.trainable = True
    left_frozen = tuple(path for path, layer in walk_layers(model)
                        if layer.weights and not getattr(layer, "layers", None) and not layer.trainable)
    frozen = []
    for base in bases if remedy else []:
        try:
            frozen += freeze_batch_norm(base)
        except ValueError as error:  # the remedy's refusal: statistics it cannot freeze
            raise ModelCheckError(f"the remedy cannot protect {model.name!r}: {error}") from error
    x, y, _, loss = synthetic_data(model)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
    trainable: dict[str, int] = {}
    for tracked in probes.tracked_variables(model):
        if tracked.variable.trainable:
            trainable[tracked.kind] = trainable.get(tracked.kind, 0) + 1
    return Step(report.fit_step_report(model, x, y), trainable, left_frozen), len(frozen)


def nonfinite_weights(model) -> tuple[str, ...]:
    """The names of the model's weights that hold NaN or Inf."""
    return tuple(getattr(v, "path", v.name) for v in model.weights if not np.isfinite(probes.to_numpy(v)).all())


def check(path: str | Path) -> ModelCheck | NotAffected:
    """Load the saved model twice and run the fine-tuning step on it, as written and with the remedy; a model
    without BatchNormalization is :class:`NotAffected`."""
    model = load(path)
    if not batch_norm_layers(model) and not any(t.kind == probes.BN_MOVING
                                                for t in probes.tracked_variables(model)):
        return NotAffected(str(path), model.name, load_keras().__version__)
    nonfinite = nonfinite_weights(model)
    bases = find_bases(model)
    found = tuple(Base(b.name, type(b).__name__, len(batch_norm_layers(b)), b.count_params()) for b in bases)
    _, _, targets, _ = synthetic_data(model)
    as_written, _ = _fine_tuning_step(model, remedy=False)
    remedied, frozen = _fine_tuning_step(load(path), remedy=True)
    return ModelCheck(str(path), model.name, model.count_params(), found, targets, as_written, frozen, remedied,
                      nonfinite)


def main(path: str) -> int:
    print(check(path).text())
    return 0
