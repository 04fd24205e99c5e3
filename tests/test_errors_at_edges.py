"""Settings and paths that cannot serve: each is one line (exit 2 through the command) that names the setting or the
file and the fix, never a traceback, and leaves what the user gave as it was.

The cases are those of a bad-input sweep (issue 20): an unusable COMPANION_CACHE_DIR, a missing archive or a
blocked destination for ``data.extract_archive``, and a COMPANION_DATA_DIR that names a file, the dataset folder
itself, or a symbolic link loop.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from data_fixtures import make_dataset_folder, make_zip

from companion import data
from companion.core import cache
from companion.data import ArchiveError, DataFolderError, DatasetError
from companion.pages import cli

FOLDER = "cats_and_dogs_filtered"
DEFAULT_CACHE = cache.default_cache_dir()


def _companion(*argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "companion.pages.cli", *argv], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    """The command's only stderr line that is its error, after checking the exit code and that no traceback shows."""
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("companion: error:")]
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _loop(where: Path) -> Path:
    """Two symbolic links that point at each other; the first."""
    first, second = where / "loop-a", where / "loop-b"
    first.symlink_to(second)
    second.symlink_to(first)
    return first


# --- COMPANION_CACHE_DIR ----------------------------------------------------------------------------------------


def _cache_is_a_file(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "cache.txt"
    path.write_text("the user's notes\n")
    return path, f"{path} is a file, not a folder"


def _cache_under_a_file(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "notes.txt").write_text("the user's notes\n")
    path = tmp_path / "notes.txt" / "cache"
    return path, f"{path} cannot be created: {tmp_path / 'notes.txt'} is a file, not a folder"


def _cache_is_a_loop(tmp_path: Path) -> tuple[Path, str]:
    path = _loop(tmp_path)
    return path, f"{path} is a symbolic link loop"


@pytest.mark.parametrize("unusable", [_cache_is_a_file, _cache_under_a_file, _cache_is_a_loop])
def test_an_unusable_cache_dir_is_one_line_naming_the_variable(tmp_path, unusable):
    path, problem = unusable(tmp_path)
    before = {p.name: (p.is_symlink(), p.is_file() and _digest(p)) for p in tmp_path.iterdir()}
    line = _one_error_line(_companion("weights", "check", COMPANION_CACHE_DIR=str(path)))
    # Derived from cache.cache_dir's message: setting, path and problem, then the fix with the default folder.
    assert line == (f"companion: error: COMPANION_CACHE_DIR={str(path)!r}: {problem}: set COMPANION_CACHE_DIR to a "
                    f"folder you can write to (it is created if missing), or unset it to use {DEFAULT_CACHE}")
    assert {p.name: (p.is_symlink(), p.is_file() and _digest(p)) for p in tmp_path.iterdir()} == before


def test_a_missing_cache_dir_is_created(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "new" / "cache"))
    assert cache.cache_dir() == tmp_path / "new" / "cache" and (tmp_path / "new" / "cache").is_dir()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_a_read_only_cache_dir_is_refused(tmp_path, monkeypatch):
    (tmp_path / "locked").mkdir(mode=0o555)
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "locked"))
    with pytest.raises(cache.UnusableCacheDirError, match="locked is not writable: set COMPANION_CACHE_DIR"):
        cache.cache_dir()


def test_the_cache_error_is_one_of_the_commands_own():
    assert issubclass(cache.UnusableCacheDirError, cli.ERRORS)
    assert issubclass(DataFolderError, cli.ERRORS) and issubclass(ArchiveError, cli.ERRORS)


# --- data.extract_archive ---------------------------------------------------------------------------------------


def test_a_missing_archive_is_named(tmp_path):
    with pytest.raises(ArchiveError) as error:
        data.extract_archive(tmp_path / "cats_and_dogs_filtered.zip", tmp_path / "out")
    assert str(error.value) == (f"{tmp_path / 'cats_and_dogs_filtered.zip'} does not exist: check the path, or "
                                f"download the archive again; nothing was extracted")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_given_as_the_archive_is_named(tmp_path):
    (tmp_path / "archive.zip").mkdir()
    with pytest.raises(ArchiveError, match=r"archive.zip is a folder, not a zip archive: name the downloaded .zip"):
        data.extract_archive(tmp_path / "archive.zip", tmp_path / "out")


