"""The folder layout ``cats_and_dogs_filtered/{train,validation}/{cats,dogs}/`` and its checks."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from companion.core.cache import is_symlink_loop
from companion.data.source import ARCHIVE_NAME, absolute, configured_as
from companion.data.spec import (
    CLASS_NAMES,
    DATA_DIR_ENV,
    DATASET_FOLDER,
    DATASET_URL,
    HOW_TO_GET_THE_DATA,
    IMAGE_SUFFIXES,
    SPLITS,
    DataFolderError,
    DatasetError,
)

# Files that operating systems write into any folder they show; besides these, names starting with "." are
# ignored too. Compared case-insensitively, as Windows, which writes them, compares names.
OS_METADATA_NAMES = frozenset({"thumbs.db", "desktop.ini"})
_SHOWN = 5  # entries a message names before it counts the rest

# Why a file whose name is not valid UTF-8 cannot be read: tf.data takes file names as UTF-8 strings.
BAD_NAME = "its name is not valid UTF-8, which TensorFlow cannot take as a file name: rename it"


@dataclasses.dataclass(frozen=True)
class DatasetLayout:
    """The image files of ``root/cats_and_dogs_filtered``: ``files[split][class_name]``, in name order."""

    root: Path
    files: Mapping[str, Mapping[str, tuple[Path, ...]]]

    def labelled(self, split: str, limit_per_class: int | None = None) -> list[tuple[Path, int]]:
        """``(file, label)`` pairs of ``split``: the first ``limit_per_class`` files of each class (all if
        ``None``), cats first. What :func:`~companion.data.load_splits` and its identity read."""
        return [(path, label) for label, name in enumerate(CLASS_NAMES)
                for path in self.files[split][name][:limit_per_class]]

    def counts(self) -> dict[str, dict[str, int]]:
        return {split: {name: len(paths) for name, paths in classes.items()} for split, classes in self.files.items()}

    def summary(self) -> str:
        lines = [f"{DATASET_FOLDER} in {self.root}",
                 f"{'split':<12}" + "".join(f"{name:>7}" for name in CLASS_NAMES) + f"{'total':>7}"]
        for split, counts in self.counts().items():
            lines.append(f"{split:<12}" + "".join(f"{counts[name]:>7}" for name in CLASS_NAMES)
                         + f"{sum(counts.values()):>7}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def load_layout(root: str | Path) -> DatasetLayout:
    """Check ``root/cats_and_dogs_filtered/{train,validation}/{cats,dogs}`` and list its image files.

    One rule for what the folder holds, so that nothing is left out silently: OS metadata (``Thumbs.db``,
    ``desktop.ini`` and any name starting with ``.``) is ignored everywhere; every other entry must be expected,
    or it is an error that lists every such entry. Expected are the split folders in ``cats_and_dogs_filtered/``,
    the class folders in each split, and image files (by extension, named in UTF-8) in each class folder; plain
    files directly in ``cats_and_dogs_filtered/`` are not data and are not read (the archive itself holds
    ``vectorize.py`` there). So an extra class folder, a stray file in a class folder, a dangling symbolic link or
    a file name TensorFlow cannot take all stop the run here. Whether each image decodes is
    :func:`~companion.data.scan_images`' job.

    Every message names the absolute path looked at, and how a relative ``$COMPANION_DATA_DIR`` led to it. A
    ``root`` that cannot be the data's parent folder (a file, ``cats_and_dogs_filtered`` itself, a symbolic link
    loop) raises :class:`~companion.data.spec.DataFolderError` saying so.
    """
    root = absolute(root)
    folder = root / DATASET_FOLDER
    where = configured_as(root)
    if not folder.is_dir():
        raise _no_dataset_folder(root, where)
    missing = _missing_folders(folder)
    if missing:
        raise DatasetError(
            f"{_listed(missing)} {'is' if len(missing) == 1 else 'are'} missing{where}: {folder} must hold "
            f"{_folders(SPLITS)}, each with {_folders(CLASS_NAMES)}, as in {DATASET_URL}. Restore the copy, or "
            f"{HOW_TO_GET_THE_DATA}")
    files, unexpected = _images_and_unexpected_entries(folder)
    if unexpected:
        raise _unexpected_entries_error(folder, where, unexpected)
    empty = [folder / split / name for split in SPLITS for name in CLASS_NAMES if not files[split][name]]
    if empty:
        raise DatasetError(f"{_listed(empty)} {'holds' if len(empty) == 1 else 'hold'} no images{where}: restore "
                           f"the copy, or {HOW_TO_GET_THE_DATA}")
    return DatasetLayout(root=root, files=files)


def _no_dataset_folder(root: Path, where: str) -> DatasetError:
    """Why ``root`` holds no ``cats_and_dogs_filtered/`` folder, as precisely as the file system tells."""
    folder = root / DATASET_FOLDER
    loop = next((path for path in (*reversed(folder.parents), folder) if is_symlink_loop(path)), None)
    if loop is not None:
        return DataFolderError(f"{loop}{where} is a symbolic link loop (it leads back to itself), so {folder} cannot "
                               f"be read: make it a folder, or a link to one, that contains {DATASET_FOLDER}/")
    if root.exists() and not root.is_dir():
        return DataFolderError(f"{root}{where} is a file, not a folder: set {DATA_DIR_ENV} to the folder that "
                               f"contains {DATASET_FOLDER}/ (from {ARCHIVE_NAME}, extracted)")
    if any((root / split).is_dir() for split in SPLITS):
        named = "" if root.name == DATASET_FOLDER else f" (renamed: name it {DATASET_FOLDER} again)"
        return DataFolderError(f"{root}{where} is the {DATASET_FOLDER} folder itself{named}: use its parent, "
                               f"{root.parent}, which must contain {DATASET_FOLDER}/")
    if folder.exists():
        return DataFolderError(f"{folder}{where} is a file, not a folder: it must be the folder of the extracted "
                               f"{ARCHIVE_NAME}; move it away and {HOW_TO_GET_THE_DATA}")
    return DatasetError(f"{folder}{where} does not exist: {HOW_TO_GET_THE_DATA}")


def printable(path: str | Path) -> str:
    """``path`` as text that can be printed: a name that is not valid UTF-8 shows its bytes (``b'cat.\\xff.jpg'``)."""
    return str(path) if has_utf8_name(path) else repr(os.fsencode(path))


def has_utf8_name(path: str | Path) -> bool:
    """Whether ``path`` is valid UTF-8 (Python keeps the bytes of other names as lone surrogates)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_os_metadata(name: str) -> bool:
    return name.startswith(".") or name.casefold() in OS_METADATA_NAMES


