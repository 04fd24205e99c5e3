"""The fine-tuning checks: each kind of model readers bring, fine-tuned each way (:mod:`companion.checks.ways`), as
the tutorials do it in two phases: the base frozen, compiled and fitted; then unfrozen (its first ``fine_tune_at``
layers frozen again), the remedy applied where the way has it, compiled again and fitted.

Each check is :func:`fine_tune` for one kind and one way: plain Keras, random weights, small inputs, one training
step per phase (a batch of :data:`BATCH_SIZE` images). What each phase did is measured with the companion's one
snapshot (:class:`companion.flags.probes.Snapshot`: which BatchNormalization statistics, gamma/beta and kernels
moved, the BatchNormalization layers found through their variables at any depth) and its one recorder of modes
(:class:`companion.flags.modes.ModeRecorder`: the ``training`` value the base's layers and the head's Dropout
received in the training step), and returned as :class:`companion.checks.evidence.FineTuned`.

The reader's intent is the tutorials': the base runs as at inference (its BatchNormalization statistics fixed, its
own Dropout off) in both phases, the head's Dropout drops, the base's kernels train in fine-tuning only, and with
the remedy its gamma and beta stay fixed too. :func:`as_intended` judges a result by it; the advice
(:mod:`companion.versions.advice`) recommends, per kind and column, the ways that behaved so.

Adding a kind is one :class:`ModelKind` in :data:`KINDS`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

from companion.checks import evidence, models, ways
from companion.checks.check import Check
from companion.checks.ways import PLAIN, REMEDY, REMEDY_WRAPPED, TRAINING_FALSE, Way
from companion.core.columns import EVERY_COLUMN, EVERY_COLUMN_UNLESS_NARROWED, REAL_MODELS, Scope
from companion.core.tables import FactTable
from companion.flags import modes, probes, stated
from companion.flags.remedy import freeze_batch_norm
from companion.flags.walk import batch_norm_layers, is_batch_norm, is_dropout, walk_layers

# One batch per phase: one training step is enough for every effect measured (a moved statistic, a trained kernel,
# the mode a layer ran in), and a step of a real architecture costs about a second here.
BATCH_SIZE, LEARNING_RATE = 4, 0.01


# --- Training, with fit or a custom loop --------------------------------------------------------------------------


def fit(keras, model, x, y, recorder: modes.ModeRecorder, learning_rate: float = LEARNING_RATE) -> None:
    """``compile`` and ``fit`` (one step), as a reader does; the modes are recorded in the training step only.

    The steps run eagerly (``run_eagerly=True``), two to ten times faster here than tracing a step per check: Keras
    decides every layer's mode in Python, in ``Functional.call`` and ``Layer.__call__``, either way, and
    ``tests/test_fine_tuning.py`` holds the eager results equal to the traced ones."""
    model.compile(optimizer=keras.optimizers.SGD(learning_rate),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True), run_eagerly=True)
    with modes.recording_steps(model, recorder):
        model.fit(**training_data(keras, x, y), epochs=1, shuffle=False, verbose=0)


def training_data(keras, x, y) -> dict:
    """``fit``'s data, as the tutorials pass it on TensorFlow: a ``tf.data`` dataset of batches (given arrays,
    ``fit`` builds one itself and traces its slicing functions at every call: about a third of a check's time here);
    on JAX and PyTorch, which need no TensorFlow, the arrays."""
    if keras.backend.backend() != "tensorflow":
        return {"x": x, "y": y, "batch_size": BATCH_SIZE}
    import tensorflow as tf

    return {"x": tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH_SIZE)}


def _batches(x, y):
    return [(x[i:i + BATCH_SIZE], y[i:i + BATCH_SIZE]) for i in range(0, len(x), BATCH_SIZE)]


def custom_loop(keras, model, x, y, recorder: modes.ModeRecorder) -> None:
    """SGD steps of ``model(x, training=True)`` (one per batch) in a custom loop, as the keras-io guides on custom loops write one
    per backend: ``GradientTape`` on TensorFlow, ``stateless_call`` and ``jax.grad`` on JAX, ``backward()`` on
    PyTorch."""
    loop = {"tensorflow": _tape_steps, "jax": _stateless_steps, "torch": _backward_steps}[keras.backend.backend()]
    with recorder.recording():
        loop(keras, model, x, y)


def _tape_steps(keras, model, x, y) -> None:
    import tensorflow as tf

    optimizer, loss = keras.optimizers.SGD(LEARNING_RATE), keras.losses.BinaryCrossentropy(from_logits=True)
    for images, labels in _batches(x, y):
        with tf.GradientTape() as tape:
            value = loss(labels, model(images, training=True))
        gradients = tape.gradient(value, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))


def _stateless_steps(keras, model, x, y) -> None:
    import jax

    loss = keras.losses.BinaryCrossentropy(from_logits=True)

    def compute(trainable, non_trainable, images, labels):
        outputs, non_trainable = model.stateless_call(trainable, non_trainable, images, training=True)
        return loss(labels, outputs), non_trainable

    gradient = jax.value_and_grad(compute, has_aux=True)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    for images, labels in _batches(x, y):
        (_, non_trainable), gradients = gradient(trainable, non_trainable, images, labels)
        trainable = [t - LEARNING_RATE * g for t, g in zip(trainable, gradients)]
    for variable, value in [*zip(model.trainable_variables, trainable),
                            *zip(model.non_trainable_variables, non_trainable)]:
        variable.assign(value)


def _backward_steps(keras, model, x, y) -> None:
    import torch

    optimizer, loss = keras.optimizers.SGD(LEARNING_RATE), keras.losses.BinaryCrossentropy(from_logits=True)
    for images, labels in _batches(x, y):
        value = loss(labels, model(images, training=True))
        model.zero_grad()
        value.backward()
        with torch.no_grad():
            optimizer.apply([v.value.grad for v in model.trainable_variables], model.trainable_variables)


# --- Kinds of model -----------------------------------------------------------------------------------------------


def _always(keras) -> None:
    return None


@dataclasses.dataclass(frozen=True, eq=False)
class ModelKind:
    """A kind of model readers fine-tune: its base, how the transfer model around it is built and trained, the
    ways it is fine-tuned, and the columns it runs in."""

    name: str  # as the book's tables name it
    key: str  # for check ids and glue names
    base: Callable  # keras -> a base with random weights
    size: int = 8  # its input size
    # Its images' mean and standard deviation: far from a fresh BatchNormalization's statistics for the small bases;
    # about a preprocessed image's for the real architectures, whose random weights would otherwise saturate ReLU6
    # and pass no gradient once BatchNormalization runs in inference mode.
    pixels: tuple[float, float] = (3.0, 2.0)
    # A real architecture gets the statistics a pretrained base has (calibrate): with the moving statistics a random
    # base starts with, its deep stack of layers saturates in inference mode and passes no gradient.
    pretrained_like: bool = False
    model: Callable = models.tutorial_model  # (keras, base, call) -> the transfer model
    train: Callable = fit  # (keras, model, x, y, recorder) -> None: a training step
    fine_tune_at: int = 0  # layers[:fine_tune_at] of the base frozen again when it is unfrozen
    only_ways: tuple[Way, ...] | None = None  # the ways it is fine-tuned where not every way (see `ways`)
    scope: Scope = EVERY_COLUMN
    applies: Callable = _always  # keras -> evidence.NotApplicable where the kind cannot run, else None
    # A kind whose ways run in a narrower scope than every column: the way the advice recommends for it in that
    # scope, which also runs in every column (EVERY_COLUMN_UNLESS_NARROWED), so that the advice is measured there.
    # tests/test_matrix.py holds it equal to the advice computed where all its ways ran.
    recommended: Way | None = None

    def scope_of(self, way: Way) -> Scope:
        """The columns it is fine-tuned ``way`` in."""
        return EVERY_COLUMN_UNLESS_NARROWED if way is self.recommended else self.scope

    @property
    def ways(self) -> tuple[Way, ...]:
        """The ways it is fine-tuned: :attr:`only_ways`, else every way of :data:`companion.checks.ways.WAYS`, read
        now, so that a way added there reaches every such kind."""
        return ways.WAYS if self.only_ways is None else self.only_ways

    def __repr__(self) -> str:
        return f"ModelKind({self.key!r})"


FLAT = ModelKind("flat functional base", "flat", models.tiny_base)
OWN_DROPOUT = ModelKind("base with its own Dropout", "own_dropout", models.base_with_dropout)
CUSTOM_BLOCKS = ModelKind("custom-block base", "custom_blocks", models.custom_block_base)
KERAS_HUB = ModelKind("KerasHub EfficientNetBackbone", "keras_hub", models.keras_hub_efficientnet,
                      size=models.HUB_SIZE, applies=models.keras_hub_unsupported)
LAYER_NORM = ModelKind("LayerNorm-only base", "layer_norm", models.layer_norm_base,
                       only_ways=(PLAIN, TRAINING_FALSE, REMEDY))
SUBCLASSED = ModelKind("subclassed transfer model", "subclassed", models.tiny_base, model=models.subclassed_model)
SUBCLASSED_PASSING = ModelKind("subclassed model passing training on", "subclassed_passing", models.tiny_base,
                               model=functools.partial(models.subclassed_model, passes_training=True))
CUSTOM_LOOP = ModelKind("custom training loop", "custom_loop", models.tiny_base, train=custom_loop)
# Real keras.applications architectures take about half a minute per column on TensorFlow and three on JAX: they
# run the ways that matter for them where REAL_MODELS says, and the way the advice recommends in every column.
# Their random weights give large outputs: a small learning rate, as fine-tuning uses, keeps the steps finite.
REAL = {"pixels": (0.0, 0.5), "pretrained_like": True, "scope": REAL_MODELS,
        "train": functools.partial(fit, learning_rate=1e-5)}
# EfficientNet scales its inputs itself (Rescaling and Normalization layers): it takes pixels in [0, 255].
EFFICIENTNET = ModelKind("EfficientNetB0", "efficientnet", models.efficientnet_b0, size=models.APPLICATION_SIZE,
                         only_ways=(TRAINING_FALSE, REMEDY, REMEDY_WRAPPED), recommended=REMEDY_WRAPPED,
                         **{**REAL, "pixels": (127.5, 60.0)})
MOBILENET = ModelKind("MobileNetV2 (from layer 100)", "mobilenet", models.mobilenet_v2, size=models.APPLICATION_SIZE,
                      fine_tune_at=100, only_ways=(PLAIN, TRAINING_FALSE, REMEDY), recommended=REMEDY, **REAL)
XCEPTION = ModelKind("Xception", "xception", models.xception, size=models.XCEPTION_SIZE,
                     only_ways=(TRAINING_FALSE, REMEDY), recommended=REMEDY, **REAL)
KINDS = (FLAT, OWN_DROPOUT, CUSTOM_BLOCKS, KERAS_HUB, LAYER_NORM, SUBCLASSED, SUBCLASSED_PASSING, CUSTOM_LOOP,
         EFFICIENTNET, MOBILENET, XCEPTION)


# --- The scenario -------------------------------------------------------------------------------------------------


def fine_tune(keras, kind: ModelKind, way: Way) -> evidence.FineTuned:
    """The tutorials' two phases on a model of ``kind``, fine-tuned ``way``: the base frozen, compile, fit; the base
    unfrozen (its first ``kind.fine_tune_at`` layers frozen again), the remedy where ``way`` has it, compile, fit."""
    unsupported = kind.applies(keras)
    if unsupported is not None:
        return unsupported
    base = kind.base(keras)
    model = kind.model(keras, base, way.call)
    x, y = models.images(BATCH_SIZE, size=kind.size, mean=kind.pixels[0], sd=kind.pixels[1])
    if not model.built:  # a subclassed model: its weights exist once it has been called (in inference mode)
        model(x[:1])
    if kind.pretrained_like:
        calibrate(base, models.images(size=kind.size, seed=1, mean=kind.pixels[0], sd=kind.pixels[1])[0])
    base.trainable = False
    frozen_phase = training_phase(keras, kind, model, base, x, y)
    models.unfreeze(base, kind.fine_tune_at)
    froze = freeze_batch_norm(base) if way.remedy else []
    return evidence.FineTuned(frozen_phase, training_phase(keras, kind, model, base, x, y), len(froze))


def calibrate(base, x) -> None:
    """Give a base with random weights the moving statistics a pretrained one has, those of its inputs: one
    training-mode pass over ``x`` with every BatchNormalization layer's momentum at 0, then the momentum back. (The
    checks then train on other images, so that statistics that run in training mode still move.)"""
    layers = batch_norm_layers(base)
    momentum = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    base(x, training=True)
    for layer, kept in zip(layers, momentum):
        layer.momentum = kept


def training_phase(keras, kind: ModelKind, model, base, x, y) -> evidence.Phase:
    """Train ``model`` as ``kind`` does, and say what it did to ``base`` and in which mode their layers ran."""
    inside = {id(layer) for _, layer in walk_layers(base)} | {id(base)}
    trainable = {id(v) for v in base.trainable_weights}
    snapshot = probes.Snapshot(base)
    guard = stated.Watch(model)  # the reader's guard, watching the same step (companion.checks.guard_checks)
    recorder = modes.ModeRecorder(model, lambda layer: is_batch_norm(layer) or is_dropout(layer), active=False)
    with recorder:
        kind.train(keras, model, x, y, recorder)
    flagged = guard.mismatches()
    changes = snapshot.variables  # compared once: a comparison reads every variable of the base
    diverged = [f"{v.layer}/{v.name}" for v in changes if not v.finite]
    if diverged:  # a NaN counts as a change: what moved would say nothing about the flags
        raise FloatingPointError(f"training diverged: {len(diverged)} variables hold NaN or Inf ({diverged[0]}, ...)")
    owners = {v.path or v.layer for v in changes if v.kind == probes.BN_MOVING}
    moved = {v.path or v.layer for v in changes if v.kind == probes.BN_MOVING and v.changed}
    kernels = [v for t, v in zip(snapshot.tracked, changes) if v.kind == probes.KERNELS and id(t.variable) in trainable]

    def received(select) -> list:
        return [value for path, layer in recorder.entries if select(layer) for value in recorder.values[path]]

    batch_norm = received(lambda layer: is_batch_norm(layer) and id(layer) in inside)
    return evidence.Phase(
        statistics=evidence.Count(len(moved), len(owners)),
        affine=any(v.changed for v in changes if v.kind == probes.BN_AFFINE),
        kernels=evidence.Count(sum(v.changed for v in kernels), len(kernels)),
        bn_received=evidence.Training.of(batch_norm[0]) if batch_norm else evidence.NotApplicable("no BN called"),
        dropout_inside=_ran(received(lambda layer: is_dropout(layer) and id(layer) in inside),
                            "no Dropout in the base"),
        dropout_after=_ran(received(lambda layer: is_dropout(layer) and id(layer) not in inside),
                           "no Dropout after the base"),
        guard_flagged=len(flagged))


def _ran(values: list, none: str) -> bool | evidence.NotApplicable:
    """Whether layers that received ``values`` ran in training mode; not applicable where there were none."""
    return any(value is True for value in values) if values else evidence.NotApplicable(none)


# The few words a fine-tuning cell gives for each way a result departs from the tutorials' intent, and what each
# means: one definition for :func:`departures` and for the legend under the tables (:func:`legend`).
DEPARTURES = {
    "BN moved": "BatchNormalization statistics moved",
    "own Dropout on": "the base's own Dropout dropped",
    "head Dropout off": "the Dropout after the base did not drop",
    "kernels trained": "kernels of the frozen base changed",
    "no kernel trained": "no kernel of the unfrozen base changed",
    "remedy missed BN layers": "the remedy froze fewer BatchNormalization layers than the base has",
    "gamma/beta moved": "BatchNormalization's gamma or beta changed under the remedy",
}


def departures(value: evidence.FineTuned, remedy: bool) -> list[str]:
    """How a fine-tuning's result departs from the tutorials' intent, in the words of :data:`DEPARTURES`, each
    prefixed by its phase (none: as intended): in both phases no BatchNormalization statistics move, the base's own
    Dropout does not drop and the head's does; the kernels train in fine-tuning only; with the remedy, every
    BatchNormalization layer is frozen and its gamma and beta stay fixed."""
    frozen, tuned = value.frozen_phase, value.fine_tuning
    found = []
    for phase, when in ((frozen, "frozen"), (tuned, "fine-tuned")):
        found += [f"{when}: {what}" for what, departs in (
            ("BN moved", not phase.statistics.none), ("own Dropout on", phase.dropout_inside is True),
            ("head Dropout off", phase.dropout_after is False)) if departs]
    found += ["frozen: kernels trained"] * (not frozen.kernels.none) + ["fine-tuned: no kernel trained"] * (
        tuned.kernels.changed == 0)
    if remedy:
        found += ["remedy missed BN layers"] * (value.remedy_froze != tuned.statistics.total) + [
            "gamma/beta moved"] * tuned.affine
    return found


def legend() -> FactTable:
    """What a fine-tuning cell's words mean ("frozen:" and "fine-tuned:" name the phase)."""
    return FactTable(["in a cell", "means"], [["as intended", "the model behaved as the tutorials intend"],
                                              *map(list, DEPARTURES.items())],
                     caption='"frozen:" is the phase with the base frozen, "fine-tuned:" the phase after it')


