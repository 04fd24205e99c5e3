"""Reproducers of two Keras behaviours to report upstream, each a plain script (Keras and numpy only) that prints
one JSON line, run under a release of the matrix in a child process (:func:`run`).

- ``dropout_leak.py``: does a fixed ``training=False`` on a nested base reach the Dropout after it during ``fit``,
  in a functional model and in a subclassed one?
- ``trainable_ignored.py``: is ``base.trainable = True`` applied when the base's own flag is already True but its
  layers were frozen one by one?
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from companion import evidence, releases, variants

FOLDER = Path(__file__).resolve().parent
DROPOUT_LEAK = FOLDER / "dropout_leak.py"
TRAINABLE_IGNORED = FOLDER / "trainable_ignored.py"
SCRIPTS = (DROPOUT_LEAK, TRAINABLE_IGNORED)


def run(script: Path, release: releases.Release, timeout: float = 600) -> dict:
    """The JSON line ``script`` printed under ``release`` (its environment from :func:`companion.releases.environment`),
    or ``{"error": the first line of what stopped it}``."""
    try:
        done = subprocess.run([sys.executable, str(script)], env=releases.environment(release), capture_output=True,
                              text=True, timeout=timeout)
    except (variants.VariantNotInstalledError, subprocess.TimeoutExpired) as error:
        return {"error": evidence.first_line(error)}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": releases.last_error_line(done.stderr)}
    return json.loads(lines[-1])
