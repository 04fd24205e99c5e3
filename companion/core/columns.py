"""The columns of the book's one matrix: a Keras package at a version on a backend, and scopes (the columns a check
runs in, or a claim speaks of).

The columns are the latest patch of every Keras 3 minor release from 3.0 to the pinned one on TensorFlow,
``keras-nightly`` and ``tf-keras`` on TensorFlow, and the pinned release and the nightly on JAX and on PyTorch (both
for CPU). Adding a column is one line in :func:`columns`. How a column is installed and computed is
:mod:`companion.versions.install` and :mod:`companion.versions.matrix`.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import re
from typing import Callable, Iterable

from companion.core import variants

PINNED = importlib.metadata.version("keras")
# The latest patch of every Keras 3 minor release up to the pinned one, from `pip index versions keras`
# (2026-11-25); `latest_patches` makes this list from that command's output.
KERAS_RELEASES = ("3.0.5", "3.1.1", "3.2.1", "3.3.3", "3.4.1", "3.5.0", "3.6.0", "3.7.0", "3.8.0", "3.9.2", "3.10.0",
                  "3.11.3", "3.12.4", "3.13.2", "3.14.1", "3.15.1")
# How a column names its backend (TensorFlow, the default, goes unnamed).
BACKEND_NAMES = {"tensorflow": "", "jax": "JAX", "torch": "PyTorch"}


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def latest_patches(available: Iterable[str], up_to: str = PINNED) -> list[str]:
    """The latest patch of each Keras 3 minor release among ``available`` (``pip index versions keras``), oldest
    first, up to ``up_to``; pre-releases are left out."""
    latest: dict[tuple[int, int], str] = {}
    for version in available:
        if not re.fullmatch(r"3\.\d+\.\d+", version) or _version_key(version) > _version_key(up_to):
            continue
        minor = _version_key(version)[:2]
        if minor not in latest or _version_key(version) > _version_key(latest[minor]):
            latest[minor] = version
    return [latest[minor] for minor in sorted(latest)]


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of the matrix: a Keras package at a version, on a backend."""

    package: str  # "keras", "keras-nightly" or "tf-keras"
    version: str
    backend: str = "tensorflow"

    @property
    def pinned(self) -> bool:
        """The project's own Keras (installed in the environment, not in a folder of its own)."""
        return self.package == "keras" and self.version == PINNED

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def legacy(self) -> bool:
        """tf-keras, the Keras 2 line."""
        return self.package == "tf-keras"

    @property
    def numbered(self) -> bool:
        """A numbered Keras 3 release on TensorFlow (the columns a table gives as a span of versions)."""
        return self.package == "keras" and self.backend == "tensorflow"

    @property
    def backend_name(self) -> str:
        """"JAX" or "PyTorch"; "" on TensorFlow."""
        return BACKEND_NAMES[self.backend]

    @property
    def label(self) -> str:
        return f"{self.package} {self.version}" + (f" ({self.backend_name})" if self.backend_name else "")

    @property
    def short_label(self) -> str:
        """The column in a few characters: "3.15.1", "nightly", "tf-keras", "3.15.1 JAX", "nightly PyTorch"."""
        name = self.version if self.package == "keras" else self.package.replace("keras-", "")
        return name + (f" {self.backend_name}" if self.backend_name else "")

    @property
    def key(self) -> str:
        return f"{self.package}-{self.version}-{self.backend}"


def variant_column(name: str, backend: str = "tensorflow") -> Column:
    """The column of a side variant (``keras-nightly``, ``tf-keras``) at the version the project installs."""
    return Column(name, variants.get(name).requirement.split("==")[1], backend)


def columns() -> list[Column]:
    """Every column of the matrix, in the order of its tables."""
    return [*(Column("keras", version) for version in KERAS_RELEASES),
            variant_column("keras-nightly"), variant_column("tf-keras"),
            Column("keras", PINNED, "jax"), variant_column("keras-nightly", "jax"),
            Column("keras", PINNED, "torch"), variant_column("keras-nightly", "torch")]


@dataclasses.dataclass(frozen=True)
class Scope:
    """A set of columns, named for a sentence: where a check runs, or what a claim speaks of."""

    name: str  # "every column", "Keras 3 releases on TensorFlow": how a page names it
    covers: Callable[[Column], bool]
    # The columns a check of this scope runs in under a profile that narrows the matrix for time
    # (companion.core.profiles.Profile.narrow_matrix: the smoke profile CI runs); None: the same in every profile.
    narrowed: Scope | None = None

    def __call__(self, column: Column) -> bool:
        return self.covers(column)

    def under(self, narrow: bool) -> Scope:
        """The scope a check runs in under a profile that narrows the matrix (``narrow``) or under one that does
        not."""
        return self.narrowed if narrow and self.narrowed is not None else self


EVERY_COLUMN = Scope("every column", lambda c: True)
# The columns where the checks on real keras.applications architectures run: half a minute per column on TensorFlow
# and PyTorch, three minutes on JAX (compiling each model), so not on JAX, where the small bases answer the same
# questions.
REAL_MODELS = Scope("the pinned release and keras-nightly on TensorFlow and PyTorch, and tf-keras",
                    lambda c: (c.pinned or c.package != "keras") and c.backend != "jax")
# The way of fine-tuning the advice recommends for a real architecture runs in every column, so that the advice is
# measured there; where the matrix is narrowed (CI), where the architecture's other ways run.
EVERY_COLUMN_UNLESS_NARROWED = Scope(EVERY_COLUMN.name, EVERY_COLUMN.covers, narrowed=REAL_MODELS)
KERAS_3 = Scope("Keras 3 (the releases and keras-nightly, every backend)", lambda c: not c.legacy)
RELEASES = Scope("the Keras 3 releases (every backend)", lambda c: c.package == "keras")
TENSORFLOW = Scope("the TensorFlow backend", lambda c: c.backend == "tensorflow")
NIGHTLY = Scope("keras-nightly (every backend)", lambda c: c.package == "keras-nightly")
TF_KERAS = Scope("tf-keras", lambda c: c.legacy)
RELEASES_AND_TF_KERAS = Scope("the Keras 3 releases (every backend) and tf-keras",
                              lambda c: c.package != "keras-nightly")
NIGHTLY_AND_TF_KERAS = Scope("keras-nightly (every backend) and tf-keras", lambda c: c.package != "keras")
KERAS_3_ON_TENSORFLOW = Scope("Keras 3 on TensorFlow (the releases and keras-nightly)",
                              lambda c: not c.legacy and c.backend == "tensorflow")
JAX = Scope("the JAX backend", lambda c: c.backend == "jax")
PYTORCH = Scope("the PyTorch backend", lambda c: c.backend == "torch")
RELEASES_ON_JAX = Scope("the Keras 3 releases on JAX", lambda c: c.package == "keras" and c.backend == "jax")
