"""The release matrix: the decisive checks (:mod:`companion.checks.decisive`) under every Keras 3 release and backend.

One column per release and backend: the latest patch of every Keras 3 minor release from 3.0 to the pinned one,
``keras-nightly`` and ``tf-keras`` on TensorFlow, and the pinned release and the nightly on JAX and on PyTorch (both
for CPU). Each
release is installed with ``pip install --no-deps --target`` into its own folder next to the shared TensorFlow (as
:mod:`companion.core.variants` installs the side variants), and each column is computed in a child process that imports
that release (``python -m companion.checks.questions``). A release that does not import or run gets a column that says so,
with the error's first line; the other columns are computed all the same.

The architecture checks (:mod:`companion.suite.architectures`) take about a minute per column: they run (``python -m
companion.suite.architectures``, which prints the decisive checks' values too) under the pinned release on TensorFlow,
JAX and PyTorch, ``keras-nightly`` and ``tf-keras``; elsewhere their cells are
:class:`companion.checks.evidence.NotApplicable`.

A column is kept in the cache folder (:mod:`companion.core.cache`) under its release, its backend and the fingerprint of
the checks' code (:func:`companion.checks.questions.fingerprint`): editing anything else in the companion does not
recompute it, editing a check does.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from companion.checks import evidence, questions
from companion.core import cache, child, variants
from companion.core.tables import FactTable
from companion.suite import architectures

PINNED = importlib.metadata.version("keras")
# The latest patch of every Keras 3 minor release up to the pinned one, from `pip index versions keras`
# (2026-11-25); `latest_patches` makes this list from that command's output.
KERAS_RELEASES = ("3.0.5", "3.1.1", "3.2.1", "3.3.3", "3.4.1", "3.5.0", "3.6.0", "3.7.0", "3.8.0", "3.9.2", "3.10.0",
                  "3.11.3", "3.12.4", "3.13.2", "3.14.1", "3.15.1")
# The other backends, each pip --no-deps into a folder of its own with what it imports that the project does not
# install: JAX for CPU and SciPy; PyTorch (the CPU build where pip finds it, as on this project's machines: 2.13.0+cpu
# satisfies torch==2.13.0) and what `import torch` needs.
JAX_REQUIREMENTS = ("jax==0.10.2", "jaxlib==0.10.2", "scipy==1.17.1")
TORCH_REQUIREMENTS = ("torch==2.13.0", "sympy==1.14.0", "mpmath==1.4.1", "networkx==3.6.1", "filelock==4.3.1")
BACKEND_REQUIREMENTS = {"jax": JAX_REQUIREMENTS, "torch": TORCH_REQUIREMENTS}
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
class Release:
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
        return self.package == "tf-keras"

    @property
    def numbered(self) -> bool:
        """A numbered Keras release on TensorFlow (the columns :meth:`ReleaseMatrix.in_words` gives as a span)."""
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
        """The column's label in a figure: "3.15.1", "nightly", "tf-keras", "3.15.1 JAX", "nightly PyTorch"."""
        name = self.version if self.package == "keras" else self.package.replace("keras-", "")
        return name + (f" {self.backend_name}" if self.backend_name else "")

    @property
    def key(self) -> str:
        return f"{self.package}-{self.version}-{self.backend}"

    @property
    def architectures(self) -> bool:
        """Its column runs the architecture checks: the pinned release (on every backend), keras-nightly and
        tf-keras on TensorFlow."""
        return self.pinned or (self.package != "keras" and self.backend == "tensorflow")


def _variant_release(name: str, backend: str = "tensorflow") -> Release:
    return Release(name, variants.get(name).requirement.split("==")[1], backend)


def releases() -> list[Release]:
    """Every column, in the order of the table."""
    numbered = [Release("keras", version) for version in KERAS_RELEASES]
    return [*numbered, _variant_release("keras-nightly"), _variant_release("tf-keras"),
            *(release for backend in BACKEND_REQUIREMENTS
              for release in (Release("keras", PINNED, backend), _variant_release("keras-nightly", backend)))]


# --- Installing ---------------------------------------------------------------------------------------------------


def folder(release: Release) -> Path | None:
    """Where the release is installed: None for the pinned one (the environment's own Keras); the side variants'
    folders for keras-nightly and tf-keras; else a folder of its own."""
    if release.pinned:
        return None
    if release.package != "keras":
        return variants.install_folder(variants.get(release.package))
    return variants.variants_dir() / "releases" / f"{release.package}-{release.version}"


def backend_folder(backend: str) -> Path:
    """Where a backend other than TensorFlow is installed (``jax``, ``torch``)."""
    return variants.variants_dir() / backend


def _needs(release: Release) -> list[tuple[Path, list[str]]]:
    """(folder, requirements) the release's column needs installed."""
    needs = [] if release.pinned else [(folder(release), [release.requirement])]
    if release.backend in BACKEND_REQUIREMENTS:
        needs.append((backend_folder(release.backend), list(BACKEND_REQUIREMENTS[release.backend])))
    return needs


