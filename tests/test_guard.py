"""The reader's guard (companion.versions.guard): which layers it flags, derived by hand for small models, on the pinned
Keras (in this process) and on one JAX and one PyTorch column (in a child process each).

The hand derivation, for Keras 3 (every release so far, on every backend): a functional model passes ``fit``'s
``training=True`` to every layer of its graph, overriding a ``training=False`` written at a call (``Functional``'s
``operation_fn``), so the BatchNormalization layers of a base called with ``training=False`` and unfrozen move their
statistics: the guard flags each of them, wherever they sit (a nested block, a custom layer's attribute). The remedy
freezes them: nothing to flag. In a subclassed model, ``self.base(x, training=False)`` reaches the base as written
(its statistics stay), but that value stays in the call's context and reaches the Dropout called after it, which
then does not drop, in both phases: the guard flags that Dropout. A base without BatchNormalization has nothing to flag.
"""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from companion.core.columns import PINNED, Column
from companion.flags import stated
from companion.versions import guard, install

HERE = Path(__file__).parent


def _images(n=8, size=8, seed=0):
    rng = np.random.default_rng(seed)
    # Far from a fresh BatchNormalization's statistics (mean 0, variance 1), so that any update moves them.
    return (3.0 + 2.0 * rng.normal(size=(n, size, size, 3))).astype("float32"), rng.integers(0, 2, (n, 1)).astype(
        "float32")


def nested_block_base(keras):
    """``block -> GlobalAveragePooling2D``, the block a functional model of ``Conv2D -> BN -> Conv2D -> BN``: two
    BatchNormalization layers, one level below the base."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.BatchNormalization(name="bn1")(keras.layers.Conv2D(4, 3, name="conv1")(inputs))
    x = keras.layers.BatchNormalization(name="bn2")(keras.layers.Conv2D(4, 3, name="conv2")(x))
    block = keras.Model(inputs, x, name="block")
    outer = keras.Input((8, 8, 3))
    return keras.Model(outer, keras.layers.GlobalAveragePooling2D(name="pool")(block(outer)), name="base")


def custom_block_base(keras):
    """Two custom blocks, each holding a Conv2D and a BatchNormalization as attributes (as KerasHub's blocks do)."""

    class ConvBlock(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.conv = keras.layers.Conv2D(4, 3, padding="same", name=f"{self.name}_conv")
            self.bn = keras.layers.BatchNormalization(name=f"{self.name}_bn")

        def call(self, x, training=None):
            return self.bn(self.conv(x), training=training)

    inputs = keras.Input((8, 8, 3))
    x = ConvBlock(name="block2")(ConvBlock(name="block1")(inputs))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="pool")(x), name="base")


def layer_norm_base(keras):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.LayerNormalization(name="ln")(keras.layers.Conv2D(4, 3, name="conv")(inputs))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="pool")(x), name="base")


