"""The data package: where the data comes from, its checks, the scan for broken files, the pipelines.

Tests on the real images read the shared copy named by COMPANION_DATA_DIR, a few files per class; every broken
file, layout and archive is made in a tmp dir. Nothing here downloads: downloads are replaced by local files.
"""

import hashlib
import shutil
import socket
import time

import numpy as np
import pytest
from data_fixtures import (
    BROKEN,
    CONVERTED,
    SKIPPED,
    make_dataset_folder,
    make_zip,
    real_data_root,
    write_jpeg,
    zip_folder,
)

from companion import data
from companion.data import DatasetError


@pytest.fixture()
def real_root():
    return real_data_root()


def _batches(dataset):
    return [(images.numpy(), labels.numpy()) for images, labels in dataset]


# --- Layout -----------------------------------------------------------------------------------------------------


def test_layout_of_the_real_copy(real_root):
    layout = data.load_layout(real_root)
    assert layout.counts() == {"train": {"cats": 999, "dogs": 1000}, "validation": {"cats": 500, "dogs": 500}}
    assert "cat.459.jpg" not in {p.name for p in layout.files["train"]["cats"]}
    lines = str(layout).splitlines()
    assert lines[2].split() == ["train", "999", "1000", "1999"]
    assert lines[3].split() == ["validation", "500", "500", "1000"]


def test_a_missing_dataset_folder_says_where_and_how_to_fix(tmp_path):
    with pytest.raises(DatasetError) as error:
        data.load_layout(tmp_path)
    message = str(error.value)
    assert str(tmp_path / "cats_and_dogs_filtered") in message
    assert data.DATA_DIR_ENV in message and "download" in message


@pytest.mark.parametrize("missing", ["validation", "train/dogs"])
def test_a_missing_split_or_class_folder_is_named(tmp_path, missing):
    make_dataset_folder(tmp_path)
    shutil.rmtree(tmp_path / "cats_and_dogs_filtered" / missing)
    with pytest.raises(DatasetError, match="is missing") as error:
        data.load_layout(tmp_path)
    assert str(tmp_path / "cats_and_dogs_filtered" / missing) in str(error.value)


def test_an_empty_class_is_an_error(tmp_path):
    make_dataset_folder(tmp_path)
    cats = tmp_path / "cats_and_dogs_filtered" / "validation" / "cats"
    for path in cats.iterdir():
        path.unlink()
    (cats / ".DS_Store").write_bytes(b"\0")  # hidden files are not images, and not errors either
    with pytest.raises(DatasetError, match=f"{cats} holds no images"):
        data.load_layout(tmp_path)


def test_files_that_are_not_images_are_counted_and_named(tmp_path):
    make_dataset_folder(tmp_path)
    dogs = tmp_path / "cats_and_dogs_filtered" / "train" / "dogs"
    (dogs / "notes.txt").write_text("x")
    (dogs / "labels.csv").write_text("x")
    (dogs / "nested").mkdir()
    with pytest.raises(DatasetError, match="3 unexpected entries in") as error:
        data.load_layout(tmp_path)
    assert f"{dogs / 'notes.txt'}: not an image by its extension" in str(error.value)
    assert f"{dogs / 'nested'}: a folder (class folders hold only image files)" in str(error.value)


# --- Where the data comes from ----------------------------------------------------------------------------------


def test_the_environment_variable_wins(monkeypatch, tmp_path):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    assert data.dataset_root() == tmp_path


def test_without_a_local_copy_or_download_the_error_says_what_to_set(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with pytest.raises(DatasetError, match=data.DATA_DIR_ENV):
        data.dataset_root(allow_download=False)


def _archive_of_a_small_dataset(tmp_path):
    """A small dataset zipped as the tutorial's archive, and a content manifest of its images."""
    source = make_dataset_folder(tmp_path / "source")
    downloads = tmp_path / "keras" / "datasets"
    downloads.mkdir(parents=True)
    manifest = tmp_path / "manifest.sha256"
    manifest.write_text("".join(
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(source).as_posix()}\n"
        for path in sorted((source / "cats_and_dogs_filtered").rglob("*.jpg"))))
    return zip_folder(source / "cats_and_dogs_filtered", downloads / data.ARCHIVE_NAME), manifest


