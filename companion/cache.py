"""Where long computations keep their results, and when a kept result may be reused.

Training runs checkpoint each phase, and the version matrix keeps its columns, so that a chapter executed twice
(nbval, then the book build; or a GPU run that was cut off) does not compute the same thing twice. A kept
result is reused only when its key matches exactly: the settings, the versions it ran with, and a fingerprint of
the companion's own source code, so that a change to the code or to an installed Keras discards it.

The folder is ``$COMPANION_CACHE_DIR``, else ``~/.cache/training-vs-trainable`` (``$XDG_CACHE_HOME`` honoured).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from pathlib import Path

CACHE_DIR_ENV = "COMPANION_CACHE_DIR"


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "training-vs-trainable"


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """A hash of the companion's source files."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class Folder:
    """A folder of kept results, valid only for ``key``: a folder written under another key is emptied."""

    def __init__(self, path: Path, key: dict):
        self.path = path
        key = {**key, "code": code_fingerprint()}
        stamp = path / "key.json"
        if path.exists() and (not stamp.exists() or json.loads(stamp.read_text()) != key):
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(key, indent=1, sort_keys=True))

    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, *names: str) -> bool:
        return all((self.path / name).exists() for name in names)
