"""The executed checks behind the book's claims about ``training`` and ``trainable``.

Each check builds small real Keras models, runs a probe (:mod:`companion.probes`) and returns what it
measured. Nothing here states an expected answer: the chapters print the measurements, and nbval compares
them with the committed outputs, so a change in Keras' behaviour fails CI.

The checks run under whichever Keras this process has (:func:`companion.variants.load_keras`), so the same
suite yields one column of the version matrix per variant (:mod:`companion.matrix`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from companion import backbones, models, probes, recipes
from companion.models import freeze_batch_norm, transfer_model, unfreeze
from companion.profiles import Profile
from companion.variants import load_keras


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _images(n: int, size: int = 8, channels: int = 3, seed: int = 0):
    """Inputs far from BatchNormalization's initial statistics (mean 0, variance 1), so that using the
    batch statistics and using the moving statistics give visibly different outputs."""
    rng = _rng(seed)
    x = (3.0 + 2.0 * rng.normal(size=(n, size, size, channels))).astype("float32")
    y = rng.integers(0, 2, size=(n, 1)).astype("float32")
    return x, y


def _binary_compile(model, learning_rate=0.01):
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
    x, _ = _images(16, seed=seed)
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


def small_base(name="base", with_dropout: bool = True):
    """A tiny stand-in for a pretrained base: Conv2D -> BatchNormalization -> Dropout -> GlobalAveragePooling2D.

    The Dropout inside shows whether a ``training`` value given to the base reaches the base's own layers.
    """
    keras = load_keras()
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, name=f"{name}_conv")(inputs)
    h = keras.layers.BatchNormalization(name=f"{name}_bn")(h)
    if with_dropout:
        h = keras.layers.Dropout(0.5, name=f"{name}_dropout")(h)
    h = keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(h)
    return keras.Model(inputs, h, name=name)


def fine_tune_small(base_training: bool | None, remedy: bool, profile: Profile, seed: int = 0,
                    base_trainable: bool = True):
    """Put the small base in a transfer model, unfreeze it (or not), optionally apply the remedy, ``fit``,
    and probe."""
    load_keras().utils.set_random_seed(seed)
    base = small_base()
    model = transfer_model(base, base_training)
    base.trainable = base_trainable
    if remedy:
        freeze_batch_norm(base)
    _binary_compile(model)
    x, y = _images(profile.probe_steps * profile.probe_batch_size, seed=seed)
    return probes.observe(model, probes.fit(model, x, y, profile.probe_steps, profile.probe_batch_size))


def base_kernels_changed(report: probes.ProbeReport) -> bool:
    """Did any kernel or bias outside the head change?"""
    return any(not v.layer.startswith("head_") for v in report.changed(probes.KERNELS))


def inference_updates_batch_norm(seed: int = 0) -> dict[str, bool]:
    """``predict`` and ``evaluate`` with no ``training`` argument: do they move BN's moving statistics?"""
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    model = transfer_model(small_base(), base_training=None)
    _binary_compile(model)
    x, y = _images(16, seed=seed)
    return {
        "predict": bool(probes.observe(model, lambda: model.predict(x, verbose=0)).changed(probes.BN_MOVING)),
        "evaluate": bool(probes.observe(model, lambda: model.evaluate(x, y, verbose=0)).changed(probes.BN_MOVING)),
    }


def forced_dropout_drops_in_predict(seed: int = 0) -> bool:
    """``Dropout(0.5)(x, training=True)`` inside a functional model: does it drop during ``predict``?

    The Keras FAQ says a layer called with ``training=True`` applies dropout "at training time *and* inference
    time".
    """
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((1000,))
    outputs = keras.layers.Dropout(0.5, name="forced_dropout")(inputs, training=True)
    model = keras.Model(inputs, outputs)
    out = np.asarray(model.predict(np.ones((4, 1000), dtype="float32"), verbose=0))
    return bool(np.any(out == 0))


def dropout_after_base_active(base_training: bool | None = False, seed: int = 0) -> bool:
    """Call the transfer model with ``training=True``: does the Dropout after the base drop anything?

    Measured from outputs: with dropout active, two ``training=True`` calls differ from the inference output.
    """
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    # No Dropout inside the base, and a frozen base (its BN in inference mode): only the head can differ.
    base = small_base(with_dropout=False)
    model = transfer_model(base, base_training, dropout=0.5)
    base.trainable = False
    x, _ = _images(8, seed=seed)
    inference = np.asarray(model(x, training=False))
    return any(not np.allclose(np.asarray(model(x, training=True)), inference) for _ in range(2))


