"""Companion library of the book *`training` versus `trainable`*.

Chapters import these modules instead of repeating code: one job per module.

- :mod:`companion.variants`: which Keras this process runs, and how to run another one.
- :mod:`companion.probes`: what a call, ``fit`` or ``train_on_batch`` changed, and in which mode layers ran.
- :mod:`companion.layers`: layers the book builds (the Keras FAQ's ``AutoScaleDropout``).
- :mod:`companion.facts`: the executed checks behind every claim of the book.
- :mod:`companion.matrix`: the same checks under each Keras variant, each in its own process.
- :mod:`companion.profiles`: run profiles (``smoke``, ``full``).
- :mod:`companion.notebook`: what every chapter does first (parameters, determinism, stamp), reference outputs.
- :mod:`companion.tables`: fact tables (HTML in the book, fixed-width text for nbval).
- :mod:`companion.cli`: the `companion` command.
- :mod:`companion.plots`: figures.
"""

import os

# TensorFlow's C++ start-up chatter goes to stderr; silence it before anything imports TensorFlow
# so that executed notebooks only show what the chapters print.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
