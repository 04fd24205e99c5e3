"""`companion check --model FILE` on saved models: a MobileNetV2 transfer model and a nested backbone, against counts
derived by hand from their architectures, and the errors for files it must refuse.

The pinned Keras 3.15.1 (TensorFlow backend) overrides a fixed `training=False` on a nested base during `fit`
(the matrix's check `flat.training_false`, NOTES.md section 2), so as written every BatchNormalization layer of the
base moves its statistics; with the remedy (`trainable = False` on each one) none does. tf-keras honours it.
"""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import ROOT

from companion.checks import models
from companion.checks.ways import Call
from companion.core import variants
from companion.flags import probes
from companion.pages import cli
from companion.versions import model_check

# MobileNetV2's BatchNormalization layers, from its architecture (keras.applications.mobilenet_v2): the stem's
# bn_Conv1 (1); block 0 (expanded_conv) has no expansion, so a depthwise BN and a projection BN (2); blocks 1 to 16
# each an expansion, a depthwise and a projection BN (16 * 3 = 48); the last 1x1 convolution's Conv_1_bn (1).
# 1 + 2 + 48 + 1 = 52, for any alpha (alpha scales the filters, not the layers) and any input size.
MOBILENET_V2_BN = 52
# The nested backbone below: stem_bn (1), the Functional block_a's two (2), the Sequential block_b's own bn and the
# bn of the Functional it nests (2), top_bn (1): 6 in all, of which only stem_bn and top_bn are in `base.layers`.
NESTED_BN = 6
NESTED_TOP_LEVEL_BN = 2


def mobilenet_transfer_model(keras):
    """The tutorials' transfer model around a random-weight MobileNetV2 (alpha 0.35 at 32 px: small and quick)."""
    base = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(32, 32, 3), include_top=False)
    base.trainable = False
    inputs = keras.Input((32, 32, 3))
    h = base(inputs, training=False)
    h = keras.layers.GlobalAveragePooling2D(name="head_pool")(h)
    h = keras.layers.Dropout(0.2, name="head_dropout")(h)
    return keras.Model(inputs, keras.layers.Dense(1, name="head_dense")(h), name="transfer")


def nested_backbone(keras):
    """A base whose BatchNormalization layers sit inside nested Functional and Sequential models, two levels deep.

    Nested models rather than custom block layers: a custom layer class can only be loaded back (and only with
    its code imported) when it is registered in an importable module, which `check --model` refuses to run."""
    layers = keras.layers

    def conv_bn(name, filters):
        inputs = keras.Input((8, 8, filters))
        h = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv1")(inputs)
        h = layers.ReLU()(layers.BatchNormalization(name=f"{name}_bn1")(h))
        h = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv2")(h)
        return keras.Model(inputs, layers.BatchNormalization(name=f"{name}_bn2")(h), name=name)

    inner = keras.Sequential([keras.Input((8, 8, 4)), layers.Conv2D(4, 1, name="inner_conv"),
                              layers.BatchNormalization(name="inner_bn")], name="inner")
    block_b = keras.Sequential([keras.Input((8, 8, 4)), inner, layers.Conv2D(4, 3, padding="same", name="b_conv"),
                                layers.BatchNormalization(name="b_bn"), layers.ReLU()], name="block_b")
    inputs = keras.Input((16, 16, 3))
    h = layers.Conv2D(4, 3, strides=2, padding="same", name="stem_conv")(inputs)
    h = layers.ReLU()(layers.BatchNormalization(name="stem_bn")(h))
    h = block_b(conv_bn("block_a", 4)(h))
    h = layers.BatchNormalization(name="top_bn")(h)
    base = keras.Model(inputs, h, name="backbone")
    base.trainable = False
    x = keras.Input((16, 16, 3))
    h = layers.GlobalAveragePooling2D(name="head_pool")(base(x, training=False))
    h = layers.Dropout(0.2, name="head_dropout")(h)
    return keras.Model(x, layers.Dense(3, name="head_dense")(h), name="nested_transfer")  # 3 classes: sparse labels


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from companion.core.variants import load_keras

    keras = load_keras()
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("models")
    mobilenet_transfer_model(keras).save(folder / "mobilenet.keras")
    nested_backbone(keras).save(folder / "nested.h5")  # the legacy format, read as well
    models.tutorial_model(keras, models.layer_norm_base(keras), Call.TRAINING_FALSE).save(folder / "layer_norm.keras")
    with_nan = models.tutorial_model(keras, models.tiny_base(keras), Call.TRAINING_FALSE)
    kernel = with_nan.get_layer("head").kernel
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    with_nan.save(folder / "nan.keras")
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs)).save(folder / "lambda.keras")
    (folder / "notes.keras").write_text("not a model\n")
    np.savez(folder / "weights.npz", kernel=np.ones(3))
    return folder


