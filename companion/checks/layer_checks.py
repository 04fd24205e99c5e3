"""What one layer does under each ``training`` value and ``trainable`` setting: Dropout, BatchNormalization, the FAQ's
AutoScaleDropout and the other layers whose output depends on the mode, and the ``training`` value a layer receives
from ``predict``, ``evaluate`` and a direct call. Each scenario is a short function of plain Keras on small inputs,
run under any Keras and backend (the ``keras`` module is passed in); the checks of :mod:`companion.checks.registry`
read their results.
"""

from __future__ import annotations

import numpy as np

from companion.checks import evidence, models
from companion.checks.ways import Call
from companion.flags import modes, probes
from companion.flags.walk import is_batch_norm, is_dropout


def numpy(keras, tensor) -> np.ndarray:
    """A layer's output as a numpy array, on any backend."""
    return np.asarray(keras.ops.convert_to_numpy(tensor) if hasattr(keras, "ops") else tensor)


# --- Dropout ---------------------------------------------------------------------------------------------------------


def dropout_observation(output) -> evidence.DropoutOutput:
    """What a Dropout-like layer made of inputs of ones: the fraction zeroed and the distinct surviving values."""
    out = np.asarray(output)
    survivors = np.unique(np.round(out[out != 0], 5))
    return evidence.DropoutOutput(float(np.mean(out == 0)), tuple(float(v) for v in survivors))


def dropout_calls(keras) -> dict[str, evidence.DropoutOutput]:
    """``Dropout(0.5)`` and a frozen one (``trainable = False``) fed 100,000 ones, with each value of ``training``."""
    ones = np.ones((1, 100_000), dtype="float32")
    dropout = keras.layers.Dropout(0.5, seed=1)
    frozen = keras.layers.Dropout(0.5, seed=1)
    frozen.trainable = False
    outputs = {
        "training=True": dropout(ones, training=True),
        "trainable=False, training=True": frozen(ones, training=True),
        "training=False": dropout(ones, training=False),
        "no training argument": dropout(ones),
    }
    return {label: dropout_observation(numpy(keras, out)) for label, out in outputs.items()}


def forced_dropout_in_predict(keras) -> bool:
    """The Keras FAQ's ``Dropout(0.5)(x, training=True)`` inside a functional model: does it drop in ``predict``?"""
    inputs = keras.Input((1000,))
    model = keras.Model(inputs, keras.layers.Dropout(0.5, seed=1)(inputs, training=True))
    return bool(np.any(numpy(keras, model.predict(np.ones((4, 1000), "float32"), verbose=0)) == 0))


# --- BatchNormalization ----------------------------------------------------------------------------------------------


def normalised_with(before: dict, epsilon: float, x, out) -> evidence.Statistics:
    """Which statistics ``out`` was normalised with, given the layer's values before the call."""
    axes = tuple(range(x.ndim - 1))
    candidates = {evidence.Statistics.BATCH: (x.mean(axis=axes), x.var(axis=axes)),
                  evidence.Statistics.MOVING: (before["moving_mean"], before["moving_variance"])}
    for statistics, (mean, variance) in candidates.items():
        if np.allclose(out, before["gamma"] * (x - mean) / np.sqrt(variance + epsilon) + before["beta"], atol=1e-3):
            return statistics
    return evidence.Statistics.NEITHER


def batch_norm_values(layer) -> dict[str, np.ndarray]:
    """A copy of a BatchNormalization layer's statistics and gamma/beta."""
    return {name: probes.to_numpy(getattr(layer, name)) for name in ("moving_mean", "moving_variance", "gamma", "beta")}


def batch_norm_calls(keras, outputs: dict | None = None) -> dict[tuple[bool, bool | None], evidence.BatchNormCall]:
    """One call of a fresh ``BatchNormalization`` layer per combination of ``trainable`` and ``training`` (and with
    no ``training`` argument), on a batch far from its initial statistics: which statistics normalised the batch,
    and whether the call moved the moving statistics. ``outputs``, where given, receives each call's output."""
    x = models.images(16)[0]
    found = {}
    for trainable, training in ((True, True), (True, False), (False, True), (False, False), (True, None)):
        layer = keras.layers.BatchNormalization()
        layer.build(x.shape)
        layer.trainable = trainable
        before = batch_norm_values(layer)
        out = layer(x) if training is None else layer(x, training=training)
        after = batch_norm_values(layer)
        if outputs is not None:
            outputs[trainable, training] = numpy(keras, out)
        moved = any(not np.array_equal(before[name], after[name]) for name in ("moving_mean", "moving_variance"))
        found[trainable, training] = evidence.BatchNormCall(normalised_with(before, layer.epsilon, x,
                                                                            numpy(keras, out)), moved)
    return found


