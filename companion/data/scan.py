"""One decoding pass over the image files, so that no file the input pipeline cannot decode ever reaches it."""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from PIL import Image

# Images larger than this are skipped before anything decodes them. Real photos are far smaller (the dataset's
# are about 0.2 megapixels, a 48-megapixel phone photo is under the limit), while a 20000x20000 image would take
# 1.2 GB to decode to RGB: such a file is a mistake or an attack, not a photo of a cat.
MAX_IMAGE_PIXELS = 50_000_000


class Finding(NamedTuple):
    path: Path
    detail: str


@dataclasses.dataclass(frozen=True)
class ScanReport:
    """What :func:`scan_images` found.

    - ``readable``: the files the input pipeline may read, in input order: clean RGB JPEGs and the converted ones.
    - ``converted``: decodable files that are not RGB JPEGs (grayscale or CMYK JPEG, PNG, RGBA...); the pipeline
      decodes them to RGB (an alpha channel is dropped, as ``image_dataset_from_directory`` drops it).
    - ``skipped``: files left out (corrupt, truncated, too large, not images at all), each with the reason.
    """

    readable: tuple[Path, ...]
    converted: tuple[Finding, ...]
    skipped: tuple[Finding, ...]

    def summary(self, limit: int = 20) -> str:
        scanned = len(self.readable) + len(self.skipped)
        lines = [f"scanned {scanned} files: {len(self.readable)} readable ({len(self.converted)} of them converted "
                 f"to RGB), {len(self.skipped)} skipped"]
        for title, findings in (("converted", self.converted), ("skipped", self.skipped)):
            # split/class/file, not the machine's folder: the summary is shown on pages
            lines += [f"  {title} {'/'.join(f.path.parts[-3:])}: {f.detail}" for f in findings[:limit]]
            if len(findings) > limit:
                lines.append(f"  ... and {len(findings) - limit} more {title}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


class _Header(NamedTuple):
    format: str
    mode: str
    width: int
    height: int


def scan_images(files: Iterable[str | Path], progress: bool = True) -> ScanReport:
    """Decode every file once, with the decoder the pipeline uses, and sort them into readable and skipped.

    ``tf.data`` stops an epoch at the first file its decoder rejects; decoding each file here with that same op
    (``tf.io.decode_image(channels=3, expand_animations=False)``) guarantees that what the pipeline reads decodes.
    Pillow reads each header first: files over :data:`MAX_IMAGE_PIXELS` are skipped before anything decodes them,
    and the format and mode name what was converted. About 1 ms per image on one CPU core.
    """
    from tqdm.auto import tqdm

    readable: list[Path] = []
    converted: list[Finding] = []
    skipped: list[Finding] = []
    for path in tqdm([Path(f) for f in files], desc="Scanning images", unit="file", disable=not progress):
        verdict, detail = _examine(path)
        if verdict == "skipped":
            skipped.append(Finding(path, detail))
            continue
        readable.append(path)
        if verdict == "converted":
            converted.append(Finding(path, detail))
    return ScanReport(tuple(readable), tuple(converted), tuple(skipped))


def _examine(path: Path) -> tuple[str, str]:
    """``("skipped", why)``, ``("converted", from what)`` or ``("clean", "")`` for one file."""
    import tensorflow as tf

    try:
        data = path.read_bytes()
    except OSError as error:
        return "skipped", f"cannot be read: {error.strerror or error}"  # strerror: the reason without the path
    header = _header(data)
    if header is not None and header.width * header.height > MAX_IMAGE_PIXELS:
        return "skipped", _too_large(header)
    try:
        tf.io.decode_image(data, channels=3, expand_animations=False)
    except tf.errors.OpError as error:
        return "skipped", _why_undecodable(data, header, error.message)
    if header is None:
        return "converted", "a format Pillow does not know, decoded to RGB"
    if (header.format, header.mode) != ("JPEG", "RGB"):
        return "converted", f"{header.format} in {header.mode} mode, decoded to RGB"
    return "clean", ""


def _header(data: bytes) -> _Header | None:
    """Format, mode and size as the file's header states them (Pillow decodes nothing here); ``None`` if Pillow
    does not recognise the file."""
    with _pillow_pixel_limit_off():
        try:
            with Image.open(io.BytesIO(data)) as image:
                return _Header(image.format, image.mode, *image.size)
        except Exception:  # Pillow's plugins raise many types (OSError, SyntaxError, ValueError...) on odd input
            return None


@contextlib.contextmanager
def _pillow_pixel_limit_off() -> Iterator[None]:
    """Pillow's decompression-bomb check off, for reading a header only.

    Over twice ``Image.MAX_IMAGE_PIXELS`` Pillow's ``open`` raises ``DecompressionBombError`` (over once, a
    ``DecompressionBombWarning``) without telling the image's size, which the scan's own, lower limit needs to
    name. The check is a module setting of Pillow's, so this is not for concurrent threads; nothing decodes while
    it is off.
    """
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _too_large(header: _Header) -> str:
    pixels = header.width * header.height
    return (f"{header.format} of {header.width}x{header.height} pixels ({pixels / 1e6:.0f} megapixels), over the "
            f"limit of {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels (companion.data.MAX_IMAGE_PIXELS): decoding it would "
            f"take {pixels * 3 / 1e9:.1f} GB. Not decoded; shrink it below the limit or move it out of the class "
            f"folder")


def _why_undecodable(data: bytes, header: _Header | None, tensorflow_message: str) -> str:
    """Pillow's words for why a file does not decode, which are clearer than TensorFlow's."""
    if not data:
        return "empty file"
    if header is None:
        return "not an image: neither TensorFlow nor Pillow recognises its content"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception as error:  # see _header
        return f"corrupt or truncated {header.format}: {error}"
    message = tensorflow_message.split("}}")[-1].split("[Op:")[0].strip()
    return f"{header.format} that TensorFlow cannot decode: {message}"