def test_download_extracts_a_verified_archive_next_to_it(monkeypatch, tmp_path):
    archive, manifest = _archive_of_a_small_dataset(tmp_path)
    asked = {}

    def fake_get_file(**arguments):  # stands for the download, which this machine cannot do
        asked.update(arguments)
        return str(archive)

    monkeypatch.setattr("keras.utils.get_file", fake_get_file)
    with pytest.warns(UserWarning, match="every image listed in manifest.sha256 matched"):
        root = data.download_dataset(manifest=manifest)
    assert asked == {"fname": data.ARCHIVE_NAME, "origin": data.DATASET_URL, "cache_dir": None}
    assert root.parent == archive.parent
    assert data.load_layout(root).counts()["train"] == {"cats": 3, "dogs": 3}
    assert data.download_dataset(manifest=manifest) == root  # extracted once, reused afterwards


def test_a_download_is_checked_image_by_image_and_says_the_archives_hash(monkeypatch, tmp_path):
    archive, manifest = _archive_of_a_small_dataset(tmp_path)
    monkeypatch.setattr("keras.utils.get_file", lambda **_: str(archive))
    with pytest.warns(UserWarning, match=f"every image listed in manifest.sha256 matched. The archive's SHA-256 is "
                                         f"{hashlib.sha256(archive.read_bytes()).hexdigest()}"):
        data.download_dataset(manifest=manifest)


def test_a_download_with_a_changed_image_is_not_kept(monkeypatch, tmp_path):
    archive, manifest = _archive_of_a_small_dataset(tmp_path)
    listed = manifest.read_text().splitlines()
    manifest.write_text("\n".join(["0" * 64 + "  " + listed[0].split(maxsplit=1)[1], *listed[1:]]) + "\n")
    monkeypatch.setattr("keras.utils.get_file", lambda **_: str(archive))
    with pytest.raises(DatasetError, match="1 problem.*differs.*Nothing was kept"):
        data.download_dataset(manifest=manifest)
    assert sorted(p.name for p in archive.parent.iterdir()) == [data.ARCHIVE_NAME]


def test_images_the_manifest_does_not_list_are_named(monkeypatch, tmp_path):
    archive, manifest = _archive_of_a_small_dataset(tmp_path)
    manifest.write_text("".join(manifest.read_text().splitlines(keepends=True)[1:]))
    monkeypatch.setattr("keras.utils.get_file", lambda **_: str(archive))
    with pytest.warns(UserWarning, match="1 file\\(s\\) it does not list were kept unverified: "
                                         "cats_and_dogs_filtered/train/cats/"):
        data.download_dataset(manifest=manifest)


def test_the_real_copy_matches_the_committed_manifest(real_root):
    assert data.verify_content(real_root) == []


def test_a_truncated_download_is_not_extracted(monkeypatch, tmp_path):
    archive, manifest = _archive_of_a_small_dataset(tmp_path)
    archive.write_bytes(archive.read_bytes()[:100])
    monkeypatch.setattr("keras.utils.get_file", lambda **_: str(archive))
    with pytest.raises(DatasetError, match=f"{archive} is not a valid zip archive .* download it again"):
        data.download_dataset(manifest=manifest)
    assert sorted(p.name for p in archive.parent.iterdir()) == [data.ARCHIVE_NAME]


def test_verify_archive_rejects_a_tampered_archive(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"cats_and_dogs_filtered/train/cats/cat.0.jpg": b"\xff\xd8 pixels"})
    expected = hashlib.sha256(archive.read_bytes()).hexdigest()
    data.verify_archive(archive, expected)
    data.verify_archive(archive, expected.upper())
    content = bytearray(archive.read_bytes())
    content[len(content) // 2] ^= 0xFF
    archive.write_bytes(bytes(content))
    with pytest.raises(DatasetError, match=f"expected {expected}") as error:
        data.verify_archive(archive, expected)
    assert "Delete it and run again" in str(error.value)


# --- Safe extraction --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("member, problem", [
    ("../escaped.txt", "'..' component"),
    ("cats_and_dogs_filtered/../../escaped.txt", "'..' component"),
    ("/tmp/escaped.txt", "absolute path"),
    ("C:/escaped.txt", "absolute path"),
    ("..\\escaped.txt", "'..' component"),
])
def test_extraction_refuses_paths_outside_the_destination(tmp_path, member, problem):
    archive = make_zip(tmp_path / "evil.zip", {"cats_and_dogs_filtered/ok.txt": b"ok", member: b"evil"})
    destination = tmp_path / "out" / "extracted"
    with pytest.raises(DatasetError, match=problem):
        data.extract_archive(archive, destination)
    assert not (tmp_path / "out").exists()  # checked before anything is written
    assert not list(tmp_path.rglob("escaped.txt"))


def test_extraction_refuses_symbolic_links(tmp_path):
    archive = make_zip(tmp_path / "evil.zip", {"a/ok.txt": b"ok"}, symlinks={"a/link": "/etc/passwd"})
    with pytest.raises(DatasetError, match="symbolic link"):
        data.extract_archive(archive, tmp_path / "extracted")
    assert not (tmp_path / "extracted").exists()


