"""What the packaged pretrained bases are (:mod:`companion.tutorials.backbones`): what their model files say about
themselves (read as JSON, nothing executed or unpickled), how they compare with Keras' ImageNet weights, each file
checked now, and what a base is worth (a head trained on its frozen features); the record of the self-made bases
tried before them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from companion import ASSETS
from companion.core import cache, timing
from companion.core.variants import load_keras
from companion.tutorials import backbones

# --- What the packaged files say about themselves, and how they compare with Keras' ImageNet weights ------------


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Read from the model file's own metadata (JSON attributes; nothing executed, nothing unpickled)."""

    weights: backbones.PackagedWeights
    keras_version: str  # the Keras that saved the file
    base_trainable: bool  # the base's `trainable` flag as saved
    layers: tuple[str, ...]  # the saved model's top-level layers (class names)
    optimizer: str | None  # the saved training configuration's optimizer and rate, if any


def provenance(architecture: str) -> Provenance:
    weights = backbones.PACKAGED[architecture]
    path = backbones.verified_file(weights)
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            keras_version = json.loads(archive.read("metadata.json"))["keras_version"]
        optimizer = None  # the .keras file was saved without its compile state
    else:
        import h5py

        with h5py.File(path, "r") as file:
            config = json.loads(file.attrs["model_config"])
            keras_version = str(file.attrs["keras_version"])
            training = json.loads(file.attrs["training_config"]) if "training_config" in file.attrs else None
        optimizer = None if training is None else (
            f"{training['optimizer_config']['class_name']}"
            f"(learning_rate={training['optimizer_config']['config']['learning_rate']:.3g})")
    layers = config["config"]["layers"]
    base = next(layer for layer in layers if layer["config"].get("name") == weights.base_layer)
    return Provenance(weights, keras_version, bool(base["config"].get("trainable", True)),
                      tuple(layer["class_name"] for layer in layers), optimizer)


@dataclasses.dataclass(frozen=True)
class ImagenetComparison:
    """Largest absolute difference, tensor by tensor, between the packaged base and Keras' ImageNet weights."""

    architecture: str
    available: bool
    reason: str  # why the comparison could not run (offline, say), or ""
    largest_difference: float | None
    tensors_identical: int | None
    tensors: int | None


def compare_with_imagenet(architecture: str) -> ImagenetComparison:
    """Compare the packaged base with ``weights="backbones.imagenet"`` (needs internet or Keras' cache)."""
    with timing.phase("checking the packaged bases"):
        return _compare_with_imagenet(architecture)


def _compare_with_imagenet(architecture: str) -> ImagenetComparison:
    size = backbones.PACKAGED[architecture].native_size
    try:
        # Keras prints "Downloading data from <url>" and a progress bar: machine detail, not the page's result.
        with contextlib.redirect_stdout(io.StringIO()):
            reference = backbones.imagenet(architecture, size)
    except backbones.BackboneUnavailableError as error:
        return ImagenetComparison(architecture, False, str(error).split(" (")[0], None, None, None)
    ours = backbones.neutral_weights(architecture)
    differences = [float(np.max(np.abs(a.astype(np.float64) - np.asarray(b, np.float64)))) if a.size else 0.0
                   for a, b in zip(ours, reference.get_weights())]
    return ImagenetComparison(architecture, True, "", max(differences), sum(d == 0.0 for d in differences),
                              len(differences))



# --- What a base is worth: a head on its frozen features --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FileCheck:
    """A packaged file as found on this machine, checked now."""

    architecture: str
    path: Path
    bytes: int
    sha256: str  # computed now
    expected_sha256: str
    arrays: int  # weight arrays of its base
    keras_arrays: int  # weight arrays keras.applications builds for the architecture

    @property
    def ok(self) -> bool:
        return self.sha256 == self.expected_sha256 and self.arrays == self.keras_arrays


def check_file(architecture: str) -> FileCheck:
    weights = backbones.PACKAGED[architecture]
    with timing.phase("checking the packaged bases"):
        path = backbones.packaged_file(weights)
        arrays = backbones.neutral_weights(architecture)
        return FileCheck(architecture, path, path.stat().st_size, cache.sha256_of(path), weights.sha256, len(arrays),
                         len(backbones.application(architecture, weights.native_size, None).weights))


def frozen_head_accuracy(base, train: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray],
                         epochs: int = 40, seed: int = 0) -> float:
    """Validation accuracy (inference mode) of GlobalAveragePooling2D + Dense(1) trained on the frozen base.

    The frozen base runs in inference mode on unaugmented images scaled to [-1, 1] (both tutorials' bases expect
    that), so its pooled features are fixed: the head is fitted on them directly, which is what ``fit`` on the whole
    model would compute, only faster.
    """
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    base.trainable = False
    with timing.phase("checking the packaged bases"):
        features = keras.Sequential([base, keras.layers.GlobalAveragePooling2D()])
        (x_train, y_train), (x_val, y_val) = train, validation
        f_train = features.predict(x_train.astype("float32") / 127.5 - 1, batch_size=64, verbose=0)
        f_val = features.predict(x_val.astype("float32") / 127.5 - 1, batch_size=64, verbose=0)
        head = keras.Sequential([keras.Input(f_train.shape[1:]), keras.layers.Dense(1)])
        head.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(from_logits=True),
                     metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)])
        head.fit(f_train, y_train, batch_size=32, epochs=epochs, verbose=0)
        return float(head.evaluate(f_val, y_val, verbose=0)[1])


# Every recipe tried for a self-made offline backbone before the packaged weights were found, with its measured
# transfer accuracy (a record: the code that made them is gone).
SELF_MADE_ATTEMPTS = ASSETS / "standin_attempts.json"


def self_made_attempts() -> dict:
    return json.loads(SELF_MADE_ATTEMPTS.read_text())
