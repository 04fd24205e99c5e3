"""Small files for the data tests: clean and broken images, dataset folders and zip archives, written in tmp dirs."""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SIZE = (40, 30)  # width, height


def real_data_root() -> Path:
    """The folder ``COMPANION_DATA_DIR`` names, which holds the real copy; skips the test where it is not set."""
    configured = os.environ.get("COMPANION_DATA_DIR")
    if not configured:
        pytest.skip("COMPANION_DATA_DIR is not set: this test reads the real cats_and_dogs_filtered copy "
                    "(CI sets it to a folder that contains cats_and_dogs_filtered/)")
    return Path(configured)


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


def write_huge_png(path: Path, width: int, height: int) -> Path:
    """A valid black-and-white PNG of ``width`` x ``height`` pixels, written row by row without ever holding the
    image: 20000x20000 pixels (1.2 GB decoded to RGB) make a file of about 50 KB, in about 0.1 s."""
    def chunk(kind: bytes, content: bytes) -> bytes:
        return struct.pack(">I", len(content)) + kind + content + struct.pack(">I", zlib.crc32(kind + content))

    compressor = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)  # filter byte "none", then one bit per pixel, all black
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


def write_jpeg_named(folder: Path, name: bytes) -> Path:
    """A valid JPEG in ``folder`` under a name given as bytes (which need not be valid UTF-8); its path."""
    path = os.path.join(os.fsencode(folder), name)
    with open(path, "wb") as file:
        file.write(_encoded("RGB", "JPEG"))
    return Path(os.fsdecode(path))


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
