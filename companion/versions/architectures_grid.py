"""The chapter "Is my model affected?": the architecture kinds against the Keras variants and backends, read from the
release matrix (:mod:`companion.versions.releases`), as a figure coloured "as documented / not as documented" and as a table.

A grid row is one kind of model under one way of calling its base; its cells are the release matrix's typed values
(the decisive checks' for the flat functional base and for augmentation inside a model, the architecture checks'
:class:`companion.checks.evidence.BaseOutcome` for the others), each judged against what the Keras documentation and the
tutorials lead a reader to expect (:data:`companion.suite.architectures.EXPECTED`). Text is made only for the figure's
cells and the table.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from companion.checks import evidence, questions
from companion.core import plots
from companion.core.tables import FactTable
from companion.suite import architectures


@dataclasses.dataclass(frozen=True)
class GridRow:
    kind: str  # the kind of model
    call: str  # how its base is called (a value of architectures.CALLS, or the decisive check's own words)
    documented: Callable[[dict], bool | None]  # a column's values -> as documented? (None: not measured there)
    cell: Callable[[dict], str]  # a column's values -> the figure's cell text
    detail: Callable[[dict], Any]  # a column's values -> the typed value the table shows


def _flat(call: str, updates: str, dropout: str) -> GridRow:
    """The flat functional base: two decisive checks (BN/gamma,beta/kernels; Dropout after the base) as one row."""
    expected = {"as_written": False, "remedy": questions.REMEDY_WORKS, "remedy_alone": questions.REMEDY_WORKS}[call]

    def documented(values):
        if any(isinstance(values[c], (evidence.Failed, evidence.NotApplicable)) for c in (updates, dropout)):
            return None
        return values[updates] == expected and values[dropout] is True

    def cell(values):
        moved = values[updates] if call == "as_written" else getattr(values[updates], "statistics", values[updates])
        return f"BN {'moved' if moved is True else 'kept'}\nDropout {'on' if values[dropout] is True else 'off'}"

    return GridRow("flat functional base", architectures.CALLS[call], documented, cell,
                   lambda values: f"{evidence.show(values[updates])}; Dropout after: {evidence.show(values[dropout])}")


def _outcome_cell(outcome) -> str:
    """A BaseOutcome in a few words on two lines: BN moved of all (and frozen, after the remedy); the modes of the
    Dropout inside the base and after it."""
    if not isinstance(outcome, evidence.BaseOutcome):
        return "n/a" if isinstance(outcome, evidence.NotApplicable) else "err"
    statistics = f"BN {outcome.statistics_moved}/{outcome.batch_norm}" + (
        f", froze {outcome.frozen}" if outcome.frozen else "")
    dropouts = [f"{name} {'on' if value else 'off'}" for name, value in (
        ("in", outcome.dropout_inside), ("after", outcome.dropout_after)) if isinstance(value, bool)]
    return "\n".join([statistics, ", ".join(dropouts)] if dropouts else [statistics])


def _architecture(check: architectures.ArchitectureCheck) -> GridRow:
    return GridRow(check.architecture, architectures.CALLS[check.regime], lambda v: check.documented(v[check.id]),
                   lambda v: _outcome_cell(v[check.id]), lambda v: v[check.id])


def _augmented(values) -> bool | None:
    """Documented: a model called without ``training`` runs in inference mode, so no BN statistics move."""
    value = values["augmented_call"]
    return None if isinstance(value, evidence.Failed) else value is False


ROWS = (
    *(_flat(call, updates, dropout) for call, updates, dropout in (
        ("as_written", "nested_override", "dropout_leak_fit"), ("remedy", "remedy", "remedy_dropout"),
        ("remedy_alone", "remedy_alone", "remedy_alone_dropout"))),
    *(_architecture(check) for check in architectures.CHECKS),
    GridRow("augmentation inside", "model(x), no training argument", _augmented,
            lambda v: "BN moved" if v["augmented_call"] is True else "BN kept" if v["augmented_call"] is False
            else "err", lambda v: v["augmented_call"]),
)


def columns(matrix) -> list:
    """The release matrix's columns that ran the architecture checks (pinned release, keras-nightly, tf-keras, JAX)."""
    return [c for c in matrix.columns if c.ran and c.release.architectures]


def documented(matrix) -> dict[tuple[str, str], list[bool | None]]:
    """(kind, call) -> as documented?, one per column of :func:`columns`."""
    return {(row.kind, row.call): [row.documented(c.values) for c in columns(matrix)] for row in ROWS}


