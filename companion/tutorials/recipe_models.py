"""A recipe's model, as its tutorial builds it, and its phases' steps: the one builder of the transfer model
(:func:`companion.checks.models.tutorial_model`) given the recipe's augmentation, scaling, head and way; compiling a
phase; the fine-tuning step with the remedy where the way has it. The training runs (:mod:`companion.training`) and
the benchmark build here; the tutorial pages write the same Keras literally, and a test holds the two equal.
"""

from __future__ import annotations

import dataclasses

from companion.checks import models
from companion.core.variants import load_keras
from companion.flags.remedy import freeze_batch_norm
from companion.tutorials import recipes
from companion.tutorials.recipes import Recipe


@dataclasses.dataclass
class TutorialModel:
    model: object
    base: object
    head: object  # the Dense(1) layer


def build(recipe: Recipe, base, image_size: int) -> TutorialModel:
    """The tutorial's model around ``base``: augmentation, scaling, the base (called as the recipe's way says),
    ``GlobalAveragePooling2D``, the head's Dropout where it has one, ``Dense(1)``."""
    keras = load_keras()
    before = [getattr(keras.layers, layer.name)(*layer.args) for layer in recipe.augmentation]
    if recipe.preprocessing == recipes.Preprocessing.PREPROCESS_INPUT:
        before.append(keras.applications.mobilenet_v2.preprocess_input)
    elif recipe.preprocessing == recipes.Preprocessing.RESCALING:
        before.append(keras.layers.Rescaling(1 / 127.5, offset=-1))
    model = models.tutorial_model(keras, base, recipe.way.call, size=image_size, before=before, pool=True,
                                  dropout=recipe.dropout, sequential=recipe.model_style == "Sequential")
    return TutorialModel(model, base, model.get_layer("head"))


def prepare_fine_tuning(recipe: Recipe, base) -> None:
    """A recipe's phase-2 step: unfreeze, refreeze ``layers[:fine_tune_at]``, and the remedy where its way has it."""
    models.unfreeze(base, recipe.fine_tune_at)
    if recipe.way.remedy:
        freeze_batch_norm(base)


def compile_phase(recipe: Recipe, model, optimizer: recipes.Optimizer, run_eagerly: bool = False) -> None:
    """Compile ``model`` as the recipe does for one phase (loss on logits, accuracy at the recipe's threshold)."""
    keras = load_keras()
    arguments = {} if optimizer.learning_rate is None else {"learning_rate": optimizer.learning_rate}
    model.compile(
        optimizer=getattr(keras.optimizers, optimizer.name)(**arguments),
        loss=keras.losses.BinaryCrossentropy(from_logits=recipe.loss_from_logits),
        metrics=[keras.metrics.BinaryAccuracy(threshold=recipe.accuracy_threshold, name="accuracy")],
        run_eagerly=run_eagerly,
    )


def scale_in_pipeline(recipe: Recipe, images):
    """The 2019 recipe scales pixels in the input pipeline; the others leave it to the model."""
    return images / 127.5 - 1.0 if recipe.preprocessing == recipes.Preprocessing.SCALE_IN_PIPELINE else images


def scalings(images):
    """The three tutorials' ways of scaling pixels, applied to the same ``images`` (float32 in [0, 255])."""
    import numpy as np

    keras = load_keras()
    return {
        recipes.Preprocessing.SCALE_IN_PIPELINE: images / 127.5 - 1.0,
        recipes.Preprocessing.PREPROCESS_INPUT: np.asarray(keras.applications.mobilenet_v2.preprocess_input(images.copy())),
        recipes.Preprocessing.RESCALING: np.asarray(keras.layers.Rescaling(1 / 127.5, offset=-1)(images)),
    }
