"""The decisive checks: on this Keras, does ``base(x, training=False)`` keep a base's BatchNormalization statistics
fixed during fine-tuning, does the fixed value reach the layers after the base, and which remedy works?

Each check is a short function of plain Keras code: it builds the 2020 tutorials' pattern around a tiny base
(``Conv2D -> BatchNormalization -> GlobalAveragePooling2D``, with a Dropout of its own for two checks), trains it
with ``fit`` for two steps and returns what changed as a typed value (:mod:`companion.checks.evidence`). A few more ask
about ``base.trainable = True`` again, staged unfreezing, and ``model(x)`` on a model with augmentation inside.
These are the only definitions: the release matrix runs them under every Keras 3 release (:mod:`companion.versions.releases`),
the three-variant matrix shows them among its rows (:mod:`companion.versions.matrix`), and ``companion check`` runs them on
the reader's own install (:mod:`companion.versions.check`).

The module imports only numpy, the standard library and (when a check runs) Keras, so it runs under any Keras and
any backend. Each check's question, with the answer the documentation leads a reader to expect, is in
:mod:`companion.checks.questions`, which runs these scenarios under the process's Keras.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from companion.checks import evidence

STEPS, BATCH_SIZE = 2, 4

# --- The tutorials' pattern, on a tiny base -----------------------------------------------------------------------


def tiny_base(keras, own_dropout: bool = False):
    """A stand-in for a pretrained base: ``Conv2D -> BatchNormalization [-> Dropout] -> GlobalAveragePooling2D``."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    if own_dropout:
        x = keras.layers.Dropout(0.5, name="base_dropout")(x)
    outputs = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, outputs, name="base")


def tutorial_model(keras, base, **call):
    """The tutorials' model around ``base``: ``base(x, **call) -> Dropout(0.5) -> Dense(1)``.

    ``call`` is how the base is called: ``training=False`` as the 2020 tutorials write it, nothing for ``base(x)``.
    """
    inputs = keras.Input((8, 8, 3))
    x = base(inputs, **call)
    x = keras.layers.Dropout(0.5, name="head_dropout")(x)
    outputs = keras.layers.Dense(1, name="head")(x)
    return keras.Model(inputs, outputs, name="tutorial")


def freeze_batch_norm(keras, base):
    """The remedy: ``trainable = False`` on every BatchNormalization layer inside ``base``, at any depth (nested
    models, layers a custom layer holds, a shared layer once). Returns the layers it froze."""
    # `base.layers` stops at the first level; `_flatten_layers` walks every tracked layer (Keras 3 and tf-keras).
    frozen = [layer for layer in base._flatten_layers(include_self=True, recursive=True)
              if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in frozen:
        layer.trainable = False
    return frozen


def images(n: int = STEPS * BATCH_SIZE, seed: int = 0):
    """Images far from a fresh BatchNormalization layer's statistics (mean 0, variance 1), and 0/1 labels."""
    rng = np.random.default_rng(seed)
    x = (3.0 + 2.0 * rng.normal(size=(n, 8, 8, 3))).astype("float32")
    y = rng.integers(0, 2, size=(n, 1)).astype("float32")
    return x, y


def compile_model(keras, model):
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=keras.losses.BinaryCrossentropy(from_logits=True))


# --- Measuring ----------------------------------------------------------------------------------------------------


def values(variables) -> list[np.ndarray]:
    """A copy of each variable's value."""
    return [np.array(variable.numpy(), copy=True) for variable in variables]


def changed(before: list[np.ndarray], variables) -> bool:
    """Did any of ``variables`` change since ``before``? (A NaN counts as a change.)"""
    return any(not np.array_equal(old, new) for old, new in zip(before, values(variables)))


def record_training(layer) -> list:
    """From now on, note the ``training`` value each call of ``layer`` receives; the layer works as before."""
    received, call = [], layer.call

    def recording_call(*args, **kwargs):
        received.append(kwargs.get("training", args[1] if len(args) > 1 else None))
        return call(*args, **kwargs)

    layer.call = recording_call
    return received


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What two ``fit`` steps changed in the base; did the Dropout after it, and its own (None: none), drop?"""

    updates: evidence.Updates
    dropout_after_base: bool
    dropout_inside_base: bool | None = None


def fine_tune(keras, model, base) -> FitResult:
    """Compile ``model`` and ``fit`` it for two steps; report what changed in ``base`` and the head Dropout's mode."""
    bn, conv = base.get_layer("bn"), base.get_layer("conv")
    watched = {"statistics": [bn.moving_mean, bn.moving_variance], "affine": [bn.gamma, bn.beta],
               "kernels": [conv.kernel, conv.bias]}
    before = {kind: values(variables) for kind, variables in watched.items()}
    received = record_training(model.get_layer("head_dropout"))
    inside = [layer for layer in base.layers if isinstance(layer, keras.layers.Dropout)]
    received_inside = record_training(inside[0]) if inside else None
    compile_model(keras, model)
    x, y = images()
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0)
    updates = evidence.Updates(**{kind: changed(before[kind], watched[kind]) for kind in watched})
    return FitResult(updates, dropout_after_base=any(value is True for value in received),
                     dropout_inside_base=None if received_inside is None else any(v is True for v in received_inside))


# --- The checks ---------------------------------------------------------------------------------------------------


def as_written(keras) -> FitResult:
    """The 2020 tutorials' fine-tuning: the base called as ``base(x, training=False)``, then unfrozen."""
    base = tiny_base(keras)
    model = tutorial_model(keras, base, training=False)
    base.trainable = True
    return fine_tune(keras, model, base)


