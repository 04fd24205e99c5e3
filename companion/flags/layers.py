"""Layers the book builds to test a claim.

``AutoScaleDropout`` is the hypothetical layer of the Keras FAQ ("a dropout layer where the scaling factor
is learned during training"): it has trainable state *and* behaves differently in training and inference
mode, so it shows that the ``trainable`` attribute and the ``training`` argument act independently.
"""

from __future__ import annotations

import tensorflow as tf

from companion.core.variants import load_keras

# The layer derives from the Dropout of whichever Keras this process runs (Keras 3 or tf_keras), so that the
# version matrix can measure it under every variant; it uses TensorFlow ops, which both run on.
keras = load_keras()


@keras.saving.register_keras_serializable(package="companion")
class AutoScaleDropout(keras.layers.Dropout):
    """Dropout whose survivors are multiplied by a learned ``scale`` instead of the fixed ``1/(1-rate)``.

    - ``training=True``: zeroes each input with probability ``rate`` and multiplies the survivors by ``scale``;
    - ``training=False`` (or ``None``, Keras' inference default): returns the inputs unchanged.

    ``scale`` starts at ``1/(1-rate)`` (plain inverted dropout) and is the layer's one trainable weight.
    Being a ``Dropout`` subclass, it is seen by :class:`companion.flags.modes.ModeRecorder`.
    """

    def build(self, input_shape):
        self.scale = self.add_weight(
            name="scale",
            shape=(),
            initializer=keras.initializers.Constant(1.0 / (1.0 - self.rate)),
            trainable=True,
        )
        super().build(input_shape)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        keep = tf.random.uniform(tf.shape(inputs)) >= self.rate
        return tf.where(keep, inputs * self.scale, tf.zeros_like(inputs))
