"""Where the data comes from: ``$COMPANION_DATA_DIR`` if set, else a verified download into Keras' cache."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from companion.data.archive import (
    CONTENT_MANIFEST,
    extract_archive,
    sha256_of,
    verify_content,
)
from companion.data.spec import (
    DATA_DIR_ENV,
    DATASET_FOLDER,
    DATASET_URL,
    HOW_TO_GET_THE_DATA,
    DatasetError,
)

ARCHIVE_NAME = "cats_and_dogs_filtered.zip"
# Where download_dataset() extracts, next to the archive in Keras' cache. A name of our own, so that a folder
# left by get_file(extract=True) (which extracts in place, not atomically) is never mistaken for ours.
_EXTRACTED_FOLDER = "companion_cats_and_dogs_filtered"


def dataset_root(allow_download: bool = True) -> Path:
    """The absolute path of the folder that contains ``cats_and_dogs_filtered/``.

    ``$COMPANION_DATA_DIR`` wins, so that CI and offline machines never touch the network; a relative value is
    resolved against the current working directory. Otherwise the archive is downloaded (once) into Keras' cache.
    The folder's content is checked by :func:`~companion.data.load_layout`.
    """
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return absolute(configured)
    if not allow_download:
        raise DatasetError(f"no local copy of {DATASET_FOLDER} is configured and downloading is not allowed: "
                           f"{HOW_TO_GET_THE_DATA}")
    return download_dataset()


def is_available() -> bool:
    """Whether the images are here without a download: ``$COMPANION_DATA_DIR`` is set, or an earlier download is."""
    if os.environ.get(DATA_DIR_ENV):
        return True
    from companion.core.variants import keras_home

    return (keras_home() / "datasets" / _EXTRACTED_FOLDER / DATASET_FOLDER).is_dir()


def absolute(path: str | Path) -> Path:
    """``path`` with ``~`` expanded, made absolute against the current working directory, ``..`` removed.

    Symbolic links are kept (no ``resolve()``), so that messages show the folders the user named.
    """
    return Path(os.path.abspath(Path(path).expanduser()))


def configured_as(root: Path) -> str:
    """For messages about ``root``: how a relative ``$COMPANION_DATA_DIR`` led to it, else ``""``.

    A relative value depends on the folder a process starts in (a notebook kernel starts in the notebook's), so
    a message that shows only the absolute path leaves the reader guessing why it was looked at.
    """
    configured = os.environ.get(DATA_DIR_ENV)
    if not configured or Path(configured).expanduser().is_absolute() or absolute(configured) != root:
        return ""
    return f" ({DATA_DIR_ENV}={configured!r} resolved against {os.getcwd()})"


def download_dataset(cache_dir: str | Path | None = None, manifest: Path = CONTENT_MANIFEST) -> Path:
    """Download the tutorial's archive into Keras' cache, extract it safely, verify every image; the extracted root.

    ``keras.utils.get_file`` downloads only when the archive is not cached yet. No SHA-256 of the archive is
    published, so it is checked image by image instead: the extraction (:func:`extract_archive`) is kept only if
    every image ``manifest`` lists matches (:func:`verify_content`). A warning then names the images the manifest
    does not list and gives the archive's SHA-256, to compare with other copies.
    """
    from companion.core.variants import load_keras

    keras = load_keras()
    try:
        archive = Path(keras.utils.get_file(fname=ARCHIVE_NAME, origin=DATASET_URL, cache_dir=cache_dir))
    except Exception as error:  # get_file raises a bare Exception for network failures
        raise DatasetError(f"could not download {DATASET_URL}: {error}. Offline? "
                           f"Set {DATA_DIR_ENV} to a folder that contains {DATASET_FOLDER}/.") from error
    root = archive.parent / _EXTRACTED_FOLDER
    if not (root / DATASET_FOLDER).is_dir():
        if root.exists():  # an extraction without the dataset folder: not ours, or from an older layout
            raise DatasetError(f"{root} exists but holds no {DATASET_FOLDER}/: delete {root} and run again")
        unlisted: list[str] = []
        extract_archive(archive, root, verify=lambda staging: unlisted.extend(verify_content(staging, manifest)))
        warnings.warn(
            f"{archive}: every image listed in {manifest.name} matched"
            + (f"; {len(unlisted)} file(s) it does not list were kept unverified: {', '.join(unlisted[:5])}"
               if unlisted else "")
            + f". The archive's SHA-256 is {sha256_of(archive)}.",
            stacklevel=2,
        )
    return root
