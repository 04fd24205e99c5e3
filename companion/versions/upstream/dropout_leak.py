"""Does a fixed `training=False` on a nested base reach the Dropout after it during `fit`? Prints one JSON line."""
import json
import os

import numpy as np

if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
    import tf_keras as keras
else:
    import keras

seen = {}  # Dropout name -> the `training` values its call received during fit


class Recorded(keras.layers.Dropout):
    def call(self, inputs, training=None):
        if recording:
            seen.setdefault(self.name, []).append(training if training is None else bool(training))
        return super().call(inputs, training=training)


def base():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(4)(inputs))


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.base, self.dropout, self.head = base(), Recorded(0.5, name="after_subclassed_base"), keras.layers.Dense(1)

    def call(self, x, training=None):
        return self.head(self.dropout(self.base(x, training=False)))


recording = False
inputs = keras.Input((4,))
dropout = Recorded(0.5, name="after_functional_base")
functional = keras.Model(inputs, keras.layers.Dense(1)(dropout(base()(inputs, training=False))))
x, y = np.ones((8, 4), "float32"), np.ones((8, 1), "float32")
recording = True
for model in (functional, Subclassed()):
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
print(json.dumps({"keras": keras.__version__, "backend": keras.backend.backend(), "dropout_training_in_fit": seen}))
