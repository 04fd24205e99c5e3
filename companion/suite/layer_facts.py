"""The executed checks of one layer's behaviour: what Dropout, BatchNormalization, AutoScaleDropout and the other
mode-dependent layers do under each ``training`` value and ``trainable`` setting, on small real inputs; and the
small helpers (random images, a binary compile) the model checks (:mod:`companion.suite.facts`) share.

Nothing here states an expected answer: the chapters print the measurements, and nbval compares them with the
committed outputs, so a change in Keras' behaviour fails CI. The checks run under whichever Keras this process has
(:func:`companion.core.variants.load_keras`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from companion.checks import evidence
from companion.core.variants import load_keras
from companion.flags import models, probes


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def seeded_generator(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def random_images(n: int, size: int = 8, channels: int = 3, seed: int = 0):
    """Inputs far from BatchNormalization's initial statistics (mean 0, variance 1), so that using the
    batch statistics and using the moving statistics give visibly different outputs."""
    rng = seeded_generator(seed)
    x = (3.0 + 2.0 * rng.normal(size=(n, size, size, channels))).astype("float32")
    y = rng.integers(0, 2, size=(n, 1)).astype("float32")
    return x, y


def binary_compile(model, learning_rate=0.01):
    keras = load_keras()
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )


# --- Dropout -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DropoutObservation:
    rate: float
    trainable: bool
    training: bool | None
    fraction_zeroed: float
    survivor_values: tuple[float, ...]  # distinct values of the non-zero outputs, inputs being all ones

    @property
    def identity(self) -> bool:
        return self.fraction_zeroed == 0.0 and self.survivor_values == (1.0,)


def observe_dropout(rate=0.5, trainable: bool | None = None, training: bool | None = True, n=100_000, layer=None):
    """Feed ones through a Dropout layer and report what fraction came out zero and what the rest became.

    ``trainable`` (when given) is set on the layer first; ``layer`` defaults to a new ``Dropout(rate)``.
    """
    keras = load_keras()
    layer = layer or keras.layers.Dropout(rate, seed=1)
    if trainable is not None:
        layer.trainable = trainable
    x = np.ones((1, n), dtype="float32")
    out = layer(x) if training is None else layer(x, training=training)
    return dropout_observation(out, layer, training)


def dropout_observation(output, layer, training: bool | None) -> DropoutObservation:
    """What a Dropout-like ``layer`` made of inputs of ones: the fraction zeroed and the distinct surviving values."""
    out = np.asarray(output)
    survivors = np.unique(np.round(out[out != 0], 5))
    return DropoutObservation(
        layer.rate, layer.trainable, training, float(np.mean(out == 0)), tuple(float(v) for v in survivors)
    )


def dropout_is_inverted(obs: DropoutObservation, tolerance=0.02) -> bool:
    """Zeroes about ``rate`` of the inputs and scales every survivor by exactly ``1/(1-rate)``."""
    return abs(obs.fraction_zeroed - obs.rate) < tolerance and obs.survivor_values == (
        round(1.0 / (1.0 - obs.rate), 5),
    )


# --- BatchNormalization --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BatchNormObservation:
    trainable: bool
    training: bool | None
    normalised_with: str  # "batch statistics", "moving statistics" or "neither"
    report: probes.ProbeReport
    inputs: np.ndarray
    output: np.ndarray

    @property
    def moving_statistics_updated(self) -> bool:
        return bool(self.report.changed(probes.BN_MOVING))

    @property
    def gamma_beta_updated(self) -> bool:
        return bool(self.report.changed(probes.BN_AFFINE))


def _normalised_with(statistics: dict, epsilon: float, x, out) -> str:
    """Which statistics ``out`` was normalised with, given the layer's values before the call."""
    axes = tuple(range(x.ndim - 1))
    candidates = {
        "batch statistics": (x.mean(axis=axes), x.var(axis=axes)),
        "moving statistics": (statistics["moving_mean"], statistics["moving_variance"]),
    }
    for name, (mean, var) in candidates.items():
        expected = statistics["gamma"] * (x - mean) / np.sqrt(var + epsilon) + statistics["beta"]
        if np.allclose(out, expected, atol=1e-3):
            return name
    return "neither"


BN_VALUES = ("moving_mean", "moving_variance", "gamma", "beta")


def batch_norm_values(layer) -> dict[str, np.ndarray]:
    """A copy of a BatchNormalization layer's statistics and gamma/beta, e.g. before a step (see
    :func:`batch_norm_observation`)."""
    return {name: np.array(getattr(layer, name).numpy()) for name in BN_VALUES}


def batch_norm_observation(layer, before: dict, x, output, report: probes.ProbeReport, training: bool | None
                           ) -> BatchNormObservation:
    """What one step did to a BatchNormalization ``layer`` whose values were ``before``, given its ``output`` for
    ``x`` and the probe's ``report``: which statistics normalised the batch, and what changed."""
    out = np.asarray(output)
    return BatchNormObservation(layer.trainable, training, _normalised_with(before, layer.epsilon, x, out), report,
                                x, out)


