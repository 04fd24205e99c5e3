"""The "Am I affected?" report on small real models: each expectation is derived by hand from how Keras passes
``training`` (``fit`` calls the model with ``training=True``; a layer's call passes it on to the layers it
calls, explicitly or through the call context; an explicit ``training=False`` in a layer's own call wins) and
from how BatchNormalization updates its statistics (only when ``training`` is true *and* the layer is
trainable)."""

import inspect
import json
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from companion.core import variants
from companion.flags import modes, probes, report
from companion.flags.probes import BN_AFFINE, BN_MOVING, KERNELS
from companion.flags.walk import walk_layers

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

# The layers of `standard_model` that every Keras variant hands the mode (tf_keras' Dense.call takes no
# `training`; Keras 3's does).
STANDARD = ["flip", "noise", "custom", "block", "block/bn", "block/drop"]


def custom_layers(keras):
    """Layers of the kind readers write: a layer with `training` in its call, and a block that holds sublayers."""

    class Scale(keras.layers.Layer):
        """Doubles its inputs in training mode only."""

        def call(self, inputs, training=None):
            return inputs * 2.0 if training else inputs

    class Block(keras.layers.Layer):
        """A kernel of its own, and an inner Dense and two inner Dropouts held as attributes."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner_dense = keras.layers.Dense(4, name="inner_dense")
            self.passed = keras.layers.Dropout(0.5, name="passed")
            self.inherited = keras.layers.Dropout(0.5, name="inherited")

        def build(self, input_shape):
            self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer="ones")
            self.inner_dense.build(input_shape)

        def call(self, inputs, training=None):
            h = self.passed(self.inner_dense(inputs * self.scale), training=training)
            return self.inherited(h)  # no training argument: it comes from the call context

        def compute_output_shape(self, input_shape):
            return (*input_shape[:-1], 4)

    class InferenceCall(keras.layers.Layer):
        """Calls the model it holds with a fixed ``training=False``."""

        def __init__(self, branch, **kwargs):
            super().__init__(**kwargs)
            self.branch = branch

        def call(self, inputs, training=None):
            return self.branch(inputs, training=False)

        def compute_output_shape(self, input_shape):
            return input_shape

    return Scale, Block, InferenceCall


def _compile(keras, model):
    model.compile(keras.optimizers.SGD(0.1), keras.losses.MeanSquaredError())
    return model


def standard_model(keras):
    """RandomFlip -> GaussianNoise -> custom layer -> nested Sequential(Conv2D, BN, Dropout) -> pool -> Dense."""
    scale = custom_layers(keras)[0]
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.RandomFlip(name="flip")(inputs)
    h = keras.layers.GaussianNoise(0.1, name="noise")(h)
    h = scale(name="custom")(h)
    block = keras.Sequential([keras.layers.Conv2D(2, 3, name="conv"), keras.layers.BatchNormalization(name="bn"),
                              keras.layers.Dropout(0.5, name="drop")], name="block")
    h = block(h)
    h = keras.layers.GlobalAveragePooling2D(name="pool")(h)
    outputs = keras.layers.Dense(1, name="dense")(h)
    return _compile(keras, keras.Model(inputs, outputs, name="standard"))


def images(n=8):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 8, 8, 3)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


def vectors(n=8, features=4):
    rng = np.random.default_rng(1)
    return rng.normal(2, 3, size=(n, features)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


def _dense_takes_training(keras) -> bool:
    return "training" in inspect.signature(keras.layers.Dense.call).parameters


def _expected_standard_modes(keras):
    # fit calls the model with training=True; the functional graph and the Sequential pass it to every layer
    # whose call takes it; Conv2D, pooling and the input layers take none, so they are not listed.
    return {path: (True,) for path in STANDARD + (["dense"] if _dense_takes_training(keras) else [])}


def _no_wrapper_left(model) -> bool:
    return "train_step" not in vars(model) and all("call" not in vars(layer) for _, layer in walk_layers(model))


def test_every_layer_that_takes_training_is_reported_with_the_mode_fit_gave_it(keras):
    model = standard_model(keras)
    x, y = images()
    r = report.fit_step_report(model, x, y)
    assert r.modes() == _expected_standard_modes(keras)
    assert [m.class_name for m in r.layers][:6] == ["RandomFlip", "GaussianNoise", "Scale", "Sequential",
                                                    "BatchNormalization", "Dropout"]
    assert r.training_layers() == list(r.modes())
    assert (r.model, r.batch_size, r.retraced) == ("standard", 8, False) and math.isfinite(r.loss)
    # One step: every kernel and bias, BN's gamma/beta and its moving statistics move.
    assert r.counts()[KERNELS] == (4, 4) and r.counts()[BN_AFFINE] == (2, 2) and r.counts()[BN_MOVING] == (2, 2)
    assert r.statistics_moved() == {"block/bn": True}
    assert r.nonfinite() == []
    table = r.mode_table()
    assert table.column("layer") == list(r.modes())
    assert set(table.column("training received")) == {"True"} and set(table.column("ran in training mode")) == {"yes"}
    assert table.column("BN statistics moved")[STANDARD.index("block/bn")] == "yes"
    assert model.train_function is None  # none was traced before: the next fit traces its own, without wrappers
    changes = r.change_table()
    rows = {(row[0], row[1]): row[2] for row in changes.rows}
    assert rows[("block/bn", BN_MOVING)] == "2 of 2" and rows[("block/conv", KERNELS)] == "2 of 2"
    assert _no_wrapper_left(model)


def test_a_dropout_held_by_a_custom_layer_is_reported(keras):
    _, block, _ = custom_layers(keras)
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(1, name="out")(block(name="block")(inputs))
    model = _compile(keras, keras.Model(inputs, outputs))
    x, y = vectors()
    r = report.fit_step_report(model, x, y)
    # The block receives True from fit and passes it on; the Dropout it calls without an argument inherits it.
    assert r.modes()["block"] == (True,)
    assert r.modes()["block/passed"] == (True,) and r.modes()["block/inherited"] == (True,)
    assert r.layer("inherited").class_name == "Dropout"
    # Each variable belongs to the innermost layer that owns it: the block's own scale, the inner Dense's kernel.
    owners = {(v.path, v.name): v.kind for v in r.variables}
    assert owners[("block", "scale")] == KERNELS
    assert owners[("block/inner_dense", "kernel")] == owners[("block/inner_dense", "bias")] == KERNELS
    assert {(v.path, v.name) for v in r.changed(KERNELS)} == {
        ("block", "scale"), ("block/inner_dense", "kernel"), ("block/inner_dense", "bias"), ("out", "kernel"),
        ("out", "bias")}


def test_a_batch_norm_shared_by_two_sub_models_is_reported_once_with_both_values(keras):
    *_, inference_call = custom_layers(keras)
    shared = keras.layers.BatchNormalization(name="shared_bn")
    a_in = keras.Input((4,))
    branch_a = keras.Model(a_in, keras.layers.Dense(4, name="a_dense")(shared(a_in)), name="branch_a")
    b_in = keras.Input((4,))
    branch_b = keras.Model(b_in, shared(b_in), name="branch_b")
    inputs = keras.Input((4,))
    h = branch_a(inputs)  # receives fit's True
    h = inference_call(branch_b, name="inference_call")(h)  # calls branch_b with training=False
    model = _compile(keras, keras.Model(inputs, keras.layers.Dense(1, name="out")(h)))
    x, y = vectors()
    r = report.fit_step_report(model, x, y)
    batch_norms = [m for m in r.layers if m.class_name == "BatchNormalization"]
    assert [(m.path, m.training) for m in batch_norms] == [("branch_a/shared_bn", (True, False))]
    assert r.modes()["branch_a"] == (True,) and r.modes()["inference_call/branch_b"] == (False,)
    assert r.ran_in_training_mode("shared_bn") is True
    # Its variables are listed once, under the path where it was met first; the True call moved its statistics.
    assert [(v.path, v.name) for v in r.variables if v.kind == BN_MOVING] == [
        ("branch_a/shared_bn", "moving_mean"), ("branch_a/shared_bn", "moving_variance")]
    assert r.statistics_moved() == {"branch_a/shared_bn": True}


def test_a_second_fit_without_recompiling_gets_the_full_report_and_trains_as_before(keras):
    model = standard_model(keras)
    x, y = images()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # traces the train function
    traced = model.train_function
    # The problem the report solves: a traced step calls the layers without Python seeing it.
    with modes.ModeRecorder(model) as recorder:
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert all(values == [] for values in recorder.values.values())

    r = report.fit_step_report(model, x, y)
    assert r.retraced is True
    assert r.modes() == _expected_standard_modes(keras)
    assert r.counts()[KERNELS] == (4, 4) and r.counts()[BN_MOVING] == (2, 2)

    # Afterwards: the model's own traced function is back, no wrapper is left, and it still trains.
    assert model.train_function is traced
    assert _no_wrapper_left(model)
    snapshot = probes.Snapshot(model)
    with modes.ModeRecorder(model) as recorder:
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert all(values == [] for values in recorder.values.values())  # the old function ran: no new trace
    after = snapshot.variables
    assert sum(v.changed for v in after if v.kind == KERNELS) == 4 and all(v.finite for v in after)
    assert _no_wrapper_left(model)


def test_a_nan_weight_is_reported_as_nan_not_unchanged(keras):
    inputs = keras.Input((4,))
    h = keras.layers.BatchNormalization(name="bn")(inputs)
    dense = keras.layers.Dense(1, name="dense")
    model = _compile(keras, keras.Model(inputs, dense(h)))
    dense.bias.assign(np.array([np.nan], "float32"))
    x, y = vectors()
    r = report.fit_step_report(model, x, y)
    status = {(v.layer, v.name): v.status for v in r.variables}
    # The NaN bias makes the output, the loss and every gradient NaN: each trainable weight becomes NaN.
    assert status[("dense", "bias")] == "NaN (non-finite before too)"
    assert status[("dense", "kernel")] == "became NaN"
    assert status[("bn", "gamma")] == status[("bn", "beta")] == "became NaN"
    # The moving statistics are computed from the inputs alone, in the forward pass: they move, finite.
    assert status[("bn", "moving_mean")] == status[("bn", "moving_variance")] == "changed"
    assert math.isnan(r.loss)
    assert all(v.changed for v in r.variables)
    assert {(v.layer, v.name) for v in r.nonfinite()} == {("dense", "kernel"), ("dense", "bias"), ("bn", "gamma"),
                                                          ("bn", "beta")}
    rows = {(row[0], row[1]): row for row in r.change_table().rows}
    assert rows[("dense", KERNELS)][2:] == ["2 of 2", "nan", "kernel became NaN, bias NaN (non-finite before too)"]


def test_a_frozen_batch_norm_receives_training_true_but_runs_in_inference_mode_and_keeps_its_statistics(keras):
    inputs = keras.Input((4,))
    h = keras.layers.Dense(4, name="d1")(inputs)
    frozen = keras.layers.BatchNormalization(name="frozen_bn")
    h = frozen(h)
    h = keras.layers.Dense(4, name="d2")(h)
    h = keras.layers.BatchNormalization(name="bn")(h)
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(h))
    frozen.trainable = False
    _compile(keras, model)
    x, y = vectors()
    r = report.fit_step_report(model, x, y)
    # Both receive training=True; the frozen one runs in inference mode all the same and updates nothing.
    assert r.modes()["frozen_bn"] == r.modes()["bn"] == (True,)
    assert (r.layer("frozen_bn").trainable, r.layer("bn").trainable) == (False, True)
    assert (r.layer("frozen_bn").received_training, r.layer("frozen_bn").ran_in_training_mode) == (True, False)
    assert (r.layer("bn").received_training, r.layer("bn").ran_in_training_mode) == (True, True)
    assert "bn" in r.training_layers() and "frozen_bn" not in r.training_layers()
    assert r.statistics_moved() == {"frozen_bn": False, "bn": True}
    assert r.changed_layers(BN_MOVING) == ["bn"] and r.changed_layers(BN_AFFINE) == ["bn"]
    assert all(v.status == "unchanged" for v in r.layer_changes("frozen_bn"))
    table = r.mode_table()
    assert table.header[2:] == ["trainable", "ran in training mode", "training received", "BN statistics moved"]
    rows = dict(zip(table.column("layer"), table.rows))
    assert rows["frozen_bn"][2:] == ["no", "no", "True", "no"] and rows["bn"][2:] == ["yes", "yes", "True", "yes"]


def _small_model(keras, compiled=True):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1, name="dense")(inputs), name="small")
    return _compile(keras, model) if compiled else model


def test_a_model_that_is_not_built_is_refused(keras):
    model = _compile(keras, keras.Sequential([keras.layers.Dense(1)], name="unbuilt"))
    with pytest.raises(report.ModelNotBuiltError, match=r"model 'unbuilt' is not built: .* keras\.Input\(shape\)"):
        report.fit_step_report(model, *vectors())


def test_a_model_that_is_not_compiled_is_refused(keras):
    with pytest.raises(report.ModelNotCompiledError, match=r"model 'small' is not compiled: call model\.compile"):
        report.fit_step_report(_small_model(keras, compiled=False), *vectors())


def test_data_of_the_wrong_shape_is_refused_before_anything_runs(keras):
    model = _small_model(keras)
    kernel = np.array(model.get_layer("dense").kernel.numpy())
    x, y = vectors(features=5)
    with pytest.raises(report.DataShapeError) as refused:
        report.fit_step_report(model, x, y)
    assert re.fullmatch(r"x does not match the input '\w+' of model 'small': the model expects shape \(None, 4\) "
                        r"\(None: any size\), the data has shape \(8, 5\)", str(refused.value))
    x, _ = vectors()
    with pytest.raises(report.DataShapeError, match=r"same number of samples.*x \[\(8, 4\)\], y \[\(6, 1\)\]"):
        report.fit_step_report(model, x, y[:6])
    assert isinstance(refused.value, report.ReportError) and isinstance(refused.value, ValueError)
    np.testing.assert_array_equal(model.get_layer("dense").kernel.numpy(), kernel)
    assert model.train_function is None and _no_wrapper_left(model)


def _variant_environment(monkeypatch, name):
    if not os.environ.get(variants.VARIANTS_DIR_ENV) and (ROOT / ".variants").is_dir():
        monkeypatch.setenv(variants.VARIANTS_DIR_ENV, str(ROOT / ".variants"))
    variant = variants.get(name)
    if not variants.is_installed(variant):
        pytest.skip(f"{name} is not installed in {variants.install_folder(variant)}")
    return variants.environment(variant)


CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
import test_report
from companion.flags import report
from companion.core.variants import load_keras
keras = load_keras()
keras.utils.set_random_seed(0)
r = report.fit_step_report(test_report.standard_model(keras), *test_report.images())
print(json.dumps({"variant": r.keras_variant, "modes": r.modes(), "moved": r.statistics_moved()}))
"""


