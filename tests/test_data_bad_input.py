"""Bad input to the data package: each gets a precise error naming the file and what to do, and nothing is lost.

Every bad file, folder and setting is made in a tmp dir; one test times the identity of the real copy.
"""

import builtins
import io
import os
import time
from pathlib import Path

import pytest
from data_fixtures import (
    make_dataset_folder,
    real_data_root,
    write_huge_png,
    write_jpeg,
    write_jpeg_named,
    write_text,
)
from PIL import Image

from companion import data
from companion.data import DatasetError

FOLDER = "cats_and_dogs_filtered"


@pytest.fixture()
def real_root():
    return real_data_root()


def _class_folder(root: Path, split: str = "train", name: str = "cats") -> Path:
    return root / FOLDER / split / name


# --- 1. Data identity, for cache keys ---------------------------------------------------------------------------


def test_identity_covers_exactly_the_files_load_splits_reads(tmp_path):
    root = make_dataset_folder(tmp_path, per_class=4)
    limited = data.identity(root, limit_per_class=3)
    assert limited.root == root and limited.files == 12 and len(limited.fingerprint) == 64
    assert str(limited) == f"{FOLDER} in {root}: 12 files, fingerprint {limited.fingerprint[:12]}"
    splits = data.load_splits((8, 8), 1, seed=0, limit_per_class=3, root=root, progress=False)
    assert splits.identity == limited

    full = data.identity(root)
    assert full.files == 16 and full.fingerprint != limited.fingerprint
    last = _class_folder(root) / "cat.3.jpg"  # past the limit of 3: read by the full run only
    write_jpeg(last, seed=7)
    os.utime(last, ns=(0, 10**18))
    assert data.identity(root, limit_per_class=3) == limited
    assert data.identity(root) != full
    (_class_folder(root) / "Thumbs.db").write_bytes(b"\0")  # ignored by the layout, so by the identity
    assert data.identity(root, limit_per_class=3) == limited


def test_identity_changes_when_the_class_folders_are_swapped(tmp_path):
    root = make_dataset_folder(tmp_path)
    before = data.identity(root)
    split = root / FOLDER / "train"
    (split / "cats").rename(split / "kept")
    (split / "dogs").rename(split / "cats")
    (split / "kept").rename(split / "dogs")
    assert data.identity(root).files == before.files
    assert data.identity(root).fingerprint != before.fingerprint


def test_identity_changes_when_two_images_swap_contents(tmp_path):
    root = make_dataset_folder(tmp_path)
    cats = _class_folder(root)
    first, second = cats / "cat.0.jpg", cats / "cat.1.jpg"
    assert first.stat().st_size != second.stat().st_size  # renames keep sizes and times: what tells them apart
    before = data.identity(root)
    first.rename(cats / "kept.jpg")
    second.rename(first)
    (cats / "kept.jpg").rename(second)
    assert data.identity(root).fingerprint != before.fingerprint


def test_identity_changes_when_an_image_is_rewritten_with_the_same_size(tmp_path):
    root = make_dataset_folder(tmp_path)
    image = _class_folder(root) / "cat.0.jpg"
    before = data.identity(root)
    content = bytearray(image.read_bytes())
    content[-3] ^= 0xFF
    status = image.stat()
    image.write_bytes(bytes(content))
    os.utime(image, ns=(status.st_atime_ns, status.st_mtime_ns + 1))
    assert data.identity(root).fingerprint != before.fingerprint


def test_identity_of_the_real_copy_only_stats_its_files(monkeypatch, real_root):
    def refuse(*args, **kwargs):
        raise AssertionError(f"identity() opened {args[0]!r}: it must only stat files")

    for module, name in ((builtins, "open"), (io, "open"), (os, "open")):
        monkeypatch.setattr(module, name, refuse)
    started = time.perf_counter()
    whole = data.identity(real_root)
    elapsed = time.perf_counter() - started
    monkeypatch.undo()
    assert whole.files == 2999 and elapsed < 1.0
    assert data.identity(real_root, limit_per_class=10).files == 40


# --- 2. Degenerate data is refused before training --------------------------------------------------------------


@pytest.fixture()
def no_datasets(monkeypatch):
    """Fails the test if a tf.data pipeline is made: refusals must come before any."""
    def refuse(*args, **kwargs):
        raise AssertionError("a dataset was made before the data was refused")

    monkeypatch.setattr(data.pipeline, "make_dataset", refuse)


def test_a_split_that_lost_a_class_is_refused(tmp_path, no_datasets):
    root = make_dataset_folder(tmp_path, per_class=5)
    dogs = _class_folder(root, "validation", "dogs")
    for image in dogs.iterdir():
        write_text(image)
    with pytest.raises(DatasetError) as error:
        data.load_splits((8, 8), 1, seed=0, root=root, progress=False)
    message = str(error.value)
    assert f"{dogs}: none of its 5 images can be decoded, so validation would hold one class only. Restore them" \
           in message
    assert "skipped validation/dogs/dog.0.jpg: not an image" in message  # the scan report says why
    assert str(_class_folder(root, "validation", "cats")) not in message


