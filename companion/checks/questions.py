"""The decisive checks as questions: each reads one answer from a scenario of :mod:`companion.checks.decisive` (the
plain-Keras functions the book shows), with the answer Keras' documentation leads a reader to expect. This module runs
them under the process's Keras: :func:`measure` gives every check's typed value, :func:`measured` what a release's
child process returns. ``python -m companion.checks.questions`` prints the same as one JSON line.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import json
import operator
import platform
import random
import warnings
from pathlib import Path

import numpy as np

from companion.checks import evidence
from companion.checks.decisive import SCENARIOS
from companion.core.variants import load_keras


@dataclasses.dataclass(frozen=True)
class Check:
    id: str
    question: str
    scenario: str  # a key of SCENARIOS
    read: str  # the attribute of the scenario's result that answers the question ("" for the result itself)
    short: str  # the question in a few words, for a figure's rows
    kind: type = bool  # the type of its value (or evidence.Failed, when the scenario raised)
    # The answer Keras' documentation leads a reader to expect, one per yes/no of the value (the fields of a typed
    # value, in order): the release matrix's figure colours each answer "as documented" or not by it.
    documented: tuple[bool, ...] = ()

    def value(self, result):
        return operator.attrgetter(self.read)(result) if self.read else result


CHECKS = (
    Check("nested_override", "base(x, training=False), base unfrozen, fit: base BN statistics updated",
          "as_written", "updates.statistics", "training=False: BN statistics moved",
          documented=(False,)),
    Check("dropout_leak_fit", "same model: Dropout after the base ran in training mode in fit",
          "as_written", "dropout_after_base", "training=False: Dropout after the base dropped",
          documented=(True,)),
    Check("remedy", "remedy (every BN trainable=False), fit: BN statistics / gamma,beta / kernels updated",
          "remedy_as_written", "updates", "remedy + training=False: updated", evidence.Updates,
          documented=(False, False, True)),
    Check("remedy_dropout", "same model with the remedy: Dropout after the base ran in training mode in fit",
          "remedy_as_written", "dropout_after_base", "remedy + training=False: Dropout dropped",
          documented=(True,)),
    Check("remedy_alone", "remedy with base(x) (no training argument), fit: BN statistics / gamma,beta / kernels "
          "updated", "remedy_alone", "updates", "remedy + base(x): updated", evidence.Updates,
          documented=(False, False, True)),
    Check("remedy_alone_dropout", "remedy with base(x): Dropout after the base ran in training mode in fit",
          "remedy_alone", "dropout_after_base", "remedy + base(x): Dropout dropped",
          documented=(True,)),
    Check("recompile", "trainable=False set after compile, no recompile / after a recompile: fit updates the layer",
          "recompile", "", "frozen after compile: fit updated it", evidence.Recompile,
          documented=(True, False)),
    Check("none_override", "base(x, training=None), base unfrozen, fit: base BN statistics updated",
          "training_none", "updates.statistics", "training=None: BN statistics moved",
          documented=(True,)),
    Check("none_dropout", "same model: Dropout after the base ran in training mode in fit",
          "training_none", "dropout_after_base", "training=None: Dropout after the base dropped",
          documented=(True,)),
    Check("remedy_inside_dropout", "remedy + base(x, training=False), base with its own Dropout: that Dropout ran in "
          "training mode in fit", "remedy_own_dropout_as_written", "dropout_inside_base",
          "remedy + training=False: Dropout inside the base dropped",
          documented=(False,)),
    Check("remedy_alone_inside_dropout", "remedy + base(x), base with its own Dropout: that Dropout ran in training "
          "mode in fit", "remedy_own_dropout_alone", "dropout_inside_base",
          "remedy + base(x): Dropout inside the base dropped",
          documented=(True,)),
    Check("trainable_setter", "base.trainable = True on a trainable base whose layers were frozen one by one: "
          "unfreezes them", "trainable_again", "", "base.trainable = True again: unfroze its layers",
          documented=(True,)),
    Check("false_then_true", "same base, base.trainable = False then True: unfreezes them", "false_then_true", "",
          "base.trainable = False, then True: unfroze them",
          documented=(True,)),
    Check("staged_unfreezing", "unfreeze, refreeze the first layers, fit; base.trainable = True, compile, fit: the "
          "second fit trained the refrozen layers", "staged_unfreezing", "", "staged unfreezing: trained them",
          documented=(True,)),
    Check("augmented_call", "Input -> RandomFlip -> BatchNormalization called as model(x), no training argument: "
          "BN statistics updated", "augmented_direct_call", "", "model(x) after RandomFlip: BN statistics moved",
          documented=(False,)),
)
BY_ID = {check.id: check for check in CHECKS}
# The remedy's outcome where it works: BN statistics and gamma/beta kept, kernels trained.
REMEDY_WORKS = evidence.Updates(statistics=False, affine=False, kernels=True)

# What Keras' documentation leads a reader to expect, each as the decisive checks' values that say it held: the
# version and release matrices draw one row per conclusion, with the columns where it held and where it did not.
CONCLUSIONS = (
    ("base(x, training=False) kept the base's BN statistics fixed during fit", {"nested_override": False}),
    ("the Dropout after that base ran in training mode during fit", {"dropout_leak_fit": True}),
    ("base(x, training=None) followed fit: the base's statistics moved, the Dropout after it dropped",
     {"none_override": True, "none_dropout": True}),
    ("the remedy kept BN statistics and gamma/beta fixed and trained the kernels", {"remedy": REMEDY_WORKS}),
    ("training=False kept beside the remedy: the head's Dropout still dropped in fit", {"remedy_dropout": True}),
    ("the remedy with base(x): statistics and gamma/beta fixed, kernels trained, the head's Dropout dropping",
     {"remedy_alone": REMEDY_WORKS, "remedy_alone_dropout": True}),
    ("a layer set trainable=False after a fit was still trained until the model was compiled again",
     {"recompile": evidence.Recompile(without_recompile=True, after_recompile=False)}),
)


def seed(keras, value: int = 0) -> None:
    """Seed Keras' random generators. ``keras.utils.set_random_seed`` also seeds TensorFlow whenever it is installed,
    importing it; under another backend, seed Python and numpy, from which Keras draws its own seeds."""
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(value)
    else:
        random.seed(value)
        np.random.seed(value)


@functools.lru_cache(maxsize=None)
def run_scenario(name: str):
    """One scenario's result under this process's Keras (seeded; computed once), or :class:`evidence.Failed`."""
    keras = load_keras()
    seed(keras)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. Keras 3 warns that trainable changed after compile: we know
            return SCENARIOS[name](keras)
    except Exception as error:  # a release that lacks an API the check uses: say so in its column
        return evidence.Failed(evidence.first_line(error))


def value(check_id: str):
    """One check's typed value under this process's Keras."""
    check = BY_ID[check_id]
    result = run_scenario(check.scenario)
    return result if isinstance(result, evidence.Failed) else check.value(result)


def measure() -> dict:
    """Every check under this process's Keras: check id -> typed value."""
    return {check.id: value(check.id) for check in CHECKS}


def versions() -> dict[str, str]:
    """The Keras, backend and Python this process runs (the backend's version without importing another one)."""
    keras = load_keras()
    backend = keras.backend.backend()
    return {"keras": keras.__version__, "backend": backend,
            "backend_version": importlib.import_module(backend).__version__, "python": platform.python_version()}


def fingerprint() -> str:
    """A hash of the checks' code (this module and the typed values): a kept column is valid for this hash only."""
    digest = hashlib.sha256()
    for module in ("decisive.py", "questions.py", "evidence.py"):
        digest.update((Path(__file__).parent / module).read_bytes())
    return digest.hexdigest()[:16]


def measured() -> dict:
    """This process's versions and every check's value (JSON), or the error that stopped them: what a release's
    child process returns (:mod:`companion.core.child`)."""
    try:
        return {"versions": versions(), "values": evidence.values_to_json(measure())}
    except Exception as error:  # Keras does not import, or cannot run at all
        return {"error": evidence.first_line(error)}


if __name__ == "__main__":
    print(json.dumps(measured()))
