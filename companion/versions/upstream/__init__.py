"""Reproducers of two Keras behaviours to report upstream, each a plain script (Keras and numpy only) that prints
one JSON line, run under a column of the matrix (:func:`outputs`).

- ``dropout_leak.py``: does a fixed ``training=False`` on a nested base reach the Dropout after it during ``fit``,
  in a functional model and in a subclassed one?
- ``trainable_ignored.py``: is ``base.trainable = True`` applied when the base's own flag is already True but its
  layers were frozen one by one?

Under each release the scripts run one after the other in one child process (each with globals of its own, as
``python script.py`` gives it), which saves a process start, TensorFlow's import included, per script and release;
a test checks that a script run alone prints the same. What they printed is kept in the cache folder under the
release and the scripts' text, so that the page and the tests run them once.
"""

from __future__ import annotations

from pathlib import Path

from companion.checks import evidence
from companion.core import cache, child, variants
from companion.core.columns import Column
from companion.versions import install

FOLDER = Path(__file__).resolve().parent
DROPOUT_LEAK = FOLDER / "dropout_leak.py"
TRAINABLE_IGNORED = FOLDER / "trainable_ignored.py"
SCRIPTS = (DROPOUT_LEAK, TRAINABLE_IGNORED)


def _printed(column: Column, timeout: float) -> list[dict]:
    """What each script printed under ``column``'s Keras, or, for every script, ``{"error": the line that names what
    stopped them}``."""
    try:
        return child.call("companion.core.child:printed_json", install.environment(column), timeout=timeout,
                          scripts=[str(script) for script in SCRIPTS])
    except child.ChildFailed as failed:
        return [{"error": failed.reason}] * len(SCRIPTS)
    except variants.VariantNotInstalledError as error:
        return [{"error": evidence.first_line(error)}] * len(SCRIPTS)


def outputs(column: Column, timeout: float = 600) -> dict[Path, dict]:
    """Script -> the JSON line it printed under ``column`` (its environment from
    :func:`companion.versions.install.environment`), or ``{"error": ...}``: kept from before when the column, its
    backend, Python and the scripts are the same, else computed in one child process and kept (unless it failed:
    the next call tries again)."""
    key = {**install.environment_key(column),
           "scripts": {script.name: cache.sha256_of(script) for script in SCRIPTS}}
    with cache.Folder.locked(cache.cache_dir() / "upstream" / column.key, key) as kept:
        printed = kept.read_json("printed.json")
        if printed is None:
            printed = _printed(column, timeout)
            if not any("error" in value for value in printed):
                kept.write_json("printed.json", printed)
    return dict(zip(SCRIPTS, printed))
