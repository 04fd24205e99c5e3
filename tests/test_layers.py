"""AutoScaleDropout: `trainable` and `training` act independently, as the Keras FAQ says."""

import pytest

from companion import facts
from companion.layers import AutoScaleDropout


@pytest.fixture()
def layer(keras):
    layer = AutoScaleDropout(0.5, seed=3)
    layer.build((None, 1000))
    return layer


def test_scale_is_the_one_trainable_weight(layer):
    assert [w.name for w in layer.trainable_weights] == ["scale"]
    assert float(layer.scale.numpy()) == pytest.approx(2.0)


def test_training_true_drops_and_scales_survivors(layer):
    layer.scale.assign(3.0)
    obs = facts.observe_dropout(layer=layer, training=True)
    assert 0.45 < obs.fraction_zeroed < 0.55
    assert obs.survivor_values == (3.0,)


@pytest.mark.parametrize("training", [False, None])
def test_inference_is_identity(layer, training):
    assert facts.observe_dropout(layer=layer, training=training).identity


def test_frozen_layer_still_drops_but_has_no_trainable_weights(layer):
    layer.trainable = False
    assert layer.trainable_weights == []
    assert facts.observe_dropout(layer=layer, training=True).fraction_zeroed > 0.4


def test_fit_learns_the_scale_only_when_trainable():
    results = facts.autoscale_dropout_facts(seed=0)
    assert results["trainable=True: fit changed the scale"] == "yes"
    assert results["trainable=False: fit changed the scale"] == "no"
    assert results["trainable=False: dropped in fit (received training=True)"] == "yes"


def test_round_trip_through_a_saved_model_in_safe_mode(keras, tmp_path):
    model = keras.Sequential([keras.Input((4,)), AutoScaleDropout(0.25, name="asd"), keras.layers.Dense(1)])
    model.get_layer("asd").scale.assign(1.7)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("asd"), AutoScaleDropout)
    assert float(loaded.get_layer("asd").scale.numpy()) == pytest.approx(1.7)