def test_the_command_on_a_saved_mobilenet_v2_transfer_model(saved):
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "companion"), "check", "--model", "mobilenet.keras"],
                          cwd=saved, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line.strip() for line in done.stdout.splitlines()]
    assert lines[1].startswith(f"Pretrained base: 'mobilenetv2_0.35_32' (Functional, {MOBILENET_V2_BN} "
                               "BatchNormalization layers")
    blank = [i for i, line in enumerate(lines) if not line]
    as_written, remedy = lines[blank[0] + 1:blank[1]], lines[blank[1] + 1:]
    # As written: fit (training=True) reaches all 52 BN layers through the fixed training=False on 3.15.1, and the
    # head Dropout; every BN moves; the base's 52 convolutions and the head Dense are 54 kernels (MobileNetV2's
    # convolutions carry no bias; Dense has kernel and bias: 52 + 2) and the 52 BN layers 104 gamma/beta.
    assert f"ran in training mode:     Functional mobilenetv2_0.35_32; BatchNormalization {MOBILENET_V2_BN} of " \
           f"{MOBILENET_V2_BN}; Dropout head_dropout; Dense head_dense" in as_written
    assert "ran in inference mode:    none" in as_written
    assert f"BN statistics moved:      {MOBILENET_V2_BN} of {MOBILENET_V2_BN} layers" in as_written
    assert "trainable in the step:    kernels and biases 54 of 54; BN gamma/beta 104 of 104" in as_written
    assert remedy[0].endswith(f"froze {MOBILENET_V2_BN} BatchNormalization layers")
    # With the remedy, fit's training=True still reaches the 52 BN layers, but frozen they run in inference mode.
    assert f"ran in inference mode:    BatchNormalization {MOBILENET_V2_BN} of {MOBILENET_V2_BN} (frozen, though they " \
           f"received training=True: BatchNormalization {MOBILENET_V2_BN} of {MOBILENET_V2_BN})" in remedy
    assert "BN statistics moved:      none" in remedy
    assert "trainable in the step:    kernels and biases 54 of 54; BN gamma/beta 0 of 104" in remedy


