"""What the tutorial's dataset is: where it is published, its folder, splits, classes and image files; its error."""

from __future__ import annotations

DATA_DIR_ENV = "COMPANION_DATA_DIR"
DATASET_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
DATASET_FOLDER = "cats_and_dogs_filtered"
SPLITS = ("train", "validation")
CLASS_NAMES = ("cats", "dogs")  # label 0 and 1: the alphabetical order image_dataset_from_directory uses
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # the extensions image_dataset_from_directory reads

HOW_TO_GET_THE_DATA = (
    f"set {DATA_DIR_ENV} to a folder that contains {DATASET_FOLDER}/, or leave {DATA_DIR_ENV} unset so that "
    f"the companion downloads {DATASET_URL} into Keras' cache (needs internet)"
)


class DatasetError(ValueError):
    """The data is missing, incomplete, corrupt or out of reach; the message says what to do."""


class DataFolderError(DatasetError):
    """The folder given for the data (``$COMPANION_DATA_DIR`` or ``root``) cannot be it: a file, the dataset folder
    itself instead of its parent, or a symbolic link loop."""


class ArchiveError(DatasetError):
    """A zip archive to extract is missing or unreadable, or its destination cannot be made."""
