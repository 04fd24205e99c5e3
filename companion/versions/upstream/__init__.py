"""Reproducers of two Keras behaviours to report upstream, each a plain script (Keras and numpy only) that prints
one JSON line, run under a release of the matrix in a child process (:func:`run`).

- ``dropout_leak.py``: does a fixed ``training=False`` on a nested base reach the Dropout after it during ``fit``,
  in a functional model and in a subclassed one?
- ``trainable_ignored.py``: is ``base.trainable = True`` applied when the base's own flag is already True but its
  layers were frozen one by one?
"""

from __future__ import annotations

from pathlib import Path

from companion.checks import evidence
from companion.core import child, variants
from companion.versions import releases

FOLDER = Path(__file__).resolve().parent
DROPOUT_LEAK = FOLDER / "dropout_leak.py"
TRAINABLE_IGNORED = FOLDER / "trainable_ignored.py"
SCRIPTS = (DROPOUT_LEAK, TRAINABLE_IGNORED)


def run(script: Path, release: releases.Release, timeout: float = 600) -> dict:
    """The JSON line ``script`` printed under ``release`` (its environment from
    :func:`companion.versions.releases.environment`), or ``{"error": the line that names what stopped it}``."""
    try:
        return child.call("companion.core.child:printed_json", releases.environment(release), timeout=timeout,
                          script=str(script))
    except child.ChildFailed as failed:
        return {"error": failed.reason}
    except variants.VariantNotInstalledError as error:
        return {"error": evidence.first_line(error)}
