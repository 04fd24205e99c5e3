"""A check: one question about what Keras does with the two flags, the short plain-Keras scenario that answers it,
what it reads from the scenario's result, and the answer Keras' documentation and the tutorials lead a reader to
expect. Checks are objects, defined once (:mod:`companion.checks.registry` lists them) and referred to by the object
everywhere: the matrix's rows, the claims' evidence, the figures, ``companion check``, a page's glue.

This module also runs checks under the process's Keras: :func:`measure` gives each check's typed value
(:mod:`companion.checks.evidence`); a scenario runs once per process, however many checks read it, seeded and with
its warnings silenced (Keras 3 warns that ``trainable`` changed after ``compile``: that is what some checks ask).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import platform
import random
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from companion.checks import evidence
from companion.core.columns import EVERY_COLUMN, Scope
from companion.core.tables import show
from companion.core.variants import load_keras

UNSTATED = evidence.NotApplicable("the documentation promises nothing here")


def _identity(result):
    return result


@dataclasses.dataclass(frozen=True, eq=False)
class Check:
    """One question, its scenario and what it reads; compared and hashed by identity, so that a check is a key."""

    id: str  # stable and unique: its value's key in JSON and in kept columns, and its row's anchor on a page
    question: str  # as a table's row says it
    scenario: Callable  # keras -> result: plain Keras, shown on pages by its source
    read: Callable = _identity  # the scenario's result -> this check's typed value
    # What the documentation and the tutorials lead a reader to expect: a typed value, or a function of the value
    # (True: as documented; False: not; None: nothing to judge), or UNSTATED where nothing is promised.
    documented: Any = UNSTATED
    scope: Scope = EVERY_COLUMN  # the columns it runs in; elsewhere its value is evidence.NotRun
    short: str = ""  # the question in a few words, for a figure's rows
    describe: Callable | None = None  # a measured value -> a table cell's few words (default: the value's text)

    def cell(self, value) -> str:
        """``value`` as a table cell shows it."""
        return show(value) if self.describe is None or evidence.unmeasured(value) else self.describe(value)

    def as_documented(self, value) -> bool | None:
        """Whether ``value`` is what the documentation leads a reader to expect; None where the check did not
        measure (not run, not applicable, not installed, raised) or nothing is promised."""
        if evidence.unmeasured(value) or self.documented is UNSTATED:
            return None
        return self.documented(value) if callable(self.documented) else value == self.documented

    @property
    def source(self) -> str:
        """The scenario's code, as a page shows it (a fine-tuning check's: the function it calls for its kind and
        way)."""
        return inspect.getsource(getattr(self.scenario, "func", self.scenario))

    def __repr__(self) -> str:
        return f"Check({self.id!r})"


# --- Running checks under this process's Keras -----------------------------------------------------------------------

_results: dict[Callable, Any] = {}  # keyed by the scenario itself, which keeps it alive (an id could be reused)


def seed(keras, value: int = 0) -> None:
    """Seed Keras' random generators. ``keras.utils.set_random_seed`` also seeds TensorFlow whenever it is installed,
    importing it; under another backend, seed Python and numpy, from which Keras draws its own seeds, and PyTorch's
    own generator, which Keras' unseeded Dropout draws its masks from on PyTorch (the masks, and with them a check's
    result, differed from run to run without it)."""
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(value)
        return
    random.seed(value)
    np.random.seed(value)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(value)


def result(scenario: Callable):
    """A scenario's result under this process's Keras (seeded; computed once per process), or
    :class:`evidence.Failed` with the first line of what it raised."""
    if scenario not in _results:
        keras = load_keras()
        seed(keras)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _results[scenario] = scenario(keras)
        except Exception as error:  # a Keras that lacks an API the scenario uses: say so in its cell
            _results[scenario] = evidence.Failed(evidence.first_line(error))
    return _results[scenario]


def value(check: Check):
    """One check's typed value under this process's Keras."""
    found = result(check.scenario)
    if isinstance(found, (evidence.Failed, evidence.NotApplicable)):
        return found
    try:
        return check.read(found)
    except Exception as error:
        return evidence.Failed(evidence.first_line(error))


def measure(checks, on_each: Callable[[Check, int], object] | None = None) -> dict[Check, Any]:
    """Each check's typed value under this process's Keras; ``on_each(check, done)`` after each one."""
    found = {}
    for check in checks:
        found[check] = value(check)
        if on_each is not None:
            on_each(check, len(found))
    return found


def versions() -> dict[str, str]:
    """The Keras, backend and Python this process runs (the backend's version without importing another one)."""
    keras = load_keras()
    backend = keras.backend.backend()
    return {"keras": keras.__version__, "backend": backend,
            "backend_version": importlib.import_module(backend).__version__, "python": platform.python_version()}


def fingerprint() -> str:
    """A hash of the code the checks run (this package and the measuring of :mod:`companion.flags`): a kept column
    is valid for this hash only."""
    digest = hashlib.sha256()
    package = Path(__file__).parent
    for path in sorted([*package.glob("*.py"), *(package.parent / "flags").glob("*.py"),
                        package.parent / "core" / "columns.py"]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
