"""Companion library of the book *`training` versus `trainable`*.

Chapters import these modules instead of repeating code: one job per module, from the bottom up.

- :mod:`companion.variants`: which Keras this process runs, and how to run another one.
- :mod:`companion.profiles`: run profiles (``smoke``, ``offline``, ``full``).
- :mod:`companion.recipes`: the three tutorials as typed values, their diffs and their Keras code.
- :mod:`companion.models`: the tutorials' models, unfreezing, and the remedy.
- :mod:`companion.backbones`: the packaged pretrained bases, Keras' ImageNet weights, random weights.
- :mod:`companion.data`: the tutorial's images, checked, scanned and turned into ``tf.data`` pipelines.
- :mod:`companion.cache`: kept results under a key, written atomically, recovered when unreadable.
- :mod:`companion.probes` and :mod:`companion.report`: what an action changed, and in which mode layers ran.
- :mod:`companion.evidence` and :mod:`companion.decisive`: the decisive checks, as plain Keras, and their typed
  values; :mod:`companion.facts`: the other checks behind the book's claims.
- :mod:`companion.matrix` and :mod:`companion.releases`: those checks under each Keras variant and release, each in
  its own process; :mod:`companion.check`: the same on the reader's own install.
- :mod:`companion.audit`: the claims of the sources and of the book, with their verdicts.
- :mod:`companion.setups`, :mod:`companion.results`, :mod:`companion.runner`: a recipe under a profile, trained.
- :mod:`companion.experiment`: the same fine-tuning under each Keras variant, from the same phase-1 weights.
- :mod:`companion.tutorial`: what a tutorial page computes and shows.
- :mod:`companion.plots`, :mod:`companion.tables`: figures and fact tables.
- :mod:`companion.notebook`: what every chapter does first (parameters, fetching, determinism, stamp), glue.
- :mod:`companion.home`, :mod:`companion.chapters`, :mod:`companion.terminal`, :mod:`companion.cli`: the book's
  public home, its chapters as things to run, and the `companion` command.
"""

import os

# TensorFlow's C++ start-up chatter goes to stderr; silence it before anything imports TensorFlow
# so that executed notebooks only show what the chapters print.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
