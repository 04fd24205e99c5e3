"""The tutorial's ``tf.data`` input pipelines over the checked and scanned files, and their throughput."""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from companion.core import timing
from companion.data.identity import DataIdentity, identity_of
from companion.data.layout import (
    BAD_NAME,
    DatasetLayout,
    has_utf8_name,
    load_layout,
    printable,
)
from companion.data.scan import ScanReport, scan_images
from companion.data.source import dataset_root
from companion.data.spec import CLASS_NAMES, DATASET_FOLDER, SPLITS, DatasetError

if TYPE_CHECKING:
    import tensorflow as tf

Labelled = list[tuple[Path, int]]  # (file, label) pairs


def make_dataset(files: Sequence[str | Path], labels: Sequence[int], image_size: tuple[int, int], batch_size: int,
                 shuffle: bool, seed: int | None = None) -> tf.data.Dataset:
    """Batches of ``(images, labels)``: float32 images in [0, 255] of ``image_size``, int32 labels.

    The same preprocessing as ``image_dataset_from_directory``: decode to RGB, bilinear resize, no scaling (models
    apply their own ``preprocess_input``). Files are decoded in parallel, in a deterministic order; the decoded
    images are cached in memory (``height * width * 12`` bytes each: 0.3 MB at 160 px, 0.9 GB for the whole
    dataset), so only the first pass reads files. With ``shuffle``, the cached images are reshuffled on every
    pass with ``seed``; without, batches follow ``files``. Only pass files :func:`scan_images` found readable.
    """
    import tensorflow as tf

    if len(files) != len(labels):
        raise ValueError(f"{len(files)} files but {len(labels)} labels: give one label per file")
    if not files:
        raise DatasetError("no files to make a dataset of (were they all skipped by the scan?)")
    for path in files:
        if not has_utf8_name(path):  # tf.data would fail deep inside TensorFlow, without naming the file
            raise DatasetError(f"{printable(path)}: {BAD_NAME}")
    height, width = image_size

    def load(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return tf.image.resize(image, (height, width)), label

    dataset = tf.data.Dataset.from_tensor_slices(([str(f) for f in files], tf.constant(labels, tf.int32)))
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache()
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class Splits(NamedTuple):
    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    report: ScanReport
    identity: DataIdentity


def load_splits(image_size: tuple[int, int], batch_size: int, seed: int, limit_per_class: int | None = None, *,
                root: str | Path | None = None, progress: bool = True) -> Splits:
    """The tutorial's three datasets, from ``root`` (default :func:`dataset_root`), the scan report and the
    identity of the files read (:func:`~companion.data.identity`).

    - ``train``: the train split, reshuffled every epoch (seeded).
    - ``test``: the first fifth of the validation batches, as the tutorial takes it; ``validation``: the rest.
      The validation files are shuffled once (seeded) and then kept in that order, so that both sets mix cats and
      dogs and stay disjoint. (The tutorial splits a dataset that reshuffles on every pass, so its test batches
      are drawn anew each time they are read.)

    ``limit_per_class`` keeps the first that many files (in name order) of each class of each split, for small
    runs; the same files every time. Files the scan skips are left out and listed in ``report``. Data no run
    should train on raises :class:`DatasetError` before any dataset is made: a split left without one of its
    classes, a class with fewer usable images than one batch, fewer than 5 validation batches.
    """
    layout = load_layout(dataset_root() if root is None else root)
    chosen = {split: layout.labelled(split, limit_per_class) for split in SPLITS}
    report = scan_images([path for pairs in chosen.values() for path, _ in pairs], progress=progress)
    usable = _usable(layout, chosen, report, batch_size)

    validation = usable["validation"]
    random.Random(seed).shuffle(validation)
    test_size = math.ceil(len(validation) / batch_size) // 5 * batch_size  # a fifth of the batches, rounded down
    if test_size == 0:
        raise DatasetError(f"{len(validation)} validation images make fewer than 5 batches of {batch_size}, so the "
                           f"test split (a fifth of the batches) would be empty: use more images or smaller batches")

    def dataset(pairs: Labelled, shuffle: bool) -> tf.data.Dataset:
        return make_dataset([p for p, _ in pairs], [label for _, label in pairs], image_size, batch_size,
                            shuffle=shuffle, seed=seed)

    return Splits(train=dataset(usable["train"], shuffle=True), validation=dataset(validation[test_size:], False),
                  test=dataset(validation[:test_size], False), report=report,
                  identity=identity_of(layout, limit_per_class))


def load_arrays(split: str, image_size: int, images_per_class: int | None = None, *, progress: bool = True):
    """One split of cats_and_dogs_filtered as uint8 arrays ``(images, labels)``, decoded once.

    The first ``images_per_class`` files of each class (all if ``None``), cats first; files the scan skips are
    left out, and a split left without one of its classes raises :class:`DatasetError`. For work that wants the
    images in memory (pretraining, probes) rather than a ``tf.data`` pipeline.
    """
    import numpy as np
    from tqdm.auto import tqdm

    with timing.phase("loading data"):
        layout = load_layout(dataset_root())
        chosen = {split: layout.labelled(split, images_per_class)}
        pairs = _usable(layout, chosen, scan_images([path for path, _ in chosen[split]], progress=progress))[split]
        dataset = make_dataset([path for path, _ in pairs], [label for _, label in pairs], (image_size, image_size),
                               batch_size=128, shuffle=False)
        images, labels = [], []
        for x, y in tqdm(dataset, desc=f"decoding {split} images", unit="batch", disable=not progress):
            images.append(np.clip(np.round(x.numpy()), 0, 255).astype("uint8"))
            labels.append(y.numpy())
        return np.concatenate(images), np.concatenate(labels)


def _usable(layout: DatasetLayout, chosen: Mapping[str, Labelled], report: ScanReport,
            batch_size: int | None = None) -> dict[str, Labelled]:
    """The pairs whose files the scan found readable, per split.

    Raises :class:`DatasetError` if a class of a split has no readable file left (training or evaluating on one
    class runs without an error and means nothing) or fewer than ``batch_size``.
    """
    readable = set(report.readable)
    usable = {split: [pair for pair in pairs if pair[0] in readable] for split, pairs in chosen.items()}
    problems = []
    for split, pairs in usable.items():
        for label, name in enumerate(CLASS_NAMES):
            folder = layout.root / DATASET_FOLDER / split / name
            count = sum(1 for _, pair_label in pairs if pair_label == label)
            if count == 0:
                lost = sum(1 for _, pair_label in chosen[split] if pair_label == label)
                problems.append(f"{folder}: none of its {lost} images can be decoded, so {split} would hold one "
                                f"class only. Restore them (the scan report below says what is wrong with each)")
            elif batch_size is not None and count < batch_size:
                problems.append(f"{folder}: {count} usable image(s), fewer than one batch of {batch_size}. Use "
                                f"batches of at most {count} images, or more images per class")
    if problems:
        raise DatasetError("the data cannot train and evaluate a model on both classes, so nothing was run:\n  "
                           + "\n  ".join(problems) + "\n" + report.summary(limit=5))
    return usable


# --- Throughput -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Throughput:
    """Images per second of two passes over a dataset.

    ``first_pass`` reads, decodes and resizes (filling the cache); ``second_pass`` comes from the in-memory cache
    when ``cached``, that is when the first pass read the whole dataset (tf.data discards a partly filled cache).
    """

    images: int
    first_pass: float
    second_pass: float
    cached: bool

    def __str__(self) -> str:
        second = "cached" if self.cached else "not cached: the first pass did not read the whole dataset"
        return (f"{self.images} images per pass: first pass {self.first_pass:.0f} images/s, "
                f"second pass {self.second_pass:.0f} images/s ({second})")


def pipeline_images_per_second(dataset: tf.data.Dataset, batches: int | None = None) -> Throughput:
    """Time two passes over ``batches`` batches of a freshly made batched dataset (``None``: all of it).

    Measures the input pipeline alone (loading, decoding, resizing), to compare with a model's training speed.
    """
    import tensorflow as tf

    total = int(dataset.cardinality())
    if batches is None and total == tf.data.INFINITE_CARDINALITY:
        raise ValueError("the dataset is infinite: say how many batches to read")
    read = dataset if batches is None else dataset.take(batches)
    whole = batches is None or 0 <= total <= batches

    def timed_pass() -> tuple[int, float]:
        images = 0
        started = time.perf_counter()
        for element in read:
            images += int(tf.nest.flatten(element)[0].shape[0])
        return images, time.perf_counter() - started

    images, first = timed_pass()
    if images == 0:
        raise ValueError("the dataset yielded no images")
    _, second = timed_pass()
    return Throughput(images=images, first_pass=images / first, second_pass=images / second, cached=whole)