def observe_batch_norm(trainable: bool, training: bool | None, seed: int = 0) -> BatchNormObservation:
    """One gradient step through a single BatchNormalization layer called with ``training``.

    Reports which statistics normalised the batch (compared with both formulas, computed from the layer's
    values before the step) and which variables the step changed.
    """
    import tensorflow as tf

    keras = load_keras()
    x, _ = random_images(16, seed=seed)
    layer = keras.layers.BatchNormalization()
    layer.build(x.shape)
    layer.trainable = trainable
    target = np.zeros_like(x)
    outputs = []

    def gradient_step():
        with tf.GradientTape() as tape:
            out = layer(x) if training is None else layer(x, training=training)
            loss = tf.reduce_mean(tf.square(out - target))
        outputs.append(np.asarray(out))
        weights = layer.trainable_weights
        for variable, gradient in zip(weights, tape.gradient(loss, weights)):
            variable.assign_sub(0.1 * gradient)

    before = batch_norm_values(layer)
    report = probes.observe(models.LayerList([layer]), gradient_step)
    return batch_norm_observation(layer, before, x, outputs[0], report, training)


def batch_norm_table(seed: int = 0) -> list[BatchNormObservation]:
    """BatchNormalization's 2x2 table: ``trainable`` in {True, False} x ``training`` in {True, False}."""
    return [observe_batch_norm(tr, t, seed) for tr in (True, False) for t in (True, False)]


# --- Models: the transfer-learning pattern ---------------------------------------------------------