def test_extraction_writes_everything_or_nothing(monkeypatch, tmp_path):
    members = {f"cats_and_dogs_filtered/train/cats/cat.{i}.jpg": bytes([i]) * 100 for i in range(4)}
    archive = make_zip(tmp_path / "a.zip", members)
    destination = tmp_path / "extracted"
    copies = []

    def interrupted_copy(source, sink):
        copies.append(sink.name)
        if len(copies) == 3:
            raise KeyboardInterrupt
        shutil.copyfileobj(source, sink)

    monkeypatch.setattr(data.archive.shutil, "copyfileobj", interrupted_copy)
    with pytest.raises(KeyboardInterrupt):
        data.extract_archive(archive, destination)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]  # no destination, no staging left

    monkeypatch.undo()
    assert data.extract_archive(archive, destination) == destination
    assert {p.relative_to(destination).as_posix(): p.read_bytes()
            for p in destination.rglob("*") if p.is_file()} == members
    with pytest.raises(DatasetError, match="already exists"):
        data.extract_archive(archive, destination)


def test_a_file_that_is_no_zip_says_to_download_again(tmp_path):
    archive = tmp_path / "cats_and_dogs_filtered.zip"
    archive.write_text("<html>quota exceeded</html>")
    with pytest.raises(DatasetError, match="not a valid zip archive"):
        data.extract_archive(archive, tmp_path / "extracted")


# --- Scanning ---------------------------------------------------------------------------------------------------


def test_the_scan_sorts_broken_files_into_converted_and_skipped(tmp_path):
    clean = write_jpeg(tmp_path / "clean.jpg")
    odd = [write(tmp_path / name) for name, write in BROKEN.items()]
    missing = tmp_path / "gone.jpg"
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    report = data.scan_images([clean, *odd, missing, empty], progress=False)

    assert report.readable == tuple([clean] + [p for p in odd if p.name in CONVERTED])
    assert {f.path.name for f in report.converted} == CONVERTED
    assert {f.path.name for f in report.skipped} == SKIPPED | {"gone.jpg", "empty.jpg"}
    reasons = {f.path.name: f.detail for f in report.skipped}
    assert "truncated" in reasons["truncated.jpg"]
    assert reasons["text.jpg"].startswith("not an image")
    assert reasons["gone.jpg"].startswith("cannot be read")
    assert reasons["empty.jpg"] == "empty file"
    details = {f.path.name: f.detail for f in report.converted}
    assert details["cmyk.jpg"] == "JPEG in CMYK mode, decoded to RGB"
    assert details["gray.jpg"] == "JPEG in L mode, decoded to RGB"
    assert details["png_named.jpg"] == "PNG in RGB mode, decoded to RGB"
    assert details["rgba.png"] == "PNG in RGBA mode, decoded to RGB"
    summary = report.summary()
    assert summary.startswith("scanned 9 files: 5 readable (4 of them converted to RGB), 4 skipped")
    # Each file as split/class/name (here the last two folders of the test's own), never the machine's path.
    assert f"skipped {tmp_path.parent.name}/{tmp_path.name}/truncated.jpg: " in summary and str(tmp_path) not in summary


def test_broken_files_never_reach_the_pipeline(tmp_path):
    root = make_dataset_folder(tmp_path, per_class=5)
    cats = root / "cats_and_dogs_filtered" / "train" / "cats"
    for name, write in BROKEN.items():
        write(cats / name)
    train, validation, test, report, _ = data.load_splits((24, 24), 2, seed=0, root=root, progress=False)

    assert {f.path.name for f in report.skipped} == SKIPPED
    assert {f.path.name for f in report.converted} == CONVERTED
    seen = 0
    for dataset in (train, validation, test):
        for images, labels in _batches(dataset):  # an undecodable file would raise here
            assert images.dtype == np.float32 and images.shape[1:] == (24, 24, 3)
            assert images.min() >= 0 and images.max() <= 255
            assert labels.dtype == np.int32
            seen += len(images)
    assert seen == len(report.readable) == 4 * 5 + len(CONVERTED)
    assert sum(len(labels) for _, labels in _batches(train)) == 10 + len(CONVERTED)


def test_a_grayscale_image_becomes_three_equal_channels(tmp_path):
    gray = write_jpeg(tmp_path / "gray.jpg", "L")
    images, _ = _batches(data.make_dataset([gray], [0], (8, 8), 1, shuffle=False))[0]
    assert np.array_equal(images[..., 0], images[..., 1]) and np.array_equal(images[..., 0], images[..., 2])