def described(value: evidence.FineTuned, remedy: bool) -> str:
    """A fine-tuning's result in a few words: "as intended", or how it departed from the tutorials' intent."""
    return "; ".join(departures(value, remedy)) or "as intended"


def as_intended(remedy: bool) -> Callable[[evidence.FineTuned], bool]:
    """The tutorials' intent (:func:`departures`) as a judge of a fine-tuning's result."""
    return lambda value: not departures(value, remedy)


def checks_for(kinds) -> dict[tuple[ModelKind, Way], Check]:
    """The check of each of ``kinds`` fine-tuned each of its ways (:attr:`ModelKind.ways`)."""
    return {
        (kind, way): Check(f"{kind.key}.{way.key}", f"{kind.name}, {way.label}, fine-tuned",
                           functools.partial(fine_tune, kind=kind, way=way), documented=as_intended(way.remedy),
                           scope=kind.scope_of(way), short=f"{kind.name}: {way.label}",
                           describe=functools.partial(described, remedy=way.remedy))
        for kind in kinds for way in kind.ways}


CHECKS: dict[tuple[ModelKind, Way], Check] = checks_for(KINDS)


def check(kind: ModelKind, way: Way) -> Check:
    """The check of ``kind`` fine-tuned ``way``."""
    return CHECKS[kind, way]