def autoscale_dropout_facts(seed: int = 0) -> dict[bool, AutoScaleObservation]:
    """The Keras FAQ's claims about its hypothetical ``AutoScaleDropout``, measured on our implementation: the
    layer once trainable and once frozen, called on ones in both modes, then trained for four steps inside
    ``Sequential([AutoScaleDropout(0.5), Dense(1)])``. The chapter on the two flags shows this source and runs it;
    the version matrix runs it under each variant."""
    keras = load_keras()
    from companion.flags.layers import AutoScaleDropout

    keras.utils.set_random_seed(seed)
    ones = np.ones((1, 100_000), dtype="float32")
    x = np.random.default_rng(seed).normal(size=(64, 64)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    results = {}
    for trainable in (True, False):
        layer = AutoScaleDropout(0.5, seed=seed)
        layer.build((None, 64))
        layer.trainable = trainable
        calls = {"training=True": layer(ones, training=True), "training=False": layer(ones, training=False)}
        model = keras.Sequential([keras.Input((64,)), layer, keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.BinaryCrossentropy(from_logits=True))
        with probes.watching(model) as seen:
            model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        results[trainable] = autoscale_dropout_observation(layer, calls, seen.report)
    return results


@dataclasses.dataclass(frozen=True)
class AutoScaleObservation:
    """What an AutoScaleDropout layer did: its trainable weights, its outputs for inputs of ones in each mode, and
    what a probed ``fit`` did to it."""

    trainable: bool
    trainable_weights: int
    drops_in_training: bool  # some outputs zeroed under training=True
    identity_in_inference: bool  # outputs equal inputs under training=False
    fit_changed_scale: bool
    dropped_in_fit: bool  # the layer received training=True in fit

    def rows(self) -> list[list[str]]:
        """The observation as rows of the chapter's table."""
        tag = f"trainable={self.trainable}"
        return [[f"{tag}: len(layer.trainable_weights)", str(self.trainable_weights)],
                [f"{tag}: drops under training=True", yes_no(self.drops_in_training)],
                [f"{tag}: identity under training=False", yes_no(self.identity_in_inference)],
                [f"{tag}: fit changed the scale", yes_no(self.fit_changed_scale)],
                [f"{tag}: dropped in fit (received training=True)", yes_no(self.dropped_in_fit)]]


def autoscale_dropout_observation(layer, calls: dict, report: probes.ProbeReport) -> AutoScaleObservation:
    """What an AutoScaleDropout ``layer`` did: its trainable weights, its outputs for inputs of ones under
    ``calls["training=True"]`` and ``calls["training=False"]``, and what a probed ``fit`` (``report``) did to it."""
    return AutoScaleObservation(
        trainable=bool(layer.trainable),
        trainable_weights=len(layer.trainable_weights),
        drops_in_training=dropout_observation(calls["training=True"], layer, True).fraction_zeroed > 0,
        identity_in_inference=dropout_observation(calls["training=False"], layer, False).identity,
        fit_changed_scale=any(v.layer == layer.name and v.name == "scale" for v in report.changed()),
        dropped_in_fit=bool(report.ran_in_training_mode(layer.name)))


def batch_norm_variables(channels: int = 8) -> evidence.BatchNormVariables:
    """What a BatchNormalization layer stores: its parameter count per channel, and which variables are trainable."""
    keras = load_keras()
    layer = keras.layers.BatchNormalization()
    layer.build((None, channels))
    non_trainable = {id(v) for v in layer.non_trainable_weights}
    trainable = {id(v) for v in layer.trainable_weights}
    return evidence.BatchNormVariables(
        parameters_per_channel=layer.count_params() // channels,
        moving_statistics_non_trainable=all(id(getattr(layer, n)) in non_trainable
                                            for n in ("moving_mean", "moving_variance")),
        gamma_beta_trainable=all(id(getattr(layer, n)) in trainable for n in ("gamma", "beta")))


def batch_norm_output_depends_on_batch(training: bool, seed: int = 0) -> bool:
    """Does one image's BatchNormalization output change when it is normalised in a different batch?"""
    keras = load_keras()
    x, _ = random_images(8, seed=seed)
    layer = keras.layers.BatchNormalization()
    alone_ish = np.asarray(layer(x[:2], training=training))[0]
    in_batch = np.asarray(layer(x, training=training))[0]
    return not np.allclose(alone_ish, in_batch, atol=1e-5)


def training_value_received(how: str, seed: int = 0):
    """The ``training`` value a Dropout layer's call receives when the model runs by ``how``: ``"predict"``,
    ``"evaluate"``, or ``"call"`` (``model(x)`` with no ``training`` argument).

    (Where Keras does not pass the argument, the layer's call gets its own default; Dropout's is ``False`` in Keras 3
    and ``None`` in tf_keras.)"""
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dropout(0.5, name="dropout")(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x = np.ones((2, 4), "float32")
    actions = {"predict": lambda: model.predict(x, verbose=0), "evaluate": lambda: model.evaluate(x, x, verbose=0),
               "call": lambda: model(x)}
    report = probes.observe(model, actions[how])
    return report.modes["dropout"][0]


# --- Facts that separate the two flags --------------------------------------------------------------------------


def dense_ignores_training(seed: int = 0) -> bool:
    """``Dense(...)(x, training=True)`` and ``(x, training=False)``: the same output? (A Dense layer has no training
    mode; the blog's custom layer passes it ``training`` anyway.) Raises if Keras refuses the argument."""
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    x = seeded_generator(seed).normal(size=(4, 3)).astype("float32")
    layer = keras.layers.Dense(2)
    return bool(np.allclose(np.asarray(layer(x, training=True)), np.asarray(layer(x, training=False))))


def batch_norm_moving_average(seed: int = 0) -> bool:
    """One training-mode call of a BatchNormalization layer: is the new moving mean exactly the exponential average
    ``momentum * old + (1 - momentum) * batch mean``?"""
    keras = load_keras()
    x, _ = random_images(16, seed=seed)
    layer = keras.layers.BatchNormalization()
    layer.build(x.shape)
    old = np.array(layer.moving_mean.numpy())
    layer(x, training=True)
    expected = layer.momentum * old + (1 - layer.momentum) * x.mean(axis=(0, 1, 2))
    return bool(np.allclose(layer.moving_mean.numpy(), expected, atol=1e-6))


# The layers :func:`trainable_changes_mode` tests, by name.
MODE_LAYERS = ("Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise", "AlphaDropout", "RandomFlip",
               "RandomRotation", "LSTM(dropout=0.5)", "AutoScaleDropout")


def _mode_layers(keras) -> dict:
    """Every built-in Keras layer whose output depends on the ``training`` argument, other than BatchNormalization,
    with an input it accepts; and the FAQ's AutoScaleDropout, which also has a trainable weight."""
    from companion.flags.layers import AutoScaleDropout

    rng = seeded_generator(1)
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
        "AutoScaleDropout": (lambda: AutoScaleDropout(0.5, seed=1), images),
    }


def runs_in_training_mode(make, data, trainable: bool) -> bool:
    """A fresh layer from ``make()`` with ``trainable`` set, called with ``training=True``: does its output differ
    from the same layer's output under ``training=False`` (i.e. did it run in training mode)?"""
    layer = make()
    layer.trainable = trainable
    return not np.allclose(np.asarray(layer(data, training=True)), np.asarray(layer(data, training=False)))


def trainable_changes_mode() -> dict[str, bool]:
    """Layer name -> does ``trainable=False`` change whether the layer runs in training mode under
    ``training=True``? (Keras' FAQ: only for BatchNormalization.)"""
    keras = load_keras()
    keras.utils.set_random_seed(0)
    layers = _mode_layers(keras)
    assert tuple(layers) == MODE_LAYERS
    return {name: runs_in_training_mode(make, data, True) != runs_in_training_mode(make, data, False)
            for name, (make, data) in layers.items()}


def autoscale_forced_drops_in_predict(trainable: bool, seed: int = 0) -> bool:
    """The FAQ's ``layer = AutoScaleDropout(0.5); y = layer(x, training=True)`` inside a functional model (the layer
    frozen or not): does it drop during ``predict`` ("at training time *and* inference time")?"""
    keras = load_keras()
    from companion.flags.layers import AutoScaleDropout

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((1000,))
    layer = AutoScaleDropout(0.5, seed=seed, name="autoscale")
    model = keras.Model(inputs, layer(inputs, training=True))
    layer.trainable = trainable
    return bool(np.any(np.asarray(model.predict(np.ones((4, 1000), "float32"), verbose=0)) == 0))


