"""Checks of what a download holds (SHA-256 of the archive, of every image) and a zip extraction that is safe."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from companion import ASSETS
from companion.core.cache import is_symlink_loop, sha256_of
from companion.data.spec import DATASET_FOLDER, ArchiveError, DatasetError

# SHA-256 of every image of a real copy of the dataset (`sha256sum -c` can read it). That copy lacks one image of
# the archive (train/cats/cat.459.jpg), so a download may hold images the manifest cannot vouch for: they are named.
CONTENT_MANIFEST = ASSETS / "cats_and_dogs_filtered.sha256"


def verify_content(root: Path, manifest: Path = CONTENT_MANIFEST) -> list[str]:
    """Check every file ``manifest`` lists (``sha256  relative/path`` lines) under ``root``.

    Raises :class:`DatasetError` naming what is missing or different; returns the files under
    ``root/cats_and_dogs_filtered`` that the manifest does not list (relative paths), which it cannot vouch for.
    """
    expected = dict(reversed(line.split(maxsplit=1)) for line in manifest.read_text().splitlines() if line.strip())
    problems = [f"{name} is missing" if not (root / name).is_file() else f"{name} differs"
                for name, digest in expected.items()
                if not (root / name).is_file() or sha256_of(root / name) != digest]
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
    actual = sha256_of(Path(path))
    if actual != sha256.lower():
        raise DatasetError(
            f"{path} has SHA-256 {actual}, expected {sha256.lower()}: it is incomplete, corrupt or not the "
            f"archive expected. Delete it and run again to download a fresh copy; if a fresh copy fails too, the "
            f"file changed upstream."
        )


def extract_archive(archive: str | Path, destination: str | Path,
                    verify: Callable[[Path], object] | None = None) -> Path:
    """Extract a zip archive into ``destination`` (which must not exist yet); ``destination``.

    Every member is checked before anything is written: absolute paths, ``..`` components and symbolic links are
    refused, since they can write outside ``destination``. Members are written into a hidden staging folder next
    to ``destination``, renamed into place only once complete (and once ``verify(staging)``, if given, returned
    without raising): an interrupted or rejected extraction leaves no half-filled ``destination`` that a later run
    would take for the dataset. A missing or unreadable archive, or a destination whose folder cannot be made,
    raises :class:`~companion.data.spec.ArchiveError` before anything is written.
    """
    archive, destination = Path(archive), Path(destination)
    if destination.exists() or destination.is_symlink():
        raise DatasetError(f"{destination} already exists: delete it to extract {archive} again")
    _check_readable(archive)
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            for member in members:
                _check_member(member, archive)
            _make_folder(destination.parent, archive)
            staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".partial",
                                            dir=destination.parent))
            try:
                _write_members(zipped, members, staging)
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


def _check_readable(archive: Path) -> None:
    again = "delete it and download it again"
    if is_symlink_loop(archive):
        problem, fix = "is a symbolic link loop (it leads back to itself)", f"name the archive itself, or {again}"
    elif not archive.exists():
        problem = "does not exist" + (" (a symbolic link to a missing file)" if archive.is_symlink() else "")
        fix = "check the path, or download the archive again"
    elif archive.is_dir():
        problem, fix = "is a folder, not a zip archive", "name the downloaded .zip file"
    else:
        try:
            with open(archive, "rb"):
                return
        except OSError as error:
            problem, fix = f"cannot be read ({error.strerror})", "make it readable, or download it again"
    raise ArchiveError(f"{archive} {problem}: {fix}; nothing was extracted")


def _make_folder(folder: Path, archive: Path) -> None:
    """Create ``folder`` (where the extraction goes), or say why it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocking = next((path for path in (folder, *folder.parents) if path.exists() and not path.is_dir()), None)
        if blocking is not None:
            why = f"{blocking} is a file, not a folder. Choose another destination, or move that file away"
        elif is_symlink_loop(folder):
            why = "it is, or lies in, a symbolic link loop. Choose another destination"
        else:
            why = f"{error.strerror}. Choose another destination"
        raise ArchiveError(f"cannot extract {archive} into {folder}: {why}; nothing was written") from error
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ArchiveError(f"cannot extract {archive} into {folder}: it is not writable. Choose another destination; "
                           f"nothing was written")


def _write_members(zipped: zipfile.ZipFile, members: list[zipfile.ZipInfo], folder: Path) -> None:
    for member in members:
        target = folder.joinpath(*PurePosixPath(member.filename.replace("\\", "/")).parts)
        if member.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipped.open(member) as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink)


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
