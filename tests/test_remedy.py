"""The remedy reaches every BatchNormalization layer at any depth: the plain-Keras snippet the book and `companion
check` print (`decisive.freeze_batch_norm`) and the companion's remedy (`models.freeze_batch_norm`), which refuses a
model whose BatchNormalization statistics it could not reach.

Every count is derived by hand from the model's definition (in the comments); statistics moving does not depend on
pretrained weights, so the real backbones are built with random weights at a small input size.
"""

import numpy as np
import pytest

from companion.checks import decisive
from companion.flags import models
from companion.versions import check

IMAGE = (8, 8, 3)


def _block_class(keras):
    class Block(keras.layers.Layer):
        """A custom block that keeps its layers as attributes, as KerasHub's EfficientNet/MobileNet blocks do."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.conv = keras.layers.Conv2D(4, 3, padding="same")
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
            self.conv, self.bn, self.block = keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(), block()
            self.pool = keras.layers.GlobalAveragePooling2D()

        def call(self, x, training=None):
            return self.pool(self.block(self.bn(self.conv(x), training=training), training=training))

    net = Net()
    net(np.zeros((1, *IMAGE), "float32"))
    return net


def no_batch_norm_base(keras):
    # Conv -> LayerNormalization -> pool: no BatchNormalization at all.
    inputs = keras.Input(IMAGE)
    x = keras.layers.LayerNormalization()(keras.layers.Conv2D(4, 3)(inputs))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


BASES = {"flat": (flat_base, 2), "nested": (nested_base, 2), "custom blocks": (custom_block_base, 2),
         "shared": (shared_base, 1), "subclassed": (subclassed_base, 2), "no BN": (no_batch_norm_base, 0)}


def _statistics(model) -> list:
    return [v for layer in models.batch_norm_layers(model) for v in (layer.moving_mean, layer.moving_variance)]


def _fit_two_steps(keras, base, input_shape, remedy: bool = True) -> list:
    """Put ``base`` in the tutorials' model (called as ``base(x)``), unfreeze it, apply the companion's remedy (or
    not), fit two steps; returns (what it froze, whether any BN moving statistic moved)."""
    inputs = keras.Input(input_shape)
    features = base(inputs)
    if len(features.shape) == 4:  # a backbone's feature map (the small bases pool already)
        features = keras.layers.GlobalAveragePooling2D()(features)
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dropout(0.5)(features)))
    base.trainable = True
    frozen = models.freeze_batch_norm(model) if remedy else []
    before = decisive.values(_statistics(model))
    decisive.compile_model(keras, model)
    rng = np.random.default_rng(0)
    x = (3.0 + 2.0 * rng.normal(size=(4, *input_shape))).astype("float32")  # far from a fresh BN's mean 0, var 1
    model.fit(x, np.ones((4, 1), "float32"), batch_size=2, epochs=1, verbose=0)
    return frozen, decisive.changed(before, _statistics(model))


@pytest.mark.parametrize("name", BASES)
def test_the_snippet_and_the_companion_freeze_every_batch_norm_layer_once(keras, name):
    build, expected = BASES[name]
    base = build(keras)
    frozen = decisive.freeze_batch_norm(keras, base)
    assert len(frozen) == len({id(layer) for layer in frozen}) == expected
    assert all(isinstance(layer, keras.layers.BatchNormalization) and not layer.trainable for layer in frozen)
    again = build(keras)
    assert len(models.freeze_batch_norm(again)) == len(models.batch_norm_layers(again)) == expected
    assert not any(layer.trainable for layer in models.batch_norm_layers(again))


def test_batch_norm_inside_custom_blocks_is_out_of_reach_of_base_layers_but_frozen_and_kept_in_fit(keras):
    base = custom_block_base(keras)
    # What the old remedy walked: Input, block_a, block_b, pool: no BatchNormalization among them.
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in base.layers)
    frozen, moved = _fit_two_steps(keras, base, IMAGE)
    assert len(frozen) == 2 and not moved
    # The control: without the remedy, fit (training=True reaches both blocks' BN) moves their statistics.
    assert _fit_two_steps(keras, custom_block_base(keras), IMAGE, remedy=False)[1]


def test_the_companion_refuses_a_model_with_statistics_it_cannot_freeze(keras):
    class HandNorm(keras.layers.Layer):
        """A hand-written normalization with a moving mean, not a BatchNormalization: the remedy cannot know it."""

        def build(self, input_shape):
            self.moving_mean = self.add_weight(name="moving_mean", shape=(input_shape[-1],), initializer="zeros",
                                               trainable=False)

        def call(self, x):
            return x - self.moving_mean

    inputs = keras.Input(IMAGE)
    x = keras.layers.BatchNormalization()(HandNorm(name="hand_norm")(inputs))
    model = keras.Model(inputs, x)
    with pytest.raises(models.UnreachableBatchNormError, match=r"did not reach and freeze 1 .*hand_norm/moving_mean"):
        models.freeze_batch_norm(model)


def efficientnet_b0(keras):
    return keras.applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3), include_top=False)


# EfficientNetB0 by hand (keras/src/applications/efficientnet.py): the stem's BN (1); 16 MBConv blocks (repeats 1, 2,
# 2, 3, 3, 4, 1), each with a depthwise BN and a projection BN, and an expansion BN when expand_ratio != 1, which
# is every block but the first stage's single one: 16 * 2 + 15 = 47; top_conv's BN, built with include_top=False
# too (1). 1 + 47 + 1 = 49.
EFFICIENTNET_B0_BATCH_NORM = 49


def test_efficientnet_b0_in_a_transfer_model_every_batch_norm_frozen_and_kept_in_fit(keras):
    frozen, moved = _fit_two_steps(keras, efficientnet_b0(keras), (32, 32, 3))
    assert len(frozen) == EFFICIENTNET_B0_BATCH_NORM and not moved


def test_a_kerashub_backbone_with_fused_and_unfused_blocks_every_batch_norm_frozen_and_kept_in_fit(keras):
    keras_hub = pytest.importorskip("keras_hub")
    # The stem's BN and the top's (2, functional); one fused block (expand_ratio 4: expand_bn, project_bn = 2) and
    # one unfused block (expand_ratio 4: expand_bn, bn, project_bn = 3), held as attributes: 2 + 2 + 3 = 7.
    backbone = keras_hub.models.EfficientNetBackbone(
        stackwise_width_coefficients=[1.0, 1.0], stackwise_depth_coefficients=[1.0, 1.0],
        stackwise_kernel_sizes=[3, 3], stackwise_num_repeats=[1, 1], stackwise_input_filters=[8, 8],
        stackwise_output_filters=[8, 16], stackwise_expansion_ratios=[4, 4],
        stackwise_squeeze_and_excite_ratios=[0.0, 0.25], stackwise_strides=[1, 2],
        stackwise_block_types=["fused", "unfused"], stackwise_force_input_filters=[0, 0],
        stackwise_nores_option=[False, False], num_features=32, input_shape=(32, 32, 3))
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in backbone.layers) == 2
    frozen, moved = _fit_two_steps(keras, backbone, (32, 32, 3))
    assert len(frozen) == 7 and not moved


def test_the_printed_snippet_run_as_printed_freezes_every_batch_norm_of_a_nested_backbone(keras):
    printed = check.REMEDY_SOURCE  # what `companion check` prints (tests/test_check.py) and the summary shows
    namespace = {}
    exec(printed, namespace)  # the text a reader copies, not the module's function object
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(1)(efficientnet_b0(keras)(inputs)))
    frozen = namespace["freeze_batch_norm"](keras, model)
    bn = models.batch_norm_layers(model)
    assert len(frozen) == len(bn) == EFFICIENTNET_B0_BATCH_NORM and not any(layer.trainable for layer in bn)