# --- The tutorials' architectures ------------------------------------------------------------------------------

# The tutorial whose fine-tuning each architecture's checks follow (fine_tune_at: layers before it stay frozen).
ARCHITECTURE_RECIPES = {"MobileNetV2": recipes.MOBILENET_V2_2020, "Xception": recipes.XCEPTION_2020}


def architecture_base(architecture: str, profile: Profile, weights: str = "packaged"):
    """The tutorial's base at the profile's input size: the packaged pretrained weights by default (which variables
    change does not depend on the weights, but pretrained BatchNormalization statistics make the run realistic)."""
    return backbones.load(weights, architecture, profile.image_size(architecture))


@dataclasses.dataclass(frozen=True)
class FineTuneObservation:
    architecture: str
    variant_of_recipe: str
    bn_layers: int
    bn_layers_unfrozen: int
    bn_layers_moved: int
    bn_layers_affine_updated: int
    kernels_updated: int
    kernels_unfrozen: int
    head_dropout_training: bool | None
    report: probes.ProbeReport


def fine_tune_architecture(
    architecture: str, profile: Profile, base_training: bool | None = False, remedy: bool = False, seed: int = 0
) -> FineTuneObservation:
    """Fine-tune the tutorial model (``base(x, training=...)`` -> GAP -> Dropout(0.2) -> Dense(1)) on the
    architecture with its packaged pretrained weights for a few ``fit`` steps, and count what changed."""
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    base = architecture_base(architecture, profile)
    size = base.input_shape[1]
    n = profile.probe_steps * profile.probe_batch_size
    rng = _rng(seed)
    x = rng.uniform(-1, 1, size=(n, size, size, 3)).astype("float32")
    y = rng.integers(0, 2, size=(n, 1)).astype("float32")
    model = transfer_model(base, base_training, dropout=0.2, pool=True)
    label = "remedy: BN frozen" if remedy else f"base(x, training={base_training})"
    fine_tune_at = ARCHITECTURE_RECIPES[architecture].fine_tune_at
    return probe_fine_tuning(model, base, fine_tune_at, remedy, x, y, profile, architecture, label)


def probe_fine_tuning(model, base, fine_tune_at: int, freeze_bn: bool, x, y, profile: Profile,
                      architecture: str, label: str) -> FineTuneObservation:
    """The tutorials' fine-tuning step on ``model`` (which contains ``base``), probed over a few ``fit`` steps.

    Unfreezes the base except ``layers[:fine_tune_at]``, optionally freezes every BN layer (the remedy), compiles
    with ``RMSprop(1e-5)`` as the MobileNetV2 tutorial does, fits ``x, y`` and counts what changed in the base.
    """
    keras = load_keras()
    unfreeze(base, fine_tune_at)
    if freeze_bn:
        freeze_batch_norm(base)
    bn = models.batch_norm_layers(base)
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-5),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    unfrozen_kernels = sum(
        1 for layer in base.layers if layer.trainable and not models.is_batch_norm(layer)
        for _ in layer.trainable_weights
    )
    report = probes.observe(model, probes.fit(model, x, y, profile.probe_steps, profile.probe_batch_size))
    base_layers = {layer.name for layer in base.layers}
    base_kernels = [v for v in report.changed(probes.KERNELS) if v.layer in base_layers]
    head_dropout = next((name for name, kind in report.layer_kinds.items()
                         if kind == "Dropout" and name not in base_layers), None)
    return FineTuneObservation(
        architecture=architecture,
        variant_of_recipe=label,
        bn_layers=len(bn),
        bn_layers_unfrozen=sum(layer.trainable for layer in bn),
        bn_layers_moved=len([name for name in report.changed_layers(probes.BN_MOVING) if name in base_layers]),
        bn_layers_affine_updated=len([n for n in report.changed_layers(probes.BN_AFFINE) if n in base_layers]),
        kernels_updated=len(base_kernels),
        kernels_unfrozen=unfrozen_kernels,
        head_dropout_training=report.ran_in_training_mode(head_dropout) if head_dropout else None,
        report=report,
    )