def table(matrix) -> FactTable:
    """One row per kind and call, one column per variant and backend: the full typed value, and whether it is as
    documented."""
    chosen = columns(matrix)
    header = ["model", "call", *(c.release.label for c in chosen)]
    verdict = {True: "as documented", False: "NOT as documented", None: "not measured"}
    return FactTable(header, [[row.kind, row.call, *(f"{verdict[row.documented(c.values)]}: "
                                                     f"{evidence.show(row.detail(c.values))}" for c in chosen)]
                              for row in ROWS])


def not_applicable(matrix) -> list[tuple[str, str, str]]:
    """(column, check, reason) for every architecture check that did not apply where it ran."""
    return [(c.release.label, check.id, c.values[check.id].reason) for c in columns(matrix)
            for check in architectures.CHECKS if isinstance(c.values[check.id], evidence.NotApplicable)]


def figure(matrix, title: str = "Is my model affected? The architecture kinds under each Keras and backend"):
    import numpy as np

    chosen = columns(matrix)
    cells = np.array([[row.cell(c.values) for c in chosen] for row in ROWS], dtype=object)
    judged = np.array([[row.documented(c.values) for c in chosen] for row in ROWS], dtype=object)
    shade = np.vectorize(lambda d: np.nan if d is None else float(not d))(judged).astype(float)
    labels = [f"{row.kind}:\n{row.call}" for row in ROWS]
    return draw_cells(cells, shade, labels, [c.release.short_label for c in chosen],
                      [c.release.backend for c in chosen], title, "not measured (n/a: does not apply)")


@plots.styled
def draw_cells(cells, shade, row_labels: list[str], column_labels: list[str], groups: list, title: str,
               white_means: str):
    """A grid of labelled cells coloured "as documented" (``shade`` 0) or "not as documented" (1), with that legend;
    NaN stays white (``white_means`` says why in the legend); white text on a dark cell; a thick line between columns
    whose ``groups`` differ. The release matrix's figure draws with it too."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap, to_rgb
    from matplotlib.patches import Patch

    colours = (plots.COLORS[0], plots.COLORS[1])

    def dark(value: float) -> bool:
        if np.isnan(value):
            return False
        red, green, blue = to_rgb(colours[int(value)])
        return 0.2126 * red + 0.7152 * green + 0.0722 * blue < 0.5

    # A row is tall enough for the most lines any of its labels or cells has (0.27 inch for one line).
    lines = max(str(text).count("\n") + 1 for text in [*row_labels, *np.ravel(cells)])
    fig, ax = plt.subplots(figsize=(plots.WIDTH, (0.18 + 0.09 * lines) * len(row_labels) + 1.5),
                           layout="constrained")
    ax.imshow(shade, cmap=ListedColormap(list(colours)).with_extremes(bad="white"), vmin=0, vmax=1, aspect="auto")
    for (i, j), text in np.ndenumerate(cells):
        ax.text(j, i, text, ha="center", va="center", fontsize=6.5, linespacing=1.1,
                color="white" if dark(shade[i, j]) else "black")
    ax.set_xticks(range(len(column_labels)), column_labels, rotation=90, fontsize=7.5)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=7.5)
    ax.tick_params(length=0, top=True, labeltop=True, bottom=False, labelbottom=False)
    ax.grid(False)
    ax.set_xticks(np.arange(len(column_labels) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(row_labels) + 1) - 0.5, minor=True)
    ax.tick_params(which="minor", length=0)
    ax.grid(which="minor", color="white", linewidth=1)
    for j in range(1, len(groups)):
        if groups[j] != groups[j - 1]:
            ax.axvline(j - 0.5, color="white", linewidth=4)
    handles = [Patch(facecolor=colour, edgecolor="#999999", label=label) for colour, label in (
        (colours[0], "as documented"), (colours[1], "not as documented"), ("white", white_means))]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)
    fig.suptitle(title)
    return fig


def everywhere(matrix) -> dict[str, list[str]]:
    """Kind of model -> the calls whose row is as documented in every column of :func:`columns` (the advice the
    grid supports for that kind; an empty list where no call is)."""
    judged = documented(matrix)
    advice: dict[str, list[str]] = {}
    for row in ROWS:
        advice.setdefault(row.kind, [])
        if all(found is True for found in judged[(row.kind, row.call)]):
            advice[row.kind].append(row.call)
    return advice


def advice_table(matrix) -> FactTable:
    """The decision table: per kind of model, the calls that behaved as documented under every variant and backend."""
    return FactTable(["model", "as documented in every column"],
                     [[kind, "; ".join(calls) or "none"] for kind, calls in everywhere(matrix).items()])