def test_load_arrays_refuses_a_split_that_lost_a_class(monkeypatch, tmp_path, no_datasets):
    root = make_dataset_folder(tmp_path, per_class=3)
    cats = _class_folder(root, "train", "cats")
    for image in cats.iterdir():
        write_text(image)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(root))
    with pytest.raises(DatasetError, match=f"{cats}: none of its 3 images can be decoded"):
        data.load_arrays("train", 8, progress=False)


def test_a_class_with_fewer_usable_images_than_a_batch_is_refused(tmp_path, no_datasets):
    root = make_dataset_folder(tmp_path, per_class=6)
    cats = _class_folder(root)
    write_text(cats / "cat.0.jpg")
    write_text(cats / "cat.1.jpg")
    with pytest.raises(DatasetError) as error:
        data.load_splits((8, 8), 5, seed=0, root=root, progress=False)
    problems = [line.strip() for line in str(error.value).splitlines() if line.startswith("  /")]
    assert problems == [f"{cats}: 4 usable image(s), fewer than one batch of 5. Use batches of at most 4 images, "
                        f"or more images per class"]


# --- 3. Unexpected entries: one rule ----------------------------------------------------------------------------


def test_os_metadata_is_ignored_at_every_level(tmp_path):
    root = make_dataset_folder(tmp_path)
    for folder in (root / FOLDER, root / FOLDER / "train", _class_folder(root, "validation", "dogs")):
        for name in ("Thumbs.db", "THUMBS.DB", "desktop.ini", ".DS_Store"):
            (folder / name).write_bytes(b"\0")
        (folder / ".thumbnails").mkdir()
    (root / FOLDER / "vectorize.py").write_text("# shipped in the archive\n")  # a file beside the splits: not data
    assert data.load_layout(root).counts() == {"train": {"cats": 3, "dogs": 3}, "validation": {"cats": 3, "dogs": 3}}


def test_every_unexpected_entry_is_an_error_that_names_it(tmp_path):
    root = make_dataset_folder(tmp_path)
    folder = root / FOLDER
    (folder / "test").mkdir()
    (folder / "train" / "birds").mkdir()
    (folder / "train" / "README.txt").write_text("x")
    (folder / "train" / "cats" / "Thumbs.db").write_bytes(b"\0")  # ignored
    write_text(folder / "train" / "cats" / "notes.txt")
    (folder / "validation" / "dogs" / "more").mkdir()
    with pytest.raises(DatasetError) as error:
        data.load_layout(root)
    lines = str(error.value).splitlines()
    assert lines[0] == f"5 unexpected entries in {folder}:"
    assert lines[1:6] == [
        f"  {folder / 'test'}: a folder that is not a split (train or validation)",
        f"  {folder / 'train' / 'README.txt'}: a file outside the class folders",
        f"  {folder / 'train' / 'birds'}: a folder that is not a class (cats or dogs)",
        f"  {folder / 'train' / 'cats' / 'notes.txt'}: not an image by its extension (.bmp, .gif, .jpeg, .jpg, .png)",
        f"  {folder / 'validation' / 'dogs' / 'more'}: a folder (class folders hold only image files)",
    ]
    assert "OS metadata (Thumbs.db, desktop.ini, names starting with '.') is ignored" in lines[6]
    assert f"move the others out of {folder}, and run again" in lines[6]


def test_a_long_list_of_unexpected_entries_names_the_first_and_counts_the_rest(tmp_path):
    root = make_dataset_folder(tmp_path)
    dogs = _class_folder(root, "train", "dogs")
    for i in range(8):
        write_text(dogs / f"page{i}.html")
    with pytest.raises(DatasetError) as error:
        data.load_layout(root)
    lines = str(error.value).splitlines()
    assert lines[0].startswith("8 unexpected entries")
    assert [line.split(":")[0].strip() for line in lines[1:6]] == [str(dogs / f"page{i}.html") for i in range(5)]
    assert lines[6] == "  ... and 3 more"


# --- 4. A file name that is not valid UTF-8 ---------------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_named_by_its_bytes_and_never_reaches_tensorflow(tmp_path, no_datasets):
    root = make_dataset_folder(tmp_path, per_class=5)
    cats = _class_folder(root)
    bad = write_jpeg_named(cats, b"cat.\xff.jpg")
    shown = repr(os.fsencode(bad))
    assert shown.endswith("/train/cats/cat.\\xff.jpg'")  # the bad byte, as a reader can type it back
    for load in (lambda: data.load_layout(root), lambda: data.load_splits((8, 8), 1, 0, root=root, progress=False)):
        with pytest.raises(DatasetError) as error:
            load()
        assert str(error.value).splitlines()[:2] == [
            f"1 unexpected entry in {root / FOLDER}:",
            f"  {shown}: its name is not valid UTF-8, which TensorFlow cannot take as a file name: rename it",
        ]


