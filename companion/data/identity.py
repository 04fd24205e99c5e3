"""Which data a run reads, as a key for caches: a fingerprint of the image files' paths, sizes and times."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from companion.data.layout import DatasetLayout, load_layout
from companion.data.source import dataset_root
from companion.data.spec import DATASET_FOLDER, SPLITS


@dataclasses.dataclass(frozen=True)
class DataIdentity:
    """The data :func:`~companion.data.load_splits` reads: the absolute ``root`` that contains
    ``cats_and_dogs_filtered/``, the number of image ``files``, and a ``fingerprint`` of them (hex SHA-256)."""

    root: Path
    files: int
    fingerprint: str

    def __str__(self) -> str:
        return f"{DATASET_FOLDER} in {self.root}: {self.files} files, fingerprint {self.fingerprint[:12]}"

    @property
    def label(self) -> str:
        """Which images, as a page shows them: no folder (a machine's path) and no fingerprint."""
        return f"{self.files} image files of {DATASET_FOLDER}"


def identity(root: str | Path | None = None, limit_per_class: int | None = None) -> DataIdentity:
    """The identity of the files ``load_splits(..., limit_per_class, root=root)`` reads (``root`` default:
    :func:`~companion.data.dataset_root`).

    The fingerprint covers each file's path relative to ``root``, size and modification time (``st_mtime_ns``):
    files are only listed and stat'ed, never read (3000 files take milliseconds), yet an edited, replaced, added
    or removed image changes it, and so do swapped class folders. A copy that keeps modification times (``cp -p``,
    ``rsync -a``) keeps the fingerprint wherever it lies.
    """
    return identity_of(load_layout(dataset_root() if root is None else root), limit_per_class)


def identity_of(layout: DatasetLayout, limit_per_class: int | None) -> DataIdentity:
    relative = sorted((path.relative_to(layout.root).as_posix(), path)
                      for split in SPLITS for path, _ in layout.labelled(split, limit_per_class))
    digest = hashlib.sha256()
    for name, path in relative:
        status = path.stat()
        digest.update(f"{name}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    return DataIdentity(root=layout.root, files=len(relative), fingerprint=digest.hexdigest())
