"""The probe on real Keras layers: what changed, grouped by kind, and the mode each layer ran in."""

import numpy as np

from companion.flags import modes, probes
from companion.flags.walk import LayerList


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
    with modes.ModeRecorder(model):
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


def test_a_nan_or_inf_weight_is_never_reported_unchanged(keras):
    layer = keras.layers.Dense(2, name="dense")
    layer.build((None, 3))
    layer.bias.assign(np.full(2, np.nan, "float32"))  # NaN before the action, and left alone by it

    def poison():
        layer.kernel.assign(np.full((3, 2), np.nan, "float32"))

    report = probes.observe(LayerList([layer]), poison)
    by_name = {v.name: v for v in report.variables}
    # max |new - old| is NaN for both, and NaN > 0 is False: the old test called them unchanged.
    assert by_name["kernel"].changed and by_name["kernel"].status == "became NaN"
    assert by_name["bias"].changed and by_name["bias"].status == "NaN (non-finite before too)"
    assert (by_name["kernel"].nan, by_name["bias"].nan, by_name["kernel"].finite_before) == (6, 2, True)
    assert report.counts()[probes.KERNELS] == (2, 2)
    assert [v.name for v in report.nonfinite()] == ["kernel", "bias"]
    assert np.isnan(report.per_layer(probes.KERNELS)["dense"])
    assert dict(report.summary_rows())[probes.KERNELS] == "2 of 2 changed (2 hold NaN or Inf)"

    inf = probes.observe(LayerList([layer]), lambda: layer.kernel.assign(np.full((3, 2), np.inf, "float32")))
    assert {v.name: v.status for v in inf.variables} == {"kernel": "Inf (non-finite before too)",
                                                         "bias": "NaN (non-finite before too)"}


def test_variables_belong_to_the_innermost_layer_even_when_held_as_attributes(keras):
    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner_bn = keras.layers.BatchNormalization(name="inner_bn")

        def build(self, input_shape):
            self.inner_bn.build(input_shape)

        def call(self, inputs, training=None):
            return self.inner_bn(inputs, training=training)

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1, name="dense")(Block(name="block")(inputs)))
    kinds = {(t.path, t.name): t.kind for t in probes.tracked_variables(model)}
    assert kinds[("block/inner_bn", "moving_mean")] == probes.BN_MOVING
    assert kinds[("block/inner_bn", "gamma")] == probes.BN_AFFINE
    report = probes.observe(model, probes.call(model, np.ones((4, 4), "float32"), training=True))
    assert report.changed_layers(probes.BN_MOVING) == ["inner_bn"]
    assert report.modes == {"inner_bn": (True,)}  # observe's default: the Dropout and BN layers, at any depth


def test_the_recorder_selects_every_layer_whose_call_takes_training(keras):
    model = _model(keras)
    x, _ = _data()
    with modes.ModeRecorder(model) as recorder:
        model(x, training=False)
    expected = {"bn": [False], "drop": [False]}
    if modes.takes_training_argument(model.get_layer("dense")):  # Keras 3's Dense.call takes it, tf_keras' not
        expected["dense"] = [False]
    assert recorder.values == expected
    assert not modes.takes_training_argument(model.get_layer("conv"))
    assert all("call" not in vars(layer) for layer in recorder.layers)


def _fit(model, x, y):
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)


def test_a_second_fit_without_recompiling_is_seen_in_the_mode_it_ran_in(keras):
    """The chapters' pattern: fit, then watch another fit of the same compiled model. Keras traced the step in the
    first fit, so without a fresh trace the layers' calls run inside the traced function, unseen, and the report
    said "(not called)" for layers that ran."""
    model = _model(keras)
    x, y = _data()
    _fit(model, x, y)
    traced = model.train_function
    with probes.watching(model) as seen:
        _fit(model, x, y)
    # fit calls the model with training=True, which reaches both layers: both ran in training mode.
    assert seen.report.modes == {"bn": (True,), "drop": (True,)}
    assert seen.report.traced_before is False
    assert dict(seen.report.summary_rows())["Dropout 'drop' received training="] == "True"
    assert seen.report.changed_layers(probes.BN_MOVING) == ["bn"]
    # The model's own traced step is back: later code runs what it would have run without the probe.
    assert model.train_function is traced and "compile" not in vars(model)


