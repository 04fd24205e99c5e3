"""Small files for the data tests: clean and broken images, dataset folders and zip archives, written in tmp dirs."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (40, 30)  # width, height


def _picture(mode: str, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def _encoded(mode: str, image_format: str, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    _picture(mode, seed).save(buffer, format=image_format)
    return buffer.getvalue()


def write_jpeg(path: Path, mode: str = "RGB", seed: int = 0) -> Path:
    """A valid JPEG in ``mode``: "RGB" (clean), "L" (grayscale) or "CMYK"."""
    path.write_bytes(_encoded(mode, "JPEG", seed))
    return path


def write_png(path: Path, mode: str = "RGB") -> Path:
    """A valid PNG, whatever ``path``'s extension says ("RGBA" for one with an alpha channel)."""
    path.write_bytes(_encoded(mode, "PNG"))
    return path


def write_truncated_jpeg(path: Path) -> Path:
    """The first half of a valid JPEG, as an interrupted copy leaves it."""
    data = _encoded("RGB", "JPEG")
    path.write_bytes(data[: len(data) // 2])
    return path


def write_text(path: Path) -> Path:
    """A text file, whatever ``path``'s extension says."""
    path.write_text("<html>404 Not Found</html>\n")
    return path


BROKEN = {  # file name -> writer, for every kind of odd file the scan must handle
    "truncated.jpg": write_truncated_jpeg,
    "text.jpg": write_text,
    "gray.jpg": lambda p: write_jpeg(p, "L"),
    "cmyk.jpg": lambda p: write_jpeg(p, "CMYK"),
    "png_named.jpg": write_png,
    "rgba.png": lambda p: write_png(p, "RGBA"),
}
SKIPPED = {"truncated.jpg", "text.jpg"}
CONVERTED = {"gray.jpg", "cmyk.jpg", "png_named.jpg", "rgba.png"}


def make_dataset_folder(root: Path, per_class: int = 3) -> Path:
    """``root/cats_and_dogs_filtered/{train,validation}/{cats,dogs}`` with ``per_class`` clean JPEGs each; ``root``."""
    for split in ("train", "validation"):
        for name in ("cats", "dogs"):
            folder = root / "cats_and_dogs_filtered" / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                write_jpeg(folder / f"{name[:-1]}.{i}.jpg", seed=i)
    return root


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    """A zip archive with these members (names written as given, unchecked) and symbolic links (name -> target)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # Unix, so that the mode bits below mean what they say
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def zip_folder(folder: Path, path: Path) -> Path:
    """A zip archive of ``folder``'s files, named relative to ``folder``'s parent (as the real archive is)."""
    return make_zip(path, {p.relative_to(folder.parent).as_posix(): p.read_bytes()
                           for p in sorted(folder.rglob("*")) if p.is_file()})