def _entries(folder: Path) -> list[os.DirEntry]:
    """The entries of ``folder`` in name order, OS metadata left out."""
    with os.scandir(folder) as entries:
        return sorted((entry for entry in entries if not _is_os_metadata(entry.name)), key=lambda e: e.name)


def _missing_folders(folder: Path) -> list[Path]:
    missing = []
    for split in SPLITS:
        split_folder = folder / split
        if not split_folder.is_dir():
            missing.append(split_folder)
            continue
        missing += [split_folder / name for name in CLASS_NAMES if not (split_folder / name).is_dir()]
    return missing


def _images_and_unexpected_entries(
        folder: Path) -> tuple[dict[str, dict[str, tuple[Path, ...]]], list[tuple[Path, str]]]:
    """The image files per split and class, and every other entry with what is wrong with it."""
    unexpected = [(Path(entry.path), f"a folder that is not a split ({' or '.join(SPLITS)})")
                  for entry in _entries(folder) if entry.is_dir() and entry.name not in SPLITS]
    files: dict[str, dict[str, tuple[Path, ...]]] = {}
    for split in SPLITS:
        unexpected += [(Path(entry.path), f"a folder that is not a class ({' or '.join(CLASS_NAMES)})"
                        if entry.is_dir() else "a file outside the class folders")
                       for entry in _entries(folder / split) if entry.name not in CLASS_NAMES]
        files[split] = {}
        for name in CLASS_NAMES:
            images = []
            for entry in _entries(folder / split / name):
                problem = _why_not_an_image(entry)
                if problem is None:
                    images.append(Path(entry.path))
                else:
                    unexpected.append((Path(entry.path), problem))
            files[split][name] = tuple(images)
    return files, unexpected


def _why_not_an_image(entry: os.DirEntry) -> str | None:
    """What keeps an entry of a class folder from being read as an image; ``None`` for an image file."""
    if not has_utf8_name(entry.path):
        return BAD_NAME
    if entry.is_symlink() and not os.path.exists(entry.path):
        return (f"a dangling symbolic link to {printable(os.readlink(entry.path))}, which does not exist: restore "
                f"its target or remove the link")
    if entry.is_dir():
        return "a folder (class folders hold only image files)"
    if not entry.is_file():
        return "not a regular file"
    if Path(entry.name).suffix.lower() not in IMAGE_SUFFIXES:
        return f"not an image by its extension ({', '.join(IMAGE_SUFFIXES)})"
    return None


def _unexpected_entries_error(folder: Path, where: str, entries: list[tuple[Path, str]]) -> DatasetError:
    listed = "".join(f"\n  {printable(path)}: {problem}" for path, problem in entries[:_SHOWN])
    if len(entries) > _SHOWN:
        listed += f"\n  ... and {len(entries) - _SHOWN} more"
    return DatasetError(
        f"{len(entries)} unexpected {'entry' if len(entries) == 1 else 'entries'} in {folder}{where}:{listed}\n"
        f"It may hold only the folders {_folders(SPLITS)} (and files, which are not read), each of them only the "
        f"folders {_folders(CLASS_NAMES)}, and those only image files; OS metadata (Thumbs.db, desktop.ini, names "
        f"starting with '.') is ignored. Rename or repair the entries whose line says so, move the others out of "
        f"{folder}, and run again."
    )


def _listed(paths: list[Path]) -> str:
    return ", ".join(str(path) for path in paths)


def _folders(names: tuple[str, ...]) -> str:
    return " and ".join(f"{name}/" for name in names)
