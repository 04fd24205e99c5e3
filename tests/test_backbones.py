"""Backbones: Keras' weights cache is used offline; a missing file gives an actionable error.

The offline cases run in a child process whose name resolution is disabled and whose Keras home is a
temporary folder (Keras reads ``KERAS_HOME`` once, when it is imported).
"""

import os
import subprocess
import sys
import textwrap

import pytest

from companion import backbones

OFFLINE = """
import socket

def _no_network(*args, **kwargs):
    raise OSError("network disabled by the test")

socket.getaddrinfo = _no_network
"""


def _offline(code: str, keras_home) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_HOME": str(keras_home)}
    return subprocess.run([sys.executable, "-c", OFFLINE + textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_weight_file_names_match_keras():
    assert backbones.imagenet_weights("MobileNetV2", 160).file_name == (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5"
    )
    assert backbones.imagenet_weights("Xception", 150).url.endswith(
        "xception/xception_weights_tf_dim_ordering_tf_kernels_notop.h5"
    )
    with pytest.raises(ValueError, match="valid architectures: MobileNetV2, Xception"):
        backbones.imagenet_weights("ResNet50", 224)


def test_offline_without_cache_names_the_file_and_where_to_put_it(tmp_path):
    done = _offline("""
        from companion import backbones
        try:
            backbones.imagenet("MobileNetV2", 96, alpha=0.35)
        except backbones.BackboneUnavailableError as error:
            print("MESSAGE", error)
    """, tmp_path)
    expected = tmp_path / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    assert "MESSAGE" in done.stdout, done.stderr[-2000:]
    assert str(expected) in done.stdout and "standin" in done.stdout


def test_cached_weights_are_used_offline(tmp_path):
    """A file in Keras' cache is loaded with no network (known weights saved under the ImageNet file's name)."""
    done = _offline("""
        import h5py, numpy as np
        from keras.src.legacy.saving import legacy_h5_format
        from companion import backbones

        source = backbones.random_weights("MobileNetV2", 96, alpha=0.35)
        cached = backbones.keras_cache_dir() / backbones.imagenet_weights("MobileNetV2", 96, 0.35).file_name
        cached.parent.mkdir(parents=True)
        with h5py.File(cached, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, source)
        loaded = backbones.imagenet("MobileNetV2", 96, alpha=0.35)
        print("SAME", all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(source.weights, loaded.weights)))
    """, tmp_path)
    assert "SAME True" in done.stdout, done.stderr[-2000:]


@pytest.mark.skipif(not os.environ.get("COMPANION_DATA_DIR"), reason="needs the real images: set COMPANION_DATA_DIR")
def test_a_full_profile_run_reads_imagenet_weights_from_the_keras_cache(tmp_path):
    """The runner's ImageNet branch, offline: MobileNetV2 at the tutorial's size, its weights file in Keras' cache
    (weights of our own saved under the ImageNet file name, since the real ones cannot be had here)."""
    done = _offline("""
        import dataclasses, h5py
        from keras.src.legacy.saving import legacy_h5_format
        from companion import backbones, profiles, recipes, runs

        source = backbones.random_weights("MobileNetV2", 160)
        cached = backbones.keras_cache_dir() / backbones.imagenet_weights("MobileNetV2", 160).file_name
        cached.parent.mkdir(parents=True)
        with h5py.File(cached, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, source)
        full = profiles.get("full")
        small = dataclasses.replace(full, images_per_class=12, epochs=(1, 1), recipe_data=False)
        setup = runs.setup(recipes.MOBILENET_V2_2020, small)
        result = runs.run(setup, batch_size=4, variants={recipes.AS_WRITTEN: recipes.MOBILENET_V2_2020}, verbose=0)
        print("SETUP", setup.backbone, setup.architecture, setup.image_size, setup.label)
        print("RESULT", result.fine_tuning[recipes.AS_WRITTEN].bn_layers_trainable, result.phase1.epochs)
    """, tmp_path)
    assert "SETUP imagenet MobileNetV2 160 None" in done.stdout, done.stderr[-3000:]
    assert "RESULT 18 [1]" in done.stdout, done.stderr[-3000:]
