"""The bases and transfer models the architecture checks (:mod:`companion.suite.architectures`) fine-tune: plain Keras,
random weights, small inputs.

Whether ``fit`` moves a BatchNormalization layer's statistics, and which ``training`` value a Dropout receives, is
decided by how the layers are called, not by the values of their weights: random weights at small inputs show the
same behaviour as pretrained ones at full size, in seconds. Like :mod:`companion.checks.decisive`, this module imports only
numpy, the standard library and (when called) Keras and KerasHub, so it runs under any Keras and backend.
"""

from __future__ import annotations

import importlib.metadata

from companion.checks import decisive, evidence

# The input size of the keras.applications bases (their smallest: 32 x 32) and of the KerasHub backbone.
APPLICATION_SIZE, HUB_SIZE = 32, 16
KERAS_HUB = "keras-hub"


def images(size: int):
    """The decisive checks' images (:func:`companion.checks.decisive.images`, 8 x 8), each pixel repeated to ``size``."""
    x, y = decisive.images()
    factor = size // x.shape[1]
    return x.repeat(factor, axis=1).repeat(factor, axis=2), y


def transfer_model(keras, base, **call):
    """The tutorials' model around any base: ``base(x, **call) -> Dropout(0.5) -> Dense(1)``, at the base's input
    size (:func:`companion.checks.decisive.tutorial_model` is the same at the tiny base's 8 x 8)."""
    inputs = keras.Input(tuple(base.inputs[0].shape[1:]))
    x = base(inputs, **call)
    x = keras.layers.Dropout(0.5, name="head_dropout")(x)
    outputs = keras.layers.Dense(1, name="head")(x)
    return keras.Model(inputs, outputs, name="tutorial")


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


def efficientnet_b0(keras):
    """``keras.applications.EfficientNetB0``, random weights, 32 x 32: its own Dropout layers inside the base."""
    return keras.applications.EfficientNetB0(include_top=False, weights=None, pooling="avg",
                                             input_shape=(APPLICATION_SIZE, APPLICATION_SIZE, 3))


def convnext_tiny(keras):
    """``keras.applications.ConvNeXtTiny``, random weights, 32 x 32: LayerNormalization, layer scale and, where its
    drop-path rate is above 0, stochastic depth."""
    return keras.applications.ConvNeXtTiny(include_top=False, weights=None, pooling="avg",
                                           input_shape=(APPLICATION_SIZE, APPLICATION_SIZE, 3))


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


def keras_hub_unsupported(keras) -> evidence.NotApplicable | None:
    """Why KerasHub cannot run under this Keras (not installed, tf-keras, older than its minimum), or None."""
    from packaging.version import Version

    minimum = keras_hub_minimum()
    if minimum is None:
        return evidence.NotApplicable("keras-hub is not installed")
    if not hasattr(keras, "ops") or Version(keras.__version__.split(".dev")[0]) < Version(minimum):
        return evidence.NotApplicable(f"keras-hub {importlib.metadata.version(KERAS_HUB)} needs keras>={minimum}, "
                                      f"this is Keras {keras.__version__}")
    try:  # a development build can be newer than the minimum and still lack what KerasHub imports
        import keras_hub  # noqa: F401
    except ImportError as error:
        # The error names the file it failed in: a path of this machine, which the page must not show.
        message = evidence.first_line(error).replace(f" ({error.path})", "") if error.path else evidence.first_line(error)
        return evidence.NotApplicable(f"keras-hub {importlib.metadata.version(KERAS_HUB)} does not import under "
                                      f"Keras {keras.__version__}: {message}")
    return None


def keras_hub_efficientnet(keras):
    """KerasHub's ``EfficientNetBackbone`` from its configuration, random weights, 16 x 16: an EfficientNetV2-style
    fused block and an unfused one (custom layers holding 2 and 3 BatchNormalization layers) between the stem's and
    the top's, 7 in all."""
    import keras_hub

    backbone = keras_hub.models.EfficientNetBackbone(
        stackwise_width_coefficients=[1.0, 1.0], stackwise_depth_coefficients=[1.0, 1.0],
        stackwise_kernel_sizes=[3, 3], stackwise_num_repeats=[1, 1], stackwise_input_filters=[8, 8],
        stackwise_output_filters=[8, 16], stackwise_expansion_ratios=[4, 4],
        stackwise_squeeze_and_excite_ratios=[0.0, 0.25], stackwise_strides=[1, 2],
        stackwise_block_types=["fused", "unfused"], num_features=16, input_shape=(HUB_SIZE, HUB_SIZE, 3))
    # The backbone's output is a feature map; pooled, it is a base like the others.
    inputs = keras.Input((HUB_SIZE, HUB_SIZE, 3))
    outputs = keras.layers.GlobalAveragePooling2D(name="pool")(backbone(inputs))
    return keras.Model(inputs, outputs, name="base")


def subclassed_model(keras, base):
    """A subclassed transfer model as readers write one: ``call`` runs ``head(dropout(base(x, training=False)))``."""

    class TransferModel(keras.Model):
        def __init__(self, base, **kwargs):
            super().__init__(**kwargs)
            self.base = base
            self.dropout = keras.layers.Dropout(0.5, name="head_dropout")
            self.head = keras.layers.Dense(1, name="head")

        def call(self, x, training=None):
            return self.head(self.dropout(self.base(x, training=False)))

    return TransferModel(base, name="tutorial")


def keras_hub_version() -> str:
    """The installed KerasHub's version ("not installed" when it is not)."""
    try:
        return importlib.metadata.version(KERAS_HUB)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