def test_an_output_of_probabilities_is_trained_with_a_loss_on_probabilities(keras, tmp_path):
    """A sigmoid's or a softmax's output (an activation, or a layer of its own) takes a loss on probabilities: with
    ``from_logits=True`` Keras warns, a line a reader of ``companion check --model`` would take for a problem."""
    inputs = keras.Input((4,))
    h = keras.layers.Dense(3)(inputs)
    outputs = [keras.layers.Dense(3, activation="softmax")(h), keras.layers.Dense(1, activation="sigmoid")(h),
               keras.layers.Softmax()(h), keras.layers.Activation("sigmoid")(h), h,
               keras.layers.Dense(3, activation="relu")(h)]
    assert [model_check.gives_probabilities(t) for t in outputs] == [True, True, True, True, False, False]
    classifier = keras.Sequential([keras.Input((8, 8, 3)), models.tiny_base(keras),
                                   keras.layers.Dense(3, activation="softmax")], name="softmax_head")
    classifier.save(tmp_path / "softmax.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model_check.check(tmp_path / "softmax.keras")
    assert result.targets == (model_check.Targets.SPARSE,)
    assert not [w for w in caught if "from_logits" in str(w.message)]


def test_a_model_on_a_dict_of_inputs_gets_its_synthetic_data_as_that_dict(keras, tmp_path):
    """A transfer model built on named inputs ({"image": ..., "meta": ...}) is stepped on a dict keyed the same way:
    given a list, Keras warns that the inputs' structure does not match, a line a reader would take for a problem."""
    base = models.tiny_base(keras)
    base.trainable = False
    image, meta = keras.Input((8, 8, 3), name="image"), keras.Input((4,), name="meta")
    joined = keras.layers.Concatenate()([base(image, training=False), meta])  # the tiny base pools its own output
    keras.Model({"image": image, "meta": meta}, keras.layers.Dense(1)(joined)).save(tmp_path / "named.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model_check.check(tmp_path / "named.keras")
    assert not [str(w.message) for w in caught if "structure" in str(w.message)]
    # The tiny base's one BatchNormalization moved as written and stayed with the remedy, as on the MobileNetV2 base.
    moved = [sum(step.report.statistics_moved().values()) for step in (result.as_written, result.remedied)]
    assert moved == [1, 0] and result.frozen == 1


def test_a_nested_backbone_is_found_and_every_batch_norm_frozen(saved, keras):
    result = model_check.check(saved / "nested.h5")
    assert [(b.path, b.class_name, b.batch_norm) for b in result.bases] == [("backbone", "Functional", NESTED_BN)]
    assert result.targets == (model_check.Targets.SPARSE,)  # Dense(3): three classes
    # The plain-Keras loop over `base.layers` would reach only the top level's two of the six.
    base = model_check.load(saved / "nested.h5").get_layer("backbone")
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in base.layers) == NESTED_TOP_LEVEL_BN

    # As written, `backbone.trainable = True` leaves block_b's four layers with weights frozen: the loader gives
    # the Sequential block_b the flag True (Sequential.from_config drops its saved `trainable`) while its layers
    # keep their saved False, and the TensorFlow backend skips an assignment of the value a layer already has, so
    # the recursive setter never reaches them (NOTES.md section 2). So 4 of the 6 BN layers move, not block_b's.
    block_b = ["backbone/block_b/inner/inner_conv", "backbone/block_b/inner/inner_bn", "backbone/block_b/b_conv",
               "backbone/block_b/b_bn"]
    assert result.as_written.left_frozen == tuple(block_b)
    moved = result.as_written.report.statistics_moved()
    assert moved == {"backbone/stem_bn": True, "backbone/block_a/block_a_bn1": True,
                     "backbone/block_a/block_a_bn2": True, "backbone/block_b/inner/inner_bn": False,
                     "backbone/block_b/b_bn": False, "backbone/top_bn": True}
    # Kernels and biases: 5 convolutions with a bias each (10) and the head Dense (2), less block_b's two
    # convolutions (4): 8 trainable; gamma/beta of the 4 unfrozen BN layers: 8.
    assert result.as_written.trainable[probes.KERNELS] == 8
    assert result.as_written.trainable[probes.BN_AFFINE] == 2 * 4

    # The remedy reaches all six, at every depth; none moves, and it freezes no kernel.
    assert result.frozen == NESTED_BN
    assert not any(result.remedied.report.statistics_moved().values())
    assert result.remedied.trainable[probes.KERNELS] == 8
    assert result.remedied.trainable.get(probes.BN_AFFINE, 0) == 0


def _error(capsys, path):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["check", "--model", str(path)])
    text = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(text.strip().splitlines()) == 1 and "Traceback" not in text
    return text


@pytest.mark.parametrize("name, message", [
    ("missing.keras", "no file"),
    ("notes.keras", "is not a Keras model: a .keras file is a zip archive and this one is not"),
    ("weights.npz", "is not a format this check reads"),
    ("lambda.keras", "holds a Lambda layer whose Python bytecode safe_mode refuses to run"),
])
def test_a_file_it_cannot_check_is_one_line_and_exit_2(saved, capsys, name, message):
    assert message in _error(capsys, saved / name)


