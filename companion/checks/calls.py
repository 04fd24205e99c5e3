"""Calling a model outside ``fit``, as a reader serves it: ``model(x)``, ``model(x, training=False)`` and
``predict``, on the 2020 tutorial's shape of model, whose augmentation layers sit inside it
(``Input -> RandomFlip -> BatchNormalization -> Dropout -> Dense``).

An augmentation layer's own ``call`` defaults to ``training=True`` (Keras 3's ``BaseImagePreprocessingLayer`` and
tf-keras' ``RandomFlip``), so ``model(x)`` augments unless told otherwise; on every Keras 3 release that value is also
written into the shared call context and reaches the layers after it. What each call did is read with the
companion's recorder and snapshot: the ``training`` value the flip, the BatchNormalization and the Dropout
received, and whether the statistics moved.
"""

from __future__ import annotations

from companion.checks import evidence, models
from companion.flags import modes, probes
from companion.flags.walk import is_a, is_batch_norm, is_dropout

SERVING = ("model(x)", "model(x, training=False)", "predict")


def augmented_model(keras):
    """``Input -> RandomFlip -> BatchNormalization -> Dropout(0.5) -> Dense(1)``: augmentation inside the model."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.RandomFlip("horizontal", seed=1, name="flip")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(x), name="augmented")


def serving_calls(keras) -> dict[str, evidence.Serving]:
    """Each way of serving (:data:`SERVING`) on a fresh :func:`augmented_model`: did it augment, move the
    BatchNormalization statistics, run the Dropout in training mode?"""
    x = models.images()[0]
    actions = {"model(x)": lambda model: model(x), "model(x, training=False)": lambda model: model(x, training=False),
               "predict": lambda model: model.predict(x, verbose=0)}
    found = {}
    for how in SERVING:
        model = augmented_model(keras)
        snapshot = probes.Snapshot(model)
        with modes.ModeRecorder(model, lambda layer: is_a(layer, "RandomFlip") or is_batch_norm(layer)
                                or is_dropout(layer)) as recorder:
            actions[how](model)
        training = {name: any(value is True for value in values) for name, values in recorder.modes.items()}
        found[how] = evidence.Serving(augmented=training["flip"],
                                      statistics_moved=bool(snapshot.changed(probes.BN_MOVING)),
                                      dropout=training["dropout"])
    return found
