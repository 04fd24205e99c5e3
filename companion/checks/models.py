"""The models the checks build, in plain Keras: small stand-ins for pretrained bases, real ``keras.applications``
architectures and a KerasHub backbone with random weights, the wrapper layer of the ``InferenceMode(base)(x)`` call,
the FAQ's AutoScaleDropout, and the one builder of the tutorials' transfer model (:func:`tutorial_model`), which the
tutorial recipes build with too.

Whether ``fit`` moves a BatchNormalization layer's statistics, and which ``training`` value a layer receives, is
decided by how the layers are called, not by the values of their weights: random weights at small inputs behave as
pretrained ones at full size, in seconds. Every function takes the ``keras`` module to build with (Keras 3 on any
backend, or tf-keras), so the same code runs in every column of the matrix.
"""

from __future__ import annotations

import importlib.metadata

import numpy as np

from companion.checks import evidence
from companion.checks.ways import Call

KERAS_HUB = "keras-hub"
# The smallest inputs the keras.applications bases accept (Xception's first strides need 71), and the KerasHub
# backbone's.
APPLICATION_SIZE, XCEPTION_SIZE, HUB_SIZE = 32, 71, 16


def images(n: int = 8, size: int = 8, seed: int = 0, mean: float = 3.0, sd: float = 2.0):
    """``n`` images, ``size`` pixels square, and 0/1 labels. By default far from a fresh BatchNormalization layer's
    statistics (mean 3, standard deviation 2, where the layer starts at mean 0 and variance 1), so that normalising
    with the batch and with the moving statistics differ."""
    rng = np.random.default_rng(seed)
    x = (mean + sd * rng.normal(size=(n, size, size, 3))).astype("float32")
    y = rng.integers(0, 2, size=(n, 1)).astype("float32")
    return x, y


# --- Bases --------------------------------------------------------------------------------------------------------


def tiny_base(keras, own_dropout: bool = False):
    """A stand-in for a pretrained base: ``Conv2D -> BatchNormalization [-> Dropout] -> GlobalAveragePooling2D``."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    if own_dropout:
        x = keras.layers.Dropout(0.5, name="base_dropout")(x)
    outputs = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, outputs, name="base")


def base_with_dropout(keras):
    """The tiny base with a Dropout of its own, as EfficientNet has: ``Conv2D -> BatchNormalization -> Dropout ->
    GlobalAveragePooling2D``."""
    return tiny_base(keras, own_dropout=True)


def custom_block_base(keras):
    """``ConvBlock -> ConvBlock -> GlobalAveragePooling2D``, each block a custom layer that holds a Conv2D and a
    BatchNormalization as attributes (as KerasHub's EfficientNet and MobileNet blocks hold theirs): two
    BatchNormalization layers, neither of them in ``base.layers``."""

    class ConvBlock(keras.layers.Layer):
        def __init__(self, filters, **kwargs):
            super().__init__(**kwargs)
            self.conv = keras.layers.Conv2D(filters, 3, padding="same", name=f"{self.name}_conv")
            self.bn = keras.layers.BatchNormalization(name=f"{self.name}_bn")

        def call(self, x, training=None):
            return self.bn(self.conv(x), training=training)

    inputs = keras.Input((8, 8, 3))
    x = ConvBlock(4, name="block1")(inputs)
    x = ConvBlock(4, name="block2")(x)
    outputs = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, outputs, name="base")


def layer_norm_base(keras):
    """``Conv2D -> LayerNormalization -> GlobalAveragePooling2D``: normalised, with no BatchNormalization at all."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.LayerNormalization(name="ln")(x)
    outputs = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, outputs, name="base")


def dense_base(keras):
    """A tiny base of three Dense layers: a kernel and a bias each, 6 trainable variables."""
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="dense_3")(keras.layers.Dense(4, name="dense_2")(
        keras.layers.Dense(4, name="dense_1")(inputs)))
    return keras.Model(inputs, x, name="base")


def efficientnet_b0(keras):
    """``keras.applications.EfficientNetB0``, random weights, 32 x 32, pooled: 49 BatchNormalization layers and
    Dropout layers of its own inside the base."""
    return keras.applications.EfficientNetB0(include_top=False, weights=None, pooling="avg",
                                             input_shape=(APPLICATION_SIZE, APPLICATION_SIZE, 3))


