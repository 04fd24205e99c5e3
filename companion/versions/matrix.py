"""The book's one matrix: every check (:mod:`companion.checks.registry`, and what each tutorial's model passes its
base, :mod:`companion.tutorials.recipe_checks`) in every column (:func:`companion.core.columns.columns`: each Keras 3
release, keras-nightly and tf-keras on TensorFlow, the pinned release and the nightly on JAX and on PyTorch).

Each column is computed in a child process that imports its Keras and backend (:mod:`companion.versions.install`,
:mod:`companion.core.child`) and kept in the cache folder under the column, its backend's version and the
fingerprint of the checks' code, so a build computes it once and every chapter, the tests, ``companion matrix`` and
the claims audit read the same values. The smoke profile CI runs narrows it
(:attr:`companion.core.profiles.Profile.narrow_matrix`): a check whose scope has a narrower one
(:meth:`companion.core.columns.Scope.under`) runs only there, and its columns are kept apart. A check outside a
column's scope has the value
:class:`~companion.checks.evidence.NotRun` there; a column not installed here,
:class:`~companion.checks.evidence.NotInstalled` everywhere; a column whose Keras does not import or run says why in :attr:`Measured.error`.

The views of the matrix (tables, the advice, the claims' verdicts, the figures) are computed from :class:`Matrix`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from companion.checks import evidence, fine_tuning, guard_checks, registry
from companion.checks.check import Check, measure, versions
from companion.checks.check import fingerprint as checks_fingerprint
from companion.core import cache, child, profiles, timing
from companion.core.columns import EVERY_COLUMN, Column, Scope, columns
from companion.core.tables import FactTable
from companion.tutorials import recipe_checks
from companion.versions import install

ROWS: tuple[Check, ...] = (*registry.CHECKS, *recipe_checks.CHECKS)
BY_ID = registry.by_id(ROWS)
# The matrix's rows in sections, each a table of its own on a page, so that each groups its columns on its own and
# stays as wide as the page: one layer, calls outside fit, trainable, each kind of model fine-tuned every way, and
# what the tutorials' models pass their base.
r = registry
SECTIONS: dict[str, tuple[Check, ...]] = {
    "One layer": (r.DROPOUT_INVERTED, r.DROPOUT_INFERENCE, r.DROPOUT_FROZEN_DROPS, r.FORCED_DROPOUT_PREDICT,
                  *r.BN_CALLS.values(), r.BN_VARIABLES, r.BN_BATCH_DEPENDENCE, r.BN_MOVING_AVERAGE,
                  r.DENSE_IGNORES_TRAINING, r.FLATTEN_LAYERS, r.TRAINABLE_CHANGES_MODE, *r.AUTOSCALE.values(),
                  *r.AUTOSCALE_FORCED.values()),
    "The mode a model's layers receive outside fit": (r.PREDICT_MODE, r.EVALUATE_MODE, r.CALL_MODE,
                                                      r.INFERENCE_MOVES_BN, *r.SERVING.values()),
    "trainable": (r.FROZEN_WEIGHTS, r.TRAINABLE_TIMING, r.OPTIMIZER_REUSE, r.TRAINABLE_AGAIN, r.FALSE_THEN_TRUE,
                  r.STAGED_UNFREEZING),
    **{f"Fine-tuning: {kind.name}": tuple(fine_tuning.CHECKS[kind, way] for way in kind.ways)
       for kind in fine_tuning.KINDS},
    "What each tutorial's model passes its base": recipe_checks.CHECKS,
    "The guard (companion.versions.guard) on each kind of model": tuple(guard_checks.CHECKS.values()),
}


def fingerprint() -> str:
    """A hash of the code the matrix's values depend on: the checks' and the recipe checks'."""
    digest = hashlib.sha256(checks_fingerprint().encode())
    for module in (recipe_checks.__file__, Path(recipe_checks.__file__).with_name("recipes.py")):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()[:16]


# --- One column ---------------------------------------------------------------------------------------------------


def measured(ids: list[str]) -> dict:
    """In a column's child process: this process's versions and the values of the checks ``ids`` (JSON), or the
    error that stopped them all (Keras does not import)."""
    try:
        values = measure([BY_ID[i] for i in ids])
        return {"versions": versions(), "values": {c.id: evidence.to_json(v) for c, v in values.items()}}
    except Exception as error:
        return {"error": evidence.first_line(error)}


