"""AutoScaleDropout: `trainable` and `training` act independently, as the Keras FAQ says."""

import pytest

from companion.flags.layers import AutoScaleDropout
from companion.suite import layer_facts


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
    obs = layer_facts.observe_dropout(layer=layer, training=True)
    assert 0.45 < obs.fraction_zeroed < 0.55
    assert obs.survivor_values == (3.0,)


@pytest.mark.parametrize("training", [False, None])
def test_inference_is_identity(layer, training):
    assert layer_facts.observe_dropout(layer=layer, training=training).identity


def test_frozen_layer_still_drops_but_has_no_trainable_weights(layer):
    layer.trainable = False
    assert layer.trainable_weights == []
    assert layer_facts.observe_dropout(layer=layer, training=True).fraction_zeroed > 0.4


def test_fit_learns_the_scale_only_when_trainable():
    seen = layer_facts.autoscale_dropout_facts(seed=0)
    assert (seen[True].trainable_weights, seen[True].fit_changed_scale) == (1, True)
    assert (seen[False].trainable_weights, seen[False].fit_changed_scale) == (0, False)
    # Frozen, it still drops: fit passes training=True whatever the layer's trainable flag.
    assert seen[False].dropped_in_fit and seen[False].drops_in_training and seen[False].identity_in_inference
    assert seen[True].rows()[3] == ["trainable=True: fit changed the scale", "yes"]


def test_round_trip_through_a_saved_model_in_safe_mode(keras, tmp_path):
    model = keras.Sequential([keras.Input((4,)), AutoScaleDropout(0.25, name="asd"), keras.layers.Dense(1)])
    model.get_layer("asd").scale.assign(1.7)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("asd"), AutoScaleDropout)
    assert float(loaded.get_layer("asd").scale.numpy()) == pytest.approx(1.7)
