"""The probe on real Keras layers: what changed, grouped by kind, and the mode each layer ran in."""

import numpy as np

from companion import facts, probes


def _model(keras):
    inputs = keras.Input((6, 6, 3))
    h = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dropout(0.5, name="drop")(h)
    outputs = keras.layers.Dense(1, name="dense")(h)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.1), keras.losses.BinaryCrossentropy(from_logits=True))
    return model


def _data(n=16):
    rng = np.random.default_rng(0)
    return rng.normal(3, 2, size=(n, 6, 6, 3)).astype("float32"), rng.integers(0, 2, (n, 1)).astype("float32")


def test_variables_are_grouped_by_kind(keras):
    tracked = probes.tracked_variables(_model(keras))
    kinds = {(t.layer, t.name): t.kind for t in tracked}
    assert kinds[("conv", "kernel")] == probes.KERNELS
    assert kinds[("bn", "gamma")] == kinds[("bn", "beta")] == probes.BN_AFFINE
    assert kinds[("bn", "moving_mean")] == kinds[("bn", "moving_variance")] == probes.BN_MOVING
    assert kinds[("drop", "seed_generator_state")] == probes.OTHER_STATE


def test_a_frozen_kernel_is_still_classified_as_a_kernel(keras):
    model = _model(keras)
    model.get_layer("dense").trainable = False
    kinds = {(t.layer, t.name): t.kind for t in probes.tracked_variables(model)}
    assert kinds[("dense", "kernel")] == probes.KERNELS


def test_inference_call_changes_nothing_and_runs_in_inference_mode(keras):
    model = _model(keras)
    x, _ = _data()
    report = probes.observe(model, probes.call(model, x, training=False))
    assert report.changed() == []
    assert report.modes == {"bn": (False,), "drop": (False,)}
    assert report.ran_in_training_mode("drop") is False


def test_training_call_moves_statistics_but_not_weights(keras):
    model = _model(keras)
    x, _ = _data()
    report = probes.observe(model, probes.call(model, x, training=True))
    assert report.changed_layers(probes.BN_MOVING) == ["bn"]
    assert report.changed(probes.KERNELS) == [] and report.changed(probes.BN_AFFINE) == []
    assert report.ran_in_training_mode("bn") is True


def test_fit_updates_weights_and_statistics(keras):
    model = _model(keras)
    x, y = _data()
    report = probes.observe(model, probes.fit(model, x, y, steps=2, batch_size=8))
    counts = report.counts()
    assert counts[probes.KERNELS] == (4, 4)
    assert counts[probes.BN_AFFINE] == (2, 2)
    assert counts[probes.BN_MOVING] == (2, 2)
    assert report.modes["drop"] == (True,)


def test_train_on_batch_respects_a_frozen_layer(keras):
    model = _model(keras)
    model.get_layer("conv").trainable = False
    model.compile(keras.optimizers.SGD(0.1), keras.losses.BinaryCrossentropy(from_logits=True))
    x, y = _data(8)
    report = probes.observe(model, probes.train_on_batch(model, x, y))
    changed = {(v.layer, v.name) for v in report.changed(probes.KERNELS)}
    assert changed == {("dense", "kernel"), ("dense", "bias")}


def test_recorder_restores_the_original_call(keras):
    model = _model(keras)
    layer = model.get_layer("drop")
    with probes.ModeRecorder(model):
        assert "call" in vars(layer)
    assert "call" not in vars(layer)


def test_summary_rows_name_every_kind_and_mode(keras):
    model = _model(keras)
    x, _ = _data()
    rows = dict(probes.observe(model, probes.call(model, x, training=True)).summary_rows())
    assert rows[probes.BN_MOVING] == "2 of 2 changed"
    assert rows["Dropout 'drop' received training="] == "True"


def test_per_layer_reports_the_largest_change(keras):
    model = _model(keras)
    x, _ = _data()
    drift = probes.observe(model, probes.call(model, x, training=True)).per_layer(probes.BN_MOVING, "moving_mean")
    assert list(drift) == ["bn"] and drift["bn"] > 0


def test_batch_norm_table_tells_the_two_normalisations_apart():
    rows = {(o.trainable, o.training): o for o in facts.batch_norm_table()}
    assert rows[(True, True)].normalised_with == "batch statistics"
    assert rows[(True, False)].normalised_with == "moving statistics"
    assert rows[(True, True)].moving_statistics_updated and not rows[(True, False)].moving_statistics_updated