@dataclasses.dataclass(frozen=True)
class Measured:
    """One column's values (check -> typed value), or the first line of the error that stopped it."""

    column: Column
    versions: dict[str, str]  # keras, backend, backend_version, python, as the child process reported them
    values: dict[Check, Any]
    error: str | None = None
    seconds: float = 0.0  # it took to compute (process start and imports included)
    kept: bool = False  # read from the cache folder rather than computed now

    @property
    def ran(self) -> bool:
        return self.error is None

    def table(self) -> FactTable:
        """This column's checks and their values, as a page shows them."""
        return FactTable(["check", self.column.label],
                         [[c.question, c.cell(value)] for c, value in self.values.items()])

    def to_json(self) -> dict:
        return {"versions": self.versions, "values": {c.id: evidence.to_json(v) for c, v in self.values.items()},
                "error": self.error, "seconds": self.seconds}

    @classmethod
    def from_json(cls, column: Column, data: dict, rows: Iterable[Check]) -> Measured:
        return cls(column, data["versions"], {c: evidence.from_json(data["values"][c.id]) for c in rows},
                   data["error"], data["seconds"], kept=True)


def _not_run(check: Check, narrow: bool) -> evidence.NotRun:
    return evidence.NotRun(f"runs in {check.scope.under(narrow).name}")


def run_column(column: Column, rows: tuple[Check, ...] = ROWS, timeout: float = 900, narrow: bool = True
               ) -> Measured:
    """Compute one column in a child process that imports its Keras, the checks of ``rows`` whose scope covers it
    (under a profile that narrows the matrix, ``narrow``, or not: :meth:`Scope.under`); never raises for a column
    that fails."""
    if not install.is_installed(column):
        missing = evidence.NotInstalled(f"{column.label} is not installed: companion variants install --releases")
        return Measured(column, {}, {c: missing for c in rows}, error="not installed")
    chosen = [c for c in rows if c.scope.under(narrow)(column)]
    start = time.perf_counter()
    try:
        result = child.call("companion.versions.matrix:measured", install.environment(column), timeout=timeout,
                            ids=[c.id for c in chosen])
    except child.ChildFailed as failed:
        result = {"error": failed.reason}
    seconds = time.perf_counter() - start
    found = result.get("values", {})
    values = {c: evidence.from_json(found[c.id]) if c.id in found else _not_run(c, narrow) for c in rows}
    return Measured(column, result.get("versions", {}), values, result.get("error"), seconds)


def here() -> Column:
    """The column of the Keras and backend this process runs."""
    found = versions()
    legacy = found["keras"].startswith("2.")
    return Column("tf-keras" if legacy else "keras-nightly" if ".dev" in found["keras"] else "keras",
                  found["keras"], found["backend"])


def this_install(rows: tuple[Check, ...] = ROWS, on_each: Callable[[Check, int], object] | None = None) -> Measured:
    """The column of the Keras and backend this process runs, computed here (``companion check``); ``on_each(check,
    done)`` after each check."""
    start = time.perf_counter()
    values = measure(rows, on_each)
    return Measured(here(), versions(), values, seconds=time.perf_counter() - start)


def kept_column(chosen: Column, narrow: bool = True) -> Measured:
    """The column's values, narrowed or not (``narrow``: :func:`run_column`): kept from before when the column, its
    backend and the checks are the same, else computed and kept (unless it is not installed or its process ran out of
    time: the next call tries again)."""
    folder = cache.cache_dir() / "matrix" / ("narrowed" if narrow else "every-column") / chosen.key
    with cache.Folder.locked(folder, install.environment_key(chosen), code=fingerprint()) as kept:
        data = kept.read_json("column.json")
        if data is not None:
            return Measured.from_json(chosen, data, ROWS)
        computed = run_column(chosen, narrow=narrow)
        if install.is_installed(chosen) and "timed out" not in (computed.error or ""):
            kept.write_json("column.json", computed.to_json())
        return computed