def is_installed(release: Release) -> bool:
    return all(variants.installed_in(where, r) for where, requirements in _needs(release) for r in requirements)


def install(chosen: list[Release]) -> None:
    """``pip install --no-deps --target`` each release (and its backend, for a JAX or PyTorch column) into its
    folder, several folders at a time."""
    variants.pip_install_all([need for release in chosen for need in _needs(release)])


def folders() -> set[str]:
    """Every folder a Keras release, a side variant or JAX is installed in."""
    return {str(where) for release in releases() for where, _ in _needs(release)} | variants.side_folders()


def environment(release: Release) -> dict[str, str]:
    """Environment for the child process that computes the release's column."""
    if not is_installed(release):
        raise variants.VariantNotInstalledError(
            f"{release.label} is not installed; install it with: companion variants install --releases")
    return variants.child_environment([where for where, _ in _needs(release)], release.legacy, release.backend,
                                      others=folders())


# --- Computing a column -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Column:
    """One release's values (check id -> typed value), or the first line of the error that stopped it."""

    release: Release
    versions: dict[str, str]  # keras, backend, backend_version, python, as the child process reported them
    values: dict[str, Any]
    error: str | None = None
    seconds: float = 0.0  # it took to compute (process start and imports included)
    kept: bool = False  # read from the cache folder rather than computed now

    @property
    def ran(self) -> bool:
        return self.error is None

    def to_json(self) -> dict:
        return {"versions": self.versions, "values": evidence.values_to_json(self.values), "error": self.error,
                "seconds": self.seconds}

    @classmethod
    def from_json(cls, release: Release, data: dict) -> Column:
        return cls(release, data["versions"], evidence.values_from_json(data["values"]), data["error"],
                   data["seconds"], kept=True)


NOT_RUN = "the architecture checks run under the pinned release (TensorFlow, JAX), keras-nightly and tf-keras"


def run_column(release: Release, timeout: float = 600) -> Column:
    """Compute one column in a child process that imports the release; never raises for a release that fails."""
    start = time.perf_counter()
    module = "companion.suite.architectures" if release.architectures else "companion.checks.questions"
    try:
        result = child.call(f"{module}:measured", environment(release), timeout=timeout)
    except child.ChildFailed as failed:
        result = {"error": failed.reason}
    except variants.VariantNotInstalledError as error:
        result = {"error": evidence.first_line(error)}
    seconds = time.perf_counter() - start
    values = evidence.values_from_json(result.get("values", {}))
    if values and not release.architectures:
        values.update(architectures.not_run(NOT_RUN))
    return Column(release, result.get("versions", {}), values, result.get("error"), seconds)


class ChecksFolder(cache.Folder):
    """A :class:`companion.core.cache.Folder` valid for the decisive checks' fingerprint rather than for the whole
    companion's code: a column is recomputed when a check changes, not when a page or a table does."""

    def __init__(self, path: Path, key: dict):
        self.path, self.recovered = Path(path), []
        self.key = json.loads(json.dumps({**key, "code": questions.fingerprint()}))  # as it reads back from key.json
        if self.path.exists() and self._stored_key() != self.key:
            shutil.rmtree(self.path)
        if not self.path.exists():
            cache.write_atomically(self.path / "key.json", json.dumps(self.key, indent=1, sort_keys=True).encode())


def _backend_version(backend: str) -> str:
    """The backend's installed version, read from its metadata (no import)."""
    if backend in BACKEND_REQUIREMENTS:
        return ", ".join(BACKEND_REQUIREMENTS[backend])
    for distribution in ("tensorflow", "tensorflow-cpu"):
        try:
            return f"{distribution}=={importlib.metadata.version(distribution)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def environment_key(release: Release) -> dict:
    """What a result computed under ``release`` depends on besides its own code: the release, its backend's installed
    version and Python's (the key of a kept result, with that code's fingerprint)."""
    return {"release": release.key, "backend": _backend_version(release.backend), "python": sys.version.split()[0]}


def kept_folder(release: Release):
    """The release's cache folder, its lock held (:meth:`companion.core.cache.Folder.locked`); a column that runs
    the architecture checks is valid for their code (and the KerasHub installed) too."""
    key = environment_key(release)
    if release.architectures:
        key["architectures"] = f"{architectures.fingerprint()} {architectures.models.keras_hub_version()}"
    return ChecksFolder.locked(cache.cache_dir() / "releases" / release.key, key)


def column(release: Release) -> Column:
    """The release's column: kept from before when the release, backend and checks are the same, else computed and
    kept (unless the release is not installed, or its process ran out of time: the next call tries again)."""
    with kept_folder(release) as kept:
        data = kept.read_json("column.json")
        if data is not None:
            return Column.from_json(release, data)
        computed = run_column(release)
        if is_installed(release) and not (computed.error or "").startswith("TimeoutExpired"):
            kept.write_json("column.json", computed.to_json())
        return computed