def mobilenet_v2(keras):
    """``keras.applications.MobileNetV2``, the tutorials' base (alpha 1.0), random weights, 32 x 32, pooled."""
    return keras.applications.MobileNetV2(include_top=False, weights=None, pooling="avg",
                                          input_shape=(APPLICATION_SIZE, APPLICATION_SIZE, 3))


def xception(keras):
    """``keras.applications.Xception``, the Keras guide's base, random weights, 71 x 71 (its smallest), pooled."""
    return keras.applications.Xception(include_top=False, weights=None, pooling="avg",
                                       input_shape=(XCEPTION_SIZE, XCEPTION_SIZE, 3))


def keras_hub_minimum() -> str | None:
    """The oldest Keras the installed KerasHub accepts, from its own metadata (``keras>=3.15``); None when KerasHub
    is not installed."""
    from packaging.requirements import Requirement

    try:
        requirements = importlib.metadata.requires(KERAS_HUB) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    keras = next(Requirement(r) for r in requirements if Requirement(r).name == "keras")
    return next(spec.version for spec in keras.specifier if spec.operator == ">=")


def keras_hub_version() -> str:
    """The installed KerasHub's version ("not installed" when it is not)."""
    try:
        return importlib.metadata.version(KERAS_HUB)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def keras_hub_unsupported(keras) -> evidence.NotApplicable | None:
    """Why KerasHub cannot run under this Keras (not installed, tf-keras, older than its minimum), or None."""
    from packaging.version import Version

    minimum = keras_hub_minimum()
    if minimum is None:
        return evidence.NotApplicable("keras-hub is not installed")
    if not hasattr(keras, "ops") or Version(keras.__version__.split(".dev")[0]) < Version(minimum):
        return evidence.NotApplicable(f"keras-hub {keras_hub_version()} needs keras>={minimum}, this is Keras "
                                      f"{keras.__version__}")
    try:  # a development build can be newer than the minimum and still lack what KerasHub imports
        import keras_hub  # noqa: F401
    except ImportError as error:
        # The error names the file it failed in: a path of this machine, which the page must not show.
        message = evidence.first_line(error)
        message = message.replace(f" ({error.path})", "") if error.path else message
        return evidence.NotApplicable(f"keras-hub {keras_hub_version()} does not import under Keras "
                                      f"{keras.__version__}: {message}")
    return None


def keras_hub_efficientnet(keras):
    """KerasHub's ``EfficientNetBackbone`` from its configuration, random weights, 16 x 16: an EfficientNetV2-style
    fused block and an unfused one (custom layers holding 2 and 3 BatchNormalization layers) between the stem's and
    the top's, 7 in all; pooled, so that it is a base like the others."""
    import keras_hub

    backbone = keras_hub.models.EfficientNetBackbone(
        stackwise_width_coefficients=[1.0, 1.0], stackwise_depth_coefficients=[1.0, 1.0],
        stackwise_kernel_sizes=[3, 3], stackwise_num_repeats=[1, 1], stackwise_input_filters=[8, 8],
        stackwise_output_filters=[8, 16], stackwise_expansion_ratios=[4, 4],
        stackwise_squeeze_and_excite_ratios=[0.0, 0.25], stackwise_strides=[1, 2],
        stackwise_block_types=["fused", "unfused"], num_features=16, input_shape=(HUB_SIZE, HUB_SIZE, 3))
    inputs = keras.Input((HUB_SIZE, HUB_SIZE, 3))
    outputs = keras.layers.GlobalAveragePooling2D(name="pool")(backbone(inputs))
    return keras.Model(inputs, outputs, name="base")


# --- The transfer model -------------------------------------------------------------------------------------------


def inference_mode(keras, base):
    """``InferenceMode(base)``: a layer whose ``call`` runs ``base`` with ``training=False``. Placed in a functional
    model, it receives the model's ``training`` and does not pass it on: its own explicit value decides for the
    base."""

    class InferenceMode(keras.layers.Layer):
        def __init__(self, base, **kwargs):
            super().__init__(**kwargs)
            self.base = base

        def call(self, inputs):
            return self.base(inputs, training=False)

    return InferenceMode(base, name="inference_mode")


def call_base(keras, base, x, call: Call):
    """``base`` called on ``x`` as ``call`` says."""
    if call is Call.TRAINING_FALSE:
        return base(x, training=False)
    if call is Call.TRAINING_NONE:
        return base(x, training=None)
    if call is Call.WRAPPED:
        return inference_mode(keras, base)(x)
    return base(x)


