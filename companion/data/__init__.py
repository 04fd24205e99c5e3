"""The 2020 MobileNetV2 tutorial's data, ``cats_and_dogs_filtered``, loaded so that no run dies on it.

The tutorial downloads ``cats_and_dogs_filtered.zip`` (2000 training and 1000 validation images) and reads it with
``image_dataset_from_directory``. This package gives the book the same data with what a long run needs, one job
per module:

- :mod:`~companion.data.spec`: the dataset's names (URL, folder, splits, classes) and :class:`DatasetError`,
  raised for every problem with the data, with what to do about it (:class:`DataFolderError` for a folder that
  cannot hold the data, :class:`ArchiveError` for an archive that cannot be extracted).
- :mod:`~companion.data.source`: :func:`dataset_root`, from ``$COMPANION_DATA_DIR`` or :func:`download_dataset`.
- :mod:`~companion.data.archive`: :func:`verify_content`, :func:`verify_archive` and the safe
  :func:`extract_archive`.
- :mod:`~companion.data.layout`: :func:`load_layout`, the image files per split and class, checked.
- :mod:`~companion.data.scan`: :func:`scan_images`, which files the pipeline can decode (:class:`ScanReport`).
- :mod:`~companion.data.identity`: :func:`identity`, which files a run reads, as a cache key.
- :mod:`~companion.data.pipeline`: :func:`make_dataset`, :func:`load_splits`, :func:`load_arrays` and
  :func:`pipeline_images_per_second`.
- :mod:`~companion.data.tfds`: :func:`load_tfds_cats_vs_dogs`, failing within seconds offline
  (:func:`require_network`).
"""

from companion.data.archive import (
                                     CONTENT_MANIFEST,
                                     extract_archive,
                                     verify_archive,
                                     verify_content,
)
from companion.data.identity import DataIdentity, identity
from companion.data.layout import DatasetLayout, load_layout
from companion.data.pipeline import (
                                     Splits,
                                     Throughput,
                                     load_arrays,
                                     load_splits,
                                     make_dataset,
                                     pipeline_images_per_second,
)
from companion.data.scan import MAX_IMAGE_PIXELS, Finding, ScanReport, scan_images
from companion.data.source import (
                                     ARCHIVE_NAME,
                                     dataset_root,
                                     download_dataset,
                                     is_available,
)
from companion.data.spec import (
                                     CLASS_NAMES,
                                     DATA_DIR_ENV,
                                     DATASET_FOLDER,
                                     DATASET_URL,
                                     IMAGE_SUFFIXES,
                                     SPLITS,
                                     ArchiveError,
                                     DataFolderError,
                                     DatasetError,
)
from companion.data.tfds import load_tfds_cats_vs_dogs, require_network

__all__ = [
    "ARCHIVE_NAME", "CLASS_NAMES", "CONTENT_MANIFEST", "DATASET_FOLDER", "DATASET_URL", "DATA_DIR_ENV",
    "IMAGE_SUFFIXES", "MAX_IMAGE_PIXELS", "SPLITS", "ArchiveError", "DataFolderError", "DataIdentity", "DatasetError",
    "DatasetLayout", "Finding", "ScanReport", "Splits", "Throughput", "dataset_root", "download_dataset",
    "is_available", "extract_archive", "identity",
    "load_arrays", "load_layout", "load_splits", "load_tfds_cats_vs_dogs", "make_dataset",
    "pipeline_images_per_second", "require_network", "scan_images", "verify_archive", "verify_content",
]
