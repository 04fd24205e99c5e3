"""Companion library of the book *`training` versus `trainable`*.

Chapters import these modules instead of repeating code: one job per module, in layers from the bottom up (a
module imports only its own layer and those below; ``tests/test_layering.py`` checks it).

1. Core: :mod:`companion.variants` (which Keras this process runs, and how to run another), :mod:`companion.profiles`,
   :mod:`companion.cache`, :mod:`companion.tables`, :mod:`companion.plots`, :mod:`companion.terminal`,
   :mod:`companion.statistics` (paired differences and their intervals).
2. :mod:`companion.decisive`: the decisive checks as plain Keras, and the one remedy; :mod:`companion.evidence`: the
   typed values checks return.
3. The tutorials' ingredients: :mod:`companion.recipes`, :mod:`companion.models` (the one layer walker, the models,
   unfreezing, the remedy applied), :mod:`companion.backbones`, :mod:`companion.data`.
4. What an action changed: :mod:`companion.modes`, :mod:`companion.probes`, :mod:`companion.report`,
   :mod:`companion.layers`.
5. The other checks: :mod:`companion.facts`, :mod:`companion.architectures` (with ``architectures_models``),
   :mod:`companion.compile_checks`.
6. The checks under each Keras variant and release, and on the reader's install or model: :mod:`companion.matrix`,
   :mod:`companion.releases`, :mod:`companion.architectures_grid`, :mod:`companion.check`,
   :mod:`companion.model_check`, :mod:`companion.upstream`.
7. :mod:`companion.audit`: the claims of the sources and of the book, with their verdicts.
8. :mod:`companion.notebook`: what every chapter does first (parameters, fetching, determinism, stamp), glue.
9. :mod:`companion.setups`, :mod:`companion.results`, :mod:`companion.runner`, :mod:`companion.experiment`,
   :mod:`companion.tutorial`, :mod:`companion.benchmark`: a recipe under a profile, trained; the paired experiment.
10. :mod:`companion.home`, :mod:`companion.chapters`, :mod:`companion.cli`: the book's home, its chapters, the command.
"""

import os

# TensorFlow's C++ start-up chatter goes to stderr; silence it before anything imports TensorFlow
# so that executed notebooks only show what the chapters print.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