def test_a_destination_under_a_file_is_refused_and_nothing_is_written(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"a/ok.txt": b"ok"})
    blocking = tmp_path / "notes.txt"
    blocking.write_text("the user's notes\n")
    with pytest.raises(ArchiveError) as error:
        data.extract_archive(archive, blocking / "extracted" / "here")
    assert str(error.value) == (f"cannot extract {archive} into {blocking / 'extracted'}: {blocking} is a file, not a "
                                f"folder. Choose another destination, or move that file away; nothing was written")
    assert blocking.read_text() == "the user's notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "notes.txt"]


# --- COMPANION_DATA_DIR -----------------------------------------------------------------------------------------


def test_a_data_dir_that_is_a_file_says_so(tmp_path, monkeypatch):
    given = tmp_path / "cats_and_dogs_filtered.zip"
    given.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip archive: a file, as a downloaded archive is
    monkeypatch.setenv(data.DATA_DIR_ENV, str(given))
    with pytest.raises(DataFolderError) as error:
        data.load_layout(data.dataset_root())
    assert str(error.value) == (f"{given} is a file, not a folder: set COMPANION_DATA_DIR to the folder that contains "
                                f"{FOLDER}/ (from cats_and_dogs_filtered.zip, extracted)")
    assert given.read_bytes() == b"PK\x05\x06" + bytes(18)


def test_a_data_dir_that_is_a_file_is_one_line_through_the_command(tmp_path):
    given = tmp_path / "images.txt"
    given.write_text("not a folder\n")
    line = _one_error_line(_companion("benchmark", COMPANION_DATA_DIR=str(given)))
    assert line.startswith(f"companion: error: {given} is a file, not a folder: set COMPANION_DATA_DIR")
    assert given.read_text() == "not a folder\n"


def test_a_data_dir_that_is_the_dataset_folder_itself_says_use_its_parent(tmp_path, monkeypatch):
    root = make_dataset_folder(tmp_path / "data")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(root / FOLDER))
    with pytest.raises(DataFolderError) as error:
        data.load_splits((8, 8), 1, seed=0, progress=False)
    assert str(error.value) == (f"{root / FOLDER} is the {FOLDER} folder itself: use its parent, {root}, which must "
                                f"contain {FOLDER}/")
    # make_dataset_folder writes 3 images per class: the copy is untouched and usable from its parent.
    assert data.load_layout(root).counts() == {"train": {"cats": 3, "dogs": 3}, "validation": {"cats": 3, "dogs": 3}}


def test_a_renamed_dataset_folder_is_told_to_take_its_name_back(tmp_path):
    root = make_dataset_folder(tmp_path / "data")
    (root / FOLDER).rename(root / "cats-and-dogs")
    with pytest.raises(DataFolderError, match=rf"cats-and-dogs is the {FOLDER} folder itself \(renamed: name it "
                                              rf"{FOLDER} again\): use its parent"):
        data.load_layout(root / "cats-and-dogs")


def test_a_data_dir_that_is_a_symlink_loop_is_reported_as_a_loop(tmp_path, monkeypatch):
    loop = _loop(tmp_path)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(loop))
    with pytest.raises(DataFolderError) as error:
        data.load_layout(data.dataset_root())
    message = str(error.value)
    assert message == (f"{loop} is a symbolic link loop (it leads back to itself), so {loop / FOLDER} cannot be "
                       f"read: make it a folder, or a link to one, that contains {FOLDER}/")
    assert "does not exist" not in message
    assert os.readlink(loop) == str(tmp_path / "loop-b")  # left as it was


def test_a_loop_inside_the_data_dir_names_the_looping_link(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / FOLDER).symlink_to(root / FOLDER)  # a link to itself where the dataset folder should be
    with pytest.raises(DataFolderError, match=rf"^{root / FOLDER} is a symbolic link loop"):
        data.load_layout(root)


def test_a_data_dir_without_the_dataset_still_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError) as error:
        data.load_layout(tmp_path)
    assert type(error.value) is DatasetError
    assert str(error.value).startswith(f"{tmp_path / FOLDER} does not exist: set COMPANION_DATA_DIR to a folder")
