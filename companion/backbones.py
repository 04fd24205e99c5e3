"""Pretrained backbones: ImageNet weights through Keras' own cache, or the project's offline stand-in.

- ``imagenet``: ``keras.applications`` with ``weights="imagenet"``. Keras keeps downloaded weights in
  ``$KERAS_HOME/models`` (default ``~/.keras/models``), so a user's earlier download is reused and cached weights
  work offline. With nothing cached and no network, :class:`BackboneUnavailableError` names the file Keras looks
  for, where to put it, and the offline alternative.
- ``standin``: a MobileNetV2 pretrained *by this project* on a pretext task that uses no cat/dog labels
  (:mod:`companion.standin` makes it). Pages that use it show :data:`STANDIN_LABEL`.
- ``random``: the same architecture with random weights, the baseline a pretrained backbone must beat.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from companion.variants import load_keras

KERAS_APPLICATIONS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"


class BackboneUnavailableError(RuntimeError):
    pass


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
    """Keras' download cache for weights: ``$KERAS_HOME/models`` or ``~/.keras/models``.

    Keras 3 fixes its home when it is imported; ask it rather than re-reading the environment.
    """
    try:
        from keras.src.backend.config import keras_home
    except ImportError:  # tf_keras
        return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "models"
    return Path(keras_home()).expanduser() / "models"


def imagenet_weights(architecture: str, image_size: int, alpha: float = 1.0) -> ImagenetWeights:
    if architecture == "MobileNetV2":
        return ImagenetWeights(
            architecture,
            f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{image_size}_no_top.h5",
        )
    if architecture == "Xception":
        return ImagenetWeights(architecture, "xception_weights_tf_dim_ordering_tf_kernels_notop.h5")
    raise ValueError(f"unknown architecture {architecture!r}; valid architectures: MobileNetV2, Xception")


def _application(architecture: str, image_size: int, alpha: float, weights):
    keras = load_keras()
    shape = (image_size, image_size, 3)
    if architecture == "MobileNetV2":
        return keras.applications.MobileNetV2(input_shape=shape, alpha=alpha, include_top=False, weights=weights)
    return keras.applications.Xception(input_shape=shape, include_top=False, weights=weights)


def imagenet(architecture: str, image_size: int, alpha: float = 1.0):
    """The tutorials' backbone with ImageNet weights, from Keras' cache or downloaded into it."""
    expected = imagenet_weights(architecture, image_size, alpha)
    try:
        return _application(architecture, image_size, alpha, "imagenet")
    except Exception as error:  # Keras raises a bare Exception for a failed download
        cached = keras_cache_dir() / expected.file_name
        if cached.exists():
            raise
        raise BackboneUnavailableError(
            f"ImageNet weights for {architecture} are not in Keras' cache and could not be downloaded "
            f"({type(error).__name__}: {str(error)[:200]}).\n"
            f"Keras looks for {cached}. On a machine with internet, download {expected.url} and copy it to that "
            f"path (or run once online), or use the offline stand-in backbone (backbone 'standin')."
        ) from error


def random_weights(architecture: str, image_size: int, alpha: float = 1.0):
    """The same architecture with randomly initialised weights (``weights=None``): not pretrained."""
    return _application(architecture, image_size, alpha, None)