def autoscale_dropout_facts(seed: int = 0) -> dict[str, str]:
    """The Keras FAQ's claims about its hypothetical ``AutoScaleDropout``, measured on our implementation."""
    keras = load_keras()
    from companion.layers import AutoScaleDropout

    keras.utils.set_random_seed(seed)
    results = {}
    for trainable in (True, False):
        layer = AutoScaleDropout(0.5, seed=seed)
        layer.build((None, 64))
        layer.trainable = trainable
        ones = np.ones((1, 100_000), dtype="float32")
        calls = {"training=True": layer(ones, training=True), "training=False": layer(ones, training=False)}
        model = keras.Sequential([keras.Input((64,)), layer, keras.layers.Dense(1, name="head_dense")])
        _binary_compile(model, learning_rate=0.1)
        x = _rng(seed).normal(size=(64, 64)).astype("float32")
        y = (x[:, :1] > 0).astype("float32")
        report = probes.observe(model, probes.fit(model, x, y, steps=4, batch_size=16))
        results.update(autoscale_dropout_rows(layer, calls, report))
    return results


def autoscale_dropout_rows(layer, calls: dict, report: probes.ProbeReport) -> dict[str, str]:
    """What an AutoScaleDropout ``layer`` did: its trainable weights, its outputs for inputs of ones under
    ``calls["training=True"]`` and ``calls["training=False"]``, and what a probed ``fit`` (``report``) did to it."""
    tag = f"trainable={layer.trainable}"
    return {
        f"{tag}: len(layer.trainable_weights)": str(len(layer.trainable_weights)),
        f"{tag}: drops under training=True": yes_no(
            dropout_observation(calls["training=True"], layer, True).fraction_zeroed > 0),
        f"{tag}: identity under training=False": yes_no(
            dropout_observation(calls["training=False"], layer, False).identity),
        f"{tag}: fit changed the scale": yes_no(
            any(v.layer == layer.name and v.name == "scale" for v in report.changed())),
        f"{tag}: dropped in fit (received training=True)": yes_no(bool(report.ran_in_training_mode(layer.name))),
    }


def trainable_variable_counts(architecture: str, profile: Profile) -> dict[str, int]:
    """How many variables backprop may change in the tutorial model as the base is frozen and unfrozen."""
    fine_tune_at = ARCHITECTURE_RECIPES[architecture].fine_tune_at
    base = architecture_base(architecture, profile, weights="random")
    model = transfer_model(base, False, dropout=0.2, pool=True)
    counts = {"layers in the base": len(base.layers)}
    base.trainable = False
    counts["base frozen: the base's own trainable weights"] = len(base.trainable_weights)
    counts["base frozen"] = len(model.trainable_weights)
    base.trainable = True
    counts["base unfrozen"] = len(model.trainable_weights)
    if fine_tune_at:
        unfreeze(base, fine_tune_at)
        counts[f"layers[:{fine_tune_at}] refrozen"] = len(model.trainable_weights)
    return counts


# --- Smaller facts the claims audit needs -----------------------------------------------------------------------


