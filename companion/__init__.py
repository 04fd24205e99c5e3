"""Companion library of the book *`training` versus `trainable`*.

Chapters import these modules instead of repeating code. Each subpackage is a layer; a module imports only its own
layer and those below it (``tests/test_layering.py`` checks it), bottom up:

1. :mod:`companion.core`: which Keras this process runs and how to run another, profiles, kept results, tables,
   figures, the terminal, paired statistics.
2. :mod:`companion.data`: the tutorial's images (found, downloaded, hash-checked, extracted, scanned, read).
3. :mod:`companion.checks`: the decisive checks as plain Keras, the one remedy, compile checks, typed values.
4. :mod:`companion.tutorials`: the tutorials as typed recipes, the packaged pretrained bases, setups, results.
5. :mod:`companion.flags`: the one layer walker, the remedy applied, the modes layers ran in, probes, the report.
6. :mod:`companion.suite`: the fact suite and the architecture checks on real models.
7. :mod:`companion.versions`: the checks under each Keras variant and release, ``companion check``, upstream reports.
8. :mod:`companion.audit`: the claims of the sources and of the book as data, their verdicts, the prose rule.
9. :mod:`companion.training`: a recipe trained under a profile, the paired experiment, the benchmark.
10. :mod:`companion.pages`: what every chapter does first, a tutorial page, the book's home, chapters, the command.
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
