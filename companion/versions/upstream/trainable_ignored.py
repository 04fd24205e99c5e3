"""`base.trainable = True` after freezing the base's layers one by one: are they trainable again? One JSON line."""
import json
import os

if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
    import tf_keras as keras
else:
    import keras

inputs = keras.Input((4,))
base = keras.Model(inputs, keras.layers.Dense(4, name="b")(keras.layers.Dense(4, name="a")(inputs)))
for layer in base.layers:  # refreeze layer by layer, as the tutorials refreeze layers[:fine_tune_at]
    layer.trainable = False
base.trainable = True  # the base's own flag was never False: is this assignment applied?
print(json.dumps({"keras": keras.__version__, "backend": keras.backend.backend(), "base_trainable": base.trainable,
                  "trainable_layers": [layer.name for layer in base.layers if layer.trainable and layer.weights],
                  "trainable_weights": len(base.trainable_weights)}))