def batch_norm_variables(keras) -> evidence.BatchNormVariables:
    """What a BatchNormalization layer stores: its parameter count per channel, and which variables are trainable."""
    layer = keras.layers.BatchNormalization()
    layer.build((None, 8))
    trainable = {id(v) for v in layer.trainable_weights}
    return evidence.BatchNormVariables(
        parameters_per_channel=layer.count_params() // 8,
        moving_statistics_non_trainable=not {id(layer.moving_mean), id(layer.moving_variance)} & trainable,
        gamma_beta_trainable={id(layer.gamma), id(layer.beta)} <= trainable)


def batch_norm_batch_dependence(keras) -> evidence.ByTraining:
    """Does one image's BatchNormalization output change when it is normalised in another batch, under
    ``training=True`` and under ``training=False``?"""
    x = models.images(8)[0]

    def depends(training: bool) -> bool:
        layer = keras.layers.BatchNormalization()
        alone = numpy(keras, layer(x[:2], training=training))[0]
        return not np.allclose(alone, numpy(keras, layer(x, training=training))[0], atol=1e-5)

    return evidence.ByTraining(depends(True), depends(False))


def batch_norm_moving_average(keras) -> bool:
    """One training-mode call: is the new moving mean exactly ``momentum * old + (1 - momentum) * batch mean``?"""
    x = models.images(16)[0]
    layer = keras.layers.BatchNormalization()
    layer.build(x.shape)
    old = probes.to_numpy(layer.moving_mean)
    layer(x, training=True)
    expected = layer.momentum * old + (1 - layer.momentum) * x.mean(axis=(0, 1, 2))
    return bool(np.allclose(probes.to_numpy(layer.moving_mean), expected, atol=1e-5))


# --- The mode a layer receives -------------------------------------------------------------------------------------


def modes_received(keras) -> dict[str, evidence.Training]:
    """The ``training`` value a Dropout layer's ``call`` receives in ``predict``, in ``evaluate`` and in ``model(x)``
    with no ``training`` argument (where Keras passes none, the call's own default: ``False`` in Keras 3, ``None`` in
    tf-keras)."""
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dropout(0.5, name="dropout")(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x = np.ones((2, 4), "float32")
    actions = {"predict": lambda: model.predict(x, verbose=0), "evaluate": lambda: model.evaluate(x, x, verbose=0),
               "call": lambda: model(x)}
    received = {}
    for how, action in actions.items():
        with modes.ModeRecorder(model, is_dropout) as recorder:
            action()
        received[how] = evidence.Training.of(recorder.modes["dropout"][0])
    return received


def inference_moves_batch_norm(keras) -> evidence.PredictEvaluate:
    """``predict`` and ``evaluate`` on a model with a trainable BatchNormalization layer: do they move its
    statistics?"""
    base = models.tiny_base(keras)
    model = models.tutorial_model(keras, base, Call.PLAIN)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    x, y = models.images(16)

    def moves(action) -> bool:
        snapshot = probes.Snapshot(model)
        action()
        return bool(snapshot.changed(probes.BN_MOVING))

    return evidence.PredictEvaluate(moves(lambda: model.predict(x, verbose=0)),
                                    moves(lambda: model.evaluate(x, y, verbose=0)))


def dense_ignores_training(keras) -> bool:
    """``Dense(2)(x, training=True)`` and ``(x, training=False)``: the same output? (A Dense layer has no training
    mode; the blog's custom layer passes it ``training`` anyway.)"""
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    layer = keras.layers.Dense(2)
    return bool(np.allclose(numpy(keras, layer(x, training=True)), numpy(keras, layer(x, training=False))))


def flatten_layers_reaches_held_layers(keras) -> bool:
    """The remedy's walk (:func:`companion.flags.remedy.freeze_batch_norm`): does Keras' private
    ``_flatten_layers(include_self=True, recursive=True)`` exist and reach the two BatchNormalization layers that the
    custom-block base's blocks hold as attributes, and which ``base.layers`` does not list?"""
    base = models.custom_block_base(keras)
    return len([layer for layer in base._flatten_layers(include_self=True, recursive=True)
                if is_batch_norm(layer)]) == 2


# --- trainable and the mode of layers other than BatchNormalization --------------------------------------------------

# The layers, other than BatchNormalization, whose output depends on the training argument, by name.
MODE_LAYERS = ("Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise", "AlphaDropout", "RandomFlip",
               "RandomRotation", "LSTM(dropout=0.5)", "AutoScaleDropout")


def _mode_layers(keras) -> dict:
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, size=(8, 16, 16, 3)).astype("float32")
    sequences = rng.normal(size=(8, 5, 3)).astype("float32")
    return {
        "Dropout": (lambda: keras.layers.Dropout(0.5, seed=1), images),
        "SpatialDropout2D": (lambda: keras.layers.SpatialDropout2D(0.5, seed=1), images),
        "GaussianDropout": (lambda: keras.layers.GaussianDropout(0.5, seed=1), images),
        "GaussianNoise": (lambda: keras.layers.GaussianNoise(0.5, seed=1), images),
        "AlphaDropout": (lambda: keras.layers.AlphaDropout(0.5, seed=1), images),
        "RandomFlip": (lambda: keras.layers.RandomFlip("horizontal", seed=1), images),
        "RandomRotation": (lambda: keras.layers.RandomRotation(0.2, seed=1), images),
        "LSTM(dropout=0.5)": (lambda: keras.layers.LSTM(4, dropout=0.5), sequences),
        "AutoScaleDropout": (lambda: models.autoscale_dropout(keras, 0.5, seed=1), images),
    }


