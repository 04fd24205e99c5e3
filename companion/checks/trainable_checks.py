"""When a ``trainable`` change counts, and what ``base.trainable = True`` does: short plain-Keras scenarios on small
``Dense`` models, run under any Keras and backend.

- :func:`trainable_timing`: ``trainable = False`` set on a layer between ``compile`` and the first ``fit``, after a
  ``fit``, after ``model.make_train_function(force=True)``, and followed by a new ``compile``: did the next ``fit``
  leave the layer alone? (The TensorFlow step reads the variables when it is traced at the first ``fit``; the
  PyTorch trainer reads ``trainable_weights`` at every step; the JAX trainer refuses to train a changed model.)
- :func:`optimizer_reuse`: unfreezing a base and compiling again with the optimizer instance phase 1 built (for the
  head's variables only), or with a new one: did ``fit`` train the base?
- :func:`trainable_again`, :func:`false_then_true`, :func:`staged_unfreezing`: ``base.trainable = True`` on a base
  whose own flag is already ``True`` and whose first layers were frozen one by one.
"""

from __future__ import annotations

import re

import numpy as np

from companion.checks import evidence, models
from companion.flags import probes

BATCH_SIZE = 4


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 4)).astype("float32"), rng.integers(0, 2, size=(8, 1)).astype("float32")


def _compile(keras, model) -> None:
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=keras.losses.BinaryCrossentropy(from_logits=True))


def trainable_timing(keras) -> evidence.TrainableTiming:
    """``trainable = False`` set on a Dense layer at four moments: was it honoured (the next ``fit`` left the layer
    unchanged)? Where ``fit`` raised instead, the error."""
    x, y = _data()

    def honoured(moment: str) -> bool | evidence.Failed:
        dense = keras.layers.Dense(1, name="dense")
        model = keras.Sequential([keras.Input((4,)), dense])
        _compile(keras, model)
        if moment != "before the first fit":
            model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)  # makes the train step: dense trainable
        dense.trainable = False
        if moment == "then make_train_function(force=True)":
            model.make_train_function(force=True)
        if moment == "then compile":
            _compile(keras, model)
        snapshot = probes.Snapshot(dense)
        try:
            model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)
        except Exception as error:  # the JAX backend refuses to fit a changed model until it is compiled again
            return evidence.Failed(evidence.first_line(error))
        return not snapshot.changed()

    return evidence.TrainableTiming(*(honoured(moment) for moment in (
        "before the first fit", "after a fit", "then make_train_function(force=True)", "then compile")))


def _naming_a_variable(error: Exception) -> str:
    """The error's line that names the variable the optimizer refused (tf.function wraps it in "in user code:")."""
    lines = [line.strip().strip("'") for line in str(error).splitlines() if line.strip()]
    named = [line for line in lines if re.search(r"(unknown|recogni[sz]e) variable", line, re.IGNORECASE)]
    # PyTorch's message prints the variable's random values: the first line up to them is the same in every run.
    return f"{type(error).__name__}: " + (named or lines or ["no message"])[0].split(", value=")[0]


def optimizer_reuse(keras) -> evidence.OptimizerReuse:
    """Phase 1 with the base frozen; then the base unfrozen and compiled with phase 1's optimizer instance, or not
    compiled but its train step made again (``make_train_function(force=True)``), or compiled with a new optimizer:
    did the second ``fit`` train the base (or raise)?"""
    x, y = _data()

    def base_trained(after_unfreezing: str) -> bool | evidence.Failed:
        base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="base_dense")], name="base")
        model = keras.Sequential([base, keras.layers.Dense(1, name="head")])
        base.trainable = False
        first = keras.optimizers.SGD(0.1)
        model.compile(optimizer=first, loss="mse")
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)  # builds the optimizer for the head's variables
        base.trainable = True
        if after_unfreezing == "make_train_function":
            model.make_train_function(force=True)
        else:
            model.compile(optimizer=first if after_unfreezing == "same optimizer" else keras.optimizers.SGD(0.1),
                          loss="mse")
        snapshot = probes.Snapshot(base)
        try:
            model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)
        except Exception as error:  # Keras 3: ValueError "Unknown variable"; tf-keras: KeyError "cannot recognize"
            return evidence.Failed(_naming_a_variable(error))
        return bool(snapshot.changed())

    return evidence.OptimizerReuse(*(base_trained(how) for how in (
        "same optimizer", "make_train_function", "new optimizer")))


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
    base = models.dense_base(keras)
    refreeze_first_two(base)
    base.trainable = True
    return len(base.trainable_weights) == 6


def false_then_true(keras) -> bool:
    """The same base, set ``trainable = False`` and then ``True``: a change of value each time. All 6 trainable?"""
    base = models.dense_base(keras)
    refreeze_first_two(base)
    base.trainable = False
    base.trainable = True
    return len(base.trainable_weights) == 6


def staged_unfreezing(keras) -> bool:
    """Staged unfreezing as a reader writes it: unfreeze the base, refreeze its first two layers, fit; then
    ``base.trainable = True`` to unfreeze them too, compile, fit. Did the second fit change their kernels?"""
    base = models.dense_base(keras)
    model = keras.Sequential([keras.Input((4,)), base, keras.layers.Dense(1, name="head")])
    x, y = _data()
    refrozen = refreeze_first_two(base)  # after `base.trainable = True`, which a fresh base already is
    _compile(keras, model)
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)
    base.trainable = True
    _compile(keras, model)
    snapshots = [probes.Snapshot(layer) for layer in refrozen]
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)
    return any(snapshot.changed(probes.KERNELS) for snapshot in snapshots)