def batch_norm_variables(channels: int = 8) -> dict[str, str]:
    """What a BatchNormalization layer stores: its parameter count per channel, and which variables are trainable."""
    keras = load_keras()
    layer = keras.layers.BatchNormalization()
    layer.build((None, channels))
    non_trainable = {id(v) for v in layer.non_trainable_weights}
    trainable = {id(v) for v in layer.trainable_weights}
    return {
        "parameters per channel": str(layer.count_params() // channels),
        "moving statistics non-trainable": yes_no(all(id(getattr(layer, n)) in non_trainable
                                                      for n in ("moving_mean", "moving_variance"))),
        "gamma/beta trainable": yes_no(all(id(getattr(layer, n)) in trainable for n in ("gamma", "beta"))),
    }


def batch_norm_output_depends_on_batch(training: bool, seed: int = 0) -> bool:
    """Does one image's BatchNormalization output change when it is normalised in a different batch?"""
    keras = load_keras()
    x, _ = _images(8, seed=seed)
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


def fit_in_inference_mode(profile: Profile, seed: int = 0) -> probes.ProbeReport:
    """``fit`` a model whose unfrozen base runs in inference mode: the base is called with ``training=False`` from
    inside a custom layer's ``call``, where every Keras variant honours an explicit argument (unlike a fixed
    ``training`` recorded in a functional model, which Keras 3 releases override: see ``nested_override``).

    The report says which ``training`` value the base's BatchNormalization received and what ``fit`` changed, so a
    claim about "layers in inference mode" is tested on layers that were in inference mode."""
    keras = load_keras()
    keras.utils.set_random_seed(seed)

    class InferenceModeCall(keras.layers.Layer):
        """Calls the layer it wraps with ``training=False``, whatever mode the model runs in."""

        def __init__(self, inner, **kwargs):
            super().__init__(**kwargs)
            self.inner = inner

        def call(self, inputs):
            return self.inner(inputs, training=False)

    base = small_base()
    inputs = keras.Input((8, 8, 3))
    h = InferenceModeCall(base, name="inference_mode_call")(inputs)
    h = keras.layers.Dropout(0.5, name="head_dropout")(h)
    model = keras.Model(inputs, keras.layers.Dense(1, name="head_dense")(h), name="transfer")
    _binary_compile(model)
    x, y = _images(profile.probe_steps * profile.probe_batch_size, seed=seed)
    return probes.observe(model, probes.fit(model, x, y, profile.probe_steps, profile.probe_batch_size))


def base_updates(report: probes.ProbeReport) -> dict[str, bool]:
    """What a probed ``fit`` changed outside the head: BN statistics, BN gamma/beta, kernels and biases."""
    def changed(kind):
        return any(not v.layer.startswith("head_") for v in report.changed(kind))

    return {"statistics": changed(probes.BN_MOVING), "affine": changed(probes.BN_AFFINE),
            "kernels": changed(probes.KERNELS)}


def dense_ignores_training(seed: int = 0) -> bool:
    """``Dense(...)(x, training=True)`` and ``(x, training=False)``: the same output? (A Dense layer has no training
    mode; the blog's custom layer passes it ``training`` anyway.) Raises if Keras refuses the argument."""
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    x = _rng(seed).normal(size=(4, 3)).astype("float32")
    layer = keras.layers.Dense(2)
    return bool(np.allclose(np.asarray(layer(x, training=True)), np.asarray(layer(x, training=False))))


def batch_norm_moving_average(seed: int = 0) -> bool:
    """One training-mode call of a BatchNormalization layer: is the new moving mean exactly the exponential average
    ``momentum * old + (1 - momentum) * batch mean``?"""
    keras = load_keras()
    x, _ = _images(16, seed=seed)
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
    from companion.layers import AutoScaleDropout

    rng = _rng(1)
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
    from companion.layers import AutoScaleDropout

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((1000,))
    layer = AutoScaleDropout(0.5, seed=seed, name="autoscale")
    model = keras.Model(inputs, layer(inputs, training=True))
    layer.trainable = trainable
    return bool(np.any(np.asarray(model.predict(np.ones((4, 1000), "float32"), verbose=0)) == 0))


def frozen_base_predict_mode(seed: int = 0):
    """``base.trainable = False``, the model built as ``base(x)``, then ``predict``: the ``training`` value the base's
    BatchNormalization received."""
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    base = small_base()
    model = transfer_model(base, None)
    base.trainable = False
    x, _ = _images(8, seed=seed)
    return probes.observe(model, lambda: model.predict(x, verbose=0)).modes["base_bn"][0]


def _training_kwarg(nodes):
    """The ``training`` keyword recorded in a layer's inbound nodes (Keras 3 and tf_keras configs), else None."""
    if isinstance(nodes, dict):
        if "training" in nodes:
            return nodes["training"]
        return next((v for v in map(_training_kwarg, nodes.values()) if v is not None), None)
    if isinstance(nodes, (list, tuple)):
        return next((v for v in map(_training_kwarg, nodes) if v is not None), None)
    return None


def recipe_base_call(recipe) -> bool | None:
    """The ``training`` argument the recipe's model, as :func:`companion.models.build_recipe_model` builds it, passes
    to its base, read from the saved model config (``None``: not passed)."""
    load_keras().utils.set_random_seed(0)
    size = 32
    keras = load_keras()
    inputs = keras.Input((size, size, 3))
    # A feature map, as a base without its top returns (the recipe's model pools it).
    base = keras.Model(inputs, keras.layers.BatchNormalization()(keras.layers.Conv2D(2, 3)(inputs)),
                       name="recipe_base")
    model = models.build_recipe_model(recipe, base, size).model
    layers = model.get_config()["layers"]
    (entry,) = [layer for layer in layers if layer.get("config", {}).get("name") == base.name
                or layer.get("name") == base.name]
    return _training_kwarg(entry.get("inbound_nodes", []))
