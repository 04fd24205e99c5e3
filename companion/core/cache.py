"""Where long computations keep their results, and when a kept result may be reused.

Training runs checkpoint each phase, the version matrix keeps its columns and the packaged weights keep their
neutral export, so that a chapter executed twice (nbval, then the book build; or a run that was cut off) does not
compute the same thing twice. A kept result is reused only when its key matches exactly (the settings, the
versions, the data and weights it was computed from, and a fingerprint of the companion's own source code), so
that a change to any of them discards it.

Two processes that share the folder (two chapters run at once, two test workers) compute a kept result once: the
code that reads it or else computes and keeps it holds the folder's lock (:meth:`Folder.locked`), so the second
waits for the first and then reads what it kept.

Every write is atomic (a temporary file in the same folder, then a rename), so an interrupted run never leaves a
half-written file under a final name. A kept file that cannot be read all the same (damaged on disk, edited by
hand) is reported by name, moved aside as ``NAME.unreadable``, and treated as absent: the caller recomputes it.

The folder is ``$COMPANION_CACHE_DIR``, else ``~/.cache/training-vs-trainable`` (``$XDG_CACHE_HOME`` honoured).
A folder that cannot serve (a file, a symbolic link loop, a path that cannot be created or written) raises
:class:`UnusableCacheDirError`, naming the setting and what to do, before anything is computed.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import io
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

from companion import PACKAGE

CACHE_DIR_ENV = "COMPANION_CACHE_DIR"


class CacheError(ValueError):
    """A problem with the folder of kept results; the message says what to do."""


class UnusableCacheDirError(CacheError):
    """The cache folder is a file, a symbolic link loop, or cannot be created or written."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "training-vs-trainable"


def cache_dir() -> Path:
    """The folder of kept results, created if missing; :class:`UnusableCacheDirError` if it cannot serve."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        path = Path(os.path.abspath(Path(configured).expanduser()))
        setting = f"{CACHE_DIR_ENV}={configured!r}"
        fix = (f"set {CACHE_DIR_ENV} to a folder you can write to (it is created if missing), or unset it to use "
               f"{default_cache_dir()}")
    else:
        path = default_cache_dir()
        setting, fix = "the default cache folder", f"set {CACHE_DIR_ENV} to a folder you can write to"
    problem = _why_unusable(path)
    if problem:
        raise UnusableCacheDirError(f"{setting}: {path} {problem}: {fix}")
    return path.resolve() if configured else path


def is_symlink_loop(path: Path) -> bool:
    """Whether ``path``, or a folder on the way to it, is a symbolic link that leads back to itself.

    ``Path.exists()`` answers False for such a path, so a message would call it missing."""
    try:
        os.stat(path)
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def _why_unusable(folder: Path) -> str | None:
    """Why ``folder`` cannot hold kept results, in words (creating it if missing); ``None`` when it can."""
    if is_symlink_loop(folder):
        return "is a symbolic link loop"
    if folder.exists() and not folder.is_dir():
        return "is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocking = next((parent for parent in folder.parents if parent.exists() and not parent.is_dir()), None)
        return (f"cannot be created: {blocking} is a file, not a folder" if blocking is not None
                else f"cannot be created ({error.strerror})")
    if not os.access(folder, os.W_OK | os.X_OK):
        return "is not writable"
    return None


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """A hash of the companion's source files."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a kept result is not
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def exclusive(path: Path):
    """Hold the lock of the kept folder ``path`` while the block runs (a lock file beside the folder; where the
    system has no ``fcntl``, as on Windows, no lock is taken). Threads and processes that lock the same path run
    their blocks one at a time."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class UnreadableCacheWarning(UserWarning):
    pass


class Folder:
    """A folder of kept results, valid only for ``key``: a folder written under another key is emptied.

    ``recovered`` lists, in words, each kept file that could not be read and was moved aside.
    """

    def __init__(self, path: Path, key: dict, code: str | None = None):
        """``code``: a fingerprint of the code the kept results depend on (default: all of the companion's)."""
        self.path = Path(path)
        self.recovered: list[str] = []
        # Through JSON and back, so that it compares equal to the stored copy (tuples become lists).
        self.key = json.loads(json.dumps({**key, "code": code or code_fingerprint()}))
        if self.path.exists() and self._stored_key() != self.key:
            if not (self.path / "key.json").exists() and any(self.path.iterdir()):
                # Not a folder of kept results (those always hold key.json): someone's files, left as they are.
                raise UnusableCacheDirError(
                    f"{self.path} holds files the companion did not write; give it a new or empty folder to keep "
                    f"results in")
            shutil.rmtree(self.path)
        if not self.path.exists():
            write_atomically(self.path / "key.json", json.dumps(self.key, indent=1, sort_keys=True).encode())

    @classmethod
    @contextlib.contextmanager
    def locked(cls, path: Path, key: dict, code: str | None = None):
        """The folder (emptied where its key changed, as the constructor does) with its lock held
        (:func:`exclusive`): for the code that reads a kept result or else computes and keeps it, so that two
        processes compute it once."""
        with exclusive(path):
            yield cls(path, key, code)

    @classmethod
    def existing(cls, path: Path) -> Folder:
        """A kept folder as it is, to read from: another process kept it under its own key (nothing is emptied)."""
        folder = cls.__new__(cls)
        folder.path, folder.recovered = Path(path), []
        folder.key = folder._stored_key()
        if folder.key is None:
            raise UnusableCacheDirError(f"{path} is not a folder of kept results (it has no readable key.json)")
        return folder

    def _stored_key(self):
        try:
            return json.loads((self.path / "key.json").read_text())
        except (OSError, ValueError):  # missing or damaged: the folder cannot be trusted
            return None

    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, *names: str) -> bool:
        return all((self.path / name).exists() for name in names)

    def sha256(self, name: str) -> str:
        return sha256_of(self.path / name)

    def _set_aside(self, name: str, problem: str) -> None:
        target = self.path / f"{name}.unreadable"
        os.replace(self.path / name, target)
        message = (f"kept result {self.path / name} could not be read ({problem}); moved aside to {target.name} "
                   f"and computed again")
        self.recovered.append(message)
        warnings.warn(message, UnreadableCacheWarning, stacklevel=3)

    def write_json(self, name: str, value) -> None:
        write_atomically(self.path / name, json.dumps(value).encode())

    def read_json(self, name: str):
        """The kept value, or None when it is absent or unreadable (then moved aside and reported)."""
        if not self.has(name):
            return None
        try:
            return json.loads((self.path / name).read_text())
        except (OSError, ValueError) as error:
            self._set_aside(name, f"{type(error).__name__}: {str(error)[:120]}")
            return None

    def write_arrays(self, name: str, arrays: list[np.ndarray]) -> None:
        """Arrays in order, as an ``.npz`` (plain arrays only: read back without pickle)."""
        buffer = io.BytesIO()
        np.savez(buffer, *arrays)
        write_atomically(self.path / name, buffer.getvalue())

    def read_arrays(self, name: str, expected_sha256: str | None = None) -> list[np.ndarray] | None:
        """The kept arrays, or None when absent or unreadable; ``expected_sha256`` is checked before reading."""
        if not self.has(name):
            return None
        path = self.path / name
        if expected_sha256 is not None:
            actual = sha256_of(path)
            if actual != expected_sha256:
                self._set_aside(name, f"SHA-256 {actual[:16]}..., recorded {expected_sha256[:16]}...")
                return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                return [stored[f"arr_{i}"] for i in range(len(stored.files))]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:  # a damaged archive
            self._set_aside(name, f"{type(error).__name__}: {str(error)[:120]}")
            return None
