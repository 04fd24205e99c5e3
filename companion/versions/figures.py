"""The matrix drawn: grids of cells, one row per question and one column per group of Keras columns that answered
every row alike (so that sixteen releases with the same answers take one column), each cell coloured by whether
the answer is the one the documentation or the tutorials lead a reader to expect.

Blue and orange (the book's colour-blind-safe pair) mean "as documented" and "not as documented" only where the
documentation promises something; an answer nothing promises stays white, with its text. Cell text is at least 9
points.
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any, Callable

from companion.checks import evidence, fine_tuning, guard_checks
from companion.checks.check import Check
from companion.checks.ways import Way
from companion.core import plots
from companion.core.columns import Column
from companion.core.tables import show


@dataclasses.dataclass(frozen=True)
class Row:
    """One yes/no question a figure asks of a check's value."""

    label: str
    check: Check
    answer: Callable[[Any], bool]  # the check's value -> the yes/no the colour judges
    expected: bool | None  # what the documentation leads a reader to expect; None: nothing is promised
    text: Callable[[Any], str] | None = None  # the check's value -> the cell's text (default: the yes/no)


def _cell(row: Row, value) -> tuple[str, float | None]:
    """A cell's text and shade (0: as documented, 1: not, None: not measured or nothing promised; None rather than
    NaN, so that equal cells compare equal when columns are grouped)."""
    if evidence.unmeasured(value):
        return str(value).replace("not applicable", "n/a"), None
    answered = row.answer(value)
    if not isinstance(answered, bool):
        return "err" if evidence.unmeasured(answered) else show(answered), None
    text = show(answered) if row.text is None else row.text(value)
    return text, None if row.expected is None else float(answered != row.expected)


def _short(columns: list[Column]) -> str:
    """A group of columns in a few words, one column per line: "3.0.5–3.14.1", "nightly JAX"; PyTorch as "torch",
    to fit a column."""
    numbered = [c.version for c in columns if c.numbered]
    others = [c.short_label.replace("PyTorch", "torch") for c in columns if not c.numbered]
    span = [numbered[0] if len(numbered) == 1 else f"{numbered[0]}–{numbered[-1]}"] if numbered else []
    return "\n".join(span + others)


AS_DOCUMENTED = ("as documented", "not as documented")
AS_INTENDED = ("as the tutorials intend", "not as they intend")


def grid(matrix, rows: list[Row], title: str, meanings: tuple[str, str] = AS_DOCUMENTED):
    """One row per question, one column per group of columns that answered every row alike; ``meanings`` name the
    blue and the orange in the legend."""
    import numpy as np

    groups: dict[tuple, list[Column]] = {}
    for m in matrix.measured:
        key = tuple(_cell(row, m.values[row.check]) for row in rows) if m.ran else (m.error,)
        groups.setdefault(key, []).append(m.column)
    cells = np.full((len(rows), len(groups)), "", dtype=object)
    shade = np.full(cells.shape, np.nan)
    for j, (key, _) in enumerate(groups.items()):
        for i in range(len(rows)):
            text, value = key[i] if len(key) == len(rows) else ("did not run", None)
            cells[i, j], shade[i, j] = text, np.nan if value is None else value
    labels = ["\n".join(textwrap.wrap(row.label, 20)) if "\n" not in row.label else row.label for row in rows]
    return draw_cells(cells, shade, labels, [_short(columns) for columns in groups.values()], title, meanings)


# A fine-tuning's departures from the tutorials' intent, as a cell writes them (a figure's caption says what each
# means): BatchNormalization statistics moved, the base's own Dropout dropped, the head's Dropout did not drop, ...
DEPARTURE_CODES = {"BN moved": "BN", "own Dropout on": "own", "head Dropout off": "head", "kernels trained": "kernels",
                   "no kernel trained": "kernels", "remedy missed BN layers": "missed", "gamma/beta moved": "gamma"}


def _departures_cell(remedy: bool) -> Callable[[Any], str]:
    """A fine-tuning's departures from the tutorials' intent, whichever phase, in codes (:data:`DEPARTURE_CODES`)
    joined by "+"; "ok" where there are none."""
    def text(value) -> str:
        found = [DEPARTURE_CODES[what.split(": ", 1)[1]] for what in fine_tuning.departures(value, remedy)]
        return " + ".join(dict.fromkeys(found)) or "ok"

    return text


def way_rows(way: Way, kinds=fine_tuning.KINDS) -> list[Row]:
    """One row per kind of model fine-tuned ``way``: as the tutorials intend, or how not."""
    return [Row(kind.name, fine_tuning.check(kind, way), fine_tuning.as_intended(way.remedy), True,
                _departures_cell(way.remedy)) for kind in kinds if way in kind.ways]


def guard_rows(kinds=fine_tuning.KINDS) -> list[Row]:
    """One row per kind of model: the guard fired on every phase that broke what the model states, and on no other
    (:mod:`companion.checks.guard_checks`); the cell counts both."""
    return [Row(kind.name, guard_checks.CHECKS[kind], lambda value: value.exact, True,
                lambda value: f"fired {value.fired_on_broken}/{value.broken}\n"
                              f"silent {value.silent_on_as_stated}/{value.as_stated}") for kind in kinds]


@plots.styled
def draw_cells(cells, shade, row_labels: list[str], column_labels: list[str], title: str,
               meanings: tuple[str, str] = AS_DOCUMENTED):
    """A grid of labelled cells: blue where the answer is the expected one (``shade`` 0), orange where not (1), white
    where nothing is promised or nothing was measured (NaN); white text on a dark cell; ``meanings`` name blue and
    orange in the legend."""
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

    lines = max(str(text).count("\n") + 1 for text in column_labels)
    height = 0.42 * len(row_labels) + 0.17 * lines + 1.2
    fig, ax = plt.subplots(figsize=(plots.WIDTH, height), layout="constrained")
    ax.imshow(shade, cmap=ListedColormap(list(colours)).with_extremes(bad="white"), vmin=0, vmax=1, aspect="auto")
    for (i, j), text in np.ndenumerate(cells):
        ax.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if dark(shade[i, j]) else "black")
    ax.set_xticks(range(len(column_labels)), column_labels, fontsize=9)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=9)
    ax.tick_params(length=0, top=True, labeltop=True, bottom=False, labelbottom=False)
    ax.grid(False)
    ax.set_xticks(np.arange(len(column_labels) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(row_labels) + 1) - 0.5, minor=True)
    ax.tick_params(which="minor", length=0)
    ax.grid(which="minor", color="#cccccc", linewidth=1)
    drawn = {value for value in np.ravel(shade) if not np.isnan(value)}
    handles = [Patch(facecolor=colour, edgecolor="#999999", label=label) for value, colour, label in (
        (0.0, colours[0], meanings[0]), (1.0, colours[1], meanings[1])) if value in drawn]
    if np.isnan(shade).any():
        handles.append(Patch(facecolor="white", edgecolor="#999999", label="nothing promised, or not measured"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9)
    fig.suptitle(title)
    return fig