def test_a_model_needing_custom_objects_is_refused_before_any_of_its_code_is_imported(saved, keras, capsys):
    """A registered custom layer names its module in the file; loading it would import that module."""

    @keras.saving.register_keras_serializable(package="reader")
    class Twice(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2

    inputs = keras.Input((4,))
    model = keras.Model(inputs, Twice()(inputs))
    model.save(saved / "custom.keras")
    assert "needs custom objects (Twice)" in _error(capsys, saved / "custom.keras")


def test_a_model_with_only_layer_normalization_is_not_affected_and_the_command_exits_0(saved, capsys):
    result = model_check.check(saved / "layer_norm.keras")
    assert isinstance(result, model_check.NotAffected) and result.model == "tutorial"
    assert cli.main(["check", "--model", str(saved / "layer_norm.keras")]) == 0
    out = capsys.readouterr().out
    assert "has no BatchNormalization layer: fine-tuning it is not affected by the statistics issue" in out


def test_weights_that_hold_nan_are_named_in_a_warning(saved):
    result = model_check.check(saved / "nan.keras")
    # The head's Dense(1) kernel on the tiny base's 4 features: one weight of the file, 4 NaN entries.
    (name,) = result.nonfinite
    assert name.endswith("kernel") and "head" in name
    assert result.text().splitlines()[-1] == (
        f"Warning: 1 weights hold NaN or Inf in the file ({name}): the step ran, but what it changed says nothing "
        "about training them")
    assert result.frozen == 1  # the check ran on: the remedy froze the tiny base's one BatchNormalization
    assert model_check.check(saved / "mobilenet.keras").nonfinite == ()


TF_KERAS_FILE = """
import json, sys
from companion.checks import models
from companion.checks.ways import Call
from companion.core.variants import load_keras
from companion.versions import model_check

keras = load_keras()
keras.utils.set_random_seed(0)
models.tutorial_model(keras, models.tiny_base(keras), Call.TRAINING_FALSE).save(sys.argv[1])
result = model_check.check(sys.argv[1])
print(json.dumps({"keras": keras.__version__, "checked": type(result).__name__, "frozen": result.frozen,
                  "lines": result.text().splitlines()}))
"""


def test_a_keras_file_written_by_tf_keras_is_checked_under_tf_keras(tmp_path):
    """tf-keras names its own classes' modules ``tf_keras...`` in the file: they are Keras' own, not custom objects."""
    variant = variants.get("tf-keras")
    if not variants.is_installed(variant):
        pytest.skip(f"tf-keras is not installed in {variants.install_folder(variant)}")
    done = subprocess.run([sys.executable, "-c", TF_KERAS_FILE, str(tmp_path / "tf_keras.keras")],
                          env=variants.environment(variant), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["keras"].startswith("2.") and result["checked"] == "ModelCheck"
    # The tiny base's one BatchNormalization: tf-keras honours the base's training=False in fit, so as written its
    # statistics stay; the remedy freezes it.
    assert result["frozen"] == 1
    assert [line.strip() for line in result["lines"]].count("BN statistics moved:      none") == 2


def test_a_file_an_older_keras_cannot_load_names_the_keras_that_saved_it(saved):
    """Keras 3.0.5 cannot deserialize a functional model saved by the pinned 3.15.1: the one-line error says which
    Keras saved the file (its metadata.json), so the reader knows to load it there or save it again here."""
    from companion.core.columns import PINNED, Column
    from companion.versions import install

    oldest = Column("keras", "3.0.5")
    if not install.is_installed(oldest):
        pytest.skip(f"{oldest.label} is not installed (companion variants install --releases)")
    assert model_check.saved_by(saved / "mobilenet.keras") == PINNED
    assert model_check.saved_by(saved / "nested.h5") is None  # an .h5 file records no saver
    done = subprocess.run([sys.executable, "-m", "companion.pages.cli", "check", "--model", "mobilenet.keras"],
                          cwd=saved, env=install.environment(oldest), capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr[-3000:]
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("companion: error: Keras 3.0.5 could not load mobilenet.keras: ")
    assert line.endswith(f"(the file was saved by Keras {PINNED}: load it under that Keras, or save it again under "
                         "this one)")


def test_a_file_keras_cannot_load_whose_metadata_is_not_json_is_still_one_line(saved, tmp_path, capsys):
    """Naming the saver only adds to Keras' own refusal: a metadata.json that is not JSON leaves the one-line error
    (and exit 2) as it was, with no saver named."""
    import zipfile

    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(saved / "mobilenet.keras") as source, zipfile.ZipFile(broken, "w") as target:
        for name in source.namelist():
            # Keep the configuration (read before loading); spoil the weights (Keras refuses them) and the metadata.
            data = {"metadata.json": b"not json", "model.weights.h5": b"not hdf5"}.get(name, source.read(name))
            target.writestr(name, data)
    assert model_check.saved_by(broken) is None
    line = _error(capsys, broken).strip()
    assert line.startswith(f"companion: error: Keras {model_check.load_keras().__version__} could not load {broken}: ")
    assert "saved by" not in line

