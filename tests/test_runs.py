"""The runner: recipes become models and setups, a run trains and resumes, kept results follow their key."""

import dataclasses
import json
import os

import numpy as np
import pytest

from companion import cache, probes, profiles, recipes, runs

needs_images = pytest.mark.skipif(not os.environ.get("COMPANION_DATA_DIR"),
                                  reason="needs the real images: set COMPANION_DATA_DIR")


def _conv_base(keras, size=32):
    """A small functional base that ends in a feature map, as the tutorials' bases do."""
    inputs = keras.Input((size, size, 3))
    h = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    return keras.Model(inputs, keras.layers.ReLU(name="relu")(h), name="base")


def test_setups_follow_the_profile():
    smoke = runs.setup(recipes.XCEPTION_2020, profiles.get("smoke"))
    assert (smoke.backbone, smoke.architecture, smoke.dataset) == ("standin", "MobileNetV2", recipes.SHARED_DATASET)
    assert (smoke.phase1_epochs, smoke.phase2_epochs) == profiles.get("smoke").epochs
    assert "stands in for the recipe's Xception" in smoke.label
    offline = runs.setup(recipes.XCEPTION_2020, profiles.get("offline"))
    assert (offline.phase1_epochs, offline.phase2_epochs, offline.images_per_class) == (20, 10, None)
    full = runs.setup(recipes.XCEPTION_2020, profiles.get("full"))
    assert (full.backbone, full.architecture, full.image_size, full.label) == ("imagenet", "Xception", 150, None)
    assert full.dataset.name == "tfds:cats_vs_dogs"
    assert runs.setup(recipes.XCEPTION_2020, profiles.get("full"), dataset=recipes.SHARED_DATASET).dataset \
        == recipes.SHARED_DATASET


@pytest.mark.parametrize("recipe", recipes.RECIPES.values(), ids=lambda r: r.name)
def test_each_recipe_builds_its_model_and_calls_the_base_as_written(keras, recipe):
    built = runs.build_model(recipe, _conv_base(keras), 32)
    assert type(built.model).__name__ == recipe.model_style.replace("functional", "Functional")
    names = [type(layer).__name__ for layer in built.model.layers]
    assert ("Dropout" in names) == bool(recipe.dropout)
    assert [a.name for a in recipe.augmentation] == [n for n in names if n.startswith("Random")]
    with probes.ModeRecorder(built.model) as recorder:
        built.model(np.zeros((2, 32, 32, 3), "float32"), training=True)
    # The base's BN receives the recipe's fixed False, or the outer True where the recipe passes nothing.
    # (Keras 3.15.1 overrides a fixed False inside a functional model: what reaches the layer is then True.)
    assert recorder.modes["bn"] in ([True], [False])
    assert built.head.name == "head_dense" and built.model.output_shape == (None, 1)


def test_the_2019_recipe_with_training_false_becomes_functional(keras):
    variant = recipes.fine_tuning_variants(recipes.MOBILENET_V2_2019)[recipes.TRAINING_FALSE]
    assert variant.model_style == "functional" and variant.base_training is False
    assert type(runs.build_model(variant, _conv_base(keras), 32).model).__name__ == "Functional"


def test_a_sequential_recipe_cannot_pass_training(keras):
    bad = dataclasses.replace(recipes.MOBILENET_V2_2019, base_training=False)
    with pytest.raises(ValueError, match="make the recipe functional"):
        runs.build_model(bad, _conv_base(keras), 32)


def test_the_three_scalings_agree():
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    scaled = runs.scalings(pixels)
    assert set(scaled) == {recipes.SCALE_IN_PIPELINE, recipes.PREPROCESS_INPUT, recipes.RESCALING}
    for out in scaled.values():
        np.testing.assert_allclose(out, pixels / 127.5 - 1, atol=1e-6)


def test_drift_is_measured_from_the_start_of_fine_tuning(keras):
    base = _conv_base(keras)
    drift = runs.BatchNormDrift(base)
    drift.record()
    base(np.full((4, 32, 32, 3), 5.0, "float32"), training=True)
    drift.record()
    assert drift.mean[0] == [0.0] and drift.mean[1][0] > 0 and drift.variance[1][0] > 0


def test_a_kept_folder_is_emptied_when_its_key_changes(tmp_path):
    folder = cache.Folder(tmp_path / "kept", {"seed": 0})
    folder.file("result.json").write_text("{}")
    assert cache.Folder(tmp_path / "kept", {"seed": 0}).has("result.json")
    assert not cache.Folder(tmp_path / "kept", {"seed": 1}).has("result.json")


@needs_images
def test_a_run_trains_both_phases_then_resumes_from_its_checkpoints(tmp_path):
    tiny = dataclasses.replace(profiles.get("smoke"), images_per_class=24, epochs=(1, 1))
    setup = runs.setup(recipes.MOBILENET_V2_2020, tiny)
    result = runs.run(setup, seed=0, batch_size=8, checkpoints=tmp_path, verbose=0)
    assert result.resumed == [] and list(result.fine_tuning) == [recipes.AS_WRITTEN, recipes.BN_FROZEN]
    assert result.phase1.epochs == [1] and all(t.history.epochs == [2] for t in result.fine_tuning.values())
    frozen = result.fine_tuning[recipes.BN_FROZEN]
    assert frozen.bn_layers_trainable == 0 and frozen.bn_layers_moved == 0
    assert result.fine_tuning[recipes.AS_WRITTEN].bn_layers_trainable == 18
    assert 0 <= frozen.validation_accuracy <= 1 and result.label
    again = runs.run(setup, seed=0, batch_size=8, checkpoints=tmp_path, verbose=0)
    assert again.resumed == ["phase 1", recipes.AS_WRITTEN, recipes.BN_FROZEN]
    assert json.loads(again.to_json())["fine_tuning"] == json.loads(result.to_json())["fine_tuning"]
    assert runs.RunResult.from_json(result.to_json()).fine_tuning[recipes.BN_FROZEN].bn_layers_moved == 0