def functional_model(keras, base):
    """The 2020 tutorial's model: ``base(x, training=False)``, Dropout, Dense."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Dropout(0.2, name="head_dropout")(base(inputs, training=False))
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(x), name="transfer")


def subclassed_model(keras, base):
    class Transfer(keras.Model):
        def __init__(self, base, **kwargs):
            super().__init__(**kwargs)
            self.base = base
            self.dropout = keras.layers.Dropout(0.2, name="head_dropout")
            self.head = keras.layers.Dense(1, name="head")

        def call(self, x):
            return self.head(self.dropout(self.base(x, training=False)))

    return Transfer(base, name="transfer")


def _fine_tune(keras, model, base, x, y, remedy=False, loop=False):
    """Phase 1 (base frozen) then fine-tuning (base unfrozen, the remedy if asked), each a fit of 2 batches with the
    guard in it, or one step of the custom loop of companion.checks.fine_tuning watched by guard.watch. Returns the
    layers the guard flagged in fine-tuning: path -> what it expected."""
    from companion.checks import fine_tuning
    from companion.flags import modes
    from companion.flags.remedy import freeze_batch_norm

    if not model.built:
        model(x[:1])
    flagged = {}
    for phase in ("frozen", "fine-tuned"):
        base.trainable = phase == "fine-tuned"
        if phase == "fine-tuned" and remedy:
            freeze_batch_norm(base)
        if loop:
            watcher = guard.watch(model)
            fine_tuning.custom_loop(keras, model, x[:4], y[:4], modes.ModeRecorder(model, lambda layer: False))
            found = watcher.check(on_mismatch="return")
        else:
            model.compile(keras.optimizers.SGD(0.01), keras.losses.BinaryCrossentropy(from_logits=True))
            callback = guard.callback(on_mismatch="warn", fix=False, keras=keras)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[callback])
            found = callback.mismatches
        flagged[phase] = {m.path: m.expected for m in found}
    return flagged


def flagged_by_model() -> dict:
    """Each scenario's flagged layers under this process's Keras (run here or in a column's child process)."""
    from companion.core.variants import load_keras

    keras = load_keras()
    x, y = _images()
    found = {}
    for name, make_base, make_model, remedy, loop in (
            ("nested block", nested_block_base, functional_model, False, False),
            ("nested block, remedy", nested_block_base, functional_model, True, False),
            ("custom blocks", custom_block_base, functional_model, False, False),
            ("custom blocks, remedy", custom_block_base, functional_model, True, False),
            ("subclassed", nested_block_base, subclassed_model, False, False),
            ("custom loop", nested_block_base, functional_model, False, True),
            ("layer norm", layer_norm_base, functional_model, False, False)):
        keras.utils.set_random_seed(0)
        base = make_base(keras)
        found[name] = _fine_tune(keras, make_model(keras, base), base, x, y, remedy, loop)
    return found


# By hand (see the module's docstring): in fine-tuning, per scenario, the layers flagged and what the guard expected
# of them; in the frozen phase only the subclassed model's Dropout (every BatchNormalization is frozen, and stays; the
# call context's leak does not depend on trainable).
BN_FIXED = stated.STATISTICS_FIXED
EXPECTED_ON_KERAS_3 = {
    "nested block": {"base/block/bn1": BN_FIXED, "base/block/bn2": BN_FIXED},
    "nested block, remedy": {},
    "custom blocks": {"base/block1/block1_bn": BN_FIXED, "base/block2/block2_bn": BN_FIXED},
    "custom blocks, remedy": {},
    "subclassed": {"head_dropout": stated.TRAINING_MODE},
    "custom loop": {"base/block/bn1": BN_FIXED, "base/block/bn2": BN_FIXED},
    "layer norm": {},
}


def _check(found: dict) -> None:
    assert {name: flagged["frozen"] for name, flagged in found.items()} == {
        name: EXPECTED_ON_KERAS_3["subclassed"] if name == "subclassed" else {} for name in EXPECTED_ON_KERAS_3}
    assert {name: flagged["fine-tuned"] for name, flagged in found.items()} == EXPECTED_ON_KERAS_3


def test_the_guard_flags_what_the_model_states_on_the_pinned_keras():
    _check(flagged_by_model())


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_guard_flags_the_same_layers_on_jax_and_pytorch(backend):
    column = Column("keras", PINNED, backend)
    if not install.is_installed(column):
        pytest.skip(f"{column.label} is not installed (companion variants install --releases)")
    script = f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import test_guard; " \
             "print(json.dumps(test_guard.flagged_by_model()))"
    done = subprocess.run([sys.executable, "-c", script], env=install.environment(column), capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    _check(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_callback_raises_one_message_naming_the_layers_and_the_keras(keras):
    base = nested_block_base(keras)
    model = functional_model(keras, base)
    x, y = _images()
    model.compile(keras.optimizers.SGD(0.01), keras.losses.BinaryCrossentropy(from_logits=True))
    callback = guard.callback(fix=False)
    with pytest.raises(guard.FineTuningMismatch) as raised:
        model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[callback])
    assert callback.mismatches == raised.value.mismatches  # kept on the callback for code after the fit
    text = str(raised.value)
    assert text.splitlines()[0] == (f"2 layers of transfer did not behave as the model states (after the first "
                                    f"training batch; keras {keras.__version__}, tensorflow backend):")
    assert [m.path for m in raised.value.mismatches] == ["base/block/bn1", "base/block/bn2"]
    assert text.splitlines()[1].startswith("  2 BatchNormalization layers (base/block/bn1, base/block/bn2): moving_mean, "
                                          "moving_variance moved (largest change ")
    assert text.splitlines()[1].endswith("), though base is called with training=False in transfer")


def test_the_fix_is_the_matrix_way_for_a_functional_base_on_this_keras():
    # On the pinned Keras the remedy with a plain call keeps every statistic and lets the head's Dropout drop, and the
    # advice prefers the remedy, then the plainest call (companion.checks.ways.preferred).
    assert guard.fix_here().startswith(f"The fix on keras {PINNED}, from the book's matrix for a functional base: "
                                       "remedy + base(x): after base.trainable = True, call freeze_batch_norm(base)")


def test_a_base_whose_own_dropout_drops_gets_the_fix_for_that_kind_of_model(keras):
    """EfficientNet's blocks hold Dropout layers: frozen and called with training=False, the base's own Dropout still
    drops in phase 1 on the pinned Keras (fit's True passes over the recorded False). The remedy freezes
    BatchNormalization only, so the fix is the matrix's way for a base with its own Dropout, the one way whose
    explicit training=False every Keras honours (tests/test_check.py derives the same advice)."""
    from companion.checks import fine_tuning, models

    base = models.base_with_dropout(keras)
    base.trainable = False
    model = functional_model(keras, base)
    x, y = _images()
    model.compile(keras.optimizers.SGD(0.01), keras.losses.BinaryCrossentropy(from_logits=True))
    with pytest.raises(guard.FineTuningMismatch) as raised:
        model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[guard.callback()])
    assert [(m.path, m.kind, m.expected) for m in raised.value.mismatches] == [
        ("base/base_dropout", "Dropout", stated.INFERENCE_MODE)]
    assert guard.kind_of(raised.value.mismatches) is fine_tuning.OWN_DROPOUT
    fix = str(raised.value).splitlines()[-1]
    assert fix.startswith(f"The fix on keras {PINNED}, from the book's matrix for a base with its own Dropout: "
                          "remedy + InferenceMode(base)(x): after base.trainable = True, call freeze_batch_norm(base)")
    assert guard.WRAPPER in fix


def test_serving_flags_augmentation_that_a_direct_call_runs(keras):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.RandomFlip("horizontal", name="flip")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(x)), name="served")
    images, _ = _images(2)
    assert [(m.path, m.expected) for m in guard.serving(model, images, on_mismatch="return")] == [
        ("flip", stated.INFERENCE_MODE)]
    with pytest.raises(guard.FineTuningMismatch, match="model.predict"):
        guard.serving(model, images)
    plain = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
    assert guard.serving(plain, images) == []