def test_tf_keras_gives_the_same_modes_for_the_standard_layers(keras, monkeypatch):
    env = _variant_environment(monkeypatch, "tf-keras")
    done = subprocess.run([sys.executable, "-c", CHILD, str(TESTS)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    child = json.loads(done.stdout.strip().splitlines()[-1])
    assert child["variant"] == "tf-keras"
    here = report.fit_step_report(standard_model(keras), *images())
    assert {path: tuple(values) for path, values in child["modes"].items() if path in STANDARD} \
        == {path: here.modes()[path] for path in STANDARD} == {path: (True,) for path in STANDARD}
    assert child["moved"] == here.statistics_moved() == {"block/bn": True}


def test_a_trainable_flag_changed_since_compile_is_reported_and_the_compiled_state_kept(keras):
    inputs = keras.Input((4,))
    frozen = keras.layers.BatchNormalization(name="frozen_bn")
    model = _compile(keras, keras.Model(inputs, keras.layers.Dense(1, name="out")(frozen(inputs))))
    model.fit(*vectors(), verbose=0)
    frozen.trainable = False  # after compile, and no recompile
    compiled_state = dict(model._compiled_trainable_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras 3 warns that the flag changed: that is the user's to see
        r = report.fit_step_report(model, *vectors())
    assert r.trainable_changed_since_compile == ("frozen_bn",)
    assert "trainable changed since compile for frozen_bn: recompile" in r.mode_table().caption
    assert dict(model._compiled_trainable_state) == compiled_state  # the user's next fit warns as it would have
    _compile(keras, model)
    assert report.fit_step_report(model, *vectors()).trainable_changed_since_compile == ()