def remedy(keras, own_dropout: bool = False, **call) -> FitResult:
    """The remedy: unfreeze the base, then set ``trainable = False`` on every BatchNormalization layer in it."""
    base = tiny_base(keras, own_dropout)
    model = tutorial_model(keras, base, **call)
    base.trainable = True
    freeze_batch_norm(keras, base)
    return fine_tune(keras, model, base)


def remedy_as_written(keras) -> FitResult:
    """The remedy, keeping the tutorials' ``base(x, training=False)``."""
    return remedy(keras, training=False)


def remedy_alone(keras) -> FitResult:
    """The remedy with the base called as plain ``base(x)``."""
    return remedy(keras)


def remedy_own_dropout_as_written(keras) -> FitResult:
    """The remedy and ``base(x, training=False)``, on a base with a Dropout of its own."""
    return remedy(keras, own_dropout=True, training=False)


def remedy_own_dropout_alone(keras) -> FitResult:
    """The remedy and ``base(x)``, on a base with a Dropout of its own."""
    return remedy(keras, own_dropout=True)


def training_none(keras) -> FitResult:
    """An unfrozen base called as ``base(x, training=None)``, which should mean "whatever the model is doing"."""
    base = tiny_base(keras)
    model = tutorial_model(keras, base, training=None)
    return fine_tune(keras, model, base)


def recompile(keras) -> evidence.Recompile:
    """Freeze a layer after ``compile``: does ``fit`` still update it? And when the model is compiled again?"""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4)).astype("float32"), rng.integers(0, 2, size=(8, 1)).astype("float32")

    def fit_updates_frozen_layer(compile_again: bool) -> bool:
        dense = keras.layers.Dense(1, name="dense")
        model = keras.Sequential([keras.Input((4,)), dense])
        compile_model(keras, model)
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)  # makes the train function: dense is trainable
        dense.trainable = False
        if compile_again:
            compile_model(keras, model)
        before = values(dense.weights)
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)
        return changed(before, dense.weights)

    try:
        without_recompile = fit_updates_frozen_layer(compile_again=False)
    except Exception as error:  # the JAX backend refuses to fit until the model is compiled again
        without_recompile = evidence.Failed(evidence.first_line(error))
    return evidence.Recompile(without_recompile, after_recompile=fit_updates_frozen_layer(compile_again=True))


# --- The trainable setter, and a direct call --------------------------------------------------------------------


def dense_base(keras):
    """A tiny base of three Dense layers: a kernel and a bias each, 6 trainable variables."""
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="dense_3")(keras.layers.Dense(4, name="dense_2")(
        keras.layers.Dense(4, name="dense_1")(inputs)))
    return keras.Model(inputs, x, name="base")


def refreeze_first_two(base) -> list:
    """The tutorials' refreezing loop (``for layer in base.layers[:fine_tune_at]``) on the first two Dense layers."""
    layers = [base.get_layer("dense_1"), base.get_layer("dense_2")]
    for layer in layers:
        layer.trainable = False
    return layers


def trainable_again(keras) -> bool:
    """``base.trainable = True`` on a base whose own flag is still True and whose first two layers were frozen one
    by one: are they unfrozen (6 trainable variables), or does the setter not run (2: only ``dense_3``'s)?"""
    # Keras 3's TensorFlow backend skips an assignment of the object an attribute already holds, so the recursive
    # `trainable` setter does not run (keras/src/backend/tensorflow/trackable.py, KerasAutoTrackable.__setattr__):
    #     if getattr(self, name) is value:
    #         # Short circuit for `self.$x = self.$x`.
    #         return
    base = dense_base(keras)
    refreeze_first_two(base)
    base.trainable = True
    return len(base.trainable_weights) == 6


def false_then_true(keras) -> bool:
    """The same base, set ``trainable = False`` and then ``True``: a change of value each time. All 6 trainable?"""
    base = dense_base(keras)
    refreeze_first_two(base)
    base.trainable = False
    base.trainable = True
    return len(base.trainable_weights) == 6


def staged_unfreezing(keras) -> bool:
    """Staged unfreezing as a reader writes it: unfreeze the base, refreeze its first two layers, fit; then
    ``base.trainable = True`` to unfreeze them too, compile, fit. Did the second fit change their kernels?"""
    base = dense_base(keras)
    model = keras.Sequential([keras.Input((4,)), base, keras.layers.Dense(1, name="head")])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4)).astype("float32"), rng.integers(0, 2, size=(8, 1)).astype("float32")
    refrozen = refreeze_first_two(base)  # after `base.trainable = True`, which a fresh base already is
    compile_model(keras, model)
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)
    base.trainable = True
    compile_model(keras, model)
    kernels = [layer.kernel for layer in refrozen]
    before = values(kernels)
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)
    return changed(before, kernels)


def augmented_direct_call(keras) -> bool:
    """``Input -> RandomFlip -> BatchNormalization -> head`` called as ``model(x)``, without ``training``, as a
    reader predicts one image: did the BatchNormalization statistics move?"""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.RandomFlip("horizontal", seed=1, name="flip")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(x))
    statistics = [model.get_layer("bn").moving_mean, model.get_layer("bn").moving_variance]
    before = values(statistics)
    model(images()[0])
    return changed(before, statistics)


# Each scenario runs once per process; several checks read its result.
SCENARIOS = {f.__name__: f for f in (as_written, remedy_as_written, remedy_alone, recompile, training_none,
                                     remedy_own_dropout_as_written, remedy_own_dropout_alone, trainable_again,
                                     false_then_true, staged_unfreezing, augmented_direct_call)}
