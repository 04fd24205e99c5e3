"""What ``compile``, the first ``fit`` and the optimizer do with a ``trainable`` change: two checks in plain Keras.

- :func:`trainable_change`: a change made between ``compile`` and the first ``fit`` is honoured (the train step is
  traced at the first ``fit``, reading ``trainable`` then); one made after a ``fit`` is ignored until the train
  function is made again, by ``compile`` or by ``model.make_train_function(force=True)``.
- :func:`optimizer_reuse`: unfreezing a base and compiling again with the optimizer instance that phase 1 built
  (for the head's variables only) fails ("Unknown variable" on Keras 3), while a new instance trains the base.

Each returns a typed value (a frozen dataclass of bools, or :class:`companion.checks.evidence.Failed` where Keras raised
instead of training), for the version matrix and the claims audit, and runs under whichever Keras the process has.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from companion.checks import evidence
from companion.checks.decisive import BATCH_SIZE, changed, compile_model, values


@dataclasses.dataclass(frozen=True)
class TrainableChange(evidence.Fields):
    """``trainable = False`` set on a layer at three moments: did the next ``fit`` leave it unchanged?"""

    before_first_fit: bool  # set between compile and the first fit: honoured
    after_fit: bool | evidence.Failed  # set after a fit, nothing else: honoured (or fit raised)
    after_make_train_function: bool  # set after a fit, then make_train_function(force=True): honoured


@dataclasses.dataclass(frozen=True)
class OptimizerReuse(evidence.Fields):
    """Phase 2 compiled with phase 1's optimizer instance, then with a new one: did fit train the unfrozen base?"""

    same_instance: bool | evidence.Failed  # Failed("... Unknown variable ..."): the optimizer refused the base
    new_instance: bool


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 4)).astype("float32"), rng.integers(0, 2, size=(8, 1)).astype("float32")


def trainable_change(keras) -> TrainableChange:
    x, y = _data()

    def honoured(moment: str) -> bool:
        """Freeze a Dense layer at ``moment``; True when the following fit leaves its weights unchanged."""
        dense = keras.layers.Dense(1, name="dense")
        model = keras.Sequential([keras.Input((4,)), dense])
        compile_model(keras, model)
        if moment != "before first fit":
            model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)  # traces the train step: dense trainable
        dense.trainable = False
        if moment == "after make_train_function":
            model.make_train_function(force=True)
        before = values(dense.weights)
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)
        return not changed(before, dense.weights)

    try:
        after_fit = honoured("after fit")
    except Exception as error:  # the JAX backend refuses to fit a changed model until it is compiled again
        after_fit = evidence.Failed(evidence.first_line(error))
    return TrainableChange(honoured("before first fit"), after_fit, honoured("after make_train_function"))


def _naming_a_variable(error: Exception) -> str:
    """The error's line that names the variable the optimizer refused (tf.function wraps it in "in user code:")."""
    lines = [line.strip().strip("'") for line in str(error).splitlines() if line.strip()]
    named = [line for line in lines if re.search(r"(unknown|recogni[sz]e) variable", line, re.IGNORECASE)]
    return f"{type(error).__name__}: " + (named or lines or ["no message"])[0]


def optimizer_reuse(keras) -> OptimizerReuse:
    x, y = _data()

    def base_trained(reuse: bool) -> bool:
        """Phase 1 with the base frozen, then the base unfrozen and compiled with phase 1's optimizer (``reuse``)
        or a new one; True when the second fit changed the base's kernel."""
        base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="base_dense")], name="base")
        model = keras.Sequential([base, keras.layers.Dense(1, name="head")])
        base.trainable = False
        first = keras.optimizers.SGD(0.1)
        model.compile(optimizer=first, loss="mse")
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)  # builds the optimizer for the head's variables
        base.trainable = True
        model.compile(optimizer=first if reuse else keras.optimizers.SGD(0.1), loss="mse")
        before = values(base.weights)
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)
        return changed(before, base.weights)

    try:
        same = base_trained(reuse=True)
    except Exception as error:  # Keras 3: ValueError "Unknown variable"; tf-keras: KeyError "cannot recognize"
        same = evidence.Failed(_naming_a_variable(error))
    return OptimizerReuse(same, base_trained(reuse=False))
