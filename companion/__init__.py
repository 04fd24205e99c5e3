"""Companion library of the book *`training` versus `trainable`*.

Chapters import these modules instead of repeating code. Each subpackage is a layer; a module imports only its own
layer and those below it (``tests/test_layering.py`` checks it), bottom up:

1. :mod:`companion.core`: which Keras this process runs and how to run another, profiles, kept results, tables,
   figures, the terminal, paired statistics.
2. :mod:`companion.data`: the tutorial's images (found, downloaded, hash-checked, extracted, scanned, read).
3. :mod:`companion.flags`: measuring what the two flags did to any model: the one layer walker, the one remedy, the
   one snapshot, the one recorder of modes, the probes, the one-step report.
4. :mod:`companion.checks`: the checks as plain Keras (each an object, defined once), the ways of fine-tuning, the
   models they build, typed values.
5. :mod:`companion.tutorials`: the tutorials as typed recipes and their models, the packaged pretrained bases,
   setups, results.
6. :mod:`companion.versions`: the one matrix (every check in every Keras column) and its views: the advice, the
   figures, ``companion check`` and ``companion check --model``, upstream reports.
7. :mod:`companion.audit`: the claims of the sources and of the book as data, their verdicts, the prose rule.
8. :mod:`companion.training`: a recipe trained under a profile, the paired experiment, the benchmark.
9. :mod:`companion.pages`: what every chapter does first, a tutorial page, the book's home, chapters, the command.
"""

import os
from pathlib import Path

# TensorFlow's C++ start-up chatter goes to stderr; silence it before anything imports TensorFlow
# so that executed notebooks only show what the chapters print.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"

# The package folder and its data files (the wheel ships assets/ with the code).
PACKAGE = Path(__file__).resolve().parent
ASSETS = PACKAGE / "assets"