def trainable_changes_mode(keras) -> evidence.Count:
    """Of the layers of :data:`MODE_LAYERS`, each called with ``training=True`` once trainable and once frozen, how
    many ran in training mode (an output that differs from the same layer's under ``training=False``) in one case
    and not in the other? (The Keras FAQ: ``trainable`` changes the mode of BatchNormalization only.)"""
    def in_training_mode(make, data, trainable: bool) -> bool:
        layer = make()
        layer.trainable = trainable
        return not np.allclose(numpy(keras, layer(data, training=True)), numpy(keras, layer(data, training=False)))

    layers = _mode_layers(keras)
    assert tuple(layers) == MODE_LAYERS
    changed = [in_training_mode(make, data, True) != in_training_mode(make, data, False)
               for make, data in layers.values()]
    return evidence.Count(sum(changed), len(changed))


# --- The FAQ's AutoScaleDropout --------------------------------------------------------------------------------------


def autoscale_dropout_facts(keras) -> dict[bool, evidence.AutoScale]:
    """The Keras FAQ's claims about its ``AutoScaleDropout``, measured: the layer once trainable and once frozen,
    called on ones in training mode, then trained for four steps inside ``Sequential([AutoScaleDropout(0.5),
    Dense(1)])``: its trainable weights, whether it dropped, whether ``fit`` moved its scale and ran it in training
    mode."""
    ones = np.ones((1, 100_000), dtype="float32")
    x = np.random.default_rng(0).normal(size=(64, 64)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    found = {}
    for trainable in (True, False):
        layer = models.autoscale_dropout(keras, 0.5, seed=0)
        layer.build((None, 64))
        layer.trainable = trainable
        drops = dropout_observation(numpy(keras, layer(ones, training=True))).fraction_zeroed > 0
        model = keras.Sequential([keras.Input((64,)), layer, keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.BinaryCrossentropy(from_logits=True))
        scale = probes.to_numpy(layer.scale)
        with modes.ModeRecorder(model, is_dropout, active=False) as recorder, modes.recording_steps(model, recorder):
            model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        found[trainable] = evidence.AutoScale(len(layer.trainable_weights), drops,
                                              not np.array_equal(scale, probes.to_numpy(layer.scale)),
                                              any(value is True for value in recorder.modes[layer.name]))
    return found


def autoscale_forced_in_predict(keras) -> dict[bool, bool]:
    """The FAQ's ``AutoScaleDropout(0.5)(x, training=True)`` inside a functional model, the layer trainable or
    frozen: does it drop in ``predict`` ("at training time *and* inference time")?"""
    found = {}
    for trainable in (True, False):
        inputs = keras.Input((1000,))
        layer = models.autoscale_dropout(keras, 0.5, seed=0)
        model = keras.Model(inputs, layer(inputs, training=True))
        layer.trainable = trainable
        found[trainable] = bool(np.any(numpy(keras, model.predict(np.ones((4, 1000), "float32"), verbose=0)) == 0))
    return found


def frozen_trainable_weights(keras) -> evidence.TrainableWeights:
    """The FAQ's ``assert len(model.trainable_weights) == 2``: a base frozen inside the tutorials' model: trainable
    weights of the base, and of the model."""
    base = models.tiny_base(keras)
    model = models.tutorial_model(keras, base, Call.TRAINING_FALSE)
    base.trainable = False
    return evidence.TrainableWeights(len(base.trainable_weights), len(model.trainable_weights))