def test_a_compile_inside_the_watched_block_keeps_its_own_step(keras):
    model = _model(keras)
    x, y = _data()
    _fit(model, x, y)
    traced = model.train_function
    with probes.watching(model) as seen:
        model.get_layer("bn").trainable = False
        model.compile(keras.optimizers.SGD(0.1), keras.losses.BinaryCrossentropy(from_logits=True))
        _fit(model, x, y)
    # A frozen BN runs in inference mode in Keras 3 whatever fit passes, but still receives training=True.
    assert seen.report.modes["bn"] == (True,) and seen.report.changed_layers(probes.BN_MOVING) == []
    assert model.train_function is not traced and model.train_function is not None  # compile's, not the old one


def test_a_trainable_change_without_recompiling_keeps_the_old_step_and_says_the_modes_were_not_seen(keras):
    """Retracing there would train other variables than the reader's fit does (Keras warns: recompile)."""
    model = _model(keras)
    x, y = _data()
    _fit(model, x, y)
    traced = model.train_function
    model.get_layer("dense").trainable = False
    with probes.watching(model) as seen:
        _fit(model, x, y)
    assert model.train_function is traced
    assert seen.report.traced_before is True
    assert dict(seen.report.summary_rows())["Dropout 'drop' received training="] == \
        "(not seen: a step traced before ran)"


def test_after_keras_warned_about_a_trainable_change_the_old_step_is_still_kept(keras):
    """Keras 3's fit warns once about a trainable change and then forgets the compile-time flags; the optimizer,
    built for the variables the old step trains, still tells it apart."""
    model = _model(keras)
    x, y = _data()
    _fit(model, x, y)
    traced = model.train_function
    model.get_layer("dense").trainable = False
    _fit(model, x, y)  # warns; still the old step, which trains the dense kernel
    with probes.watching(model) as seen:
        _fit(model, x, y)
    assert model.train_function is traced and seen.report.traced_before is True
    assert seen.report.changed_layers(probes.KERNELS) == ["conv", "dense"]  # the old step trains both


def test_a_snapshot_gives_the_changes_since_it_was_taken_whenever_it_is_read(keras):
    model = _model(keras)
    x, _ = _data()
    snapshot = probes.Snapshot(model)
    assert snapshot.changed() == []
    model(x, training=True)  # a training-mode call moves the BN statistics and nothing else
    assert snapshot.changed_layers(probes.BN_MOVING) == ["bn"] and snapshot.changed(probes.KERNELS) == []
    model.get_layer("dense").bias.assign(np.ones(1, "float32"))  # read again: this change is seen too
    assert snapshot.changed_layers(probes.KERNELS) == ["dense"]
    # conv: kernel, bias; dense: kernel, bias (4 kernels and biases); bn: gamma, beta; moving mean and variance.
    assert {kind: total for kind, (_, total) in snapshot.counts().items() if kind != probes.OTHER_STATE} == {
        probes.KERNELS: 4, probes.BN_AFFINE: 2, probes.BN_MOVING: 2}


def test_statistics_named_as_batch_norms_count_as_batch_norm_statistics_whoever_owns_them(keras):
    class HandNorm(keras.layers.Layer):
        """Subtracts a moving mean it updates in training mode, as BatchNormalization does, without being one."""

        def build(self, input_shape):
            self.moving_mean = self.add_weight(name="moving_mean", shape=(input_shape[-1],), initializer="zeros",
                                               trainable=False)

        def call(self, x, training=None):
            if training:
                self.moving_mean.assign(0.9 * self.moving_mean + 0.1 * keras.ops.mean(x, axis=0))
            return x - self.moving_mean

    inputs = keras.Input((4,))
    model = keras.Model(inputs, HandNorm(name="hand_norm")(inputs))
    assert [(t.layer, t.name, t.kind) for t in probes.tracked_variables(model)] == [
        ("hand_norm", "moving_mean", probes.BN_MOVING)]
    report = probes.observe(model, probes.call(model, np.ones((2, 4), "float32"), training=True))
    assert report.changed_layers(probes.BN_MOVING) == ["hand_norm"]