def tutorial_model(keras, base, call: Call, *, size: int | None = None, before=(), pool: bool = False,
                   dropout: float | None = 0.5, sequential: bool = False):
    """The tutorials' transfer model: ``Input -> before (augmentation, scaling) -> the base, called as call says ->
    [GlobalAveragePooling2D] -> [Dropout] -> Dense(1)``, or the 2019 tutorial's ``Sequential`` of the same layers
    (which calls its base plainly). The one builder of it: the checks (at the base's input size) and the tutorial
    recipes (:func:`companion.tutorials.recipe_models.build`) make theirs here."""
    shape = (size, size, 3) if size else tuple(base.inputs[0].shape[1:])
    head = [*([keras.layers.GlobalAveragePooling2D(name="head_pool")] if pool else []),
            *([keras.layers.Dropout(dropout, name="head_dropout")] if dropout else []),
            keras.layers.Dense(1, name="head")]
    if sequential:
        if before or call is not Call.PLAIN:
            raise ValueError("a Sequential tutorial model calls its base plainly, on inputs already scaled; "
                             "build a functional one")
        return keras.Sequential([keras.Input(shape), base, *head], name="tutorial")
    inputs = keras.Input(shape)
    x = inputs
    for layer in before:
        x = layer(x)
    x = call_base(keras, base, x, call)
    for layer in head:
        x = layer(x)
    return keras.Model(inputs, x, name="tutorial")


def subclassed_model(keras, base, call: Call, passes_training: bool = False):
    """A subclassed transfer model as readers write one: ``call`` runs ``head(dropout(base(x)))``, the base called
    as ``call`` says; with ``passes_training``, ``call`` passes its own ``training`` on to the Dropout and, for a
    plain call, to the base (``base(x, training=training)``), as Keras' guide on subclassing writes it."""

    class TransferModel(keras.Model):
        def __init__(self, base, **kwargs):
            super().__init__(**kwargs)
            self.base = inference_mode(keras, base) if call is Call.WRAPPED else base
            self.dropout = keras.layers.Dropout(0.5, name="head_dropout")
            self.head = keras.layers.Dense(1, name="head")

        def call(self, x, training=None):
            if call is Call.TRAINING_FALSE:
                features = self.base(x, training=False)
            elif call is Call.TRAINING_NONE:
                features = self.base(x, training=None)
            elif passes_training:
                features = self.base(x, training=training)
            else:
                features = self.base(x)
            if passes_training:
                return self.head(self.dropout(features, training=training))
            return self.head(self.dropout(features))

    return TransferModel(base, name="tutorial")


def unfreeze(base, fine_tune_at: int = 0) -> None:
    """The tutorials' fine-tuning step: ``base.trainable = True``, then ``layers[:fine_tune_at]`` frozen again."""
    base.trainable = True
    for layer in base.layers[:fine_tune_at]:
        layer.trainable = False


# --- The Keras FAQ's AutoScaleDropout -------------------------------------------------------------------------------


def autoscale_dropout(keras, rate: float, seed: int = 0, **kwargs):
    """The Keras FAQ's hypothetical "dropout layer where the scaling factor is learned during training": a Dropout
    whose survivors are multiplied by a trainable ``scale`` (starting at ``1/(1-rate)``) instead of the fixed
    factor, and that returns its inputs unchanged in inference mode. It has trainable state *and* a training mode,
    which is what shows that the two flags act independently."""

    class AutoScaleDropout(keras.layers.Dropout):
        def __init__(self, rate, **kwargs):
            super().__init__(rate, **kwargs)
            self.built = False  # Keras 3 marks a Dropout built at once: this one has a weight to make

        def build(self, input_shape):
            self.scale = self.add_weight(name="scale", shape=(), trainable=True,
                                         initializer=keras.initializers.Constant(1.0 / (1.0 - self.rate)))
            super().build(input_shape)

        def call(self, inputs, training=False):
            if not training:
                return inputs
            if hasattr(keras, "ops"):  # Keras 3, any backend
                keep = keras.random.uniform(keras.ops.shape(inputs), seed=self.seed_generator) >= self.rate
                return keras.ops.where(keep, inputs * self.scale, keras.ops.zeros_like(inputs))
            import tensorflow as tf  # tf-keras

            keep = tf.random.uniform(tf.shape(inputs), seed=self.seed) >= self.rate
            return tf.where(keep, inputs * self.scale, tf.zeros_like(inputs))

    return AutoScaleDropout(rate, seed=seed, **kwargs)
