"""In a functional model, does a fixed `training=False` on a nested base reach the Dropout after it during `fit`?
Prints one JSON line: the `training` values that Dropout's `call` received in the training step."""
import json
import os

import numpy as np

if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
    import tf_keras as keras
else:
    import keras

received = []  # the `training` values the Dropout after the base received in the training step
recording = False


class Recorded(keras.layers.Dropout):
    def call(self, inputs, training=None):
        if recording:
            received.append(training if training is None else bool(training))
        return super().call(inputs, training=training)


class Model(keras.Model):
    def train_step(self, *args, **kwargs):  # record only the training step, not the calls that build the model
        global recording
        recording = True
        try:
            return super().train_step(*args, **kwargs)
        finally:
            recording = False


base_inputs = keras.Input((4,))
base = keras.Model(base_inputs, keras.layers.Dense(4)(base_inputs))
inputs = keras.Input((4,))
x = base(inputs, training=False)
x = Recorded(0.5)(x)
model = Model(inputs, keras.layers.Dense(1)(x))
model.compile(optimizer="sgd", loss="mse")
model.fit(np.ones((8, 4), "float32"), np.ones((8, 1), "float32"), batch_size=8, epochs=1, verbose=0)
print(json.dumps({"keras": keras.__version__, "backend": keras.backend.backend(),
                  "dropout_training_in_fit": sorted(set(received), key=str)}))
