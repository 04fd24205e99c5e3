"""The tutorial chapters' Keras code, generated from each recipe (:func:`companion.tutorials.recipes.keras_code`), runs and
builds the same model as :func:`companion.flags.models.build_recipe_model`, the model the training runs use."""

import ast

import numpy as np
import pytest

from companion.flags import models
from companion.tutorials import recipes

# The smallest inputs each architecture accepts, so that the code runs in seconds with weights=None.
TINY = {"MobileNetV2": 32, "Xception": 71}


def _layer_signature(layer) -> tuple:
    """What makes a layer the same layer for a tutorial's model: its class and the arguments the recipes vary."""
    config = layer.get_config()
    keys = ("rate", "factor", "mode", "scale", "offset", "units")
    return (type(layer).__name__, *(str(config[k]) for k in keys if k in config))


def _structure(model, base) -> list[tuple]:
    return [("base",) if layer is base else _layer_signature(layer) for layer in model.layers]


def _run(code: str, dataset) -> dict:
    namespace = {"train_dataset": dataset, "validation_dataset": dataset}
    exec(compile(code, "<keras_code>", "exec"), namespace)
    return namespace


def _dataset(recipe, size):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(4, size, size, 3)).astype("float32")
    images = models.scale_in_pipeline(recipe, images)
    labels = rng.integers(0, 2, size=(4, 1)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)  # one step per epoch


@pytest.mark.parametrize("recipe", [r.as_written() for r in recipes.RECIPES.values()], ids=lambda r: r.name)
def test_generated_code_runs_and_builds_the_recipes_model(recipe, keras):
    size = TINY[recipe.architecture]
    code = recipes.keras_code(recipe, weights=None, image_size=size, epochs=(1, 1))
    ran = _run(code, _dataset(recipe, size))
    model, base = ran["model"], ran["base_model"]
    assert len(ran["history"].history["loss"]) >= 1  # fine-tuning ran

    reference_base = getattr(keras.applications, recipe.architecture)(
        input_shape=(size, size, 3), include_top=False, weights=None)
    reference = models.build_recipe_model(recipe, reference_base, size)
    assert _structure(model, base) == _structure(reference.model, reference_base)
    assert len(base.layers) == len(reference_base.layers)
    # The same variables are trainable once fine-tuning is set up as the recipe says.
    models.prepare_fine_tuning(recipe, reference_base)
    assert len(model.trainable_weights) == len(reference.model.trainable_weights)
    # Compiled as the recipe says for phase 2.
    assert type(model.optimizer).__name__ == recipe.phase2_optimizer.name
    assert np.isclose(float(model.optimizer.learning_rate), recipe.phase2_optimizer.learning_rate)
    assert model.loss.get_config()["from_logits"] == recipe.loss_from_logits


def test_the_base_is_called_as_the_recipe_says():
    for recipe in recipes.RECIPES.values():
        code = recipes.keras_code(recipe)
        calls = [node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Name) and node.func.id == "base_model"]
        if recipe.model_style == "Sequential":
            assert calls == [] and "    base_model," in code
        else:
            (call,) = calls
            training = {k.arg: k.value.value for k in call.keywords}.get("training")
            assert training == recipe.base_training


def test_known_bugs_are_marked_where_the_recipe_runs_as_written():
    written = recipes.keras_code(recipes.MOBILENET_V2_2019.as_written())
    fixed = recipes.keras_code(recipes.MOBILENET_V2_2019)
    assert "from_logits=False),  # as written (loss-on-logits)" in written
    assert "initial_epoch=history.epoch[-1])  # as written (epoch-overlap)" in written
    assert "as written" not in fixed and "from_logits=True" in fixed and "initial_epoch=history.epoch[-1] + 1" in fixed
    guide = recipes.keras_code(recipes.XCEPTION_2020.as_written())
    assert "keras.metrics.BinaryAccuracy(threshold=0.5)])  # as written (accuracy-threshold)" in guide


def test_the_remedy_appears_in_the_code_of_a_recipe_that_has_it():
    remedied = recipes.fine_tuning_variants(recipes.XCEPTION_2020)[recipes.Way.BN_FROZEN]
    code = recipes.keras_code(remedied)
    assert "if isinstance(layer, keras.layers.BatchNormalization):\n        layer.trainable = False" in code
    assert "BatchNormalization" not in recipes.keras_code(recipes.XCEPTION_2020)