# --- The matrix ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Matrix:
    """Checks by columns: :attr:`rows` in every one of :attr:`measured`."""

    measured: list[Measured]
    rows: tuple[Check, ...] = ROWS
    narrow: bool = True  # computed under a profile that narrows the matrix (companion.core.profiles)

    def scope_of(self, check: Check) -> Scope:
        """The columns ``check`` ran in, in this matrix."""
        return check.scope.under(self.narrow)

    @property
    def columns(self) -> list[Column]:
        return [m.column for m in self.measured]

    def at(self, column: Column) -> Measured:
        return next(m for m in self.measured if m.column == column)

    def value(self, column: Column, check: Check):
        return self.at(column).values[check]

    def ran(self, scope: Scope = EVERY_COLUMN) -> list[Measured]:
        """The columns of ``scope`` whose Keras imported and ran."""
        return [m for m in self.measured if m.ran and scope(m.column)]

    def where(self, test: Callable[[dict[Check, Any]], bool], scope: Scope = EVERY_COLUMN) -> list[Column]:
        """The columns of ``scope`` that ran and whose values pass ``test``, in table order."""
        return [m.column for m in self.ran(scope) if test(m.values)]

    def errors(self) -> list[tuple[str, str, str]]:
        """(columns, check, the error's first line) for every check that raised where its columns ran, the columns
        that gave the same error together; and (column, "-", why) for a column that did not run."""
        found: dict[tuple[str, str], list[Column]] = {}
        for m in self.ran():
            for c in self.rows:
                for failed in dict.fromkeys(f.error for f in failures(m.values[c])):
                    found.setdefault((c.id, failed), []).append(m.column)
        return [(self.in_words(columns), check_id, error) for (check_id, error), columns in found.items()] + [
            (m.column.label, "-", m.error) for m in self.measured if not m.ran]

    def in_words(self, chosen: Iterable[Column], short: bool = False) -> str:
        """Columns for a table cell: the numbered Keras releases on TensorFlow as runs of consecutive releases
        ("keras 3.0.5 to 3.4.1, 3.6.0"), then the others by label; "none" for none. ``short``: for a column's
        header ("3.0.5 to 3.4.1; nightly JAX")."""
        chosen = set(chosen)
        runs: list[list[str]] = []
        previous = False
        for c in filter(lambda c: c.numbered, self.columns):
            found = c in chosen
            if found and not previous:
                runs.append([])
            if found:
                runs[-1].append(c.version)
            previous = found
        numbered = ", ".join(run[0] if len(run) == 1 else f"{run[0]} to {run[-1]}" for run in runs)
        others = [c.short_label if short else c.label for c in self.columns if c in chosen and not c.numbered]
        return "; ".join([numbered if short else f"keras {numbered}"] * bool(runs) + others) or "none"

    @property
    def short_names(self) -> str:
        """What the short column headers of :meth:`in_words` mean, for a table's caption."""
        numbered = [c.version for c in self.columns if c.numbered]
        releases = f"{numbered[0]} to {numbered[-1]} are Keras releases on TensorFlow, " if numbered else ""
        return f"{releases}nightly is keras-nightly, JAX and PyTorch name those backends"

    def grouped(self, rows: Iterable[Check], cell: Callable[[Check, Any], str] = Check.cell
                ) -> dict[tuple[str, ...], list[Column]]:
        """The columns that agree on every one of ``rows`` (as ``cell`` writes each value), grouped, in table order."""
        rows = list(rows)
        groups: dict[tuple[str, ...], list[Column]] = {}
        for m in self.measured:
            answers = tuple(cell(c, m.values[c]) for c in rows) if m.ran else (f"did not run: {m.error}",)
            groups.setdefault(answers, []).append(m.column)
        return groups

    def table(self, rows: Iterable[Check] | None = None, anchors: bool = False) -> FactTable:
        """One row per check, one column per group of columns that agree on every one of these rows (headed by
        :meth:`in_words`); with ``anchors`` each row can be linked to (``#check-nested_override``)."""
        rows = list(self.rows if rows is None else rows)
        groups = self.grouped(rows)
        header = ["check", *(self.in_words(group, short=True) for group in groups.values())]
        body = [[c.question, *(answers[i] if len(answers) == len(rows) else answers[0] for answers in groups)]
                for i, c in enumerate(rows)]
        return FactTable(header, body, caption=f"{len(self.measured)} columns; those that agree on every row share "
                                               f"one ({self.short_names})",
                         row_ids=[f"check-{c.id}" for c in rows] if anchors else None)


def failures(value) -> list[evidence.Failed]:
    """The Failed values in ``value`` (itself, or the fields of a typed value, at any depth)."""
    if isinstance(value, evidence.Failed):
        return [value]
    if dataclasses.is_dataclass(value):
        return [f for field in dataclasses.fields(value) for f in failures(getattr(value, field.name))]
    return []


def _start_rank(column: Column) -> int:
    """When a column starts: the longest first, so that the last does not run alone. JAX compiles every operation,
    keeping the programs (:func:`companion.versions.install.environment`): the pinned release on JAX starts first and
    the nightly on JAX after the PyTorch, side-variant and pinned columns (where the real architectures' every way
    runs), so that it reads what the first kept."""
    if column.backend == "jax":
        return 0 if column.pinned else 3
    return 1 if column.backend == "torch" else 2 if column.package != "keras" or column.pinned else 4


def compute(profile: profiles.Profile | None = None, selected: list[Column] | None = None, progress: bool = True
            ) -> Matrix:
    """Every column (or ``selected``) under ``profile`` (narrowed or not: :attr:`Profile.narrow_matrix`; default:
    the smoke profile, or ``$COMPANION_PROFILE``'s), kept ones reused (:func:`kept_column`), the others computed two
    at a time (:func:`companion.core.child.two_at_a_time`)."""
    narrow = (profile or profiles.get("smoke")).narrow_matrix
    chosen = selected or columns()
    order = sorted(chosen, key=_start_rank)
    with timing.phase("matrix"):
        found = child.two_at_a_time(functools.partial(kept_column, narrow=narrow), order, "Keras columns", progress)
    return Matrix(sorted(found, key=lambda m: chosen.index(m.column)), narrow=narrow)