def test_make_dataset_refuses_a_file_name_that_is_not_utf8(tmp_path):
    bad = write_jpeg_named(tmp_path, b"dog.\xfe.jpg")
    with pytest.raises(DatasetError, match=r"b'.*dog\.\\xfe\.jpg': its name is not valid UTF-8"):
        data.make_dataset([bad], [1], (8, 8), 1, shuffle=False)


# --- 5. Dangling symbolic links ---------------------------------------------------------------------------------


def test_a_dangling_link_is_named_with_its_target(tmp_path):
    root = make_dataset_folder(tmp_path)
    cats = _class_folder(root)
    target = tmp_path / "elsewhere" / "cat.9.jpg"
    (cats / "cat.9.jpg").symlink_to(target)
    with pytest.raises(DatasetError) as error:
        data.load_layout(root)
    assert str(error.value).splitlines()[:2] == [
        f"1 unexpected entry in {root / FOLDER}:",
        f"  {cats / 'cat.9.jpg'}: a dangling symbolic link to {target}, which does not exist: restore its target or "
        f"remove the link",
    ]

    target.parent.mkdir()
    write_jpeg(target)  # the same link, now pointing at an image: read like any image
    assert data.load_layout(root).files["train"]["cats"][-1] == cats / "cat.9.jpg"


# --- 6. Huge images ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side, megapixels, gigabytes", [
    (8000, 64, 0.2),  # over the companion's limit, under Pillow's own
    (20000, 400, 1.2),  # over twice Pillow's limit, where Pillow's open() raises DecompressionBombError
])
def test_a_huge_image_is_skipped_from_its_header_before_decoding(monkeypatch, recwarn, tmp_path, side, megapixels,
                                                                 gigabytes):
    import tensorflow as tf

    huge = write_huge_png(tmp_path / "huge.png", side, side)
    assert huge.stat().st_size < 100_000
    clean = write_jpeg(tmp_path / "clean.jpg")
    decoded = []
    decode = tf.io.decode_image
    monkeypatch.setattr(tf.io, "decode_image", lambda content, **kw: decoded.append(content) or decode(content, **kw))
    limit = Image.MAX_IMAGE_PIXELS
    started = time.perf_counter()
    report = data.scan_images([huge, clean], progress=False)
    assert time.perf_counter() - started < 5
    assert report.readable == (clean,) and decoded == [clean.read_bytes()]
    assert report.skipped == (data.Finding(huge, (
        f"PNG of {side}x{side} pixels ({megapixels} megapixels), over the limit of 50 megapixels "
        f"(companion.data.MAX_IMAGE_PIXELS): decoding it would take {gigabytes} GB. Not decoded; shrink it below "
        f"the limit or move it out of the class folder")),)
    assert Image.MAX_IMAGE_PIXELS == limit  # Pillow's own check is back on
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


# --- 7. A relative COMPANION_DATA_DIR ---------------------------------------------------------------------------


def test_a_relative_data_dir_is_resolved_against_the_working_directory(monkeypatch, tmp_path):
    (tmp_path / "work").mkdir()
    make_dataset_folder(tmp_path / "data")
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv(data.DATA_DIR_ENV, "../data")
    assert data.dataset_root() == tmp_path / "data"
    assert data.identity().root == tmp_path / "data"


def _no_dataset_folder(root: Path) -> str:
    return f"{root / FOLDER}{{note}} does not exist: set {data.DATA_DIR_ENV}"


def _an_extra_split(root: Path) -> str:
    (make_dataset_folder(root) / FOLDER / "test").mkdir()
    return f"1 unexpected entry in {root / FOLDER}{{note}}:"


def _a_missing_class(root: Path) -> str:
    (make_dataset_folder(root) / FOLDER / "train" / "dogs").rename(root / FOLDER / "train" / "Dogs")
    return f"{root / FOLDER / 'train' / 'dogs'} is missing{{note}}: {root / FOLDER} must hold"


def _empty_classes(root: Path) -> str:
    make_dataset_folder(root, per_class=0)
    folders = ", ".join(str(root / FOLDER / split / name) for split in data.SPLITS for name in data.CLASS_NAMES)
    return f"{folders} hold no images{{note}}: restore the copy"


@pytest.mark.parametrize("break_it", [_no_dataset_folder, _an_extra_split, _a_missing_class, _empty_classes])
def test_errors_about_the_folder_name_its_absolute_path_and_the_relative_setting(monkeypatch, tmp_path, break_it):
    (tmp_path / "work").mkdir()
    expected = break_it(tmp_path / "copy").format(
        note=f" ({data.DATA_DIR_ENV}='../copy' resolved against {tmp_path / 'work'})")
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv(data.DATA_DIR_ENV, "../copy")
    with pytest.raises(DatasetError) as error:
        data.load_splits((8, 8), 1, seed=0, progress=False)
    assert str(error.value).startswith(expected)


def test_an_absolute_data_dir_is_named_as_it_is(monkeypatch, tmp_path):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(DatasetError) as error:
        data.load_layout(data.dataset_root())
    assert str(error.value).startswith(f"{tmp_path / FOLDER} does not exist: ")