# --- The matrix ---------------------------------------------------------------------------------------------------


# The matrix's rows: the decisive checks, then the architecture checks.
ALL_CHECKS = (*questions.CHECKS, *architectures.CHECKS)


@dataclasses.dataclass
class ReleaseMatrix:
    columns: list[Column]

    def column(self, label: str) -> Column:
        return next(c for c in self.columns if c.release.label == label)

    def value(self, label: str, check_id: str):
        return self.column(label).values.get(check_id)

    def table(self) -> FactTable:
        """One row per decisive check; releases and backends that gave the same answer to every one share a column,
        headed by :meth:`in_words` (in the order of their first release). A column that did not run says why in its
        first row. The architecture checks, which only some columns run, are the grid of
        :mod:`companion.versions.architectures_grid`."""
        def answers(c: Column) -> tuple[str, ...]:
            return ("yes" if c.ran else c.error,
                    *(evidence.show(c.values[check.id]) if c.ran else "-" for check in questions.CHECKS))

        groups: dict[tuple[str, ...], list[Column]] = {}
        for c in self.columns:
            groups.setdefault(answers(c), []).append(c)
        header = ["check", *(self.in_words(columns) for columns in groups.values())]
        rows = [[question, *cells] for question, *cells in
                zip(["ran", *(check.question for check in questions.CHECKS)], *groups.keys())]
        return FactTable(header, rows, caption=f"{len(self.columns)} releases and backends; those that agree on every "
                                               "check share a column")

    def errors(self) -> list[tuple[str, str, str]]:
        """(column, check, the error's first line) for every check that raised where its release ran."""
        return [(c.release.label, check.id, failed.error) for c in self.columns if c.ran for check in ALL_CHECKS
                for failed in _failures(c.values[check.id])]

    def where(self, package: str | None = None, backend: str | None = None, **expected) -> list[Column]:
        """The columns that ran (of ``package``, on ``backend``, when given) where every given check has the given
        value, in table order: ``where(nested_override=True)``, ``where(backend="jax", dropout_leak_fit=False)``."""
        return [c for c in self.columns if c.ran and package in (None, c.release.package)
                and backend in (None, c.release.backend)
                and all(c.values[check] == value for check, value in expected.items())]

    def overridden(self) -> list[Column]:
        """The numbered releases on TensorFlow, oldest first, where ``fit`` moved the BN statistics of a base called
        with ``training=False``: the override."""
        return self.where("keras", "tensorflow", nested_override=True)

    def in_words(self, columns: list[Column]) -> str:
        """``columns`` for a table cell: the numbered Keras releases on TensorFlow as runs of consecutive releases
        ("keras 3.0.5 to 3.4.1, 3.6.0"), then the other columns by label; "none" for none."""
        chosen = {id(c) for c in columns}
        runs: list[list[str]] = []
        previous = False
        for c in filter(lambda c: c.release.numbered, self.columns):
            found = id(c) in chosen
            if found and not previous:
                runs.append([])
            if found:
                runs[-1].append(c.release.version)
            previous = found
        numbered = ", ".join(run[0] if len(run) == 1 else f"{run[0]} to {run[-1]}" for run in runs)
        others = [c.release.label for c in columns if not c.release.numbered]
        return "; ".join([f"keras {numbered}"] * bool(runs) + others) or "none"

    def conclusions_table(self) -> FactTable:
        """Per conclusion (:data:`companion.checks.questions.CONCLUSIONS`): the columns where it held, and the
        columns that ran where it did not (its check answered otherwise, or raised)."""
        rows = []
        for expected, values in questions.CONCLUSIONS:
            held = self.where(**values)
            rows.append([expected, self.in_words(held),
                         self.in_words([c for c in self.where() if all(c is not h for h in held)])])
        return FactTable(["expected", "held under", "did not hold under"], rows)

    def figure(self, title: str = "The decisive checks under each Keras release and backend"):
        from companion.versions import release_grid

        return release_grid.grid(self, title)


def _failures(value) -> list[evidence.Failed]:
    """The Failed values in ``value`` (itself, or the fields of a typed value)."""
    if isinstance(value, evidence.Failed):
        return [value]
    if dataclasses.is_dataclass(value):
        return [f for field in dataclasses.fields(value) for f in _failures(getattr(value, field.name))]
    return []


def compute(selected: list[Release] | None = None, progress: bool = True) -> ReleaseMatrix:
    """Every release's column, kept ones reused (see :func:`column`), the others computed two at a time
    (:func:`companion.core.child.two_at_a_time`)."""
    chosen = selected or releases()
    return ReleaseMatrix(child.two_at_a_time(column, chosen, "Keras releases", progress))