def test_bad_options_are_refused_with_what_is_allowed(keras):
    with pytest.raises(ValueError, match='"raise" or "warn"'):
        guard.callback(on_mismatch="ignore")
    with pytest.raises(ValueError, match="positive number of batches"):
        guard.callback(every_n_batches=0)


def test_a_model_not_built_is_refused_before_watching(keras):
    model = subclassed_model(keras, layer_norm_base(keras))
    with pytest.raises(ValueError, match="not built yet"):
        guard.watch(model)


def test_which_phases_break_what_the_model_states_by_hand():
    from dataclasses import replace

    from companion.checks.evidence import Count, NotApplicable, Phase, Training
    from companion.checks.guard_checks import broke_what_is_stated
    from companion.checks.ways import PLAIN, REMEDY, TRAINING_FALSE, TRAINING_NONE, WRAPPED

    moved = Phase(statistics=Count(1, 1), affine=False, kernels=Count(2, 2), bn_received=Training.TRUE,
                  dropout_inside=NotApplicable("no Dropout in the base"), dropout_after=True)
    # Statistics that move are what base(x) and base(x, training=None) state for an unfrozen base, and nothing else.
    assert [broke_what_is_stated(moved, way, frozen=False) for way in (PLAIN, TRAINING_NONE)] == [False, False]
    assert [broke_what_is_stated(moved, way, frozen=False) for way in (TRAINING_FALSE, WRAPPED, REMEDY)] == [True] * 3
    assert broke_what_is_stated(moved, PLAIN, frozen=True)
    kept = replace(moved, statistics=Count(0, 1))
    assert not any(broke_what_is_stated(kept, way, frozen) for way in (PLAIN, TRAINING_FALSE, REMEDY)
                   for frozen in (True, False))
    # gamma and beta: fixed where the base is frozen or under the remedy; the head's Dropout must drop every way.
    assert [broke_what_is_stated(replace(kept, affine=True), way, frozen=False) for way in (TRAINING_FALSE, REMEDY)] == [
        False, True]
    assert broke_what_is_stated(replace(kept, dropout_after=False), PLAIN, frozen=False)
    # The base's own Dropout drops as stated unless the call states inference.
    own_on = replace(kept, dropout_inside=True)
    assert [broke_what_is_stated(own_on, way, frozen=True) for way in (PLAIN, TRAINING_FALSE, WRAPPED)] == [
        False, True, True]