# --- Pipelines on the real images -------------------------------------------------------------------------------


def test_the_splits_follow_the_tutorial_on_a_small_subset(real_root):
    train, validation, test, report, _ = data.load_splits((32, 32), 4, seed=0, limit_per_class=10, root=real_root,
                                                          progress=False)
    assert not report.skipped and not report.converted and len(report.readable) == 40
    train_labels = np.concatenate([labels for _, labels in _batches(train)])
    assert len(train_labels) == 20 and train_labels.sum() == 10
    # 20 validation images make 5 batches of 4: the first fifth (1 batch) is the test split.
    assert [len(images) for images, _ in _batches(test)] == [4]
    assert [len(images) for images, _ in _batches(validation)] == [4, 4, 4, 4]
    images, _ = _batches(train)[0]
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.float32 and 0 <= images.min() < images.max() <= 255


def test_the_subset_and_the_validation_order_do_not_change_between_calls(real_root):
    first = data.load_splits((16, 16), 2, seed=3, limit_per_class=5, root=real_root, progress=False)
    second = data.load_splits((16, 16), 2, seed=3, limit_per_class=5, root=real_root, progress=False)
    assert first.report.readable == second.report.readable
    assert [p.name for p in first.report.readable[:5]] == sorted(p.name for p in first.report.readable[:5])
    for name in ("validation", "test"):
        a, b = _batches(getattr(first, name)), _batches(getattr(second, name))
        assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b))


def test_without_shuffle_the_batches_follow_the_files(real_root):
    files = list(data.load_layout(real_root).files["validation"]["dogs"][:6])
    labels = [0, 1, 2, 3, 4, 5]  # labels as positions, to read the order back
    dataset = data.make_dataset(files, labels, (16, 16), 4, shuffle=False)
    assert [list(b) for _, b in _batches(dataset)] == [[0, 1, 2, 3], [4, 5]]
    assert [list(b) for _, b in _batches(dataset)] == [[0, 1, 2, 3], [4, 5]]  # second pass, from the cache


def test_shuffling_is_seeded(real_root):
    files = list(data.load_layout(real_root).files["train"]["cats"][:16])

    def order(seed):
        dataset = data.make_dataset(files, list(range(16)), (8, 8), 16, shuffle=True, seed=seed)
        return [list(labels) for _, labels in _batches(dataset)] + [list(labels) for _, labels in _batches(dataset)]

    first = order(1)
    assert first == order(1)
    assert first[0] != first[1]  # reshuffled on the second pass
    assert sorted(first[0]) == list(range(16))
    assert first != order(2)


def test_throughput_of_a_first_and_a_cached_pass(real_root):
    files = list(data.load_layout(real_root).files["train"]["dogs"][:12])
    throughput = data.pipeline_images_per_second(data.make_dataset(files, [1] * 12, (32, 32), 4, False))
    assert throughput.images == 12 and throughput.cached
    assert throughput.first_pass > 0 and throughput.second_pass > 0
    partial = data.pipeline_images_per_second(data.make_dataset(files, [1] * 12, (32, 32), 4, False), batches=2)
    assert partial.images == 8 and not partial.cached
    assert "not cached" in str(partial)


# --- TFDS offline -----------------------------------------------------------------------------------------------


def test_require_network_fails_fast_on_an_unreachable_address():
    started = time.monotonic()
    with pytest.raises(DatasetError, match="needs internet") as error:
        data.require_network("192.0.2.1", 443, timeout=1.0)  # TEST-NET-1: reserved, never routed
    assert time.monotonic() - started < 3
    assert data.DATA_DIR_ENV in str(error.value)


def test_require_network_does_not_wait_for_a_hanging_name_lookup(monkeypatch):
    def hanging_lookup(*args, **kwargs):
        time.sleep(5)
        raise socket.gaierror("too late")

    monkeypatch.setattr(data.tfds.socket, "getaddrinfo", hanging_lookup)
    started = time.monotonic()
    with pytest.raises(DatasetError, match="took more than 0.5 s"):
        data.require_network("example.invalid", 443, timeout=0.5)
    assert time.monotonic() - started < 2


def test_tfds_fails_fast_offline():
    try:
        data.require_network()
    except DatasetError:
        pass
    else:
        pytest.skip("storage.googleapis.com is reachable: this test is about offline machines")
    started = time.monotonic()
    with pytest.raises(DatasetError, match="TFDS cats_vs_dogs needs internet") as error:
        data.load_tfds_cats_vs_dogs("train[:40%]", (150, 150), 32)
    assert time.monotonic() - started < 10
    assert f"local cats_and_dogs_filtered via {data.DATA_DIR_ENV}" in str(error.value)

