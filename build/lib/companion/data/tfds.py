"""TFDS ``cats_vs_dogs`` (the 2019 tutorial and the Xception guide), failing within seconds when offline."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from companion.data.spec import DATA_DIR_ENV, DATASET_FOLDER, DatasetError

if TYPE_CHECKING:
    import tensorflow as tf


def require_network(host: str = "storage.googleapis.com", port: int = 443, timeout: float = 3.0) -> None:
    """Raise :class:`DatasetError` unless a TCP connection to ``host:port`` opens within ``timeout`` seconds.

    Offline, ``tfds.load`` retries for about 205 s before it fails; this check fails within ``timeout``. The name
    lookup runs in a daemon thread, because ``getaddrinfo`` has no timeout of its own and an unreachable DNS
    server can hold it for many seconds.
    """
    deadline = time.monotonic() + timeout
    try:
        _connect(_resolve(host, port, timeout), deadline)
    except OSError as error:
        raise DatasetError(
            f"TFDS cats_vs_dogs needs internet, but {host}:{port} cannot be reached ({error}). Offline, use the "
            f"local {DATASET_FOLDER} via {DATA_DIR_ENV} (companion.data.load_splits) instead."
        ) from error


def _resolve(host: str, port: int, timeout: float) -> list[tuple]:
    result: dict[str, object] = {}

    def lookup() -> None:
        try:
            result["addresses"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            result["error"] = error

    thread = threading.Thread(target=lookup, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"looking up {host} took more than {timeout:g} s")
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["addresses"]  # type: ignore[return-value]


def _connect(addresses: list[tuple], deadline: float) -> None:
    """Open (and close) a connection to the first of ``addresses`` that accepts one before ``deadline``."""
    error: OSError = TimeoutError("no address to connect to")
    for family, kind, protocol, _, address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("connection timed out")
        try:
            with socket.socket(family, kind, protocol) as connection:
                connection.settimeout(remaining)
                connection.connect(address)
                return
        except OSError as failure:  # e.g. an IPv6 address without an IPv6 route: try the next address
            error = failure
    raise error


def load_tfds_cats_vs_dogs(split_spec: str, image_size: tuple[int, int], batch_size: int, shuffle: bool = False,
                           seed: int | None = None) -> tf.data.Dataset:
    """TFDS ``cats_vs_dogs`` as the tutorials prepare it: resized, cached, (shuffled,) batched, prefetched.

    ``split_spec`` is a TFDS split such as ``"train[:40%]"``. Images are float32 in [0, 255], labels int32, as
    from :func:`~companion.data.make_dataset`. ``shuffle`` reshuffles the cached images every epoch with a buffer
    of 1000, as the 2019 MobileNetV2 tutorial does. TFDS drops the archive's corrupt JPEGs itself. Needs internet
    (checked first, see :func:`require_network`) unless TFDS has the data already, and the
    ``tensorflow-datasets`` package (the ``full`` extra of the companion).
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise DatasetError("TFDS cats_vs_dogs needs the tensorflow-datasets package: "
                           "pip install 'training-vs-trainable[full]'") from error
    import tensorflow as tf

    builder = tfds.builder("cats_vs_dogs")
    if not _tfds_prepared(builder):
        require_network()

    def resize(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.image.resize(image, image_size), tf.cast(label, tf.int32)

    dataset = tfds.load("cats_vs_dogs", split=split_spec, as_supervised=True)
    dataset = dataset.map(resize, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle:
        dataset = dataset.shuffle(1000, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _tfds_prepared(builder) -> bool:
    """Whether TFDS has already downloaded and prepared the dataset (then no network is needed)."""
    try:
        return bool(builder.is_prepared())
    except Exception:  # older TFDS versions without is_prepared(): look for the data folder
        return Path(builder.data_dir).is_dir()
