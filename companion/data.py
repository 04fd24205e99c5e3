"""The 2020 MobileNetV2 tutorial's data, ``cats_and_dogs_filtered``, loaded so that no run dies on it.

The tutorial downloads ``cats_and_dogs_filtered.zip`` (2000 training and 1000 validation images) and reads it with
``image_dataset_from_directory``. This module gives the book the same data with what a long run needs: a local
copy first (CI and offline machines), a verified download and a safe extraction otherwise, a layout check whose
errors say what to do, one scan that keeps corrupt files out of the input pipeline, and a fast failure where the
TFDS variant of the data cannot be had.

Public API:

- :data:`DATA_DIR_ENV` (``COMPANION_DATA_DIR``): a folder that contains ``cats_and_dogs_filtered/``.
- :func:`dataset_root` ``(allow_download=True) -> Path``: that folder, from the variable, else downloaded.
- :func:`download_dataset` ``(cache_dir=None) -> Path``: download into Keras' cache, verify, extract safely.
- :func:`verify_archive` ``(path, sha256)``: raise :class:`DatasetError` unless the file has that SHA-256.
- :func:`extract_archive` ``(archive, destination) -> Path``: zip extraction that refuses to write outside
  ``destination`` and leaves nothing half-extracted.
- :func:`load_layout` ``(root) -> DatasetLayout``: the image files per split and class, checked.
- :func:`scan_images` ``(files, progress=True) -> ScanReport``: which files the pipeline can decode.
- :func:`make_dataset` ``(files, labels, image_size, batch_size, shuffle, seed) -> tf.data.Dataset``.
- :func:`load_splits` ``(image_size, batch_size, seed, limit_per_class=None) -> Splits``: train, validation and
  test datasets as in the tutorial, with the scan report.
- :func:`load_arrays` ``(split, image_size, images_per_class=None) -> (images, labels)``: one split in memory.
- :func:`require_network` and :func:`load_tfds_cats_vs_dogs`: TFDS ``cats_vs_dogs``, failing within seconds offline.
- :func:`pipeline_images_per_second` ``(dataset, batches=None) -> Throughput``: input pipeline speed.
- :class:`DatasetError`: every problem with the data, with what to do about it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import os
import random
import shutil
import socket
import stat
import tempfile
import threading
import time
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, NamedTuple

from PIL import Image

if TYPE_CHECKING:
    import tensorflow as tf

DATA_DIR_ENV = "COMPANION_DATA_DIR"
DATASET_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
ARCHIVE_NAME = "cats_and_dogs_filtered.zip"
DATASET_FOLDER = "cats_and_dogs_filtered"
SPLITS = ("train", "validation")
CLASS_NAMES = ("cats", "dogs")  # label 0 and 1: the alphabetical order image_dataset_from_directory uses
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # the extensions image_dataset_from_directory reads

# SHA-256 of cats_and_dogs_filtered.zip as served at DATASET_URL. No public source citing one was found (public
# code, issues and pages searched for "cats_and_dogs_filtered.zip" with sha256, md5 and file_hash), and the machines
# this project is built on cannot download it. Until one is pinned, a download is verified file by file against
# CONTENT_MANIFEST instead, and download_dataset() says the archive's SHA-256, to check and pin here.
CATS_AND_DOGS_SHA256: str | None = None
# SHA-256 of every image of a real copy of the dataset (`sha256sum -c` can read it). That copy lacks one image of
# the archive (train/cats/cat.459.jpg), so a download may hold images the manifest cannot vouch for: they are named.
CONTENT_MANIFEST = Path(__file__).parent / "assets" / "cats_and_dogs_filtered.sha256"

# Where download_dataset() extracts, next to the archive in Keras' cache. A name of our own, so that a folder
# left by get_file(extract=True) (which extracts in place, not atomically) is never mistaken for ours.
_EXTRACTED_FOLDER = "companion_cats_and_dogs_filtered"

_HOW_TO_GET_THE_DATA = (
    f"set {DATA_DIR_ENV} to a folder that contains {DATASET_FOLDER}/, or leave {DATA_DIR_ENV} unset so that "
    f"the companion downloads {DATASET_URL} into Keras' cache (needs internet)"
)


class DatasetError(ValueError):
    """The data is missing, incomplete, corrupt or out of reach; the message says what to do."""


# --- Where the data comes from --------------------------------------------------------------------------------


def dataset_root(allow_download: bool = True) -> Path:
    """The folder that contains ``cats_and_dogs_filtered/``.

    ``$COMPANION_DATA_DIR`` wins, so that CI and offline machines never touch the network; otherwise the archive
    is downloaded (once) into Keras' cache. The folder's content is checked by :func:`load_layout`.
    """
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    if not allow_download:
        raise DatasetError(f"no local copy of {DATASET_FOLDER} is configured and downloading is not allowed: "
                           f"{_HOW_TO_GET_THE_DATA}")
    return download_dataset()


def download_dataset(cache_dir: str | Path | None = None, manifest: Path = CONTENT_MANIFEST) -> Path:
    """Download the tutorial's archive into Keras' cache, verify it, extract it safely; the extracted root.

    ``keras.utils.get_file`` downloads only when the archive is not cached yet (or, with a pinned hash, when the
    cached copy does not match it). The extraction is ours, not ``get_file``'s: see :func:`extract_archive`. The
    extracted images are checked against ``manifest`` before the extraction is kept (:func:`verify_content`).
    """
    from companion.variants import load_keras

    keras = load_keras()
    try:
        archive = Path(keras.utils.get_file(
            fname=ARCHIVE_NAME, origin=DATASET_URL, file_hash=CATS_AND_DOGS_SHA256, cache_dir=cache_dir,
        ))
    except ValueError as error:  # raised by get_file when the download does not match the pinned hash
        raise DatasetError(f"{error} Run again to download it again; if it keeps failing, the file changed "
                           f"upstream: check it, then update CATS_AND_DOGS_SHA256.") from error
    except Exception as error:  # get_file raises a bare Exception for network failures
        raise DatasetError(f"could not download {DATASET_URL}: {error}. Offline? "
                           f"Set {DATA_DIR_ENV} to a folder that contains {DATASET_FOLDER}/.") from error
    root = archive.parent / _EXTRACTED_FOLDER
    if not (root / DATASET_FOLDER).is_dir():
        if CATS_AND_DOGS_SHA256 is not None:
            verify_archive(archive, CATS_AND_DOGS_SHA256)
        if root.exists():  # an extraction without the dataset folder: not ours, or from an older layout
            raise DatasetError(f"{root} exists but holds no {DATASET_FOLDER}/: delete {root} and run again")
        unlisted: list[str] = []
        extract_archive(archive, root, verify=lambda staging: unlisted.extend(verify_content(staging, manifest)))
        if CATS_AND_DOGS_SHA256 is None or unlisted:
            warnings.warn(
                f"{archive}: every image listed in {manifest.name} matched"
                + (f"; {len(unlisted)} file(s) it does not list were kept unverified: {', '.join(unlisted[:5])}"
                   if unlisted else "")
                + (f". The archive's own SHA-256 is {_sha256(archive)}; pin it in companion.data.CATS_AND_DOGS_SHA256"
                   if CATS_AND_DOGS_SHA256 is None else ""),
                stacklevel=2,
            )
    return root


def verify_content(root: Path, manifest: Path = CONTENT_MANIFEST) -> list[str]:
    """Check every file ``manifest`` lists (``sha256  relative/path`` lines) under ``root``.

    Raises :class:`DatasetError` naming what is missing or different; returns the files under
    ``root/cats_and_dogs_filtered`` that the manifest does not list (relative paths), which it cannot vouch for.
    """
    expected = dict(reversed(line.split(maxsplit=1)) for line in manifest.read_text().splitlines() if line.strip())
    problems = [f"{name} is missing" if not (root / name).is_file() else f"{name} differs"
                for name, digest in expected.items()
                if not (root / name).is_file() or _sha256(root / name) != digest]
    if problems:
        raise DatasetError(
            f"the extracted data does not match {manifest.name}: {len(problems)} problem(s), e.g. "
            f"{'; '.join(problems[:3])}. Nothing was kept: delete the archive and run again to download it afresh.")
    found = (path.relative_to(root).as_posix() for path in (root / DATASET_FOLDER).rglob("*") if path.is_file())
    return sorted(name for name in found if name not in expected)


def verify_archive(path: str | Path, sha256: str) -> None:
    """Raise :class:`DatasetError` unless the file at ``path`` has this SHA-256.

    A truncated download or a file changed upstream must stop the run here, not as odd accuracy later.
    """
    actual = _sha256(Path(path))
    if actual != sha256.lower():
        raise DatasetError(
            f"{path} has SHA-256 {actual}, expected {sha256.lower()}: it is incomplete, corrupt or not the "
            f"archive this companion was written for. Delete it and run again to download a fresh copy; if a "
            f"fresh copy fails too, the file changed upstream: check it, then update CATS_AND_DOGS_SHA256."
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract_archive(archive: str | Path, destination: str | Path,
                    verify: Callable[[Path], object] | None = None) -> Path:
    """Extract a zip archive into ``destination`` (which must not exist yet); ``destination``.

    Every member is checked before anything is written: absolute paths, ``..`` components and symbolic links are
    refused, since they can write outside ``destination``. Members are written into a hidden staging folder next
    to ``destination``, renamed into place only once complete (and once ``verify(staging)``, if given, returned
    without raising): an interrupted or rejected extraction leaves no half-filled ``destination`` that a later run
    would take for the dataset.
    """
    archive, destination = Path(archive), Path(destination)
    if destination.exists():
        raise DatasetError(f"{destination} already exists: delete it to extract {archive} again")
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            for member in members:
                _check_member(member, archive)
            destination.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".partial",
                                            dir=destination.parent))
            try:
                for member in members:
                    target = staging.joinpath(*PurePosixPath(member.filename.replace("\\", "/")).parts)
                    if member.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zipped.open(member) as source, open(target, "wb") as sink:
                        shutil.copyfileobj(source, sink)
                if verify is not None:
                    verify(staging)
                staging.chmod(0o755)  # mkdtemp makes it private; the dataset is not
                staging.rename(destination)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    except zipfile.BadZipFile as error:
        raise DatasetError(f"{archive} is not a valid zip archive ({error}): delete it and download it again") \
            from error
    return destination


def _check_member(member: zipfile.ZipInfo, archive: Path) -> None:
    name = member.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or (len(name) > 1 and name[0].isalpha() and name[1] == ":"):
        problem = "an absolute path"
    elif ".." in path.parts:
        problem = "a '..' component"
    elif stat.S_ISLNK(member.external_attr >> 16):
        problem = "a symbolic link"
    else:
        return
    raise DatasetError(f"{archive} is unsafe: member {member.filename!r} is {problem}, which could write outside "
                       f"the extraction folder. Nothing was extracted; delete the archive and download it again.")


# --- Layout -----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DatasetLayout:
    """The image files of ``root/cats_and_dogs_filtered``: ``files[split][class_name]``, in name order."""

    root: Path
    files: Mapping[str, Mapping[str, tuple[Path, ...]]]

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

    ``image_dataset_from_directory`` silently ignores files without an image extension; here they are an error,
    since a stray file in a class folder means the copy is not the tutorial's. Hidden files (``.DS_Store`` and the
    like) are ignored. Whether each image decodes is :func:`scan_images`'s job.
    """
    root = Path(root)
    folder = root / DATASET_FOLDER
    if not folder.is_dir():
        raise DatasetError(f"{folder} does not exist: {_HOW_TO_GET_THE_DATA}")
    files: dict[str, dict[str, tuple[Path, ...]]] = {}
    not_images: list[Path] = []
    for split in SPLITS:
        files[split] = {}
        for name in CLASS_NAMES:
            class_folder = folder / split / name
            if not class_folder.is_dir():
                raise DatasetError(
                    f"{class_folder} is missing: {folder} must hold {' and '.join(SPLITS)}/, each with "
                    f"{' and '.join(CLASS_NAMES)}/, as in {DATASET_URL}. Restore the copy, or {_HOW_TO_GET_THE_DATA}"
                )
            entries = sorted(p for p in class_folder.iterdir() if not p.name.startswith("."))
            images = tuple(p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            not_images.extend(sorted(set(entries) - set(images)))
            if not images:
                raise DatasetError(f"{class_folder} holds no images: restore the copy, or {_HOW_TO_GET_THE_DATA}")
            files[split][name] = images
    if not_images:
        shown = ", ".join(str(p) for p in not_images[:5]) + (", ..." if len(not_images) > 5 else "")
        raise DatasetError(
            f"{len(not_images)} entries in the class folders of {folder} are not images (by their extension; "
            f"images end in {', '.join(IMAGE_SUFFIXES)}): {shown}. Move them out of the class folders, which "
            f"should hold only images, and run again."
        )
    return DatasetLayout(root=root, files=files)


# --- Scanning for files that would break an epoch ---------------------------------------------------------------


class Finding(NamedTuple):
    path: Path
    detail: str


@dataclasses.dataclass(frozen=True)
class ScanReport:
    """What :func:`scan_images` found.

    - ``readable``: the files the input pipeline may read, in input order: clean RGB JPEGs and the converted ones.
    - ``converted``: decodable files that are not RGB JPEGs (grayscale or CMYK JPEG, PNG, RGBA...); the pipeline
      decodes them to RGB (an alpha channel is dropped, as ``image_dataset_from_directory`` drops it).
    - ``skipped``: files left out (corrupt, truncated, not images at all), each with the reason.
    """

    readable: tuple[Path, ...]
    converted: tuple[Finding, ...]
    skipped: tuple[Finding, ...]

    def summary(self, limit: int = 20) -> str:
        scanned = len(self.readable) + len(self.skipped)
        lines = [f"scanned {scanned} files: {len(self.readable)} readable ({len(self.converted)} of them converted "
                 f"to RGB), {len(self.skipped)} skipped"]
        for title, findings in (("converted", self.converted), ("skipped", self.skipped)):
            lines += [f"  {title} {f.path}: {f.detail}" for f in findings[:limit]]
            if len(findings) > limit:
                lines.append(f"  ... and {len(findings) - limit} more {title}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def scan_images(files: Iterable[str | Path], progress: bool = True) -> ScanReport:
    """Decode every file once, with the decoder the pipeline uses, and sort them into readable and skipped.

    ``tf.data`` stops an epoch at the first file its decoder rejects; decoding each file here with that same op
    (``tf.io.decode_image(channels=3, expand_animations=False)``) guarantees that what the pipeline reads decodes.
    Pillow only names what a file is, for the report. About 1 ms per image on one CPU core.
    """
    import tensorflow as tf
    from tqdm.auto import tqdm

    readable: list[Path] = []
    converted: list[Finding] = []
    skipped: list[Finding] = []
    paths = [Path(f) for f in files]
    for path in tqdm(paths, desc="Scanning images", unit="file", disable=not progress):
        try:
            data = path.read_bytes()
        except OSError as error:
            skipped.append(Finding(path, f"cannot be read: {error}"))
            continue
        try:
            tf.io.decode_image(data, channels=3, expand_animations=False)
        except tf.errors.OpError as error:
            skipped.append(Finding(path, _why_undecodable(data, error.message)))
            continue
        readable.append(path)
        kind = _format_and_mode(data)
        if kind != ("JPEG", "RGB"):
            what = f"{kind[0]} in {kind[1]} mode" if kind else "a format Pillow does not know"
            converted.append(Finding(path, f"{what}, decoded to RGB"))
    return ScanReport(tuple(readable), tuple(converted), tuple(skipped))


def _format_and_mode(data: bytes) -> tuple[str, str] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            return image.format, image.mode
    except Exception:  # Pillow's plugins raise many types (OSError, SyntaxError, ValueError...) on odd input
        return None


def _why_undecodable(data: bytes, tensorflow_message: str) -> str:
    """Pillow's words for why a file does not decode, which are clearer than TensorFlow's."""
    if not data:
        return "empty file"
    try:
        image = Image.open(io.BytesIO(data))
    except Exception:  # see _format_and_mode
        return "not an image: neither TensorFlow nor Pillow recognises its content"
    with image:
        try:
            image.load()
        except Exception as error:  # see _format_and_mode
            return f"corrupt or truncated {image.format}: {error}"
    message = tensorflow_message.split("}}")[-1].split("[Op:")[0].strip()
    return f"{image.format} that TensorFlow cannot decode: {message}"


# --- tf.data pipelines ------------------------------------------------------------------------------------------


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


def load_splits(image_size: tuple[int, int], batch_size: int, seed: int, limit_per_class: int | None = None, *,
                root: str | Path | None = None, progress: bool = True) -> Splits:
    """The tutorial's three datasets, from ``root`` (default :func:`dataset_root`), and the scan report.

    - ``train``: the train split, reshuffled every epoch (seeded).
    - ``test``: the first fifth of the validation batches, as the tutorial takes it; ``validation``: the rest.
      The validation files are shuffled once (seeded) and then kept in that order, so that both sets mix cats and
      dogs and stay disjoint. (The tutorial splits a dataset that reshuffles on every pass, so its test batches
      are drawn anew each time they are read.)

    ``limit_per_class`` keeps the first that many files (in name order) of each class of each split, for small
    runs; the same files every time. Files the scan skips are left out and listed in ``report``.
    """
    layout = load_layout(dataset_root() if root is None else root)
    chosen = {split: [(path, label) for label, name in enumerate(CLASS_NAMES)
                      for path in layout.files[split][name][:limit_per_class]]
              for split in SPLITS}
    report = scan_images([path for pairs in chosen.values() for path, _ in pairs], progress=progress)
    readable = set(report.readable)
    usable = {split: [pair for pair in pairs if pair[0] in readable] for split, pairs in chosen.items()}

    validation = usable["validation"]
    random.Random(seed).shuffle(validation)
    test_size = math.ceil(len(validation) / batch_size) // 5 * batch_size  # a fifth of the batches, rounded down
    if test_size == 0:
        raise DatasetError(f"{len(validation)} validation images make fewer than 5 batches of {batch_size}, so the "
                           f"test split (a fifth of the batches) would be empty: use more images or smaller batches")

    def dataset(pairs: list[tuple[Path, int]], shuffle: bool) -> tf.data.Dataset:
        return make_dataset([p for p, _ in pairs], [label for _, label in pairs], image_size, batch_size,
                            shuffle=shuffle, seed=seed)

    return Splits(train=dataset(usable["train"], shuffle=True), validation=dataset(validation[test_size:], False),
                  test=dataset(validation[:test_size], False), report=report)


def load_arrays(split: str, image_size: int, images_per_class: int | None = None, *, progress: bool = True):
    """One split of cats_and_dogs_filtered as uint8 arrays ``(images, labels)``, decoded once.

    The first ``images_per_class`` files of each class (all if ``None``), cats first; files the scan skips are
    left out. For work that wants the images in memory (pretraining, probes) rather than a ``tf.data`` pipeline.
    """
    import numpy as np
    from tqdm.auto import tqdm

    layout = load_layout(dataset_root())
    pairs = [(path, label) for label, name in enumerate(CLASS_NAMES)
             for path in layout.files[split][name][:images_per_class]]
    readable = set(scan_images([path for path, _ in pairs], progress=progress).readable)
    pairs = [(path, label) for path, label in pairs if path in readable]
    dataset = make_dataset([path for path, _ in pairs], [label for _, label in pairs], (image_size, image_size),
                           batch_size=128, shuffle=False)
    images, labels = [], []
    for x, y in tqdm(dataset, desc=f"decoding {split} images", unit="batch", disable=not progress):
        images.append(np.clip(np.round(x.numpy()), 0, 255).astype("uint8"))
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


# --- TFDS cats_vs_dogs (the 2019 tutorial and the Xception guide) -----------------------------------------------


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
    from :func:`make_dataset`. ``shuffle`` reshuffles the cached images every epoch with a buffer of 1000, as the
    2019 MobileNetV2 tutorial does. TFDS drops the archive's corrupt JPEGs itself. Needs internet (checked first,
    see :func:`require_network`) unless TFDS has the data already, and the ``tensorflow-datasets`` package (the
    ``full`` extra of the companion).
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise DatasetError("TFDS cats_vs_dogs needs the tensorflow-datasets package: "
                           "pip install 'training-vs-trainable[full]' (or: make full-setup)") from error
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
