"""The remedy, ``companion.flags.remedy.freeze_batch_norm``: it reaches every BatchNormalization layer at any depth,
each once, refuses (changing nothing) a model whose statistics it could not freeze, and is self-contained, as the
book and ``companion check`` print it for a reader to copy.

Every count is derived by hand from the model's definition (in the comments); statistics moving does not depend on
pretrained weights, so the real architecture is built with random weights at a small input size.
"""

import inspect
import types

import numpy as np
import pytest

from companion.checks import models
from companion.checks.ways import Call
from companion.flags import probes
from companion.flags.remedy import freeze_batch_norm
from companion.flags.walk import batch_norm_layers, is_batch_norm
from companion.versions import check

IMAGE = (8, 8, 3)


def _block_class(keras):
    class Block(keras.layers.Layer):
        """A custom block that keeps a Conv2D and a BatchNormalization as attributes, as KerasHub's blocks do."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.conv = keras.layers.Conv2D(3, 3, padding="same")
            self.bn = keras.layers.BatchNormalization()

        def call(self, x, training=None):
            return self.bn(self.conv(x), training=training)

    return Block


def flat_base(keras):
    # Conv -> BN -> Conv -> BN -> pool: 2 BN layers, both in base.layers.
    inputs = keras.Input(IMAGE)
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(inputs))
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(x))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def nested_base(keras):
    # An inner model (Conv -> BN) inside an outer one that adds a BN: 1 + 1 = 2 BN layers.
    inputs = keras.Input(IMAGE)
    inner = keras.Model(inputs, keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(inputs)), name="inner")
    outer_inputs = keras.Input(IMAGE)
    outputs = keras.layers.BatchNormalization()(inner(outer_inputs))
    return keras.Model(outer_inputs, keras.layers.GlobalAveragePooling2D()(outputs))


def custom_block_base(keras):
    # Two custom blocks, one BN in each: 2 BN layers, none of them in base.layers.
    block = _block_class(keras)
    inputs = keras.Input(IMAGE)
    x = block(name="block_b")(block(name="block_a")(inputs))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def three_levels_deep(keras):
    # A custom layer holding a custom layer holding a Block holding a BN: the BN three levels below the model's
    # own layer; and one BN at the top: 2 BN layers.
    block = _block_class(keras)

    class Holder(keras.layers.Layer):
        def __init__(self, inner, **kwargs):
            super().__init__(**kwargs)
            self.inner = inner

        def call(self, x, training=None):
            return self.inner(x, training=training)

    inputs = keras.Input(IMAGE)
    x = Holder(Holder(block(name="deep_block"), name="middle"), name="outer")(inputs)
    return keras.Model(inputs, keras.layers.BatchNormalization(name="top_bn")(x))


def in_list_and_dict(keras):
    # A custom layer holding two BN in a list and one in a dict: 3 BN layers, none of them an attribute of its own.
    class Norms(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.in_a_list = [keras.layers.BatchNormalization(), keras.layers.BatchNormalization()]
            self.in_a_dict = {"last": keras.layers.BatchNormalization()}

        def call(self, x, training=None):
            for layer in [*self.in_a_list, self.in_a_dict["last"]]:
                x = layer(x, training=training)
            return x

    inputs = keras.Input(IMAGE)
    return keras.Model(inputs, Norms(name="norms")(inputs))


def shared_base(keras):
    # One BN layer called twice (on the input, and after a Conv that keeps its 3 channels): 1 BN layer.
    bn = keras.layers.BatchNormalization()
    inputs = keras.Input(IMAGE)
    x = bn(keras.layers.Conv2D(3, 3, padding="same")(bn(inputs)))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def subclassed_base(keras):
    # A subclassed model holding a BN and a custom block with one more: 1 + 1 = 2 BN layers.
    block = _block_class(keras)

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv, self.bn, self.block = keras.layers.Conv2D(3, 3), keras.layers.BatchNormalization(), block()
            self.pool = keras.layers.GlobalAveragePooling2D()

        def call(self, x, training=None):
            return self.pool(self.block(self.bn(self.conv(x), training=training), training=training))

    net = Net()
    net(np.zeros((1, *IMAGE), "float32"))
    return net


def no_batch_norm_base(keras):
    # Conv -> LayerNormalization -> pool: no BatchNormalization at all.
    return models.layer_norm_base(keras)


BASES = {"flat": (flat_base, 2), "nested": (nested_base, 2), "custom blocks": (custom_block_base, 2),
         "three levels deep": (three_levels_deep, 2), "in a list and a dict": (in_list_and_dict, 3),
         "shared": (shared_base, 1), "subclassed": (subclassed_base, 2), "no BN": (no_batch_norm_base, 0)}


@pytest.mark.parametrize("name", BASES)
def test_every_batch_norm_layer_is_frozen_once(keras, name):
    build, expected = BASES[name]
    base = build(keras)
    frozen = freeze_batch_norm(base)
    assert len(frozen) == len({id(layer) for layer in frozen}) == expected
    assert all(isinstance(layer, keras.layers.BatchNormalization) and not layer.trainable for layer in frozen)
    # Nothing else was frozen: every other layer with weights is still trainable.
    assert all(layer.trainable for layer in base._flatten_layers(include_self=False)
               if layer.weights and not is_batch_norm(layer))


def test_the_layers_a_custom_block_holds_are_out_of_reach_of_base_layers_but_frozen(keras):
    base = custom_block_base(keras)
    # What a loop over base.layers walks: Input, block_a, block_b, pool: no BatchNormalization among them.
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in base.layers)
    assert [layer.name for layer in freeze_batch_norm(base)] == [layer.name for layer in batch_norm_layers(base)]


def _fit_two_steps(keras, base, remedy: bool) -> bool:
    """The tutorials' model around ``base`` (called as ``base(x)``), the base unfrozen, the remedy applied or not,
    compiled, two steps of fit: whether any BatchNormalization statistic moved."""
    model = models.tutorial_model(keras, base, Call.PLAIN)
    base.trainable = True
    if remedy:
        freeze_batch_norm(base)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    snapshot = probes.Snapshot(model)
    model.fit(*models.images(), batch_size=4, epochs=1, verbose=0)
    return bool(snapshot.changed(probes.BN_MOVING))


def test_with_the_remedy_fit_keeps_the_statistics_the_blocks_hold(keras):
    # fit calls the model with training=True, which reaches both blocks' BN through base(x); frozen, they keep
    # their statistics. The control, without the remedy: both move.
    assert not _fit_two_steps(keras, custom_block_base(keras), remedy=True)
    assert _fit_two_steps(keras, custom_block_base(keras), remedy=False)


def _trainable(model) -> list[bool]:
    return [layer.trainable for layer in model._flatten_layers(include_self=True)]


def test_a_hand_written_layer_with_moving_statistics_is_refused_and_nothing_is_frozen(keras):
    class HandNorm(keras.layers.Layer):
        """A hand-written normalisation with BatchNormalization's statistics, not a BatchNormalization: freezing
        the BN layers would leave its statistics to move in fit."""

        def build(self, input_shape):
            shape = (input_shape[-1],)
            self.moving_mean = self.add_weight(name="moving_mean", shape=shape, initializer="zeros", trainable=False)
            self.moving_variance = self.add_weight(name="moving_variance", shape=shape, initializer="ones",
                                                   trainable=False)

        def call(self, x):
            return (x - self.moving_mean) / self.moving_variance

    inputs = keras.Input(IMAGE)
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(HandNorm(name="hand_norm")(inputs)))
    before = _trainable(model)
    with pytest.raises(ValueError, match=r"hand_norm \(HandNorm\) has moving statistics but is not a "
                                         r"BatchNormalization"):
        freeze_batch_norm(model)
    assert _trainable(model) == before and model.get_layer("bn").trainable


def test_a_batch_norm_keras_does_not_track_is_refused_and_nothing_is_frozen(keras):
    class Hidden(keras.layers.Layer):
        """Holds its BatchNormalization in a plain Python object, where Keras does not track it (nor its
        variables, nor its trainable flag)."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.parts = types.SimpleNamespace(bn=keras.layers.BatchNormalization(name="hidden_bn"))

        def call(self, x, training=None):
            return self.parts.bn(x, training=training)

    inputs = keras.Input(IMAGE)
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(Hidden(name="hidden")(inputs)))
    hidden = model.get_layer("hidden").parts.bn
    assert hidden not in list(model._flatten_layers(include_self=True, recursive=True))
    before = _trainable(model)
    with pytest.raises(ValueError, match="hidden_bn is held by hidden where Keras does not track it"):
        freeze_batch_norm(model)
    assert _trainable(model) == before and hidden.trainable and model.get_layer("bn").trainable


# EfficientNetB0 by hand (keras/src/applications/efficientnet.py): the stem's BN (1); 16 MBConv blocks (repeats 1, 2,
# 2, 3, 3, 4, 1), each with a depthwise BN and a projection BN, and an expansion BN when expand_ratio != 1, which
# is every block but the first stage's single one: 16 * 2 + 15 = 47; top_conv's BN, built with include_top=False
# too (1). 1 + 47 + 1 = 49.
EFFICIENTNET_B0_BATCH_NORM = 49


def test_the_printed_source_run_alone_freezes_every_batch_norm_of_a_nested_backbone(keras):
    # What `companion check` prints and the book shows is the function's own source.
    assert check.REMEDY_SOURCE == inspect.getsource(freeze_batch_norm)
    namespace = {}
    exec(check.REMEDY_SOURCE, namespace)  # the text a reader copies, with no module around it
    assert set(namespace) == {"__builtins__", "freeze_batch_norm"}
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(1)(models.efficientnet_b0(keras)(inputs)))
    frozen = namespace["freeze_batch_norm"](model)
    bn = batch_norm_layers(model)
    assert len(frozen) == len(bn) == EFFICIENTNET_B0_BATCH_NORM and not any(layer.trainable for layer in bn)
